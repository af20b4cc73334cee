"""Player pushes through Redis pub/sub to a real WebSocket."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis
import redis.asyncio as aioredis
import websockets

from podium.gateway.auth import mint_token
from podium.transport import presence
from podium.wire.messages import ALL_GAMES
from tests.integration.conftest import eventually, wait_online


def events_of(frame: dict) -> list[dict]:
    """The pushes an `update` frame carries (any other frame is itself one event)."""
    return frame["events"] if frame.get("type") == "update" else [frame]


async def collect(ws, wanted: set[tuple[str, str]], timeout: float = 1.0) -> dict[tuple[str, str], dict]:
    """Events by (type, game_id) until every wanted pair has arrived, within the timeout."""
    deadline = time.monotonic() + timeout
    got: dict[tuple[str, str], dict] = {}
    while not wanted <= set(got):
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        for event in events_of(frame):
            got.setdefault((event["type"], event.get("game_id", "")), event)
    return got


async def test_unlock_and_rank_change_are_pushed_within_a_second(cluster, api_key, uid) -> None:
    p = uid("pushed")
    token = mint_token(cluster.settings.token_secret, p, 60)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}",
                                  additional_headers={"Authorization": f"Bearer {token}"}) as player:
        assert orjson.loads(await player.recv())["type"] == "subscribed"
        await wait_online(cluster.settings, p)
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ingest:
            await ingest.send(orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": "a3",
                                             "region": "eu"}]).decode())
            assert orjson.loads(await ingest.recv())[0]["status"] == "accepted"
            t0 = time.monotonic()
            got = await collect(player, {("unlock.accepted", "arena"), ("rank.changed", "arena"),
                                         ("rank.changed", ALL_GAMES)})
            elapsed = time.monotonic() - t0
    unlocked, changed = got[("unlock.accepted", "arena")], got[("rank.changed", "arena")]
    assert (unlocked["achievement_id"], unlocked["points"]) == ("a3", 40)
    assert changed["old_rank"] is None and changed["new_rank"] >= 1
    assert got[("rank.changed", ALL_GAMES)]["points"] == 40  # the cross-game board moved too
    assert elapsed < 1.0


async def test_ping_gets_pong(cluster, uid) -> None:
    p = uid("pinger")
    token = mint_token(cluster.settings.token_secret, p, 60)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}?token={token}") as ws:
        await ws.recv()
        await ws.send("ping")
        assert orjson.loads(await ws.recv()) == {"type": "pong"}


@pytest.mark.parametrize("token_for", [None, "someone-else", "garbage"])
async def test_push_socket_refuses_missing_wrong_or_forged_tokens(cluster, uid, token_for) -> None:
    p = uid("victim")
    if token_for is None:
        query = ""
    elif token_for == "garbage":
        query = "?token=garbage"
    else:
        query = f"?token={mint_token(cluster.settings.token_secret, token_for, 60)}"
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}{query}"):
            pass
    assert err.value.response.status_code == 403


async def push_arrives(cluster, api_key: str, player, p: str, achievement: str) -> dict:
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await ws.send(orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": achievement}]).decode())
        assert orjson.loads(await ws.recv())[0]["status"] == "accepted"
    return (await collect(player, {("unlock.accepted", "arena")}, timeout=5.0))[("unlock.accepted", "arena")]


def restart_redis_for(settings) -> int:
    """What a Redis restart does to this cluster: every connection of its clients
    drops and every key it kept is gone (the suite's Redis keeps nothing on disk
    that this prefix needs). Other users of a shared Redis are left alone."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis_prefix}*"))
        if keys:
            client.delete(*keys)
        ours = [c["id"] for c in client.client_list() if c.get("name", "").startswith(settings.redis_prefix)]
        for client_id in ours:
            client.client_kill_filter(_id=client_id)
        return len(ours)
    finally:
        client.close()


async def test_pushes_come_back_after_a_redis_restart(cluster, api_key, uid) -> None:
    p = uid("redis")
    token = mint_token(cluster.settings.token_secret, p, 60)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}?token={token}") as player:
        assert orjson.loads(await player.recv())["type"] == "subscribed"
        await wait_online(cluster.settings, p)
        assert restart_redis_for(cluster.settings) > 0
        client = aioredis.from_url(cluster.settings.redis_url)
        try:
            async def rewritten() -> bool:  # the replica's heartbeat puts its players back
                s = cluster.settings
                replicas = await presence.read_sets(client, s.redis_prefix, s.presence_ttl_s)
                return any(p in players for players in replicas.values())

            await eventually(rewritten, timeout=15)
        finally:
            await client.aclose()
        await wait_online(cluster.settings, p)
        event = await push_arrives(cluster, api_key, player, p, "a1")  # the push subscriber resubscribed too
    assert (event["achievement_id"], event["points"]) == ("a1", 20)


async def test_players_of_a_replica_that_died_stop_counting_as_online(cluster, uid) -> None:
    settings = cluster.settings
    ghost = uid("ghost")
    client = aioredis.from_url(settings.redis_url)
    try:
        # what a replica leaves when it dies: its set, a last heartbeat, no goodbye
        await presence.heartbeat(client, settings.redis_prefix, "dead-replica", {ghost}, settings.presence_ttl_s)
        await client.publish(presence.channel(settings.redis_prefix), presence.message(presence.JOIN, "dead-replica",
                                                                                        ghost))
        await wait_online(settings, ghost)
        t0 = time.monotonic()
        await wait_online(settings, ghost, online=False)
        assert time.monotonic() - t0 < settings.presence_ttl_s + 2 * settings.presence_resync_s + 2
    finally:
        await client.aclose()
