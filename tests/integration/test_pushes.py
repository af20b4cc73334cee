"""Player pushes through Redis pub/sub to a real WebSocket."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import websockets

from actors.messages import ALL_GAMES
from gateway.auth import mint_token


async def collect(ws, wanted: set[tuple[str, str]], timeout: float = 1.0) -> dict[tuple[str, str], dict]:
    """Events by (type, game_id) until every wanted pair has arrived, within the timeout."""
    deadline = time.monotonic() + timeout
    got: dict[tuple[str, str], dict] = {}
    while not wanted <= set(got):
        event = orjson.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        got.setdefault((event["type"], event.get("game_id", "")), event)
    return got


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
