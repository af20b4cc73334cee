"""Reads over the sockets a client already holds: query frames with a
correlation id, the same bodies and error codes as HTTP; and HTTP reads
that arrive together share leaderboard actor calls."""
from __future__ import annotations

import asyncio

import orjson
import websockets

from podium.gateway.auth import mint_token
from tests.integration.conftest import eventually, get_ok


async def seed(http, api_key, uid) -> tuple[str, list[str]]:
    region = uid("sq")
    players = [uid(f"sq{k}") for k in range(1, 5)]  # player k has p0..p(k-1): 7, 21, 42, 70 points
    response = await http.post("/v1/unlocks", headers={"X-API-Key": api_key}, content=orjson.dumps(
        [{"player_id": p, "game_id": "puzzle", "achievement_id": f"p{i}", "region": region}
         for k, p in enumerate(players, 1) for i in range(k)]))
    assert response.status_code == 200
    await eventually(lambda: _has_total(http, region, 4))
    return region, players


async def _has_total(http, region: str, total: int) -> bool:
    page = (await http.get("/v1/games/puzzle/leaderboard", params={"region": region})).json()
    return page.get("total") == total


async def test_player_socket_answers_queries_like_http_with_their_ids(cluster, http, api_key, uid) -> None:
    region, players = await seed(http, api_key, uid)
    me = players[1]
    token = mint_token(cluster.settings.token_secret, me, 60)
    frames = [
        {"q": "rank", "id": 1, "game_id": "puzzle", "player_id": me, "region": region},
        {"q": "page", "id": "top", "game_id": "puzzle", "region": region, "limit": 2},
        {"q": "around", "id": 3, "game_id": "puzzle", "player_id": me, "region": region, "k": 1},
        {"q": "among", "id": 4, "game_id": "puzzle", "players": [players[0], players[3]]},
        {"q": "dashboard", "id": 5, "player_id": me},
        {"q": "rank", "id": 6, "game_id": "puzzle", "player_id": uid("nobody")},
        {"q": "rank", "id": 7, "game_id": "no-such-game", "player_id": me},
        {"q": "rank", "id": 8, "game_id": "puzzle"},
        {"q": "drop", "id": 9},
    ]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{me}?token={token}") as ws:
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        for frame in frames:  # pipelined: all sent before any reply is read
            await ws.send(orjson.dumps(frame).decode())
        await ws.send("not json")
        replies = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(len(frames) + 1)]
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    assert set(by_id) == {f["id"] for f in frames}
    http_rank = await get_ok(http, f"/v1/games/puzzle/players/{me}/rank", region=region)
    assert by_id[1] == {"type": "result", "id": 1, "q": "rank", "body": http_rank}
    assert [e["player_id"] for e in by_id["top"]["body"]["entries"]] == [players[3], players[2]]
    assert [e["player_id"] for e in by_id[3]["body"]["entries"]] == [players[2], players[1], players[0]]
    assert [e["player_id"] for e in by_id[4]["body"]["entries"]] == [players[3], players[0]]
    assert by_id[5]["body"]["total_points"] == 21
    assert [(by_id[i]["type"], by_id[i]["code"]) for i in (6, 7, 8, 9)] == [
        ("error", "unknown_player"), ("error", "unknown_game"), ("error", "invalid_request"),
        ("error", "invalid_request")]
    assert [r["code"] for r in replies if r["id"] is None] == ["malformed_json"]


async def test_ingest_socket_answers_queries_in_frame_order(cluster, http, api_key, uid) -> None:
    region, players = await seed(http, api_key, uid)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await ws.send(orjson.dumps({"q": "rank", "id": "r", "game_id": "puzzle", "player_id": players[3],
                                    "region": region}).decode())
        await ws.send(orjson.dumps([{"id": "u", "player_id": uid("new"), "game_id": "puzzle",
                                     "achievement_id": "p0"}]).decode())
        await ws.send('{"player_id": "x"}')  # an object that is no query is still a bad unlock frame
        rank, acks, bad = [orjson.loads(await ws.recv()) for _ in range(3)]
    assert (rank["type"], rank["id"], rank["body"]["rank"]) == ("result", "r", 1)
    assert acks == [{"id": "u", "status": "accepted"}]
    assert bad["error"] == "not_an_array"


async def test_http_reads_that_arrive_together_share_channel_requests(http, api_key, uid) -> None:
    region, players = await seed(http, api_key, uid)
    before = (await http.get("/v1/health")).json()["leaderboard_reads"]
    bodies = await asyncio.gather(*(get_ok(http, f"/v1/games/puzzle/players/{players[i % 4]}/rank", region=region)
                                    for i in range(64)))
    after = (await http.get("/v1/health")).json()["leaderboard_reads"]
    assert [b["rank"] for b in bodies[:4]] == [4, 3, 2, 1]
    reads, calls = after["reads"] - before["reads"], after["requests"] - before["requests"]
    assert reads == 64 and calls < reads, (reads, calls)
