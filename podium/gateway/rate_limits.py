"""Rate limits every gateway replica shares: the counts live in Redis (the
`limits` library's sliding-window counter, one round trip per check), so ten
replicas hold a client to one limit, not ten. What is counted, per whom
(docs/operations.md "Rate limits"):

- `unlocks`: unlocks per API key (a frame or POST counts its valid items);
- `reads`: HTTP requests per client address (public boards, the catalog);
- `player_reads`: private reads, friend changes and socket query frames per
  credential (the player of a token, or the API key);
- `handshakes`: WebSocket handshakes per client address, before any credential.

Reads are metered: a replica counts a client's reads locally and charges
them to Redis at most every `METER_S` (100 ms) per client, in one hit of
their summed cost, and refuses the client locally until the window frees
it once Redis says it is over. A heavy client thus costs one round trip per
100 ms, not one per read; a client can pass its limit by at most what it
sends a replica in 100 ms.

Checks of one client by one replica never queue up behind each other: while
a hit for (kind, client) is in flight, the checks that arrive join the next
one, which carries their summed cost (like a group commit). Every request is
still counted in Redis before it goes on, so the limit is exact; when a joint
hit of several does not fit, each of them tries alone (so a burst is cut at
the limit, never below it, and never more let through). Many concurrent POSTs of one key thus cost a round trip
per in-flight hit, not one each.

A limit spec is the library's notation ("100/second", "20/second;600/minute");
empty turns that limit off. The limits guard the cluster, not correctness:
when Redis is away or slow a check gives up within `timeout_s` and lets the
request through (counted in `podium_rate_limit_errors`), so an outage of
Redis never stops ingest."""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from cachetools import TTLCache
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from podium.telemetry import metrics

log = logging.getLogger(__name__)
KINDS = ("unlocks", "reads", "player_reads", "handshakes")
CHECK_TIMEOUT_S = 0.5  # a check slower than this lets the request through
PAUSE_AFTER_ERROR_S = 1.0  # after a failed check, let everything through this long (no storm on a dead Redis)
METER_S = 0.1  # a metered client's reads are charged to Redis at most this often per replica
METERS_MAX = 20_000  # clients metered at once per replica (the idle ones age out)


class RateLimited(Exception):
    """Over a rate limit: HTTP 429 + Retry-After, or `rejected`/`rate_limited` acks."""

    code = "rate_limited"

    def __init__(self, kind: str, retry_after_s: int) -> None:
        super().__init__(f"over the {kind} rate limit; retry after {retry_after_s} s")
        self.kind = kind
        self.retry_after_s = retry_after_s


def parse_specs(specs: dict[str, str]) -> dict[str, list[RateLimitItem]]:
    """Each kind's limits; a ValueError names a spec the library cannot read."""
    out: dict[str, list[RateLimitItem]] = {}
    for kind, spec in specs.items():
        if kind not in KINDS:
            raise ValueError(f"unknown rate limit {kind!r}; known: {', '.join(KINDS)}")
        if spec.strip():
            out[kind] = parse_many(spec)
    return out


@functools.lru_cache(maxsize=4096)
def credential_id(secret: str) -> str:
    """What a key or token is counted under: a digest, so no secret is a Redis key.
    Cached: a game server's key is digested once, not on every POST."""
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


class Meter:
    """One client's metered hits on this replica (pure: the caller does the Redis hit)."""

    __slots__ = ("blocked_until", "charge_at", "pending")

    def __init__(self) -> None:
        self.pending = 0
        self.charge_at = 0.0
        self.blocked_until = 0.0

    def hit(self, now: float, every_s: float) -> tuple[int | None, int]:
        """(seconds to wait if refused here, cost to charge to Redis now: 0 for none)."""
        if now < self.blocked_until:
            return max(1, math.ceil(self.blocked_until - now)), 0
        self.pending += 1
        if now < self.charge_at:
            return None, 0
        cost, self.pending, self.charge_at = self.pending, 0, now + every_s
        return None, cost

    def refuse_for(self, now: float, wait_s: int) -> None:
        self.blocked_until = now + wait_s


@dataclass(slots=True)
class _Joint:
    """Checks of one (kind, client) waiting for the hit in flight to end: they go as one hit."""
    answer: asyncio.Future[int | None]
    cost: int = 0
    members: int = 0


class RateLimits:
    def __init__(self, redis_url: str, prefix: str, specs: dict[str, str], *,
                 timeout_s: float = CHECK_TIMEOUT_S, connections: int = 64) -> None:
        self._items = parse_specs(specs)
        # A pool of its own, blocking when all are busy: waiting for one counts against timeout_s.
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=connections, timeout=timeout_s,
                                                        socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        storage = RedisStorage("async+redis://", implementation="redispy", key_prefix=f"{prefix}limits",
                               connection_pool=pool)  # type: ignore[arg-type]  # its **options hint is narrower than what it takes
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._timeout_s = timeout_s
        self._open_until = 0.0
        self._meters: TTLCache[tuple[str, str], Meter] = TTLCache(METERS_MAX, 10.0)
        self._in_flight: set[tuple[str, str]] = set()  # (kind, client) with a hit in flight
        self._joining: dict[tuple[str, str], _Joint] = {}  # ... and the checks that go in its next hit
        self._tasks: set[asyncio.Task[None]] = set()

    def enabled(self, kind: str) -> bool:
        return kind in self._items

    async def metered(self, kind: str, who: str) -> None:
        """One read by `who`, metered (above); RateLimited when refused."""
        if kind not in self._items:
            return
        meter = self._meters.get((kind, who))
        if meter is None:
            meter = self._meters[(kind, who)] = Meter()
        now = time.monotonic()
        wait, cost = meter.hit(now, METER_S)
        if cost:
            wait = await self.retry_after(kind, who, cost)
            if wait is not None:
                meter.refuse_for(now, wait)
        elif wait is not None:
            metrics.count("podium_rate_limited", kind=kind)
        if wait is not None:
            raise RateLimited(kind, wait)

    async def retry_after(self, kind: str, who: str, cost: int = 1) -> int | None:
        """None when `cost` fits (and is counted); else whole seconds to wait.
        While a hit of the same (kind, who) is in flight, this joins the next one."""
        items = self._items.get(kind)
        if not items or cost <= 0 or time.monotonic() < self._open_until:
            return None
        key = (kind, who)
        if key in self._in_flight:
            joint = self._joining.get(key)
            if joint is None:
                joint = self._joining[key] = _Joint(asyncio.get_running_loop().create_future())
            joint.cost += cost
            joint.members += 1
            wait = await asyncio.shield(joint.answer)
            if wait is not None and joint.members > 1:
                # The summed cost did not fit, but this one alone may: the limit counts it on its own, so
                # a burst over the limit is cut at the limit, as it was before checks joined.
                wait = await self._check(items, kind, who, cost)
        else:
            self._in_flight.add(key)
            try:
                wait = await self._check(items, kind, who, cost)
            finally:
                self._next_hit(key, items)
        if wait is not None:
            metrics.count("podium_rate_limited", kind=kind)
        return wait

    def _next_hit(self, key: tuple[str, str], items: list[RateLimitItem]) -> None:
        """The hit for `key` ended: send the checks that joined meanwhile as one, or free the key."""
        joint = self._joining.pop(key, None)
        if joint is None:
            self._in_flight.discard(key)
            return

        async def hit() -> None:
            try:
                joint.answer.set_result(await self._check(items, *key, joint.cost))
            except BaseException as exc:  # cancelled (the replica stops): the joiners are not left waiting
                joint.answer.set_exception(exc if isinstance(exc, Exception) else RuntimeError("check stopped"))
                raise
            finally:
                self._next_hit(key, items)

        task = asyncio.ensure_future(hit())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, items: list[RateLimitItem], kind: str, who: str, cost: int) -> int | None:
        """One hit of `cost` in Redis: None when it fits (counted), else whole seconds to wait.
        Redis away or slow (past timeout_s): None, and no checks for PAUSE_AFTER_ERROR_S."""
        if time.monotonic() < self._open_until:
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                reset = await self._over(items, kind, who, cost)
        except Exception as exc:  # Redis away or slow: the limits step aside, the request goes on
            now = time.monotonic()
            if now >= self._open_until:
                log.warning("rate limits skipped for %.0f s: a %s check failed (%s)", PAUSE_AFTER_ERROR_S, kind,
                            type(exc).__name__)
            self._open_until = now + PAUSE_AFTER_ERROR_S
            metrics.count("podium_rate_limit_errors", kind=kind)
            return None
        if reset is None:
            return None
        return max(1, math.ceil(reset - time.time()))

    async def _over(self, items: list[RateLimitItem], kind: str, who: str, cost: int) -> float | None:
        """When the first limit `cost` does not fit in resets (epoch s); None if all fit."""
        for item in items:
            if not await self._limiter.hit(item, kind, who, cost=cost):
                return float((await self._limiter.get_window_stats(item, kind, who)).reset_time)
        return None
