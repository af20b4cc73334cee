"""The player shard's write-path I/O never waits for a pool connection longer
than db_timeout_s: with every connection held (a settle or write hung on the
server), a settle, reconcile, duplicate check or catalog reload fails in time
and the pipeline answers `unavailable`, instead of the writer waiting for ever.
And an unlock of a game the shard learns of by reloading its catalog mid-round
goes through the same backlog admission as any other."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from podium.actors import player_shard
from podium.core.catalog import Catalog
from podium.settings import Settings
from podium.transport.presence import PresenceView
from podium.wire.messages import AckStatus, Reason, Unlock, UnlockBatch

# The class under @ray.remote: its methods run here without Ray.
Shard = player_shard.PlayerShard.__ray_metadata__.modified_class.__mro__[1]


class ExhaustedPool:
    """Every connection is taken: acquire waits up to its timeout (for ever without one)."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    @contextlib.asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator[object]:
        self.timeouts.append(timeout)
        await asyncio.sleep(timeout if timeout is not None else 3600)
        raise TimeoutError("no connection free in the pool")
        yield  # pragma: no cover


@pytest.fixture
def shard() -> object:
    actor = object.__new__(Shard)
    actor.index = 0
    actor.settings = Settings(database_url="postgresql://db.invalid/podium", redis_url="redis://redis.invalid",
                              token_secret="unit-test-secret", db_timeout_s=0.05)
    actor.pool = ExhaustedPool()
    return actor


@pytest.mark.parametrize("call", ["settle", "reconcile", "journaled", "catalog"])
async def test_a_pool_with_no_free_connection_fails_the_call_within_db_timeout(shard, call: str) -> None:
    calls = {"settle": lambda: shard._settle(), "reconcile": lambda: shard._reconcile(0),
             "journaled": lambda: shard._journaled(UnlockBatch.of([Unlock("p", "g", "a")])),
             "catalog": lambda: shard._reload_catalog()}
    with pytest.raises(TimeoutError, match="no connection free"):
        await asyncio.wait_for(calls[call](), 1.0)
    assert shard.pool.timeouts == [0.05]


class FreePool:
    """A pool with a connection free at once (the fakes below never use it)."""

    @contextlib.asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator[object]:
        yield object()


def shard_with_full_lane(monkeypatch: pytest.MonkeyPatch, appended: list[list[str]]) -> object:
    """A shard with no Ray or PostgreSQL whose catalog predates game `new`
    (PostgreSQL's has it), with one leaderboard shard whose lane is full."""
    actor = object.__new__(Shard)
    actor.index = 0
    actor.settings = Settings(database_url="postgresql://db.invalid/podium", redis_url="redis://redis.invalid",
                              token_secret="unit-test-secret", delivery_backlog_max=1, leaderboard_shards=1)
    actor.pool = FreePool()
    actor.presence = PresenceView()
    actor._fresh_state()
    actor.catalog = Catalog({"old": {"a": 5, "b": 5}})

    async def insert_unlocks(conn: object, **columns: object) -> list[dict[str, object]]:
        appended.append(list(columns["game_ids"]))  # type: ignore[call-overload]
        return [{"player_id": "p", "game_id": "new", "achievement_id": "a", "seq": 1}]

    @contextlib.asynccontextmanager
    async def writing(conn: object, shard: int) -> AsyncIterator[None]:
        yield

    async def record_regions(*_: object) -> None:
        return None

    async def load_catalog(conn: object) -> Catalog:
        return Catalog.from_rows([{"game_id": "old", "achievement_id": "a", "points": 5},
                                  {"game_id": "old", "achievement_id": "b", "points": 5},
                                  {"game_id": "new", "achievement_id": "a", "points": 10}])

    async def catalog_version(conn: object) -> tuple[object, ...]:
        return (2,)

    monkeypatch.setattr(player_shard.journal, "insert_unlocks", insert_unlocks)
    monkeypatch.setattr(player_shard.journal, "writing", writing)
    monkeypatch.setattr(player_shard.journal, "record_regions", record_regions)
    monkeypatch.setattr(player_shard.catalog_store, "load_catalog", load_catalog)
    monkeypatch.setattr(player_shard.catalog_store, "catalog_version", catalog_version)
    monkeypatch.setattr(player_shard.metrics, "observe", lambda *_, **__: None)

    async def journaled(batch: UnlockBatch) -> list[bool]:
        return [False] * len(batch)  # none journaled before

    actor.pipeline._journaled = journaled
    actor.pipeline.resume(0, 0, {("q", "old")})  # scores owed to the only leaderboard shard: its lane is full
    assert actor.pipeline.backlog >= actor.settings.delivery_backlog_max
    return actor


async def test_an_unlock_of_a_game_added_since_is_admitted_against_the_backlog_after_the_reload(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The shard's catalog predates game `new`; its unlock makes the round
    reload it. The leaderboard lane `new` goes to is full: the unlock is
    answered `overloaded` and not journaled, as one of a game known all along
    would be (it used to skip admission and overshoot backlog_max)."""
    appended: list[list[str]] = []
    actor = shard_with_full_lane(monkeypatch, appended)
    answer = asyncio.get_running_loop().create_future()
    await actor.pipeline.write_round([(UnlockBatch.of([Unlock("p", "new", "a")]), answer)])
    assert actor.catalog.has_game("new"), "the round reloaded the catalog"
    assert answer.result().statuses == [AckStatus.REJECTED], "journaled past a full backlog"
    assert answer.result().reasons == [Reason.OVERLOADED.value] and not appended


async def test_a_catalog_that_grows_between_admission_and_the_write_adds_no_unadmitted_row(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog poll reloads while the round awaits its duplicate check
    (between admission and the journal write): the write journals what
    admission saw, so `new`, unknown then, is answered `unknown_game`, not
    journaled past the full backlog."""
    appended: list[list[str]] = []
    actor = shard_with_full_lane(monkeypatch, appended)
    actor._catalog_at = player_shard.time.monotonic()  # reloaded just now: the round does not reload again

    async def journaled(batch: UnlockBatch) -> list[bool]:
        await actor._reload_catalog()  # the poll, meanwhile
        return [False] * len(batch)

    actor.pipeline._journaled = journaled
    answer = asyncio.get_running_loop().create_future()
    await actor.pipeline.write_round([(UnlockBatch.of([Unlock("q", "old", "b"), Unlock("p", "new", "a")]), answer)])
    assert actor.catalog.has_game("new")
    assert answer.result().reasons == [Reason.OVERLOADED.value, "unknown_game"] and not appended
