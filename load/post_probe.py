"""One unlock per POST, Podium against the peers, alternated in one run:
every system is started once (its own database and key prefix), preloaded
with the same players, then measured round by round in turn (A, B, A, B...)
so that a noisy, shared machine disturbs each system alike. Reports each
round, the medians, and Podium's rate over each peer's (per round, then the
median of those ratios).

    PYTHONPATH=. .venv/bin/python load/post_probe.py --rounds 5 --systems podium,reference
    ... --profile 4   # then py-spy the gateway replica and a player shard for 4 s (a round not counted)
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from load.clients import CpuMeter, Outcome, closed_loop, http_session, percentiles
from load.systems import ROOT, Infra, Peer, Podium, System, keep_result, peers
from load.workload import Workload

VARIANTS = {"podium": lambda: Podium(),
            "podium-throughput": lambda: Podium("podium-throughput", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}),
            # Two gateway replicas behind HAProxy: what a second process for HTTP buys on this box
            "podium-2replicas": lambda: Podium("podium-2replicas", settings={"gateway_replicas": 2})}
PODIUM_ROLES = (("ray::ServeReplica", "replica"), ("ray::PlayerShard", "shards"), ("ray::LeaderboardShard", "shards"),
                ("/haproxy", "haproxy"))


def make(name: str) -> System:
    if name in VARIANTS:
        return VARIANTS[name]()
    for peer in peers():
        if peer.name == name:
            return peer
    raise SystemExit(f"unknown system {name!r}: {', '.join([*VARIANTS, *(p.name for p in peers())])}")


def podium_pids() -> dict[str, int]:
    """The gateway replica's and the first player shard's pids: Ray processes this driver started
    (its raylet's workers), not other clusters on the machine."""
    import psutil

    pids: dict[str, int] = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if title.startswith("ray::ServeReplica") and "gateway" in title:
            pids.setdefault("gateway", proc.pid)
        elif title.startswith("ray::PlayerShard"):
            pids.setdefault("player_shard", proc.pid)
    return pids


def cpu_seconds(system: System) -> dict[str, float]:
    """User+system CPU so far of the system's processes on the request path, by role (Podium: the
    gateway replica, the shard actors and HAProxy this driver started, not Ray's own daemons; a peer:
    its uvicorn processes). PostgreSQL and Redis are shared and not counted."""
    import psutil

    root = psutil.Process(system.proc.pid) if isinstance(system, Peer) else psutil.Process()
    procs = root.children(recursive=True) + ([root] if isinstance(system, Peer) else [])
    out: dict[str, float] = {}
    for proc in procs:
        try:
            exe = proc.cmdline()[0]
            t = proc.cpu_times()
        except (psutil.Error, IndexError):
            continue
        role = "app"
        if isinstance(system, Podium):
            role = next((r for prefix, r in PODIUM_ROLES if exe.startswith(prefix) or exe.endswith(prefix)), "")
            if not role:
                continue
        out[role] = out.get(role, 0.0) + t.user + t.system
    return out


def spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen([str(exe) if exe.exists() else "py-spy", "record", "-p", str(pid), "-d",
                             str(int(seconds)), "-r", "200", "-f", "raw", "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class Round:
    out: Outcome
    cpu: CpuMeter
    cpu_ms: dict[str, float]  # CPU ms per accepted unlock of the system's processes, by role (cpu_seconds)

    @property
    def cpu_ms_per_unlock(self) -> float:
        return sum(self.cpu_ms.values())


async def one_round(system: System, work: Workload, clients: int, seconds: float) -> Round:
    async with http_session() as session, system.writers("post", session, clients) as writers:
        before = cpu_seconds(system)
        with CpuMeter() as cpu:
            out = await closed_loop(writers * clients, 1, 1, seconds, work)
        after = cpu_seconds(system)
    return Round(out, cpu, {role: 1000 * (t - before.get(role, 0.0)) / max(1, out.accepted)
                            for role, t in after.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", default="podium,reference")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--players", type=int, default=10_000)
    ap.add_argument("--profile", type=float, default=0.0, help="py-spy Podium's processes this long (last round)")
    args = ap.parse_args()
    from podium.cluster.embedded import ensure_servers

    data_dir = Path(tempfile.mkdtemp(prefix="podium-postprobe-"))
    data_dir.chmod(0o755)
    servers = ensure_servers(os.environ.get("PODIUM_DATABASE_URL"), os.environ.get("PODIUM_REDIS_URL"), data_dir)
    assert servers.database_url and servers.redis_url
    infra = Infra(servers.database_url, servers.redis_url, data_dir, uuid.uuid4().hex[:8])
    systems = [make(n) for n in args.systems.split(",")]
    assert sum(isinstance(s, Podium) for s in systems) <= 1, "one Podium per run (one Ray driver)"
    results: dict[str, list[Round]] = {s.name: [] for s in systems}
    started: list[System] = []
    work = Workload()
    preload = work.grow(args.players)
    try:
        for system in systems:
            system.start(infra)
            started.append(system)
            asyncio.run(system.preload(preload))
            asyncio.run(one_round(system, work, args.clients, 2.0))  # warm-up, not counted
        time.sleep(2.0)
        for r in range(args.rounds):
            for system in systems if r % 2 == 0 else systems[::-1]:
                one = asyncio.run(one_round(system, work, args.clients, args.seconds))
                results[system.name].append(one)
                p50, _, p99 = percentiles(one.out.latencies_ms)
                print(f"round {r + 1} {system.name}: {one.out.rate:,.0f}/s p50 {p50:.1f} ms p99 {p99:.1f} ms, "
                      f"{one.cpu_ms_per_unlock:.2f} CPU ms per unlock ("
                      f"{', '.join(f'{k} {v:.2f}' for k, v in sorted(one.cpu_ms.items()))}); "
                      f"machine CPU {one.cpu.machine_pct:.0f}%, "
                      f"other acks {one.out.other}", flush=True)
        podium = next((s for s in systems if isinstance(s, Podium)), None)
        if args.profile and podium is not None:  # an extra round, not counted: py-spy takes CPU of its own
            (ROOT / "load" / "results").mkdir(exist_ok=True)
            spies = [spy(pid, args.profile, ROOT / "load" / "results" / f"post-{role}.txt")
                     for role, pid in podium_pids().items()]
            asyncio.run(one_round(podium, work, args.clients, args.profile + 1))
            for p in spies:
                p.wait(60)
    finally:
        for system in started:
            try:
                system.stop()
            except Exception as exc:  # stop the others all the same
                print(f"{system.name} did not stop cleanly: {exc!r}")
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    lines = [f"# One unlock per POST, {args.clients} clients, {args.rounds} alternated rounds of {args.seconds:g} s",
             "", "| system | rounds (unlocks/s) | median | p50 / p99 ms (median round) | CPU ms per unlock (median) | "
             "by process (medians) |", "| --- | --- | --- | --- | --- | --- |"]
    medians: dict[str, float] = {}
    for name, runs in results.items():
        rates = [x.out.rate for x in runs]
        medians[name] = statistics.median(rates)
        roles = sorted({k for x in runs for k in x.cpu_ms})
        mid = sorted(runs, key=lambda x: x.out.rate)[len(runs) // 2].out
        p50, _, p99 = percentiles(mid.latencies_ms)
        lines.append(f"| {name} | {', '.join(f'{x:,.0f}' for x in rates)} | {medians[name]:,.0f} | "
                     f"{p50:.1f} / {p99:.1f} | {statistics.median(x.cpu_ms_per_unlock for x in runs):.2f} | "
                     f"{', '.join(f'{k} {statistics.median(x.cpu_ms.get(k, 0.0) for x in runs):.2f}' for k in roles)}"
                     " |")
    first = systems[0].name
    for other in systems[1:]:
        per_round = [a.out.rate / b.out.rate for a, b in zip(results[first], results[other.name], strict=True)
                     if b.out.rate]
        lines.append(f"\n{first} / {other.name}: per round {', '.join(f'{x:.2f}' for x in per_round)}; median "
                     f"{statistics.median(per_round):.2f}x (medians' ratio {medians[first] / medians[other.name]:.2f})")
    keep_result("post-probe", "\n".join(lines))


if __name__ == "__main__":
    main()
