"""What the loop-lag monitor costs (podium/telemetry/loop_lag.py; issue 23), in CPU time,
so a busy box's other processes hardly move the figures:

1. idle: a loop doing nothing else for `seconds`, with no monitor, with the
   monitor only (the 100 ms timer), and with its watchdog thread too;
2. busy: `tasks` coroutines passing the loop around (sleep(0) plus a little
   work each turn) for a fixed count of turns: CPU per turn without and with
   the monitor and watchdog, alternated `rounds` times (medians);
3. GC: an allocation-heavy loop (young collections every ~700 objects) with
   and without the GC timer's callback: the cost per GC pass.

    .venv/bin/python -m load.loop_lag_probe [--seconds 10] [--rounds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

from podium.telemetry.loop_lag import GcTimer, LoopLagMonitor


async def _idle(seconds: float, monitor: bool, watchdog: bool) -> float:
    m = LoopLagMonitor("probe", watchdog=watchdog, gc_timer=GcTimer()) if monitor else None
    c0 = time.process_time()
    if m is not None:
        m.start()
    await asyncio.sleep(seconds)
    if m is not None:
        await m.stop()
    return (time.process_time() - c0) / seconds


async def _busy(turns: int, tasks: int, monitor: bool) -> float:
    m = LoopLagMonitor("probe", gc_timer=GcTimer()) if monitor else None
    if m is not None:
        m.start()
    per_task = turns // tasks

    async def worker() -> None:
        acc: dict[int, int] = {}
        for i in range(per_task):
            acc[i & 63] = i * 2
            await asyncio.sleep(0)

    c0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    took = time.process_time() - c0
    if m is not None:
        await m.stop()
    return took / (per_task * tasks)


def _allocations(n: int, timed: bool) -> tuple[float, int]:
    timer = GcTimer()
    if timed:
        timer.install()
    passes0 = gc.get_stats()
    c0 = time.process_time()
    keep: list[dict[str, object]] = []
    for i in range(n):
        keep.append({"i": i, "j": [i]})
        if len(keep) > 5000:
            keep.clear()
    took = time.process_time() - c0
    passes = sum(s["collections"] for s in gc.get_stats()) - sum(s["collections"] for s in passes0)
    if timed:
        timer.uninstall()
    return took, passes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--turns", type=int, default=400_000)
    parser.add_argument("--tasks", type=int, default=100)
    args = parser.parse_args()

    idle = {label: asyncio.run(_idle(args.seconds, m, w))
            for label, m, w in (("none", False, False), ("monitor", True, False), ("monitor+watchdog", True, True))}
    print("idle CPU share: " + ", ".join(f"{k} {v * 100:.3f} %" for k, v in idle.items()))
    print(f"  monitor alone: {(idle['monitor'] - idle['none']) * 1e6:.0f} us CPU per second; watchdog thread: "
          f"{(idle['monitor+watchdog'] - idle['monitor']) * 1e6:.0f} us per second")

    without, with_ = [], []
    for _ in range(args.rounds):
        without.append(asyncio.run(_busy(args.turns, args.tasks, False)))
        with_.append(asyncio.run(_busy(args.turns, args.tasks, True)))
    a, b = statistics.median(without), statistics.median(with_)
    print(f"busy loop: {a * 1e6:.2f} us CPU per turn without, {b * 1e6:.2f} us with the monitor and watchdog "
          f"({(b / a - 1) * 100:+.2f} %; rounds without {[round(x * 1e6, 2) for x in without]}, "
          f"with {[round(x * 1e6, 2) for x in with_]})")

    plain, timed = [], []
    for _ in range(args.rounds):
        took, passes = _allocations(2_000_000, False)
        plain.append((took, passes))
        took, passes = _allocations(2_000_000, True)
        timed.append((took, passes))
    p = statistics.median(t for t, _ in plain)
    t = statistics.median(t for t, _ in timed)
    gc_passes = statistics.median(n for _, n in timed)
    print(f"GC timer: {gc_passes:.0f} GC passes in 2M allocations; {p:.3f} s CPU without the callback, {t:.3f} s with: "
          f"{(t - p) / gc_passes * 1e6:.2f} us per pass ({(t / p - 1) * 100:+.2f} %)")


if __name__ == "__main__":
    main()
