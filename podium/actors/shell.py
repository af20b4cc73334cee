"""What both actor shells share: one-time start (pool, Redis, recovery), begun
as soon as the actor exists; supervised background loops that log and restart
instead of vanishing; presence followed in a loop of its own that heals
itself (Redis may be away at start: that must not stop pushes for good)."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import ray
import redis.asyncio as aioredis
from ray.exceptions import ActorUnavailableError, RayActorError

from podium.core.recovery import Recovery
from podium.core.tasks import log_failure, supervise
from podium.persistence.db import create_pool
from podium.settings import Settings
from podium.telemetry.metrics import loop_monitor
from podium.transport import directory, presence
from podium.wire.errors import ShardUnavailable

log = logging.getLogger(__name__)
SETTLE_GC_S = 5.0  # how often an actor moves its long-lived objects out of the cyclic GC's reach


class ActorBase:
    """Holds the settings, the pool and the Redis client of one actor process.
    __init__ cannot await, so it has its own `start` called: a restarted actor
    recovers at once (a player shard redelivers its journal tail even if nobody
    calls it). Ray refuses a call to an actor it still counts as restarting -
    which it does while __init__ runs - so a thread keeps submitting that call
    until the actor takes it; and any call that finds the actor not started
    also starts the recovery loop if none runs (podium/core/recovery.py: one attempt
    at a time, a growing pause after each failure). Writes await `ready`, which
    waits for the attempt under way (at most actor_call_timeout_s) and answers
    ShardUnavailable at once while recovery pauses after a failure; reads call
    `serving`, which answers ShardUnavailable (HTTP 503) at once while
    recovery runs."""

    def __init__(self, index: int, settings: Settings) -> None:
        assert settings.database_url and settings.redis_url, "the driver resolves URLs before starting actors"
        self.index = index
        self.settings = settings
        self.pool: asyncpg.Pool
        self.redis: aioredis.Redis
        self.recovered_in_s: float | None = None
        self.presence = presence.PresenceView()
        self._recovery = self._new_recovery()
        self._tasks: set[asyncio.Task[None]] = set()
        self._servers: dict[str, asyncio.Future[asyncio.Server]] = {}
        self._follower_started = False
        self.channel_key = settings.channel_key()  # what callers present on this actor's channels
        self.loop_lag = loop_monitor(settings, *process_name(type(self).__name__, index))
        threading.Thread(target=_start_when_alive, args=(ray.get_runtime_context().current_actor,
                                                         f"{type(self).__name__} {index}"),
                         name="start-when-alive", daemon=True).start()

    def _new_recovery(self) -> Recovery:
        return Recovery(self._recover_once, name=f"{type(self).__name__} {self.index}")

    @property
    def _started(self) -> bool:
        return self._recovery.ready

    async def ready(self) -> None:
        """Return once recovered; never starts an attempt of its own (see the class docstring)."""
        await self._recovery.wait(self.settings.actor_call_timeout_s)

    async def _recover_once(self) -> None:
        """One recovery attempt (the Recovery loop runs one at a time)."""
        t0 = time.perf_counter()
        s = self.settings
        if not hasattr(self, "redis"):
            self.redis = aioredis.from_url(s.redis_url or "", client_name=f"{s.redis_prefix}actor",
                                           socket_timeout=s.redis_timeout_s,
                                           socket_connect_timeout=s.redis_timeout_s)
        if not self._follower_started:
            self._follower_started = True
            self.supervise("presence follower", lambda: presence.follow(
                self.presence, self.redis, s.redis_prefix, resync_s=s.presence_resync_s, ttl_s=s.presence_ttl_s))
        if not hasattr(self, "pool"):  # kept across a failed attempt
            self.pool = await create_pool(self.settings.database_url or "", max_size=self.settings.db_pool_max,
                                          timeout_s=self.settings.db_timeout_s)
        await self.recover()
        settle_gc()
        self.every(SETTLE_GC_S, _settle_gc_async, "gc settle")
        self.recovered_in_s = time.perf_counter() - t0
        log.info("%s %d ready in %.2fs", type(self).__name__, self.index, self.recovered_in_s)

    def serving(self) -> None:
        """Reads do not wait for a recovery that may take seconds: the gateway answers 503 + Retry-After."""
        if not self._started:
            self._kick()
            raise ShardUnavailable(f"{type(self).__name__} {self.index} is recovering; retry shortly")

    def _kick(self) -> asyncio.Future[None]:
        """The recovery loop, started if none runs; and the loop lag monitor (on the
        actor's loop, for the process's life: recovery's stalls count too)."""
        self.loop_lag.start()
        return self._recovery.kick()

    async def start(self) -> None:
        """Recover now (called by the start thread, see __init__); returns once recovered."""
        await asyncio.shield(self._kick())

    async def recover(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fresh_state(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def reconfigure(self, settings: Settings) -> None:
        """Resharding: stop every background loop, forget all state, and recover
        again under `settings` (another shard count) in this same process, so a
        reshard starts new processes only for shards that are added. Channel
        servers keep their ports; callers reconnect anyway (their layout changed)."""
        # First the recovery loop: an attempt under way would start loops after the cancel below,
        # and one pausing after a failure would recover this actor again beside the new one.
        await self._recovery.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self.settings = settings
        self._recovery = self._new_recovery()
        self._follower_started = False
        directory.forget()  # shards of the old layout may be gone
        self._fresh_state()
        await self.start()

    async def pid(self) -> int:
        """The actor's process id (fault tests SIGKILL it, as the kernel's OOM killer would)."""
        return os.getpid()

    async def online(self, player_ids: list[str]) -> list[bool]:
        """Whether this actor sees each player as online (push troubleshooting, tests)."""
        self.serving()
        return [p in self.presence for p in player_ids]

    async def listen(self, name: str, start: Callable[[str], Awaitable[asyncio.Server]]) -> tuple[str, int]:
        """The address of this actor's channel server `name` (podium/transport/channel.py),
        started on first ask on `channel_host` (default the node's IP, so callers
        on other nodes reach it); a failed start is tried again on the next ask."""
        server = self._servers.get(name)
        if server is None:
            host = self.settings.channel_host or ray.util.get_node_ip_address()
            server = self._servers[name] = asyncio.ensure_future(start(host))
        try:
            started = await asyncio.shield(server)
        except Exception:
            self._servers.pop(name, None)
            raise
        bound, port = started.sockets[0].getsockname()[:2]
        return bound, port

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run a one-off task the actor keeps a reference to; a failure is logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(log_failure)

    def supervise(self, name: str, loop: Callable[[], Awaitable[None]],
                  on_restart: Callable[[], None] | None = None) -> None:
        """Run a forever-loop that is logged and restarted if it ever dies."""
        self.spawn(supervise(f"{type(self).__name__} {self.index} {name}", loop, on_restart=on_restart))

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

        self.supervise(name, loop)


def process_name(class_name: str, index: int) -> tuple[str, str]:
    """(process_kind, name) of a shard actor for its loop lag: PlayerShard 3 ->
    ("player_shard", "player-shard-3"), the name it has in Ray."""
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", class_name).lower()
    return kebab.replace("-", "_"), f"{kebab}-{index}"


def settle_gc() -> None:
    """Freeze what is alive now out of later cyclic-GC passes (young cycles are
    collected first). A shard's state is millions of entries in a few large
    dicts and lists, which every full collection walks: at 100,000 players
    that stalled a leaderboard shard 110-307 ms and a player shard 107-333 ms
    at a time (reads and acks wait meanwhile), and it grows with the boards.
    The state makes no cycles, and full collections in these actors found ~0
    cyclic garbage, so what a freeze keeps alive is negligible; the count of
    frozen objects is in each shard's status (`gc_frozen`)."""
    gc.collect(1)
    gc.freeze()


async def _settle_gc_async() -> None:
    settle_gc()


def _start_when_alive(handle: Any, name: str) -> None:
    """Call the actor's own `start` until Ray takes the call (not while the actor
    counts as restarting) and it returns: recovery then runs even if nobody else
    ever calls this actor."""
    delay = 0.05
    while True:
        try:
            ray.get(handle.start.remote())
            return
        except (ActorUnavailableError, RayActorError):
            time.sleep(delay)  # a thread of its own: the actor's event loop is not held
            delay = min(delay * 2, 2.0)
        except Exception:
            log.exception("%s: start failed; calling it again", name)
            time.sleep(1.0)
