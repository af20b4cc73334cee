"""What both actor shells share: lazy one-time start (pool, Redis, recovery)
and background loops that log and continue instead of dying."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
import redis.asyncio as aioredis

from actors.presence import Presence
from persistence.db import create_pool
from persistence.settings import Settings

log = logging.getLogger(__name__)


class ActorBase:
    """Holds the settings, the pool and the Redis client of one actor process.
    Recovery runs on the first call (a restarted actor reruns __init__, which
    cannot await), guarded so concurrent first calls wait for one recovery."""

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

    async def ready(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            t0 = time.perf_counter()
            self.pool = await create_pool(self.settings.database_url or "", max_size=self.settings.db_pool_max)
            self.redis = aioredis.from_url(self.settings.redis_url or "")
            await self.presence.follow(self.redis, self.settings.redis_prefix)
            await self.recover()
            self.recovered_in_s = time.perf_counter() - t0
            self._started = True
            log.info("%s %d ready in %.2fs", type(self).__name__, self.index, self.recovered_in_s)

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
