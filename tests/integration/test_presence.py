"""Presence heals itself: the follower the actors run (podium/transport/presence.follow)
against a real Redis behind a fault proxy. Redis away at start, connections
cut while a player joins, a replica that dies without a word."""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from podium.transport import presence
from podium.transport.presence import PresenceView
from tests.integration.conftest import eventually
from tests.integration.faults import FaultProxy

RESYNC_S, TTL_S = 0.3, 2.0


@contextlib.asynccontextmanager
async def following(cluster, *, start_down: bool = False) -> AsyncIterator[tuple[PresenceView, aioredis.Redis,
                                                                                 FaultProxy]]:
    """A follower reading Redis through a fault proxy; a direct client writes as a replica would."""
    prefix = f"{cluster.settings.redis_prefix}presence-{uuid.uuid4().hex[:6]}:"
    direct = aioredis.from_url(cluster.settings.redis_url)
    async with FaultProxy(cluster.settings.redis_url) as proxy:
        proxy.down = start_down
        view = PresenceView()
        via_proxy = aioredis.from_url(proxy.url)
        follower = asyncio.ensure_future(presence.follow(view, via_proxy, prefix, resync_s=RESYNC_S, ttl_s=TTL_S))
        try:
            await presence.heartbeat(direct, prefix, "r1", set(), TTL_S)
            yield view, Replica(direct, prefix), proxy
            assert not follower.done(), "the follower must never stop"
        finally:
            follower.cancel()
            await via_proxy.aclose()
            await direct.aclose()


class Replica:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    async def join(self, player_id: str) -> None:
        await presence.join(self.client, self.prefix, "r1", player_id)


async def test_a_follower_that_starts_while_redis_is_away_catches_up(cluster) -> None:
    async with following(cluster, start_down=True) as (view, replica, proxy):
        await replica.join("early")
        await asyncio.sleep(0.5)  # the follower fails to connect a few times meanwhile
        assert "early" not in view
        proxy.down = False
        await eventually(lambda: "early" in view, timeout=10)


async def test_a_join_lost_while_the_connection_was_cut_is_healed_by_resync(cluster) -> None:
    async with following(cluster) as (view, replica, proxy):
        await replica.join("first")
        await eventually(lambda: "first" in view, timeout=10)
        proxy.down = True
        proxy.cut()  # the follower's subscription is gone: the next message cannot reach it
        await replica.join("missed")
        proxy.down = False
        await eventually(lambda: "missed" in view and "first" in view, timeout=10)


async def test_a_replica_that_stops_heartbeating_is_dropped_within_the_ttl(cluster) -> None:
    prefix = f"{cluster.settings.redis_prefix}presence-{uuid.uuid4().hex[:6]}:"
    client = aioredis.from_url(cluster.settings.redis_url)
    view = PresenceView()
    follower = asyncio.ensure_future(presence.follow(view, client, prefix, resync_s=RESYNC_S, ttl_s=TTL_S))
    try:
        await presence.heartbeat(client, prefix, "alive", {"a"}, TTL_S)
        await presence.heartbeat(client, prefix, "dying", {"b"}, TTL_S)
        await eventually(lambda: "a" in view and "b" in view, timeout=10)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while "b" in view:  # "alive" keeps heartbeating; "dying" has stopped
            await presence.heartbeat(client, prefix, "alive", {"a"}, TTL_S)
            await asyncio.sleep(0.2)
            assert loop.time() - t0 < TTL_S + 2 * RESYNC_S + 1, "a dead replica's player still counts"
        assert "a" in view
    finally:
        follower.cancel()
        await client.aclose()
