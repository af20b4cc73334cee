"""What both actor shells share: one-time start (pool, Redis, recovery), begun
as soon as the actor exists, and background loops that log and continue
instead of dying."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
import ray
import redis.asyncio as aioredis

from actors.presence import Presence
from persistence.db import create_pool
from persistence.settings import Settings

log = logging.getLogger(__name__)


class ActorBase:
    """Holds the settings, the pool and the Redis client of one actor process.
    __init__ cannot await, so it queues a call to its own `ready`: a restarted
    actor recovers at once (a player shard redelivers its journal tail even if
    nobody writes to it). Every method awaits `ready` too; one recovery runs."""

    def __init__(self, index: int, settings: Settings) -> None:
        assert settings.database_url and settings.redis_url, "the driver resolves URLs before starting actors"
        self.index = index
        self.settings = settings
        self.pool: asyncpg.Pool
        self.redis: aioredis.Redis
        self.recovered_in_s: float | None = None
        self.presence = Presence()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = ray.get_runtime_context().current_actor.start.remote()

    async def ready(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            t0 = time.perf_counter()
            if not hasattr(self, "pool"):  # kept across a failed attempt
                self.pool = await create_pool(self.settings.database_url or "", max_size=self.settings.db_pool_max)
                self.redis = aioredis.from_url(self.settings.redis_url or "")
                await self.presence.follow(self.redis, self.settings.redis_prefix)
            await self.recover()
            self.recovered_in_s = time.perf_counter() - t0
            self._started = True
            log.info("%s %d ready in %.2fs", type(self).__name__, self.index, self.recovered_in_s)

    async def start(self) -> None:
        """Recover now, retrying until it works (PostgreSQL may be briefly away)."""
        delay = 0.5
        while not self._started:
            try:
                await self.ready()
            except Exception:
                log.exception("%s %d: recovery failed; retrying in %.1fs", type(self).__name__, self.index, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def recover(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run a task the actor keeps a reference to until it finishes."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def every(self, seconds: float, step: Callable[[], Awaitable[None]], name: str) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s failed; retrying in %.1fs", name, seconds)

        self.spawn(loop())
