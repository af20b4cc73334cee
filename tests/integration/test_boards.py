"""Live boards over a real cluster: WebSocket /v1/ws/boards/{game} sends the
top N, then a new frame when an unlock changes it; watchers of one board all
see the same frames; bad handshakes are refused with a problem."""
from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
import websockets

from tests.integration.test_recovery import ingest


async def next_board(ws, seq: int = 0, timeout: float = 10.0) -> dict:
    """The next `board` frame after `seq`."""
    deadline = time.monotonic() + timeout
    while True:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame["type"] == "board" and frame["seq"] > seq:
            return frame


async def test_a_board_socket_sends_the_top_then_each_change_within_a_second(cluster, http, api_key, uid) -> None:
    region = f"b{uuid.uuid4().hex[:8]}"  # a board of this test's own
    url = f"{cluster.ws_url}/v1/ws/boards/arena?region={region}&top=3"
    async with websockets.connect(url) as first, websockets.connect(url) as second:
        empty = await next_board(first)
        assert (empty["entries"], empty["total"], empty["top"], empty["region"]) == ([], 0, 3, region)
        p = uid("live")
        sent = time.monotonic()
        await ingest(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a3", "region": region}])
        moved = await next_board(first, empty["seq"])
        assert time.monotonic() - sent < 1.5
        assert [(e["player_id"], e["rank"], e["points"]) for e in moved["entries"]] == [(p, 1, 40)]
        assert moved["changed"] == [p] and moved["total"] == 1
        assert (await next_board(second, empty["seq"]))["entries"] == moved["entries"]  # same frames for all
        q = uid("passer")
        await ingest(http, api_key, [{"player_id": q, "game_id": "arena", "achievement_id": a, "region": region}
                                     for a in ("a2", "a3")])
        passed = await next_board(first, moved["seq"])
        assert [e["player_id"] for e in passed["entries"]] == [q, p] and passed["changed"] == [q, p]
        await first.send("ping")
        assert orjson.loads(await first.recv()) == {"type": "pong"}  # nothing changed meanwhile: no board frame


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/v1/ws/boards/no-such-game", 404, "unknown_game"),
    ("/v1/ws/boards/arena?top=0", 422, "invalid_request"),
    ("/v1/ws/boards/arena?period=year", 422, "invalid_request"),
    ("/v1/ws/boards/arena?region=NOT%20OK", 422, "invalid_request"),
])
async def test_a_bad_board_handshake_is_refused_with_a_problem(cluster, path, status, code) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{cluster.ws_url}{path}"):
            pass
    assert refused.value.response.status_code == status
    assert orjson.loads(refused.value.response.body)["code"] == code
