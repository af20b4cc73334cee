"""The player shard's write-path I/O never waits for a pool connection longer
than db_timeout_s: with every connection held (a settle or write hung on the
server), a settle, reconcile or duplicate check fails in time and the pipeline
answers `unavailable`, instead of the writer waiting for ever."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from actors import player_shard
from actors.messages import Unlock, UnlockBatch
from persistence.settings import Settings

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


@pytest.mark.parametrize("call", ["settle", "reconcile", "journaled"])
async def test_a_pool_with_no_free_connection_fails_the_call_within_db_timeout(shard, call: str) -> None:
    calls = {"settle": lambda: shard._settle(), "reconcile": lambda: shard._reconcile(0),
             "journaled": lambda: shard._journaled(UnlockBatch.of([Unlock("p", "g", "a")]))}
    with pytest.raises(TimeoutError, match="no connection free"):
        await asyncio.wait_for(calls[call](), 1.0)
    assert shard.pool.timeouts == [0.05]
