"""What a gateway replica does with its WebSockets, over real sockets: it
refuses past its limits at once (503 + Retry-After), merges a player's pushes
into one frame per window, closes a socket that stops reading, and drains
(1012) before a shutdown."""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import pytest
import websockets
from ray import serve
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from podium.cluster.launch import drain_gateways
from podium.gateway.app import gateway_apps
from podium.gateway.auth import mint_token
from tests.integration.conftest import SOCKETS_PER_REPLICA, eventually, get_ok, wait_online


def player_url(cluster, p: str, base: str | None = None) -> str:
    return f"{base or cluster.ws_url}/v1/ws/players/{p}?token={mint_token(cluster.settings.token_secret, p, 60)}"


async def refused(url: str, **kwargs: Any) -> Any:
    with pytest.raises(websockets.InvalidStatus) as err:
        async with asyncio.timeout(5):  # refused at once, never left waiting
            async with websockets.connect(url, **kwargs):
                pass
    response = err.value.response
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    return orjson.loads(response.body)


async def test_a_players_sockets_past_the_per_player_limit_are_refused(cluster, uid) -> None:
    p = uid("many-tabs")
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(cluster.settings.max_sockets_per_player):
            ws = await stack.enter_async_context(websockets.connect(player_url(cluster, p)))
            assert orjson.loads(await ws.recv())["type"] == "subscribed"
        problem = await refused(player_url(cluster, p))
        assert problem["code"] == "too_many_sockets"
        other = await stack.enter_async_context(websockets.connect(player_url(cluster, uid("other"))))
        assert orjson.loads(await other.recv())["type"] == "subscribed"

    async def reconnects() -> bool:  # closed sockets free their places (once the replica has seen the close)
        async with websockets.connect(player_url(cluster, p)) as ws:
            return orjson.loads(await ws.recv())["type"] == "subscribed"

    assert await eventually(reconnects, timeout=10)


async def test_a_full_replica_refuses_player_and_ingest_sockets_at_once(cluster, http, api_key, uid) -> None:
    health = await get_ok(http, "/v1/ws/health")  # the socket plane's replica holds the sockets
    assert health["sockets"]["limit"] == SOCKETS_PER_REPLICA
    async with contextlib.AsyncExitStack() as stack:
        opened, refusal = 0, None
        for i in range(SOCKETS_PER_REPLICA + 5):  # until the replica says no
            try:
                async with asyncio.timeout(5):  # a refusal comes at once, never a hang
                    ws = await stack.enter_async_context(websockets.connect(player_url(cluster, uid(f"fill{i}"))))
                await ws.recv()
                opened += 1
            except websockets.InvalidStatus as exc:
                refusal = exc.response
                break
        assert refusal is not None and refusal.status_code == 503 and int(refusal.headers["Retry-After"]) >= 1
        assert orjson.loads(refusal.body)["code"] == "overloaded"
        assert opened >= SOCKETS_PER_REPLICA - health["sockets"]["open"]
        await refused(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key})
        assert (await get_ok(http, "/v1/ws/health"))["sockets"]["refused"] >= health["sockets"]["refused"] + 2

    async def room_again() -> bool:
        async with websockets.connect(player_url(cluster, uid("after"))) as ws:
            return orjson.loads(await ws.recv())["type"] == "subscribed"

    assert await eventually(room_again, timeout=10)


async def test_pushes_within_a_window_arrive_as_one_merged_frame(cluster, api_key, uid) -> None:
    p = uid("merged")
    achievements = [f"a{i}" for i in range(6)]
    async with websockets.connect(player_url(cluster, p)) as player:
        await player.recv()
        await wait_online(cluster.settings, p)
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ingest:
            await ingest.send(orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": a,
                                             "region": "eu"} for a in achievements]).decode())
            assert {a["status"] for a in orjson.loads(await ingest.recv())} == {"accepted"}
        frames: list[dict] = []
        unlocked: list[str] = []
        boards: set[tuple[str, str]] = set()
        with contextlib.suppress(TimeoutError):
            while len(unlocked) < len(achievements) or len(boards) < 4:
                frame = orjson.loads(await asyncio.wait_for(player.recv(), 5))
                frames.append(frame)
                assert frame["type"] == "update"
                moved = [(e["game_id"], e["board"]) for e in frame["events"] if e["type"] == "rank.changed"]
                assert len(moved) == len(set(moved))  # within a frame a board moves once
                boards.update(moved)
                unlocked += [e["achievement_id"] for e in frame["events"] if e["type"] == "unlock.accepted"]
    assert sorted(unlocked) == achievements
    assert boards == {("arena", "global"), ("arena", "eu"), ("_all", "global"), ("_all", "eu")}
    assert len(frames) < len(achievements) + len(boards)  # fewer frames than events


class StalledClient:
    """A WebSocket client that never reads: the sans-I/O protocol of the
    websockets library writes the handshake and frames to a raw socket whose
    incoming bytes nobody takes (the library's own client keeps reading)."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url))
        self.url = url

    async def __aenter__(self) -> StalledClient:
        uri = parse_uri(self.url)
        self.reader, self.writer = await asyncio.open_connection(uri.host, uri.port)
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        # The handshake's answer is the last thing read.
        self.protocol.receive_data(await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10))
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc
        return self

    async def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        await self._flush()

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            self.writer.write(chunk)
        await self.writer.drain()

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()


async def test_a_socket_that_stops_reading_is_closed(cluster, http, api_key, uid) -> None:
    players = [uid(f"crowd{i}") for i in range(250)]
    response = await http.post("/v1/unlocks", headers={"X-API-Key": api_key}, content=orjson.dumps(
        [{"player_id": q, "game_id": "puzzle", "achievement_id": "p0"} for q in players]))
    assert response.status_code == 200
    await eventually(lambda: get_ok(http, f"/v1/games/puzzle/players/{players[-1]}/rank", timeout=5))
    p = uid("stalled")
    page = orjson.dumps({"q": "page", "id": 1, "game_id": "puzzle", "limit": 200}).decode()
    async with StalledClient(player_url(cluster, p)) as client:
        await wait_online(cluster.settings, p)
        t0 = time.monotonic()
        with contextlib.suppress(ConnectionError):
            for _ in range(3000):  # ~20 KB answers: far more than the buffers on the way hold
                await asyncio.wait_for(client.send(page), 30)
        # The replica gives up on the socket once a send waits socket_send_timeout_s.
        await wait_online(cluster.settings, p, online=False)
        assert time.monotonic() - t0 < 30
    assert (await get_ok(http, "/v1/health"))["status"] == "ok"


async def connect_when_routed(url: str) -> Any:
    """A new Serve app takes HAProxy a moment to route to."""
    for _ in range(100):
        try:
            return await websockets.connect(url)
        except (websockets.InvalidStatus, OSError):
            await asyncio.sleep(0.1)
    return await websockets.connect(url)


async def test_a_drained_replica_closes_its_sockets_with_1012_and_refuses_new_ones(cluster, http, api_key,
                                                                                     uid) -> None:
    # A gateway of its own (another Serve app, another Redis prefix for its broadcast),
    # so draining it leaves the suite's gateway alone.
    # Its sockets do not idle out meanwhile (the suite's 15 s): an ack that waits on a busy shard late in
    # the suite must end in the drain's 1012, not in 4408 (seen once in CI).
    settings = cluster.settings.model_copy(update={"redis_prefix": f"{cluster.settings.redis_prefix}drain:",
                                                   "socket_idle_s": 120.0})
    # Both planes in one deployment: the planes' own route prefixes are the suite gateway's.
    app = gateway_apps(settings.model_copy(update={"split_planes": False}))[0].app
    await asyncio.to_thread(serve.run, app, name="drain-test", route_prefix="/drain-test")
    base = f"{cluster.ws_url}/drain-test"
    p = uid("last-word")
    unlock = orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": "a1"}]).decode()
    try:
        sockets = [await connect_when_routed(player_url(cluster, uid(f"leaving{i}"), base)) for i in range(20)]
        for ws in sockets:
            assert orjson.loads(await ws.recv())["type"] == "subscribed"
        ingest = await websockets.connect(f"{base}/v1/ws/ingest", additional_headers={"X-API-Key": api_key})
        await ingest.send(unlock)
        t0 = time.monotonic()
        await asyncio.to_thread(drain_gateways, settings)
        acks = []  # a frame the replica read before the drain is answered before the close
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                acks.append(orjson.loads(await asyncio.wait_for(ingest.recv(), 10)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert [a[0]["status"] for a in acks] in ([], ["accepted"])
        for ws in sockets:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert time.monotonic() - t0 < 10
        problem = await refused(player_url(cluster, uid("too-late"), base))
        assert problem["code"] == "draining"
    finally:
        await asyncio.to_thread(serve.delete, "drain-test")
    # The client resends what was not acked, elsewhere: counted once either way.
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await ws.send(unlock)
        assert orjson.loads(await ws.recv())[0]["status"] in ("accepted", "duplicate")
    rank = await eventually(lambda: get_ok(http, f"/v1/games/arena/players/{p}/rank", timeout=5))
    assert rank["points"] == 20


async def test_scaling_the_http_plane_redeploys_only_it_and_leaves_player_sockets_open(cluster, http, uid) -> None:
    from podium.cluster.launch import reshard
    from podium.gateway.app import APP_NAME

    settings = cluster.settings
    async with websockets.connect(player_url(cluster, uid("scaled"))) as ws:
        assert orjson.loads(await ws.recv())["type"] == "subscribed"

        async def keep_alive() -> int:  # as a client does (the tests' idle limit is shorter than a redeploy)
            pongs = 0
            while True:
                await ws.send("ping")
                assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
                pongs += 1
                await asyncio.sleep(2)

        pinger = asyncio.ensure_future(keep_alive())
        try:
            bigger, report = await asyncio.to_thread(reshard, settings, http_replicas=settings.http_replicas + 1)
            try:
                assert report["redeployed"] == [APP_NAME] and report["paused_s"] == 0.0
                assert not pinger.done()  # the socket plane was not touched: the same socket kept answering
                assert (await get_ok(http, "/v1/health"))["status"] == "ok"
            finally:
                _, back = await asyncio.to_thread(reshard, bigger, http_replicas=settings.http_replicas)
            assert back["redeployed"] == [APP_NAME] and not pinger.done()
        finally:
            pinger.cancel()
