"""Player pushes through Redis pub/sub to a real WebSocket."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import websockets

from gateway.auth import mint_token


async def next_event(ws, kind: str, timeout: float = 1.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        event = orjson.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if event["type"] == kind:
            return event


async def test_unlock_and_rank_change_are_pushed_within_a_second(cluster, api_key, uid) -> None:
    p = uid("pushed")
    token = mint_token(cluster.settings.token_secret, p, 60)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}",
                                  additional_headers={"Authorization": f"Bearer {token}"}) as player:
        assert orjson.loads(await player.recv())["type"] == "subscribed"
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ingest:
            await ingest.send(orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": "a3",
                                             "region": "eu"}]).decode())
            assert orjson.loads(await ingest.recv())[0]["status"] == "accepted"
            t0 = time.monotonic()
            unlocked = await next_event(player, "unlock.accepted")
            changed = await next_event(player, "rank.changed")
            elapsed = time.monotonic() - t0
    assert (unlocked["game_id"], unlocked["achievement_id"], unlocked["points"]) == ("arena", "a3", 40)
    assert changed["game_id"] == "arena" and changed["old_rank"] is None and changed["new_rank"] >= 1
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
