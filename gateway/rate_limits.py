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

A limit spec is the library's notation ("100/second", "20/second;600/minute");
empty turns that limit off. The limits guard the cluster, not correctness:
when Redis is away or slow a check gives up within `timeout_s` and lets the
request through (counted in `podium_rate_limit_errors`), so an outage of
Redis never stops ingest."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time

import redis.asyncio as aioredis
from cachetools import TTLCache
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from actors import metrics

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


def credential_id(secret: str) -> str:
    """What a key or token is counted under: a digest, so no secret is a Redis key."""
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
        """None when `cost` fits (and is counted); else whole seconds to wait."""
        items = self._items.get(kind)
        if not items or cost <= 0 or time.monotonic() < self._open_until:
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
        metrics.count("podium_rate_limited", kind=kind)
        return max(1, math.ceil(reset - time.time()))

    async def _over(self, items: list[RateLimitItem], kind: str, who: str, cost: int) -> float | None:
        """When the first limit `cost` does not fit in resets (epoch s); None if all fit."""
        for item in items:
            if not await self._limiter.hit(item, kind, who, cost=cost):
                return float((await self._limiter.get_window_stats(item, kind, who)).reset_time)
        return None
