"""journal.settle against the real PostgreSQL: a settle that times out
terminates only the append of its own shard in its own database that was open
all along - never another database's append of a shard with the same number
(several Podium databases may share one server), nor a transaction that a
holder's connection began after the one it saw had ended. Needs no cluster:
two databases of its own on the server PODIUM_DATABASE_URL names (else the
session cluster's)."""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from podium.persistence import journal
from tests.integration.conftest import _admin, _with_database

SHARD = 7


@pytest.fixture
async def two_databases(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    admin = os.environ.get("PODIUM_DATABASE_URL") or request.getfixturevalue("cluster").admin_url
    names = [f"podium_settle_{uuid.uuid4().hex[:8]}_{side}" for side in "ab"]
    for name in names:
        await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin, names[0]), _with_database(admin, names[1])
    finally:
        for name in names:
            await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def open_append(url: str) -> tuple[asyncpg.Connection, Any]:
    """A connection inside a transaction holding SHARD's writer lock, as journal.append holds it."""
    conn = await asyncpg.connect(url)
    tx = conn.transaction()
    await tx.start()
    await conn.execute(journal._LOCK, journal._WRITER_LOCK_CLASS, SHARD)
    return conn, tx


async def alive(conn: asyncpg.Connection) -> bool:
    try:
        return await conn.fetchval("SELECT 1", timeout=5) == 1
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
            ConnectionError):  # a terminated backend, however its news reached the client
        return False


def drop(*conns: asyncpg.Connection) -> None:
    """Close without a round trip: a terminated connection may not answer one."""
    for conn in conns:
        conn.terminate()


async def test_a_settle_terminates_its_own_databases_append_and_never_another_databases(two_databases) -> None:
    url_a, url_b = two_databases
    stuck_a, _ = await open_append(url_a)  # an append of shard 7 whose client gave up on it
    busy_b, tx_b = await open_append(url_b)  # another Podium's shard 7, mid-append, on the same server
    settler = await asyncpg.connect(url_a)
    try:
        with pytest.raises(TimeoutError, match="1 terminated"):
            await journal.settle(settler, shard=SHARD, timeout_s=0.5)
        assert not await alive(stuck_a), "the open append of this database's shard was not terminated"
        assert await alive(busy_b), "a settle in database A terminated database B's append"
        await tx_b.commit()
        await journal.settle(settler, shard=SHARD, timeout_s=0.5)  # nothing open in A any more
    finally:
        drop(stuck_a, busy_b, settler)


class ReusedBeforeTermination:
    """The settle's connection, except that just before its terminate statement
    the holder commits and its connection begins another transaction that takes
    the lock (a pooled connection reused by a later append)."""

    def __init__(self, conn: asyncpg.Connection, holder: asyncpg.Connection, tx: Any) -> None:
        self._conn, self._holder, self._tx = conn, holder, tx
        self.reused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def _reuse(self, query: str) -> None:
        if "pg_terminate_backend" in query and not self.reused:
            self.reused = True
            await self._tx.commit()
            self._tx = self._holder.transaction()
            await self._tx.start()
            await self._holder.execute(journal._LOCK, journal._WRITER_LOCK_CLASS, SHARD)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        await self._reuse(query)
        return await self._conn.fetchval(query, *args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        await self._reuse(query)
        return await self._conn.fetch(query, *args, **kwargs)

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        await self._reuse(query)
        return await self._conn.execute(query, *args, **kwargs)


async def test_a_settle_never_terminates_a_transaction_begun_after_the_one_it_saw(two_databases) -> None:
    url_a, _ = two_databases
    holder, tx = await open_append(url_a)
    settler = await asyncpg.connect(url_a)
    racing = ReusedBeforeTermination(settler, holder, tx)
    try:
        with pytest.raises(TimeoutError, match="0 terminated"):
            await journal.settle(racing, shard=SHARD, timeout_s=0.5)  # type: ignore[arg-type]
        assert racing.reused
        assert await alive(holder), "the settle terminated a transaction that began after the one it waited on"
    finally:
        drop(holder, settler)


async def test_journaled_tells_which_unlocks_the_journal_holds(two_databases) -> None:
    """The check that answers a refused retry `duplicate` (podium/core/journal_pipeline.py)."""
    from datetime import UTC, datetime

    from podium.persistence import migrations

    url_a, _ = two_databases
    conn = await asyncpg.connect(url_a)
    try:
        await migrations.apply(conn)
        await journal.append(conn, shard=SHARD, player_ids=["p1", "p2"], game_ids=["g", "g"],
                             achievement_ids=["a", "b"], points=[1, 2], regions=[None, None],
                             unlocked_at=datetime.now(UTC), client_at=[None, None], region_updates={})
        held = await journal.journaled(conn, ["p2", "p1", "p1", "p2"], ["g", "g", "g", "h"], ["b", "b", "a", "b"])
        assert held == [True, False, True, False]
        assert await journal.journaled(conn, [], [], []) == []
    finally:
        await conn.close()
