"""Locust users for people who prefer locust's UI. The figures in
docs/benchmarks.md come from load/bench.py, not from this file.

    .venv/bin/uv pip install -e '.[locust]'
    PODIUM_API_KEY=$(cat .podium/dev_api_key) .venv/bin/locust -f load/locustfile.py --host http://127.0.0.1:8000

Users (pick with locust's class picker or run all):
- SocketIngest: Podium's way to write, a WebSocket sending frames of FRAME unlocks;
- PerRequestIngest: POST /v1/unlocks with one unlock per request;
- Reader: rank, top page and around-me reads of preloaded players;
- OnlinePlayer: a player online, as in the bench's `g. online`: it holds its
  push socket (a token signed with PODIUM_TOKEN_SECRET, as a studio's login
  service would) and every few seconds unlocks something for itself, timing
  the POST -> `unlock.accepted` in its `update` frame ("push" in the stats).
  Thousands of them: `--users 10000 --spawn-rate 200`.
The catalog is the benchmark's (load/workload.py); load it first with
`.venv/bin/podium catalog import` of `python -c "import json, load.workload as w;
print(json.dumps({'games': w.catalog()}))"`.
"""
from __future__ import annotations

import os
import random
import time
import uuid

import orjson
from locust import HttpUser, User, between, events, task
from websockets.sync.client import connect

from load.workload import GAMES, PER_PLAYER, first_game, player_id, unlock
from podium.gateway.auth import mint_token

API_KEY = os.environ.get("PODIUM_API_KEY", "")
TOKEN_SECRET = os.environ.get("PODIUM_TOKEN_SECRET", "")
FRAME = int(os.environ.get("PODIUM_FRAME", "200"))
PLAYERS = int(os.environ.get("PODIUM_PLAYERS", "10000"))


class _Unlocks:
    """Fresh unlocks for this locust process (a random run tag keeps them new)."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:6]
        self.k = 0

    def take(self, n: int) -> list[dict[str, str]]:
        out = []
        for _ in range(n):
            i, k = divmod(self.k, PER_PLAYER)
            item = unlock(i, k)
            item["player_id"] = f"{self.run}-{item['player_id']}"
            out.append(item)
            self.k += 1
        return out


class SocketIngest(User):
    wait_time = between(0, 0)

    def on_start(self) -> None:
        url = self.host.replace("http", "ws", 1) + "/v1/ws/ingest"
        self.ws = connect(url, additional_headers={"X-API-Key": API_KEY}, max_size=None)
        self.unlocks = _Unlocks()

    def on_stop(self) -> None:
        self.ws.close()

    @task
    def frame(self) -> None:
        items = self.unlocks.take(FRAME)
        start = time.perf_counter()
        self.ws.send(orjson.dumps(items).decode())
        reply = orjson.loads(self.ws.recv())
        failed = None if isinstance(reply, list) else RuntimeError(str(reply))
        events.request.fire(request_type="WS", name=f"ingest frame of {FRAME}", response_time=(
            time.perf_counter() - start) * 1000, response_length=len(items), exception=failed)


class PerRequestIngest(HttpUser):
    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.unlocks = _Unlocks()

    @task
    def post(self) -> None:
        self.client.post("/v1/unlocks", data=orjson.dumps(self.unlocks.take(1)),
                         headers={"X-API-Key": API_KEY, "content-type": "application/json"}, name="POST /v1/unlocks")


class Reader(HttpUser):
    wait_time = between(0.0, 0.01)

    def _player(self) -> tuple[str, str]:
        i = random.randrange(PLAYERS)
        return first_game(i), player_id(i)

    @task(2)
    def rank(self) -> None:
        game, player = self._player()
        self.client.get(f"/v1/games/{game}/players/{player}/rank", name="rank")

    @task(1)
    def top(self) -> None:
        self.client.get(f"/v1/games/g{random.randrange(GAMES):02d}/leaderboard?limit=50", name="top page")

    @task(1)
    def around(self) -> None:
        game, player = self._player()
        self.client.get(f"/v1/games/{game}/players/{player}/around?k=5", name="around me")


class OnlinePlayer(HttpUser):
    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.i = random.randrange(PLAYERS)
        self.player = f"online-{uuid.uuid4().hex[:8]}"
        self.k = 0
        url = self.host.replace("http", "ws", 1) + f"/v1/ws/players/{self.player}"
        self.ws = connect(f"{url}?token={mint_token(TOKEN_SECRET, self.player, 3600)}")
        self.ws.recv()  # subscribed

    def on_stop(self) -> None:
        self.ws.close()

    @task
    def unlock_and_wait_for_the_push(self) -> None:
        if self.k >= PER_PLAYER:
            return
        item = unlock(self.i, self.k)
        self.k += 1
        item["player_id"] = self.player
        start = time.perf_counter()
        self.client.post("/v1/unlocks", data=orjson.dumps([item]), name="POST /v1/unlocks (online player)",
                         headers={"X-API-Key": API_KEY, "content-type": "application/json"})
        failed: Exception | None = None
        try:
            while not any(e.get("type") == "unlock.accepted" and e.get("achievement_id") == item["achievement_id"]
                          and e.get("game_id") == item["game_id"]
                          for e in orjson.loads(self.ws.recv(timeout=10)).get("events", ())):
                pass
        except TimeoutError as exc:
            failed = exc
        events.request.fire(request_type="WS", name="push: unlock.accepted", response_time=(
            time.perf_counter() - start) * 1000, response_length=1, exception=failed)
