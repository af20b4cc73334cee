"""One asyncpg pool per process: created at start, closed at stop. Every
statement has a deadline (asyncpg's command_timeout raises TimeoutError), and
so does every wait for a connection: asyncpg's `acquire()` waits for ever by
default, so a pool whose connections are all held (a stalled server, a burst
of slow reads) would hang its callers instead of failing them."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import Pool


class DeadlinePool(Pool):
    """asyncpg's Pool whose `acquire()` without a timeout waits `acquire_timeout_s`
    at most (then TimeoutError, like a statement past its deadline)."""

    __slots__ = ("acquire_timeout_s",)

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout_s if timeout is None else timeout)


async def create_pool(database_url: str, *, max_size: int = 4, timeout_s: float = 10.0) -> asyncpg.Pool:
    """What asyncpg.create_pool builds (its defaults, asyncpg 0.32), as a DeadlinePool."""
    pool = DeadlinePool(database_url, connection_class=asyncpg.Connection, record_class=asyncpg.Record,
                        min_size=1, max_size=max_size, max_queries=50000, max_inactive_connection_lifetime=300.0,
                        loop=None, command_timeout=timeout_s)
    pool.acquire_timeout_s = timeout_s
    await pool
    return pool


@asynccontextmanager
async def connection(database_url: str, *, timeout_s: float) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own with another deadline (recovery reads millions of rows)."""
    conn = await asyncpg.connect(database_url, command_timeout=timeout_s, timeout=min(timeout_s, 60.0))
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def same_snapshot(snapshot: str, database_url: str, *,
                        timeout_s: float) -> AsyncIterator[asyncpg.Connection]:
    """A second connection that reads exactly what another connection's open
    repeatable-read transaction reads (`snapshot`: its `export_snapshot`), so
    two recovery reads run in parallel and still see one consistent state."""
    async with connection(database_url, timeout_s=timeout_s) as twin, \
            twin.transaction(isolation="repeatable_read", readonly=True):
        await twin.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        await twin.execute("SET LOCAL work_mem = '256MB'")
        yield twin


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """The snapshot of `conn`'s open transaction, for `same_snapshot`."""
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))
