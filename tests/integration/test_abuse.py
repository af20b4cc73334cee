"""Abusive clients against a real cluster: rate limits (shared through Redis),
private reads behind credentials, token refresh and claims, API key rotation,
idle sockets. Each test is a client of its own (a fresh key, player, or
X-Forwarded-For address: the test cluster trusts one proxy hop), so the
limits it passes never touch the other tests."""
from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import pytest
import websockets

from podium.gateway.auth import mint_token
from podium.persistence import api_keys
from tests.integration.conftest import (
    HANDSHAKES_PER_S,
    PLAYER_READS_PER_S,
    READS_PER_S,
    SOCKET_IDLE_S,
    UNLOCKS_PER_S,
    an_address,
    eventually,
)


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "rate_limited"


async def test_a_key_past_its_unlock_limit_gets_rate_limited_acks_and_nothing_more_is_recorded(
        cluster, http, db, uid) -> None:
    async with db.acquire() as conn:
        key = await api_keys.create(conn, game_id=None, label="abuse: unlocks")
    frames = [[{"id": f"{f}-{i}", "player_id": uid(f"rl{f}-{i}"), "game_id": "arena", "achievement_id": "a1"}
               for i in range(1000)] for f in range(2 * UNLOCKS_PER_S // 1000)]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": key},
                                  max_size=None) as ws:
        for frame in frames:  # pipelined: all of them arrive within the same second
            await ws.send(orjson.dumps(frame).decode())
        acks = [a for _ in frames for a in orjson.loads(await ws.recv())]
    statuses = {a["status"] for a in acks}
    limited = [a for a in acks if a.get("reason") == "rate_limited"]
    accepted = [a for a in acks if a["status"] == "accepted"]
    assert statuses <= {"accepted", "rejected"} and limited, statuses
    assert all(a["status"] == "rejected" and a["retry_after_s"] >= 1 for a in limited)
    assert len(accepted) <= UNLOCKS_PER_S * 2  # a window boundary inside the burst lets more through
    players = [u["player_id"] for frame in frames for u in frame]
    assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = ANY($1)", players) == len(accepted)
    # POSTs past the limit: twice the limit in POSTs sent at once, so they are counted in one window however slow
    # the box (one POST right after the burst's acks may already fall in the next window's allowance).
    bodies = [[{"player_id": uid(f"rl-post{b}-{i}"), "game_id": "arena", "achievement_id": "a1"} for i in range(1000)]
              for b in range(2 * UNLOCKS_PER_S // 1000)]
    answers = await asyncio.gather(*(http.post("/v1/unlocks", headers={"X-API-Key": key}, content=orjson.dumps(body))
                                     for body in bodies))
    assert {r.status_code for r in answers} <= {200, 429}, [r.status_code for r in answers]
    refused = [u["player_id"] for body, r in zip(bodies, answers, strict=True) if r.status_code == 429 for u in body]
    assert refused, [r.status_code for r in answers]
    for r in answers:
        if r.status_code == 429:
            assert_rate_limited(r)
    assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = ANY($1)", refused) == 0


async def test_reads_past_an_address_limit_get_429_and_other_addresses_do_not(http) -> None:
    # 50 clients read as fast as they can until refused (a slow box needs longer to pass the limit). What the
    # client claims comes first; the address the trusted load balancer appended is the one counted.
    headers = {"X-Forwarded-For": f"198.51.100.7, {an_address()}"}
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + 20

    async def client() -> None:  # sequential: httpx's pool slows down with long queues
        while time.monotonic() < deadline and not any(r.status_code == 429 for r in answers[-50:]):
            answers.append(await http.get("/v1/games", headers=headers))

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(50)))
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all(r.status_code in (200, 429) for r in answers), (len(answers), time.monotonic() - began)
    assert_rate_limited(refused[0])
    assert len(answers) - len(refused) >= READS_PER_S // 2  # the limit let its share through first
    assert (await http.get("/v1/games", headers={"X-Forwarded-For": an_address()})).status_code == 200


async def test_a_players_reads_past_the_limit_get_429_and_rate_limited_query_errors(cluster, http, uid) -> None:
    p = uid("reader")
    token = mint_token(cluster.settings.token_secret, p, 600)
    bearer = {"Authorization": f"Bearer {token}", "X-Forwarded-For": an_address()}
    answers = await asyncio.gather(*(http.get(f"/v1/players/{p}/dashboard", headers=bearer)
                                     for _ in range(3 * PLAYER_READS_PER_S)))
    assert {r.status_code for r in answers} == {200, 429}
    assert_rate_limited(next(r for r in answers if r.status_code == 429))
    q = uid("querier")
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{q}?token="
                                  f"{mint_token(cluster.settings.token_secret, q, 600)}") as ws:
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        for n in range(3 * PLAYER_READS_PER_S):  # at 4x the limit for 0.75 s: past the 100 ms a meter lets by
            await ws.send(orjson.dumps({"q": "page", "id": n, "game_id": "arena", "limit": 1}).decode())
            await asyncio.sleep(1 / (4 * PLAYER_READS_PER_S))
        frames = [orjson.loads(await ws.recv()) for _ in range(3 * PLAYER_READS_PER_S)]
    limited = [f for f in frames if f.get("code") == "rate_limited"]
    assert limited and all(f["type"] == "error" and f["retry_after_s"] >= 1 for f in limited)
    assert sorted(f["id"] for f in frames) == list(range(3 * PLAYER_READS_PER_S))  # every frame answered


async def test_handshakes_past_an_address_limit_get_429_with_retry_after(cluster, uid) -> None:
    address = an_address()

    async def handshake() -> int:
        try:
            async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{uid('hs')}?token=forged",
                                          additional_headers={"X-Forwarded-For": address}):
                return 101
        except websockets.InvalidStatus as exc:
            if exc.response.status_code == 429:
                assert int(exc.response.headers["Retry-After"]) >= 1
                assert orjson.loads(exc.response.body)["code"] == "rate_limited"
            return exc.response.status_code

    statuses = await asyncio.gather(*(handshake() for _ in range(3 * HANDSHAKES_PER_S)))
    assert set(statuses) == {403, 429}, statuses  # forged tokens count too: the limit comes first


async def test_private_reads_need_the_players_token_or_an_api_key(cluster, http, api_key, uid) -> None:
    p, other = uid("private"), uid("other")
    await http.post("/v1/unlocks", headers={"X-API-Key": api_key},
                    content=orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": "a1"}]))
    mine = {"Authorization": f"Bearer {mint_token(cluster.settings.token_secret, p, 60)}"}
    theirs = {"Authorization": f"Bearer {mint_token(cluster.settings.token_secret, other, 60)}"}
    stranger = {"Authorization": f"Bearer {mint_token(cluster.settings.token_secret, p, 60, audience='other')}"}
    for path in (f"/v1/players/{p}/dashboard", f"/v1/players/{p}/history", f"/v1/players/{p}/achievements",
                 f"/v1/players/{p}/friends", f"/v1/players/{p}/inbox"):
        for headers in ({}, theirs, stranger, {"X-API-Key": "pk_not_a_key"}):
            response = await http.get(path, headers=headers)
            assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), (path, headers)
        assert (await http.get(path, headers=mine)).status_code == 200, path
        assert (await http.get(path, headers={"X-API-Key": api_key})).status_code == 200, path
    for path in ("/v1/games", "/v1/games/arena/leaderboard", f"/v1/games/arena/players/{p}/rank",
                 "/v1/games/arena/achievements"):
        assert (await http.get(path)).status_code == 200, path  # public: boards, the catalog, rarity
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{other}?token="
                                  f"{mint_token(cluster.settings.token_secret, other, 60)}") as ws:
        await ws.recv()
        await ws.send(orjson.dumps({"q": "dashboard", "id": 1, "player_id": p}).decode())
        assert orjson.loads(await ws.recv())["code"] == "forbidden"


async def test_tokens_refresh_and_a_game_server_mints_them(cluster, http, api_key, uid) -> None:
    p = uid("refresh")
    minted = await http.post(f"/v1/players/{p}/token", headers={"X-API-Key": api_key})
    assert minted.status_code == 200
    body = minted.json()
    assert body["expires_at"] - time.time() == pytest.approx(cluster.settings.token_ttl_s, abs=30)
    refreshed = await http.post(f"/v1/players/{p}/token", headers={"Authorization": f"Bearer {body['token']}"})
    assert refreshed.status_code == 200 and refreshed.json()["refresh_until"] == body["refresh_until"]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}?token={refreshed.json()['token']}") as ws:
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
    for headers in ({}, {"Authorization": "Bearer forged"},
                    {"Authorization": f"Bearer {mint_token(cluster.settings.token_secret, uid('x'), 60)}"}):
        assert (await http.post(f"/v1/players/{p}/token", headers=headers)).status_code == 401


async def test_api_keys_rotate_without_downtime(cluster, http, db, uid) -> None:
    async with db.acquire() as conn:
        old = await api_keys.create(conn, game_id="arena", label="rotation: old")
        new = await api_keys.create(conn, game_id="arena", label="rotation: new")

    async def send(key: str) -> int:
        body = orjson.dumps([{"player_id": uid(f"rot-{uuid.uuid4().hex[:6]}"), "game_id": "arena",
                              "achievement_id": "a1"}])
        return (await http.post("/v1/unlocks", headers={"X-API-Key": key}, content=body)).status_code

    assert [await send(old), await send(new)] == [200, 200]  # both work while servers move over
    async with db.acquire() as conn:
        assert await api_keys.revoke(conn, old)
    async def old_refused() -> bool:
        return await send(old) == 401

    await eventually(old_refused, timeout=cluster.settings.api_key_cache_s + 10)
    assert await send(new) == 200


async def test_sockets_that_send_nothing_are_closed_and_a_pinging_one_stays(cluster, api_key, uid) -> None:
    p, q = uid("idle"), uid("pinger")
    began = time.monotonic()

    async def closed_code(url: str, headers: dict[str, str] | None = None) -> tuple[int | None, float]:
        async with websockets.connect(url, additional_headers=headers or {}, ping_interval=None) as ws:
            try:
                while True:
                    await ws.recv()
            except websockets.ConnectionClosed as exc:
                return (exc.rcvd.code if exc.rcvd else None), time.monotonic() - began

    async def pinging() -> bool:
        url = f"{cluster.ws_url}/v1/ws/players/{q}?token={mint_token(cluster.settings.token_secret, q, 120)}"
        async with websockets.connect(url) as ws:
            while time.monotonic() - began < SOCKET_IDLE_S + 5:
                await ws.send("ping")
                while orjson.loads(await ws.recv())["type"] != "pong":
                    pass
                await asyncio.sleep(SOCKET_IDLE_S / 4)
            return True

    async def silent_tcp() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", cluster.settings.port)
        await reader.read()  # HAProxy closes a connection that never sends its request
        writer.close()
        return time.monotonic() - began

    player, ingest, alive, tcp = await asyncio.wait_for(asyncio.gather(
        closed_code(f"{cluster.ws_url}/v1/ws/players/{p}?token={mint_token(cluster.settings.token_secret, p, 120)}"),
        closed_code(f"{cluster.ws_url}/v1/ws/ingest", {"X-API-Key": api_key}),
        pinging(), silent_tcp()), SOCKET_IDLE_S + 40)
    for code, after in (player, ingest):
        assert code == 4408 and SOCKET_IDLE_S - 1 <= after <= SOCKET_IDLE_S + 5, (code, after)
    assert alive
    assert tcp <= SOCKET_IDLE_S + 10 + 5
