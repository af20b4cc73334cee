"""What board watchers cost (docs/benchmarks.md "Live boards"): `players`
preloaded players, `rate` unlocks/s of random players over two ingest
sockets, in phases of `seconds` each, the same load:

1. no watchers;
2. `watchers` board sockets (/v1/ws/boards) open and reading, over five
   boards of the first game (most on its global top 10, as a lobby screen);
3. (last round) the same, while a headless Chromium (Debian's, driven by
   Playwright) opens the board page `page_loads` times: first contentful
   paint and the time until the board's rows are drawn, from navigation
   start. The same page loads run once before, with nothing else running.

Phases 1 and 2 alternate for `rounds` rounds, so the box's drift touches both.

The cluster's CPU is the machine's busy share less this process's own (the
load generator and every watcher's socket live here). The figure asked for:
phase 2 less phase 1, per round, and its median.

    .venv/bin/python -m load.board_bench [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import websockets

from load.clients import CpuMeter, Outcome, WsWriter, paced, percentiles, timed_send
from load.systems import Podium, keep_result, run_alone
from load.workload import REGIONS, Workload, achievement_id, game_id

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def boards(watchers: int) -> list[str]:
    """Each watcher's board socket query: 60 % the first game's global top 10, the rest over four other boards."""
    others = [f"region={REGIONS[0]}&top=10", "period=day&top=10", "period=week&top=25", "top=50"]
    return ["top=10" if i % 10 < 6 else others[i % len(others)] for i in range(watchers)]


class Watchers:
    """Board sockets, each reading every frame as it comes."""

    def __init__(self, queries: list[str]) -> None:
        self.queries = queries
        self.frames: Counter[str] = Counter()
        self.closed = 0
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, ws_url: str, game: str) -> None:
        queries = self.queries
        for start in range(0, len(queries), 100):
            self.sockets += await asyncio.gather(*(websockets.connect(
                f"{ws_url}/v1/ws/boards/{game}?{q}", open_timeout=60, max_queue=4) for q in queries[start:start + 100]))
        self.tasks = [asyncio.ensure_future(self._read(ws, q)) for ws, q in zip(self.sockets, queries, strict=True)]

    async def _read(self, ws: Any, query: str) -> None:
        try:
            async for message in ws:
                if orjson.loads(message)["type"] == "board":
                    self.frames[query] += 1
        except websockets.ConnectionClosed:
            self.closed += 1

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def page_loads(base: str, game: str, n: int, api_key: str) -> dict[str, Any]:
    """`n` fresh page loads (first contentful paint, the socket's first frame drawn: ms from navigation
    start), then `n` unlocks of new players on a board of the page's own: ack to row shown."""
    import httpx
    from playwright.async_api import async_playwright

    paints, live, shown = [], [], []
    async with async_playwright() as playwright, httpx.AsyncClient(base_url=base, timeout=30.0) as http:
        browser = await playwright.chromium.launch(
            executable_path=os.environ.get("PODIUM_CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        try:
            for _ in range(n):
                context = await browser.new_context()  # a cold cache each time, as a first visit
                page = await context.new_page()
                await page.goto(f"{base}/boards/{game}")
                await page.wait_for_function("() => document.body.dataset.seq !== undefined", polling="raf")
                live.append(await page.evaluate("performance.now()"))
                paint = "performance.getEntriesByName('first-contentful-paint')"
                await page.wait_for_function(f"() => {paint}.length > 0")
                paints.append(await page.evaluate(f"{paint}[0].startTime"))
                await context.close()
            region = f"probe{uuid.uuid4().hex[:6]}"
            page = await browser.new_page()
            await page.goto(f"{base}/boards/{game}?region={region}&top=100")
            await page.wait_for_function("() => document.body.dataset.seq !== undefined", polling="raf")
            for i in range(n):
                await asyncio.sleep(random.random())  # at any point of the push interval, not locked to it
                player = f"{region}-{i}"
                response = await http.post("/v1/unlocks", headers={"X-API-Key": api_key}, json=[
                    {"player_id": player, "game_id": game, "achievement_id": achievement_id(0), "region": region}])
                assert response.json()[0]["status"] == "accepted", response.text
                acked = time.perf_counter()
                await page.wait_for_selector(f"#board-rows tr[data-player='{player}']", timeout=30_000)
                shown.append(1000 * (time.perf_counter() - acked))
        finally:
            await browser.close()
    return {"loads": n, "first_paint_ms": percentiles(paints), "first_paint_max_ms": max(paints),
            "live_ms": percentiles(live), "live_max_ms": max(live),
            "unlock_shown_ms": percentiles(shown), "unlock_shown_max_ms": max(shown)}


async def phase(work: Workload, writers: list[WsWriter], rate: float, seconds: float, watchers: Watchers | None,
                browse: tuple[str, str, int, str] | None = None) -> dict[str, Any]:
    acks = Outcome()
    turn = iter(range(1 << 62))

    async def one() -> None:
        items = [item for item in (work.next_for(work.any_player()) for _ in range(10)) if item]
        await timed_send(writers[next(turn) % len(writers)], items, acks, None)

    before = Counter(watchers.frames) if watchers else Counter()
    with CpuMeter() as cpu:
        began = time.perf_counter()
        jobs: list[Any] = [paced(rate / 10, seconds, one, cap=64)]
        if browse is not None:
            jobs.append(page_loads(*browse))
        results = await asyncio.gather(*jobs)
        acks.seconds = time.perf_counter() - began
    frames = (watchers.frames - before) if watchers else Counter()
    out = {"accepted_per_s": acks.rate, "other_acks": dict(acks.other), "ack_ms": percentiles(acks.latencies_ms),
           "machine_cpu_pct": cpu.machine_pct, "loadgen_cpu_pct": cpu.loadgen_pct,
           "cluster_cpu_pct": cpu.machine_pct - cpu.loadgen_pct, "seconds": acks.seconds,
           "frames_per_s": sum(frames.values()) / acks.seconds,
           "frames_per_watcher_per_s": {q: round(n / acks.seconds / watchers.queries.count(q), 2)
                                        for q, n in frames.items()} if watchers else {}}
    if browse is not None:
        out["page"] = results[1]
    return out


async def run(system: Podium, a: argparse.Namespace) -> dict[str, Any]:
    """Rounds of (no watchers, watchers) back to back, so the box's drift hits both alike; then page loads."""
    work = Workload(seed=13)
    await system.preload(work.grow(a.players))
    game = game_id(0)
    alone, watched, closed = [], [], 0
    async with WsWriter(f"{system.ws_url}/v1/ws/ingest", system.api_key) as w1, \
            WsWriter(f"{system.ws_url}/v1/ws/ingest", system.api_key) as w2:
        writers = [w1, w2]
        idle_page = await page_loads(system.base, game, a.page_loads, system.api_key)  # nothing else running
        print("page loads, idle", idle_page, flush=True)
        await phase(work, writers, a.rate, 3.0, None)  # warm-up, not reported
        for round_ in range(a.rounds):
            alone.append(await phase(work, writers, a.rate, a.seconds, None))
            print(round_, "no watchers", alone[-1], flush=True)
            watchers = Watchers(boards(a.watchers))
            await watchers.open(system.ws_url, game)
            await asyncio.sleep(2.0)
            try:
                watched.append(await phase(work, writers, a.rate, a.seconds, watchers))
                print(round_, f"{a.watchers} watchers", watched[-1], flush=True)
                if round_ == a.rounds - 1:
                    browse = (system.base, game, a.page_loads, system.api_key)
                    browsing = await phase(work, writers, a.rate, a.seconds, watchers, browse)
                    print("with page loads", browsing, flush=True)
            finally:
                await watchers.close()
                closed += watchers.closed
    return {"push_ms": system.settings.board_push_ms, "players": a.players, "rate": a.rate, "watchers": a.watchers,
            "boards": dict(Counter(boards(a.watchers))),
            "alone": alone, "watched": watched, "browsing": browsing, "idle_page": idle_page, "closed_sockets": closed}


def report(r: dict[str, Any]) -> str:
    def row(name: str, p: dict[str, Any]) -> str:
        ack = p["ack_ms"]
        return (f"| {name} | {p['accepted_per_s']:,.0f} | {ack[0]:.1f} / {ack[2]:.1f} ms | {p['frames_per_s']:,.0f} "
                f"| {p['machine_cpu_pct']:.1f} % | {p['loadgen_cpu_pct']:.1f} % | {p['cluster_cpu_pct']:.1f} % |")

    def median(phases: list[dict[str, Any]], field: str) -> float:
        return statistics.median(p[field] for p in phases)

    added = [w["cluster_cpu_pct"] - a["cluster_cpu_pct"] for a, w in zip(r["alone"], r["watched"], strict=True)]
    rows = [row(f"{i + 1}: {name}", p) for i, (a, w) in enumerate(zip(r["alone"], r["watched"], strict=True))
            for name, p in (("no watchers", a), (f"{r['watchers']:,} watchers", w))]

    def page(p: dict[str, Any]) -> str:
        return (f"first contentful paint (the top N is in the HTML) p50 {p['first_paint_ms'][0]:.0f} ms "
                f"(max {p['first_paint_max_ms']:.0f}); live (the socket's first frame drawn) p50 "
                f"{p['live_ms'][0]:.0f} ms (max {p['live_max_ms']:.0f}); an unlock's row on the page after its "
                f"ack p50 {p['unlock_shown_ms'][0]:.0f} ms, p99 {p['unlock_shown_ms'][2]:.0f} ms "
                f"(max {p['unlock_shown_max_ms']:.0f})")

    lines = [
        f"board_push_ms {r['push_ms']:g}; {r['players']:,} players, {r['rate']:,.0f} unlocks/s offered, "
        f"{r['watchers']:,} board watchers over "
        f"{len(r['boards'])} boards ({', '.join(f'{q}: {n}' for q, n in r['boards'].items())})", "",
        "| round: phase | acked/s | ack p50 / p99 | board frames/s received | machine CPU | load generator | cluster |",
        "| --- | --- | --- | --- | --- | --- | --- |", *rows, row("watchers + page loads", r["browsing"]), "",
        f"- CPU the watchers add to the cluster, per round: {', '.join(f'{x:+.1f}' for x in added)} points of the "
        f"machine (2 cores = 100 %); **median {statistics.median(added):+.1f}**",
        f"- cluster CPU median: {median(r['alone'], 'cluster_cpu_pct'):.1f} % without watchers, "
        f"{median(r['watched'], 'cluster_cpu_pct'):.1f} % with them",
        f"- frames per watcher per second (last round): {r['watched'][-1]['frames_per_watcher_per_s']}",
        f"- board page, {r['idle_page']['loads']} cold loads and unlocks, nothing else running: {page(r['idle_page'])}",
        f"- the same beside the load and the watchers (Chromium shares the 2 cores): {page(r['browsing']['page'])}",
        f"- watcher sockets closed by the server: {r['closed_sockets']}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 s phases, 10 page loads")
    ap.add_argument("--players", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=1_000.0)
    ap.add_argument("--watchers", type=int, default=1_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--page-loads", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of (no watchers, watchers)")
    ap.add_argument("--push-ms", type=float, default=None, help="PODIUM_BOARD_PUSH_MS (default: the setting's)")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.page_loads, a.rounds = 10.0, 10, 2
    system = Podium("podium-boards", settings={} if a.push_ms is None else {"board_push_ms": a.push_ms})
    result = run_alone(system, lambda started: run(started, a), "board-bench")
    keep_result(f"boards{'-quick' if a.quick else ''}", report(result))


if __name__ == "__main__":
    main()
