"""Quick figures for one running Podium: durable unlocks/s over ONE ingest
socket (pipelined frames), ack latency per frame, then rank-read latency.
Not the side-by-side benchmark (that is load/bench.py's job).

    .venv/bin/python load/quick.py --api-key "$(cat .podium/dev_api_key)"
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections import Counter

import httpx
import orjson
import websockets


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ingest(url: str, key: str, games: list[tuple[str, list[str]]], seconds: float, frame: int,
                 window: int) -> tuple[Counter[str], float, list[float], list[str]]:
    run = uuid.uuid4().hex[:6]
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    players: list[str] = []
    counter = 0

    def next_frame() -> bytes:
        nonlocal counter
        items = []
        for _ in range(frame):
            game, achievements = games[counter % len(games)]
            player = f"q{run}-{counter // 4}"
            items.append({"player_id": player, "game_id": game,
                          "achievement_id": achievements[counter % len(achievements)],
                          "region": ("eu", "na", "asia")[counter % 3]})
            counter += 1
        players.append(player)
        return orjson.dumps(items)

    async with websockets.connect(f"{url}/v1/ws/ingest", additional_headers={"X-API-Key": key},
                                  max_size=None) as ws:
        start = time.perf_counter()
        next_id = 0
        in_flight = 0
        done_sending = False
        while True:
            while not done_sending and in_flight < window:
                sent_at[next_id] = time.perf_counter()
                await ws.send(next_frame().decode())
                next_id += 1
                in_flight += 1
                if time.perf_counter() - start > seconds:
                    done_sending = True
            if in_flight == 0:
                break
            reply = orjson.loads(await ws.recv())
            received = next_id - in_flight
            latencies.append((time.perf_counter() - sent_at.pop(received)) * 1000)
            in_flight -= 1
            statuses.update(ack["status"] + (f":{ack['reason']}" if "reason" in ack else "") for ack in reply)
        elapsed = time.perf_counter() - start
    return statuses, elapsed, latencies, players


async def rank_reads(base: str, games: list[tuple[str, list[str]]], players: list[str], n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(n):
            game = games[0][0]
            player = random.choice(players)
            t = time.perf_counter()
            r = await client.get(f"/v1/games/{game}/players/{player}/rank")
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code in (200, 404), r.text
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--frame", type=int, default=500)
    ap.add_argument("--window", type=int, default=4, help="frames in flight on the socket")
    ap.add_argument("--reads", type=int, default=1000)
    a = ap.parse_args()
    async with httpx.AsyncClient(base_url=a.base) as client:
        catalog = (await client.get("/v1/games")).json()["games"]
    games = [(g["game_id"], [x["achievement_id"] for x in g["achievements"]]) for g in catalog if g["achievements"]]
    ws_url = a.base.replace("http", "ws", 1)
    statuses, elapsed, lat, players = await ingest(ws_url, a.api_key, games, a.seconds, a.frame, a.window)
    accepted = statuses.pop("accepted", 0)
    print(f"ingest: one socket, frames of {a.frame}, {a.window} in flight, {elapsed:.1f}s")
    print(f"  accepted {accepted} ({accepted / elapsed:,.0f}/s durable), other acks {dict(statuses)}")
    print(f"  ack latency per frame ms: p50 {statistics.median(lat):.1f}  p99 {pct(lat, 0.99):.1f}")
    await asyncio.sleep(1.0)
    reads = await rank_reads(a.base, games, players, a.reads)
    print(f"rank reads (sequential, 1 client): n={len(reads)} p50 {statistics.median(reads):.2f} ms"
          f"  p99 {pct(reads, 0.99):.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
