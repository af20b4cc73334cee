"""Ingest throughput by player-shard count on this machine (docs/benchmarks.md
"Shard counts"): a fresh cluster per count, 10,000 players preloaded, then
closed-loop ingest over 2 sockets with 4 frames of 500 in flight for
`seconds`, as the side-by-side bench's ingest phase does.

    .venv/bin/python -m load.shard_counts [--counts 1,2,4] [--seconds 8]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from load.clients import CpuMeter, closed_loop, percentiles
from load.systems import Infra, Podium
from load.workload import Workload


async def measure(system: Podium, players: int, seconds: float) -> dict[str, float]:
    work = Workload()
    await system.preload(work.grow(players))
    async with system.writers("ws", None, 2) as writers:  # type: ignore[arg-type]
        await closed_loop(writers, 4, 500, 2.0, work)  # warm-up, not counted
        with CpuMeter() as cpu:
            out = await closed_loop(writers, 4, 500, seconds, work)
    p50, _, p99 = percentiles(out.latencies_ms)
    return {"accepted_per_s": out.rate, "ack_p50_ms": p50, "ack_p99_ms": p99, "machine_cpu_pct": cpu.machine_pct,
            "other": sum(out.other.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1,2,4")
    ap.add_argument("--players", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    from podium.cluster.embedded import ensure_servers

    data_dir = Path(tempfile.mkdtemp(prefix="podium-shards-"))
    data_dir.chmod(0o755)
    servers = ensure_servers(os.environ.get("PODIUM_DATABASE_URL"), os.environ.get("PODIUM_REDIS_URL"), data_dir)
    assert servers.database_url and servers.redis_url
    rows = []
    try:
        for count in (int(c) for c in a.counts.split(",")):
            infra = Infra(servers.database_url, servers.redis_url, data_dir, uuid.uuid4().hex[:8])
            system = Podium(f"podium-{count}-shards", {"PODIUM_PLAYER_SHARDS": str(count)})
            system.start(infra)
            try:
                rows.append((count, asyncio.run(measure(system, a.players, a.seconds))))
            finally:
                system.stop()
            print(count, rows[-1][1], flush=True)
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print("| player shards | unlocks/s accepted | ack p50 / p99 ms | other acks | machine CPU |")
    print("| --- | --- | --- | --- | --- |")
    for count, r in rows:
        print(f"| {count} | {r['accepted_per_s']:,.0f} | {r['ack_p50_ms']:.1f} / {r['ack_p99_ms']:.1f} | "
              f"{r['other']:,.0f} | {r['machine_cpu_pct']:.0f} % |")


if __name__ == "__main__":
    main()
