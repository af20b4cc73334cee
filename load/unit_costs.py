"""Unit costs for docs/capacity.md: what one open socket, one unlock, one
pushed unlock and one read cost the cluster, in CPU seconds (all of the
cluster's processes: the gateway replica, the shards, Ray's own daemons,
HAProxy, this database's PostgreSQL backends) and in replica memory.

Each step holds one load for `seconds` and reads the CPU time every one of
those processes used; a unit cost is the step's CPU rate minus the rate of
the step below it, divided by the rate of the thing added:

1. idle: the cluster with 10,000 players loaded and nothing to do;
2. sockets: `sockets` player sockets open, each pinging every 30 s as
   clients are told to (docs/protocol.md); replica RSS before and after;
3. unlocks: `rate` unlocks/s over one ingest socket (frames of 10) for
   players with no socket open;
4. pushed: the same rate for players whose socket is open (each unlock is
   also pushed);
5. reads: `read_rate` HTTP reads/s (half rank, a quarter top-50, a quarter
   around-me), unlocks stopped;
6. posts: `post_rate` POSTs of one unlock each.

CPU time is not wall time: on a busy box the figures move much less than
latencies do. Redis is the machine's shared server (or an embedded one) and
is not counted (its share is reported separately when it is embedded).

    .venv/bin/python -m load.unit_costs [--sockets 2000] [--seconds 20] [--json out.json]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
import websockets

from load.clients import HttpWriter, Outcome, http_session, paced, paced_reads, timed_send
from load.systems import Infra, Podium
from load.workload import Workload, first_game, player_id

PLAYERS = 10_000
PING_S = 30.0


def _kind(proc: psutil.Process) -> str:
    """Which part of the cluster a process is, by its title (Ray names its workers `ray::<Actor>`)."""
    try:
        title = " ".join(proc.cmdline()) or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if "haproxy" in title:
        return "haproxy"
    if "ServeReplica" in title:
        return "gateway replica"
    if "Shard" in title or "Directory" in title:
        return "shards"
    return "ray and the rest"


@dataclass
class ClusterCpu:
    """CPU seconds of this process's descendants and of one database's PostgreSQL backends, by kind."""

    database_url: str
    seen: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (kind, cpu at last sample)

    async def _pids(self) -> dict[int, str]:
        pids = {p.pid: _kind(p) for p in psutil.Process(os.getpid()).children(recursive=True)}
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND pid <> pg_backend_pid()")
        finally:
            await conn.close()
        pids.update({r["pid"]: "postgres" for r in rows})
        return pids

    async def sample(self) -> dict[str, float]:
        """CPU seconds used since the last sample, by kind (a process first seen counts from now)."""
        used: dict[str, float] = {}
        for pid, kind in (await self._pids()).items():
            try:
                t = psutil.Process(pid).cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            now = t.user + t.system + t.children_user + t.children_system
            _, before = self.seen.get(pid, (kind, now))
            self.seen[pid] = (kind, now)
            used[kind] = used.get(kind, 0.0) + max(0.0, now - before)
        return used


@dataclass
class Step:
    name: str
    seconds: float
    cpu: dict[str, float]  # CPU seconds per second, by kind
    done: float = 0.0  # units of work done per second (sockets held, unlocks, reads)
    note: str = ""

    @property
    def total(self) -> float:
        return sum(self.cpu.values())


async def hold(meter: ClusterCpu, name: str, seconds: float,
               load: Callable[[], Awaitable[float]] | None = None) -> Step:
    """Run `load` (it returns units done per second) or sleep, and measure the cluster's CPU meanwhile."""
    await meter.sample()
    t0 = time.perf_counter()
    done = 0.0
    if load:
        done = await load()
    else:
        await asyncio.sleep(seconds)
    wall = time.perf_counter() - t0
    used = await meter.sample()
    step = Step(name, wall, {k: v / wall for k, v in used.items()}, done)
    parts = ", ".join(f"{k} {v * 100:.1f}%" for k, v in sorted(step.cpu.items()))
    print(f"  {name}: {step.total * 100:.1f}% of one core ({parts}); {done:,.1f}/s", flush=True)
    return step


async def open_socket(system: Podium, i: int) -> Any:
    ws = await websockets.connect(f"{system.ws_url}/v1/ws/players/{player_id(i)}?token={system.token(player_id(i))}",
                                  open_timeout=60, compression=None)
    await ws.recv()  # subscribed
    return ws


async def pinger(ws: Any, offset: float) -> None:
    """A client as docs/protocol.md asks: a `ping` every 30 s; whatever arrives is read and dropped."""
    async def drain() -> None:
        async for _ in ws:
            pass

    reader = asyncio.ensure_future(drain())
    try:
        await asyncio.sleep(offset)
        while True:
            await ws.send("ping")
            await asyncio.sleep(PING_S)
    finally:
        reader.cancel()


async def replica_rss(session: Any, system: Podium) -> float:
    async with session.get(f"{system.base}/v1/ws/health") as r:
        return float((await r.json())["replica"]["rss_mib"])


async def measure(system: Podium, args: argparse.Namespace) -> dict[str, Any]:
    work = Workload()
    await system.preload(work.grow(PLAYERS))
    await asyncio.sleep(3.0)
    assert system.settings.database_url
    meter = ClusterCpu(system.settings.database_url)
    steps: list[Step] = []
    async with http_session() as session:
        steps.append(await hold(meter, "idle", args.seconds))
        rss0 = await replica_rss(session, system)
        online = list(range(args.sockets))
        sockets = []
        for start in range(0, len(online), 200):
            sockets += await asyncio.gather(*(open_socket(system, i) for i in online[start:start + 200]))
        await asyncio.sleep(3.0)
        rss1 = await replica_rss(session, system)
        pingers = [asyncio.ensure_future(pinger(ws, PING_S * k / len(sockets))) for k, ws in enumerate(sockets)]
        try:
            async def held() -> float:
                await asyncio.sleep(args.seconds)
                return float(len(sockets))

            steps.append(await hold(meter, "sockets", args.seconds, held))
            async with system.writers("ws", session, 1) as writers:
                acks = Outcome()

                def unlocks(players: list[int]) -> Callable[[], Awaitable[float]]:
                    async def one() -> None:
                        items = [x for x in (work.next_for(work.rng.choice(players)) for _ in range(10)) if x]
                        await timed_send(writers[0], items, acks, None)

                    async def run() -> float:
                        before = acks.accepted
                        began = time.perf_counter()
                        await paced(args.rate / 10, args.seconds, one, cap=64)
                        return (acks.accepted - before) / (time.perf_counter() - began)
                    return run

                offline = list(range(args.sockets, PLAYERS))
                steps.append(await hold(meter, "unlocks", args.seconds, unlocks(offline)))
                steps.append(await hold(meter, "pushed unlocks", args.seconds, unlocks(online)))

            async def reads() -> float:
                out, _ = await paced_reads(session, system.base, system.paths, args.read_rate, args.seconds, work,
                                           first_game, player_id)
                return out.rate

            steps.append(await hold(meter, "reads", args.seconds, reads))
            poster = HttpWriter(session, f"{system.base}/v1/unlocks", headers={"X-API-Key": system.api_key})
            posted = Outcome()

            async def posts() -> float:
                async def one() -> None:
                    item = work.next_for(work.rng.choice(offline))
                    if item:
                        await timed_send(poster, [item], posted, None)
                began = time.perf_counter()
                await paced(args.post_rate, args.seconds, one, cap=64)
                return posted.accepted / (time.perf_counter() - began)

            steps.append(await hold(meter, "posts", args.seconds, posts))
        finally:
            for task in pingers:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    by = {s.name: s for s in steps}

    def extra(step: str) -> float:  # CPU ms per unit of `step`'s work, over the sockets-open baseline
        return (by[step].total - by["sockets"].total) / by[step].done * 1000

    per = {
        "cpu_ms_per_socket_second": (by["sockets"].total - by["idle"].total) / len(sockets) * 1000,
        "cpu_ms_per_unlock": extra("unlocks"),
        "cpu_ms_per_pushed_unlock": extra("pushed unlocks"),
        "cpu_ms_per_read": extra("reads"),
        "cpu_ms_per_post": extra("posts"),
        "replica_kib_per_socket": (rss1 - rss0) * 1024 / len(sockets),
        "idle_cores": by["idle"].total,
    }
    return {"sockets": len(sockets), "seconds": args.seconds, "players": PLAYERS,
            "steps": [s.__dict__ for s in steps], "unit": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockets", type=int, default=2_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=500.0, help="unlocks/s in the unlock steps")
    ap.add_argument("--read-rate", type=float, default=300.0)
    ap.add_argument("--post-rate", type=float, default=200.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from podium.cluster.embedded import ensure_servers

    data_dir = Path(tempfile.mkdtemp(prefix="podium-costs-"))
    data_dir.chmod(0o755)
    servers = ensure_servers(os.environ.get("PODIUM_DATABASE_URL"), os.environ.get("PODIUM_REDIS_URL"), data_dir)
    assert servers.database_url and servers.redis_url
    system = Podium()
    try:
        system.start(Infra(servers.database_url, servers.redis_url, data_dir, uuid.uuid4().hex[:8]))
        try:
            result = asyncio.run(measure(system, args))
        finally:
            system.stop()
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    for k, v in result["unit"].items():
        print(f"{k}: {v:.3f}")
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
