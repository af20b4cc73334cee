"""Do HTTP reads stall pushes and acks? One cluster serves the gateway both ways
at once, on one port: split planes (the socket plane at /v1/ws, the HTTP plane
at /, as `podium up` deploys them) and one deployment with every route (a Serve
app of its own at /one, as with PODIUM_SPLIT_PLANES=false). Each way holds
--sockets player sockets and one ingest socket for the whole run. Rounds
alternate ways and reads (one/off, split/off, one/on, split/on, then the other
way first), so drift on this shared machine hits both alike. A round streams
--rate unlocks/s (frames of 10, pipelined, each unlock new) for players of that
way's sockets over that way's ingest socket; with reads on, a process of its own
GETs --read-rate reads/s open-loop (3/4 rank, 1/4 top page) from that way's HTTP
routes, each timed from when it was due. Ack: frame sent -> its ack. Push: frame
sent -> the unlock.accepted event on the player's socket.

    PYTHONPATH=. .venv/bin/python load/plane_probe.py --sockets 2000 --rate 200 --read-rate 400 --reps 3

One JSON line per round, then medians over rounds per way and reads."""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets

from load.systems import Infra, Podium
from load.workload import player_id, unlock

WAYS = {"one": "/one", "split": ""}  # URL prefix of each way's routes


def quantiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    at = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {"n": len(xs), "p50": round(at(0.5), 1), "p95": round(at(0.95), 1), "p99": round(at(0.99), 1),
            "max": round(xs[-1], 1)}


def read_process(base: str, urls: list[str], rate: float, seconds: float, out: Any) -> None:
    """Open-loop reads in a process of their own; sends back (latencies ms, status counts)."""
    async def run() -> tuple[list[float], dict[str, int]]:
        lat: list[float] = []
        statuses: Counter[str] = Counter()
        limit = asyncio.Semaphore(512)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as session:
            async def one(url: str, due: float) -> None:
                try:
                    async with session.get(base + url, headers={"X-Forwarded-For": "10.9.9.9"}) as r:
                        await r.read()
                        statuses[str(r.status)] += 1
                except aiohttp.ClientError as exc:
                    statuses[type(exc).__name__] += 1
                finally:
                    lat.append((time.perf_counter() - due) * 1000)
                    limit.release()

            tasks = set()
            start = time.perf_counter()
            for n in itertools.count():
                due = start + n / rate
                if due - start >= seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await limit.acquire()
                task = asyncio.ensure_future(one(urls[n % len(urls)], due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        return lat, dict(statuses)

    out.send(asyncio.run(run()))


class Way:
    """One way of serving the gateway: its player sockets, its ingest socket, what is in flight."""

    def __init__(self, name: str, podium: Podium, players: list[int]) -> None:
        self.name, self.podium, self.players = name, podium, players
        self.prefix = WAYS[name]
        self.next_k = dict.fromkeys(players, 1)  # unlock 0 is the warm-up's
        self.sent: dict[tuple[str, str, str], float] = {}  # (player, game, achievement) -> frame sent
        self.frame_sent: dict[str, float] = {}  # unlock id -> frame sent
        self.pushes: list[float] = []
        self.acks: list[float] = []
        self.ack_statuses: Counter[str] = Counter()
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, concurrency: int = 64) -> None:
        ws_base = self.podium.ws_url + self.prefix
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> Any:
            p = player_id(i)
            async with gate:
                for _ in range(10):
                    try:
                        ws = await websockets.connect(f"{ws_base}/v1/ws/players/{p}?token={self.podium.token(p)}",
                                                      open_timeout=60, max_queue=None)
                        await ws.recv()  # subscribed
                        return ws
                    except (OSError, websockets.InvalidStatus, TimeoutError):
                        await asyncio.sleep(1.0)
            raise RuntimeError(f"{self.name}: socket for {p} not opened")

        self.sockets = await asyncio.gather(*(one(i) for i in self.players))
        self.tasks = [asyncio.ensure_future(self.listen(ws, player_id(i)))
                      for ws, i in zip(self.sockets, self.players, strict=True)]
        self.ingest = await websockets.connect(f"{ws_base}/v1/ws/ingest",
                                               additional_headers={"X-API-Key": self.podium.api_key}, max_queue=None)
        self.tasks.append(asyncio.ensure_future(self.read_acks()))

    async def listen(self, ws: Any, player: str) -> None:
        async for message in ws:
            now = time.perf_counter()
            for event in orjson.loads(message).get("events", ()):
                if event.get("type") == "unlock.accepted":
                    at = self.sent.pop((player, event["game_id"], event["achievement_id"]), None)
                    if at is not None:
                        self.pushes.append((now - at) * 1000)

    async def read_acks(self) -> None:
        async for message in self.ingest:
            now = time.perf_counter()
            for ack in orjson.loads(message):
                at = self.frame_sent.pop(ack["id"], None)
                self.ack_statuses[":".join(filter(None, (ack["status"], ack.get("reason"))))] += 1
                if at is not None:
                    self.acks.append((now - at) * 1000)

    async def send(self, items: list[dict[str, str]], track: bool = True) -> None:
        now = time.perf_counter()
        for item in items:
            item["id"] = uuid.uuid4().hex[:12]
            if track:
                self.frame_sent[item["id"]] = now
                self.sent[(item["player_id"], item["game_id"], item["achievement_id"])] = now
        await self.ingest.send(orjson.dumps(items).decode())

    def frame(self, rng_turn: Any) -> list[dict[str, str]]:
        out = []
        for _ in range(10):
            i = self.players[next(rng_turn) % len(self.players)]
            out.append(unlock(i, self.next_k[i]))
            self.next_k[i] += 1
        return out

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for ws in [*self.sockets, self.ingest]:
            await ws.close()


async def stream(way: Way, rate: float, seconds: float) -> None:
    turn = itertools.count(7919, 7919)  # a stride over the players: each frame's unlocks for different ones
    start = time.perf_counter()
    for n in itertools.count():
        due = start + n * 10 / rate
        if due - start >= seconds:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await way.send(way.frame(turn))


async def run_round(way: Way, reads: bool, a: argparse.Namespace, read_urls: list[str]) -> dict[str, Any]:
    way.pushes, way.acks, way.ack_statuses = [], [], Counter()
    way.sent.clear()
    way.frame_sent.clear()
    reader = None
    if reads:
        ctx = multiprocessing.get_context("spawn")
        theirs, ours = ctx.Pipe(duplex=False)
        reader = ctx.Process(target=read_process, args=(way.podium.base + way.prefix, read_urls, a.read_rate,
                                                         a.seconds, ours))
        reader.start()
        await asyncio.sleep(1.0)  # the reader's interpreter is up (it times itself from its own start)
    await stream(way, a.rate, a.seconds)
    await asyncio.sleep(2.0)  # stragglers
    result: dict[str, Any] = {"way": way.name, "reads": reads, "ack_ms": quantiles(way.acks),
                              "push_ms": quantiles(way.pushes), "unacked": len(way.frame_sent),
                              "unpushed": len(way.sent), "acks": dict(way.ack_statuses)}
    if reader is not None:
        lat, statuses = await asyncio.to_thread(theirs.recv)
        reader.join()
        result["read_ms"] = quantiles(lat)
        result["read_statuses"] = statuses
    return result


async def probe(podium: Podium, a: argparse.Namespace) -> list[dict[str, Any]]:
    from ray import serve

    from podium.gateway.app import gateway_apps

    one = gateway_apps(podium.settings.model_copy(update={"split_planes": False}))[0].app
    await asyncio.to_thread(serve.run, one, name="one", route_prefix="/one")
    ways = {"one": Way("one", podium, list(range(0, a.sockets))),
            "split": Way("split", podium, list(range(a.sockets, 2 * a.sockets)))}
    for way in ways.values():
        t0 = time.perf_counter()
        await way.open()
        print(f"{way.name}: {len(way.sockets)} sockets open in {time.perf_counter() - t0:.1f}s", flush=True)
        for i in range(0, len(way.players), 100):  # warm-up: every player on the boards (unlock 0), not timed
            await way.send([unlock(p, 0) for p in way.players[i:i + 100]], track=False)
    await asyncio.sleep(5.0)
    read_urls = []
    for n in range(4000):
        i = n * 7 % (2 * a.sockets)
        game = unlock(i, 0)["game_id"]
        read_urls.append(f"/v1/games/{game}/leaderboard?limit=50" if n % 4 == 3
                         else f"/v1/games/{game}/players/{player_id(i)}/rank")
    order = [("one", False), ("split", False), ("one", True), ("split", True)]
    rounds = []
    for rep in range(a.reps):
        for name, reads in (order if rep % 2 == 0 else [(n, r) for n, r in reversed(order)]):
            result = {"rep": rep, **await run_round(ways[name], reads, a, read_urls)}
            print(json.dumps(result), flush=True)
            rounds.append(result)
            await asyncio.sleep(a.pause)
    for way in ways.values():
        await way.close()
    return rounds


def summary(rounds: list[dict[str, Any]]) -> str:
    lines = ["| way | reads | rounds | ack p50 / p99 ms | push p50 / p99 ms | read p50 / p99 ms |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in WAYS:
        for reads in (False, True):
            mine = [r for r in rounds if r["way"] == name and r["reads"] == reads]

            def med(key: str, q: str, mine: list[dict[str, Any]] = mine) -> str:
                xs = [r[key][q] for r in mine if key in r and q in r[key]]
                return f"{statistics.median(xs):,.0f}" if xs else "-"

            lines.append(f"| {name} | {'on' if reads else 'off'} | {len(mine)} | {med('ack_ms', 'p50')} / "
                         f"{med('ack_ms', 'p99')} | {med('push_ms', 'p50')} / {med('push_ms', 'p99')} | "
                         f"{med('read_ms', 'p50')} / {med('read_ms', 'p99')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2000, help="player sockets per way")
    parser.add_argument("--rate", type=float, default=200, help="unlocks/s in a round (frames of 10)")
    parser.add_argument("--read-rate", type=float, default=400, help="HTTP reads/s in a round with reads")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between rounds")
    a = parser.parse_args()
    infra = Infra(os.environ.get("PODIUM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                  os.environ.get("PODIUM_REDIS_URL", "redis://127.0.0.1:6379/0"),
                  Path(tempfile.mkdtemp(prefix="plane-probe-")), uuid.uuid4().hex[:8])
    podium = Podium("planes", settings={"max_sockets_per_replica": 4 * a.sockets + 100})
    podium.start(infra)
    try:
        rounds = asyncio.run(probe(podium, a))
    finally:
        podium.stop()
        shutil.rmtree(infra.data_dir, ignore_errors=True)
    print(summary(rounds))


if __name__ == "__main__":
    main()
