"""What one open player socket costs the gateway replica in memory (issue 23).

    python -m load.socket_memory                      # 2,000 then 4,000 sockets, then pushes for 15 s
    python -m load.socket_memory --sockets 1000,2000,4000 --push-rate 1000 --push-s 20
    python -m load.socket_memory --no-compression     # clients that do not offer permessage-deflate

Starts a Podium cluster as the bench does (load/systems.py Podium: one gateway replica,
its own database and Redis prefix, on PODIUM_DATABASE_URL / PODIUM_REDIS_URL or embedded
servers), opens player sockets (/v1/ws/players/{p}?token=...) 200 handshakes at a time,
as the bench's online phase does, up to each count in turn, and reads the replica's RSS
from /v1/health before and after (2 s after the last handshake). Then, with every socket
still open and read, it streams unlocks for those players (frames of 10 over 2 ingest
sockets, opened before the first reading: they are in the baseline) and reads the RSS
again, while the pushes flow and after they stop. Prints KiB per socket:
- "from empty": (RSS at N - RSS with no player socket) / N, as the bench's online phase
  counts it (one-time costs of the first sockets included);
- "marginal": between two counts, the cost of one more socket once the path is warm.
Clients are `websockets` with its defaults (permessage-deflate offered, as browsers do)
unless --no-compression."""
from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

import orjson
import websockets

from load.clients import http_session, paced
from load.systems import Infra, Podium, admin, run_alone
from load.workload import Workload, player_id

FIRST_PLAYER = 1_000


class Retrying(Podium):
    """Podium, whose start is tried again (3 times in all) when it fails: on a box shared with
    other clusters, Ray's node or Serve's proxy sometimes does not come up in time."""

    def start(self, infra: Infra) -> None:
        from podium.cluster import launch

        for attempt in range(3):
            try:
                super().start(infra)
                return
            except Exception as exc:
                launch.stop_ray(self.settings)
                asyncio.run(admin(infra.database_url, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
                if attempt == 2:
                    raise
                print(f"Podium did not start ({type(exc).__name__}: {str(exc)[:200]}); trying again", flush=True)


async def replica_rss(session: Any, base: str) -> tuple[float, int]:
    """(RSS MiB, open player sockets) of the replica that answers /v1/health."""
    async with session.get(f"{base}/v1/ws/health") as r:
        body = await r.json()
    return body["replica"]["rss_mib"], body["push_sockets"]


async def measure(system: Podium, counts: list[int], push_rate: float, push_s: float,
                  compression: str | None) -> str:
    sockets: list[Any] = []
    refused = 0
    events = 0

    async def open_one(i: int) -> Any:
        nonlocal refused
        try:
            ws = await websockets.connect(f"{system.ws_url}/v1/ws/players/{player_id(i)}?"
                                          f"token={system.token(player_id(i))}", open_timeout=60,
                                          compression=compression)
            await ws.recv()  # subscribed
            return ws
        except (websockets.InvalidStatus, OSError, TimeoutError):
            refused += 1
            return None

    async def listen(ws: Any) -> None:
        nonlocal events
        try:
            async for message in ws:
                events += len(orjson.loads(message).get("events", ()))
        except websockets.ConnectionClosed:
            pass

    lines = ["| point | player sockets | replica RSS MiB | KiB/socket from empty | KiB/socket marginal |",
             "| --- | --- | --- | --- | --- |"]
    async with http_session() as session, system.writers("ws", session, 2) as writers:
        await asyncio.sleep(2.0)
        empty, _ = await replica_rss(session, system.base)
        lines.append(f"| no player socket | 0 | {empty:.1f} | - | - |")
        previous = (0, empty)
        listeners: list[asyncio.Task[None]] = []
        for count in counts:
            t0 = time.perf_counter()
            for start in range(len(sockets), count, 200):
                batch = range(FIRST_PLAYER + start, FIRST_PLAYER + min(count, start + 200))
                opened = await asyncio.gather(*(open_one(i) for i in batch))
                sockets += opened
                listeners += [asyncio.ensure_future(listen(ws)) for ws in opened if ws is not None]
            await asyncio.sleep(2.0)
            rss, held = await replica_rss(session, system.base)
            print(f"{held:,} sockets open ({refused} refused) in {time.perf_counter() - t0:.1f}s: RSS {rss:.1f} MiB",
                  flush=True)
            lines.append(f"| open | {held:,} | {rss:.1f} | {(rss - empty) * 1024 / held:.1f} | "
                         f"{(rss - previous[1]) * 1024 / max(1, held - previous[0]):.1f} |")
            previous = (held, rss)
        if push_rate > 0:
            work = Workload()
            online = [FIRST_PLAYER + k for k, ws in enumerate(sockets) if ws is not None]
            turn = itertools.count()
            sampled: list[float] = []

            async def one() -> None:
                items = [item for item in (work.next_for(work.rng.choice(online)) for _ in range(10)) if item]
                await writers[next(turn) % len(writers)].send(items)

            async def sample() -> None:
                while True:
                    await asyncio.sleep(push_s / 4)
                    sampled.append((await replica_rss(session, system.base))[0])

            sampler = asyncio.ensure_future(sample())
            await paced(push_rate / 10, push_s, one, cap=64)
            sampler.cancel()
            during = max(sampled) if sampled else float("nan")
            await asyncio.sleep(2.0)
            after, held = await replica_rss(session, system.base)
            print(f"pushes: {events:,} events received; RSS peak {during:.1f}, after {after:.1f} MiB", flush=True)
            lines.append(f"| pushes flowing ({push_rate:,.0f} unlocks/s, peak of 4 readings) | {held:,} | "
                         f"{during:.1f} | {(during - empty) * 1024 / held:.1f} | - |")
            lines.append(f"| 2 s after the pushes | {held:,} | {after:.1f} | {(after - empty) * 1024 / held:.1f} | - |")
        for task in listeners:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets if ws is not None), return_exceptions=True)
        await asyncio.sleep(2.0)
        closed, held = await replica_rss(session, system.base)
        lines.append(f"| all closed | {held:,} | {closed:.1f} | - | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="2000,4000", help="socket counts, ascending (default 2000,4000)")
    parser.add_argument("--push-rate", type=float, default=1000, help="unlocks/s for the open sockets' players")
    parser.add_argument("--push-s", type=float, default=15)
    parser.add_argument("--no-compression", action="store_true", help="clients offer no permessage-deflate")
    a = parser.parse_args()
    counts = sorted(int(c) for c in a.sockets.split(","))
    compression = None if a.no_compression else "deflate"
    table = run_alone(Retrying("podium-socket-memory"),
                      lambda system: measure(system, counts, a.push_rate, a.push_s, compression), "socket-memory")
    print(f"\nclients: websockets {websockets.__version__}, compression offered: {compression or 'none'}\n")
    print(table)


if __name__ == "__main__":
    main()
