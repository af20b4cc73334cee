"""Unlock ingest over a real WebSocket and real HTTP: acks after commit,
per-item errors, frame errors, credentials."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import websockets

from podium.gateway.auth import KeyCache, Unauthorized
from podium.persistence import api_keys
from tests.integration.conftest import eventually


def unlock(uid_player: str, game: str = "arena", ach: str = "a0", **extra: object) -> dict[str, object]:
    return {"player_id": uid_player, "game_id": game, "achievement_id": ach, **extra}


async def test_socket_acks_each_item_in_frame_order_and_accepted_means_journaled(cluster, db, api_key, uid) -> None:
    p, q = uid("p"), uid("q")
    frame = [
        {"id": 1, **unlock(p, ach="a1", region="eu")},
        {"id": 2, **unlock(q, ach="a2")},
        {"id": 3, **unlock(p, ach="a1")},  # same unlock again in the frame
        {"id": 4, **unlock(p, game="no-such-game")},
        {"id": 5, **unlock(p, ach="no-such-achievement")},
        {"id": 6, "player_id": p, "game_id": "arena"},  # missing achievement_id
    ]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await ws.send(orjson.dumps(frame).decode())
        acks = orjson.loads(await ws.recv())
        rows = await db.fetch("SELECT player_id, achievement_id, points, region FROM unlocks WHERE player_id = ANY($1)",
                              [p, q])
        await ws.send(orjson.dumps([{"id": 7, **unlock(p, ach="a1")}]).decode())
        replay = orjson.loads(await ws.recv())
    assert [a["id"] for a in acks] == [1, 2, 3, 4, 5, 6]
    assert [a["status"] for a in acks] == ["accepted", "accepted", "duplicate", "rejected", "rejected", "rejected"]
    assert [a.get("reason") for a in acks[3:5]] == ["unknown_game", "unknown_achievement"]
    assert acks[5]["reason"].startswith("invalid: achievement_id")
    # read right after the ack: both accepted rows are already committed
    assert sorted((r["player_id"], r["achievement_id"], r["points"], r["region"]) for r in rows) == sorted(
        [(p, "a1", 20, "eu"), (q, "a2", 30, None)])
    assert replay == [{"id": 7, "status": "duplicate"}]


async def test_bad_frames_get_an_error_and_the_socket_keeps_working(cluster, api_key, uid) -> None:
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest?api_key={api_key}") as ws:
        await ws.send("{not json")
        assert orjson.loads(await ws.recv())["error"] == "malformed_json"
        await ws.send('{"player_id": "x"}')
        assert orjson.loads(await ws.recv())["error"] == "not_an_array"
        await ws.send(orjson.dumps([unlock(uid("p"))] * (cluster.settings.max_frame_items + 1)).decode())
        assert orjson.loads(await ws.recv())["error"] == "too_many_items"
        await ws.send(orjson.dumps([unlock(uid("p"))]).decode())
        assert orjson.loads(await ws.recv()) == [{"id": None, "status": "accepted"}]


async def test_pipelined_frames_are_answered_in_order(cluster, api_key, uid) -> None:
    players = [uid(f"pipe{i}") for i in range(20)]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        for i, p in enumerate(players):
            await ws.send(orjson.dumps([{"id": i, **unlock(p)}]).decode())
        replies = [orjson.loads(await ws.recv()) for _ in players]
    assert [r[0]["id"] for r in replies] == list(range(20))
    assert all(r[0]["status"] == "accepted" for r in replies)


@pytest.mark.parametrize("key", [None, "pk_wrong_key"])
async def test_ingest_socket_without_a_valid_key_is_refused(cluster, key) -> None:
    headers = {"X-API-Key": key} if key else {}
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers=headers):
            pass
    assert err.value.response.status_code == 403


async def test_post_unlocks_takes_the_same_body(http, api_key, uid) -> None:
    p = uid("p")
    body = [{"id": "x", **unlock(p, ach="a3")}, {"id": "y", **unlock(p, game="nope")}]
    first = await http.post("/v1/unlocks", content=orjson.dumps(body), headers={"X-API-Key": api_key})
    again = await http.post("/v1/unlocks", content=orjson.dumps(body[:1]), headers={"X-API-Key": api_key})
    assert first.status_code == 200
    assert first.json() == [{"id": "x", "status": "accepted"}, {"id": "y", "status": "rejected",
                                                                 "reason": "unknown_game"}]
    assert again.json() == [{"id": "x", "status": "duplicate"}]


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{nope", 400, "malformed_json"), (b'{"a":1}', 400, "not_an_array"), (b"[" + b"{}," * 1000 + b"{}]", 413,
                                                                           "too_many_items"),
])
async def test_post_unlocks_bad_bodies_are_problems(http, api_key, body, status, code) -> None:
    response = await http.post("/v1/unlocks", content=body, headers={"X-API-Key": api_key})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_post_unlocks_without_a_key_is_401(http, uid) -> None:
    response = await http.post("/v1/unlocks", content=orjson.dumps([unlock(uid("p"))]))
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_a_key_scoped_to_one_game_cannot_write_another(http, db, uid) -> None:
    async with db.acquire() as conn:
        key = await api_keys.create(conn, game_id="puzzle")
    p = uid("p")
    response = await http.post("/v1/unlocks", headers={"X-API-Key": key},
                               content=orjson.dumps([unlock(p, game="puzzle", ach="p0"), unlock(p)]))
    assert [a["status"] for a in response.json()] == ["accepted", "rejected"]
    assert response.json()[1]["reason"] == "forbidden_game"


async def test_a_revoked_key_stops_working_within_the_cache_ttl(cluster, http, db, uid) -> None:
    async with db.acquire() as conn:
        key = await api_keys.create(conn, game_id=None)
    first = await http.post("/v1/unlocks", headers={"X-API-Key": key}, content=orjson.dumps([unlock(uid("p"))]))
    assert first.status_code == 200  # the gateway has now cached the key as good
    async with db.acquire() as conn:
        assert await api_keys.revoke(conn, key)
    t0 = time.monotonic()

    async def refused() -> bool:
        r = await http.post("/v1/unlocks", headers={"X-API-Key": key}, content=orjson.dumps([unlock(uid("p"))]))
        return r.status_code == 401

    await eventually(refused, timeout=10, every=0.2)
    assert time.monotonic() - t0 < cluster.settings.api_key_cache_s + 2


async def test_a_revoked_key_closes_a_streaming_socket(cluster, db, uid) -> None:
    async with db.acquire() as conn:
        key = await api_keys.create(conn, game_id=None)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": key}) as ws:
        await ws.send(orjson.dumps([unlock(uid("p"))]).decode())
        assert orjson.loads(await ws.recv())[0]["status"] == "accepted"
        async with db.acquire() as conn:
            assert await api_keys.revoke(conn, key)
        deadline = time.monotonic() + cluster.settings.api_key_cache_s + 5
        last = None
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while time.monotonic() < deadline:
                await ws.send(orjson.dumps([unlock(uid("p"))]).decode())
                last = orjson.loads(await ws.recv())
                if isinstance(last, dict):
                    assert last["error"] == "unauthorized"
                await asyncio.sleep(0.2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, last


async def test_an_oversize_body_is_refused_chunked_or_declared(cluster, http, api_key) -> None:
    limit = cluster.settings.max_frame_bytes
    sent = 0

    async def endless():  # chunked, no Content-Length: the gateway must stop buffering by itself
        nonlocal sent
        chunk = b" " * 65536
        while sent < 64 * limit:
            sent += len(chunk)
            yield chunk

    response = await http.post("/v1/unlocks", headers={"X-API-Key": api_key}, content=endless())
    assert response.status_code == 413 and response.json()["code"] == "frame_too_large"
    declared = await http.post("/v1/unlocks", headers={"X-API-Key": api_key, "Content-Length": str(limit + 1)},
                               content=b" " * (limit + 1))
    assert declared.status_code == 413


async def test_the_key_cache_stays_bounded_under_a_flood_of_bad_keys(db) -> None:
    cache = KeyCache(db, max_keys=10)
    for i in range(40):
        with pytest.raises(Unauthorized):
            await cache.scope(f"pk_bad_{i}")
    assert len(cache._bad) == 10
