"""Side-by-side benchmark: Podium against the designs it replaces, in one run,
on this machine, with the same workload (load/workload.py).

    make bench         # full: 100k players for phases a-c, growth 10k -> 1M (< 15 min)
    make bench-quick   # about a minute of measuring: 10k players, short phases

Systems run one after another, each started fresh (own database, own Redis
prefix) and stopped before the next, so none steals CPU from another. Phases:
(a) ingest: closed loop at two concurrency levels, the best one counts;
(b) mixed: a fixed offered unlock rate plus paced rank / top-page / around-me
reads; (c) push latency (Podium): ack of an unlock to its rank.changed at a
subscribed socket; (d) growth: ingest and read costs at each player count;
then (e)-(j), docs/benchmarks.md ((j) stats: stat update ingest beside unlock
ingest, progress pushes, asc vs desc board reads). `--phases seed` (or `seed,online`, ...)
with `--systems podium` runs only those against Podium.
Without PODIUM_DATABASE_URL / PODIUM_REDIS_URL it starts the embedded servers.
The full run writes the table into docs/benchmarks.md and the plots beside it."""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import websockets

from load.clients import (
    Batches,
    CpuMeter,
    Items,
    OnAck,
    Outcome,
    closed_loop,
    closed_reads,
    http_session,
    paced,
    paced_reads,
    paced_writes,
    percentiles,
    timed_send,
)
from load.systems import ROOT, Infra, Level, Podium, System, peers
from load.workload import (
    BOARDS,
    LEVEL,
    STAT_GAME,
    WINS,
    WINS_ACHIEVEMENT,
    WINS_AT_LEAST,
    StatStream,
    Workload,
    achievement_id,
    first_game,
    game_id,
    player_id,
)

DOCS = ROOT / "docs" / "benchmarks.md"
IMAGES = ROOT / "docs" / "img"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
SOCKETS = 4  # Podium's socket readers


@dataclass(frozen=True)
class Profile:
    name: str
    main_players: int
    growth: tuple[int, ...]
    ingest_s: float
    mixed_s: float
    push_s: float
    growth_s: float
    mixed_rate: float = 5_000  # issue 8's target load: 500 reads/s while 5,000 unlocks/s stream
    push_rate: float = 10_000
    read_rate: float = 500
    subscribers: int = 200
    idle_read_s: float = 5
    stale_rate: float = 5_000  # unlocks/s streaming while staleness is probed
    read_clients: int = 16  # as `wrk -c16`
    online_sockets: int = 10_000  # g. online: player sockets open at once
    online_rate: float = 1_000  # unlocks/s, all for players with a socket open
    online_s: float = 15
    online_reads: float = 500  # HTTP reads/s beside the online phase's unlocks
    seed_sockets: int = 6_000  # i. seed: one node's share of the seeds' load (issue 23)
    seed_rate: float = 20  # unlocks/s for those players, frames of one over one ingest socket
    seed_reads: float = 350  # HTTP reads/s, open loop, from a process of their own
    seed_s: float = 25
    seed_workers: int = 2  # processes holding the player sockets
    progress_sockets: int = 1_000  # j. stats: watched players, a player socket each
    progress_rate: float = 1_000  # stat updates/s for them (issue 25: push p99 < 250 ms at this rate)
    progress_s: float = 15
    order_rounds: int = 4  # j. stats: asc/desc board reads, alternating slices of each order
    order_slice_s: float = 5


FULL = Profile("full", 100_000, (10_000, 100_000, 1_000_000), ingest_s=10, mixed_s=15, push_s=15, growth_s=5)
QUICK = Profile("quick", 10_000, (10_000,), ingest_s=2, mixed_s=4, push_s=4, growth_s=2, subscribers=100,
                idle_read_s=3, online_sockets=2_000, online_s=5, seed_s=10, progress_sockets=200, progress_s=5,
                order_slice_s=1.5)
OVERLOAD_WITHOUT_INGEST = 20_000  # unlocks/s offered by the overload phase when the ingest phase did not run
PHASES = ("idle", "ingest", "mixed", "push", "staleness", "seed", "online", "stats", "overload", "growth")
# The letters of the rows' labels ("a. ingest", ..., "j. stats"): `--phases j` is `--phases stats`.
LETTERS = {"a": "ingest", "b": "mixed", "c": "push", "d": "growth", "e": "idle", "f": "staleness", "g": "online",
           "h": "overload", "i": "seed", "j": "stats"}
PROGRESS_GRACE_S = 2.0  # j. stats: how long after the last update a push may still arrive


@dataclass
class Row:
    system: str
    phase: str
    players: int
    rate: float
    unit: str
    p50: float
    p95: float
    p99: float
    cpu: float
    loadgen: float
    note: str = ""


def row(system: str, phase: str, players: int, out: Outcome, cpu: CpuMeter, unit: str, note: str = "",
        latencies: list[float] | None = None) -> Row:
    p50, p95, p99 = percentiles(out.latencies_ms if latencies is None else latencies)
    extra = ", ".join(f"{k} {v}" for k, v in sorted(out.other.items()))
    return Row(system, phase, players, out.rate, unit, p50, p95, p99, cpu.machine_pct, cpu.loadgen_pct,
               "; ".join(x for x in (note, extra and f"other acks: {extra}") if x))


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# ---- phases ------------------------------------------------------------------------

async def ingest_phase(system: System, mode: str, label: str, players: int, seconds: float, work: Batches,
                       session: Any, levels: list[Level] | None = None, on_ack: OnAck | None = None,
                       what: str = "unlocks") -> Row:
    best: tuple[Outcome, CpuMeter, Level] | None = None
    for level in levels or system.modes[mode]:
        async with system.writers(mode, session, level.connections) as writers:
            with CpuMeter() as cpu:
                lanes = writers if mode == "ws" else writers * level.connections  # HTTP: one lane per client
                out = await closed_loop(lanes, level.in_flight, level.batch, seconds, work, on_ack)
        say(f"  {label} ingest of {what} [{level.label}]: {out.rate:,.0f}/s, "
            f"p50 {percentiles(out.latencies_ms)[0]:.1f} ms")
        if best is None or out.rate > best[0].rate:
            best = (out, cpu, level)
    assert best is not None
    per = "request" if best[2].batch == 1 else str(best[2].batch)
    return row(label, "a. ingest", players, best[0], best[1], f"{what}/s; latency per {per}", note=best[2].label)


async def idle_read_phase(system: System, label: str, profile: Profile, work: Workload, session: Any) -> list[Row]:
    """Rank reads on an idle cluster, closed loop: over HTTP for every system;
    for Podium also as query frames over ingest sockets (read_clients per socket)."""
    async def http_read(i: int) -> bool:
        try:
            async with session.get(system.base + system.paths.rank(first_game(i), player_id(i))) as r:
                await r.read()
                return r.status == 200
        except aiohttp.ClientError:
            return False

    with CpuMeter() as cpu:
        out = await closed_reads(http_read, profile.read_clients, profile.idle_read_s, work)
    say(f"  {system.name} idle rank reads, HTTP x{profile.read_clients}: {out.rate:,.0f}/s")
    rows = [row(system.name, "e. idle reads: rank, HTTP", work.players, out, cpu, "reads/s",
                note=f"{profile.read_clients} clients, closed loop")]
    if isinstance(system, Podium):
        async with system.writers("ws", session, SOCKETS) as sockets:
            turn = itertools.count()

            async def socket_read(i: int) -> bool:
                return await sockets[next(turn) % len(sockets)].query(
                    {"q": "rank", "game_id": first_game(i), "player_id": player_id(i)})

            with CpuMeter() as cpu:
                out = await closed_reads(socket_read, profile.read_clients * SOCKETS, profile.idle_read_s, work)
        say(f"  {system.name} idle rank reads, socket {SOCKETS}x{profile.read_clients}: {out.rate:,.0f}/s")
        rows.append(row(system.name, "e. idle reads: rank, socket", work.players, out, cpu, "reads/s",
                        note=f"{SOCKETS} sockets x {profile.read_clients} queries in flight"))
    return rows


async def mixed_phase(system: System, mode: str, label: str, profile: Profile, work: Workload,
                      session: Any) -> list[Row]:
    batch = 1 if mode == "post" else 100
    async with system.writers(mode, session, 2) as writers:
        with CpuMeter() as cpu:
            writes, (reads, by_kind) = await asyncio.gather(
                paced_writes(writers, profile.mixed_rate, batch, profile.mixed_s, work, cap=64),
                paced_reads(session, system.base, system.paths, profile.read_rate, profile.mixed_s, work, first_game,
                            player_id))
    p = work.players
    rows = [row(label, "b. mixed: writes", p, writes, cpu, f"unlocks/s (offered {profile.mixed_rate:,.0f})",
                note=f"{batch} per request"),
            row(label, "b. mixed: all reads", p, reads, cpu, f"reads/s (offered {profile.read_rate:,.0f})")]
    rows += [row(label, f"b. mixed: {kind} reads", p, reads, cpu, "ms", latencies=lat) for kind, lat in by_kind.items()]
    for r in rows[2:]:
        r.rate = float("nan")
    return rows


async def push_phase(system: Podium, profile: Profile, work: Workload, session: Any) -> list[Row]:
    """Subscribers are players of middling activity (ranks 100.. by Zipf), so they
    unlock often enough to be measured and sit mid-board where ranks move."""
    subs = [player_id(i) for i in range(100, 100 + profile.subscribers)]
    newest: dict[tuple[str, str], list[float]] = {}  # (player, game) -> [sent, acked or 0]
    from_ack: list[float] = []
    from_send: list[float] = []
    wanted = set(subs)

    def on_ack(items: Items, statuses: list[str], sent: float, acked: float) -> None:
        for item, status in zip(items, statuses, strict=True):
            if status == "accepted" and item["player_id"] in wanted:
                newest[(item["player_id"], item["game_id"])] = [sent, acked]

    async def listen(ws: Any, player: str) -> None:
        async for message in ws:
            now = time.perf_counter()
            frame = orjson.loads(message)
            for event in frame["events"] if frame.get("type") == "update" else [frame]:
                if event.get("type") != "rank.changed" or event["board"] != "global" or event["game_id"] == "_all":
                    continue
                times = newest.pop((player, event["game_id"]), None)
                if times is not None:
                    from_send.append((now - times[0]) * 1000)
                    from_ack.append(max(0.0, now - times[1]) * 1000)

    sockets = [await websockets.connect(f"{system.ws_url}/v1/ws/players/{p}?token={system.token(p)}") for p in subs]
    for ws in sockets:
        await ws.recv()  # subscribed
    await asyncio.sleep(1.0)  # presence reaches every actor
    listeners = [asyncio.ensure_future(listen(ws, p)) for ws, p in zip(sockets, subs, strict=True)]
    try:
        async with system.writers("ws", session, 2) as writers:
            with CpuMeter() as cpu:
                writes = await paced_writes(writers, profile.push_rate, 100, profile.push_s, work, cap=64,
                                            on_ack=on_ack)
                await asyncio.sleep(1.0)
    finally:
        for task in listeners:
            task.cancel()
        for ws in sockets:
            await ws.close()
    out = Outcome(seconds=writes.seconds, accepted=len(from_ack), latencies_ms=from_ack)
    p = work.players
    return [row(f"{system.name} (ws)", "c. push: ack -> rank.changed", p, out, cpu, "pushes/s measured",
                note=f"{profile.subscribers} subscribers, writes {writes.rate:,.0f}/s"),
            row(f"{system.name} (ws)", "c. push: send -> rank.changed", p, Outcome(writes.seconds, len(from_send), {},
                                                                          from_send), cpu, "pushes/s measured")]


async def staleness_phase(system: Podium, profile: Profile, work: Workload, session: Any) -> list[Row]:
    """Ack -> visible: while `stale_rate` unlocks/s stream, a prober unlocks a
    brand-new player and polls the player's rank over a socket (every 2 ms)
    until it shows; the time from the `accepted` ack to that read is one sample."""
    lags: list[float] = []
    stop = asyncio.Event()
    run = uuid.uuid4().hex[:6]

    async def probe(sock: Any) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            pid, game = f"stale-{run}-{n}", game_id(0)
            if await sock.send([{"player_id": pid, "game_id": game, "achievement_id": achievement_id(0)}]) \
                    != ["accepted"]:
                continue
            acked = time.perf_counter()
            while not await sock.query({"q": "rank", "game_id": game, "player_id": pid}):
                if time.perf_counter() - acked > 10:
                    break  # counted as missing: the sample count shows it
                await asyncio.sleep(0.002)
            else:
                lags.append((time.perf_counter() - acked) * 1000)
            await asyncio.sleep(0.02)

    async with system.writers("ws", session, 3) as writers:
        with CpuMeter() as cpu:
            prober = asyncio.ensure_future(probe(writers[2]))
            writes = await paced_writes(writers[:2], profile.stale_rate, 100, profile.push_s, work, cap=64)
            stop.set()
            await prober
    say(f"  {system.name} staleness at {writes.rate:,.0f} unlocks/s: p50 {percentiles(lags)[0]:.1f} ms "
        f"over {len(lags)} probes")
    out = Outcome(seconds=writes.seconds, accepted=len(lags), latencies_ms=lags)
    return [row(f"{system.name} (ws)", "f. staleness: ack -> visible in a rank read", work.players, out, cpu,
                "probes/s", note=f"writes {writes.rate:,.0f}/s (offered {profile.stale_rate:,.0f})")]


async def replica_health(session: Any, url: str) -> dict[str, Any]:
    """The gateway replica's part of /v1/health (RSS, loop lag); {} if it did not answer in time."""
    for _ in range(3):
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                body = await r.json(content_type=None)
                if isinstance(body, dict) and "replica" in body:
                    return dict(body["replica"])
                say(f"  /v1/health answered {r.status}: {str(body)[:200]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            say(f"  /v1/health failed: {exc!r}")
        await asyncio.sleep(1.0)
    return {}


async def seed_phase(system: Podium, profile: Profile, work: Workload, session: Any) -> list[Row]:
    """One node's share of the seeds' load (issue 23): `seed_sockets` player
    sockets held by `seed_workers` processes, `seed_rate` unlocks/s for those
    players in frames of one over one ingest socket (this process), and
    `seed_reads` HTTP reads/s open loop from a process of their own. Every
    latency counts from the scheduled time of its frame or request: an ack,
    the `unlock.accepted` in the player's `update` frame (push), a read's
    response. Each client process reports its own loop lag (note)."""
    from load.seed import GRACE_S, Worker, spread

    watched = range(1_000, 1_000 + profile.seed_sockets)  # preloaded players, mid-board
    health = f"{system.base}/v1/ws/health"
    rss_before = (await replica_health(session, health)).get("rss_mib", float("nan"))
    index = {player_id(i): i for i in watched}
    pairs = [[p, system.token(p)] for p in index]
    acks = Outcome()
    sent: dict[tuple[str, str, str], float] = {}
    async with system.writers("ws", session, 1) as (writer,):  # first: it counts against the socket limit too
        t_open = time.perf_counter()
        workers = [await Worker.spawn("sockets", {"ws_url": system.ws_url, "players": part})
                   for part in spread(pairs, profile.seed_workers)]
        reader = await Worker.spawn("reads", {"base": system.base, "rate": profile.seed_reads,
                                              "players": work.players})
        try:
            ready = [await w.line(600) for w in workers]
            await reader.line(60)
            online = [index[p] for r in ready for p in r["online"]]
            refused = sum(r["refused"] for r in ready)
            say(f"  {system.name} seed: {len(online):,} sockets open in {time.perf_counter() - t_open:.1f}s "
                f"({profile.seed_workers} processes), {refused} refused")
            await asyncio.sleep(2.0)  # presence reaches every actor
            rss_after = (await replica_health(session, health)).get("rss_mib", float("nan"))
            t0 = time.monotonic() + 1.0
            for w in (*workers, reader):
                w.send({"t0": t0, "seconds": profile.seed_s})
                assert w.proc.stdin is not None
                await w.proc.stdin.drain()

            async def one(due: float) -> None:
                item = None
                while item is None:
                    item = work.next_for(work.rng.choice(online))
                sent[(item["player_id"], item["game_id"], item["achievement_id"])] = due
                statuses = await writer.send([item])
                acks.latencies_ms.append((time.monotonic() - due) * 1000)
                acks.count(statuses)

            tasks: set[asyncio.Task[None]] = set()
            with CpuMeter() as cpu:
                n = 0
                await asyncio.sleep(max(0.0, t0 - time.monotonic()))
                while (due := t0 + n / profile.seed_rate) < t0 + profile.seed_s:
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    task = asyncio.ensure_future(one(due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    n += 1
                await asyncio.gather(*tasks)
                acks.seconds = profile.seed_s
                done = [await w.line(profile.seed_s + GRACE_S + 120) for w in workers]
                reads = await reader.line(GRACE_S + 120)
            loop = {"p99_ms": float("nan"), "max_ms": float("nan"), "stalls": "?", "gc_ms": float("nan"),
                    "gc_max_ms": float("nan"), "window_s": float("nan"),
                    **(await replica_health(session, health)).get("loop", {})}
        finally:
            for w in (*workers, reader):
                await w.finish()
    pushed = []
    for d in done:
        for player, game, achievement, at in d["receipts"]:
            due_at = sent.pop((player, game, achievement), None)
            if due_at is not None:
                pushed.append((at - due_at) * 1000)
    read_lat = [ms for lat in reads["by_kind"].values() for ms in lat]
    read_out = Outcome(profile.seed_s, reads["statuses"].get("200", 0),
                       {f"http_{k}": v for k, v in reads["statuses"].items() if k != "200"}, read_lat)
    if reads["skipped"]:
        read_out.other["skipped (client cap)"] = reads["skipped"]
    lags = [d["lag"] for d in done] + [reads["lag"]]
    client = f"client loop lag max {max(x['max_ms'] for x in lags):.0f} ms (p99 {max(x['p99_ms'] for x in lags):.0f})"
    server = (f"replica loop lag p99 {loop['p99_ms']:.0f} / max {loop['max_ms']:.0f} ms, {loop['stalls']} stalls, "
              f"GC passes >= 1 ms {loop['gc_ms']:.0f} ms in all (longest {loop['gc_max_ms']:.0f}) in the last "
              f"{loop['window_s']:.0f} s")
    dropped = sum(d["dropped"] for d in done)
    per_socket_kib = (rss_after - rss_before) * 1024 / max(1, len(online))
    say(f"  {system.name} seed: ack p99 {percentiles(acks.latencies_ms)[2]:.0f} ms, push p99 "
        f"{percentiles(pushed)[2]:.0f} ms, read p99 {percentiles(read_lat)[2]:.0f} ms; {len(sent)} pushes missing, "
        f"{dropped} dropped; {client}; {server}")
    p = work.players
    label = f"{system.name} (ws)"
    return [row(label, "i. seed: acks", p, acks, cpu, f"unlocks/s (offered {profile.seed_rate:,.0f}); latency per "
                "frame of 1, from its scheduled send", note=f"1 ingest socket; {server}"),
            row(label, "i. seed: send -> push", p, Outcome(acks.seconds, len(pushed), {}, pushed), cpu,
                "pushes/s; from the frame's scheduled send",
                note=f"{len(online):,} sockets in {profile.seed_workers} processes ({refused} refused, {dropped} "
                     f"dropped), replica RSS +{per_socket_kib:.1f} KiB per socket; {len(sent)} pushes not seen "
                     f"within {GRACE_S:g} s"),
            row(label, "i. seed: reads", p, read_out, cpu, f"reads/s (offered {profile.seed_reads:,.0f}); from the "
                "scheduled time", note=f"a process of its own; rank / top 50 / around-me 2:1:1; {client}")]


async def online_phase(system: Podium, profile: Profile, work: Workload, session: Any) -> list[Row]:
    """Many players online: `online_sockets` player sockets open, `online_rate`
    unlocks/s all for those players (frames of 10 over 2 ingest sockets) plus
    `online_reads` reads/s over HTTP (none if 0). A push sample is one unlock: from the send of its
    frame to the `unlock.accepted` in its player's `update` frame."""
    watched = list(range(1_000, 1_000 + profile.online_sockets))  # preloaded players, mid-board
    health = f"{system.base}/v1/ws/health"  # a socket plane replica: its RSS grows with the sockets
    async with session.get(health) as r:
        rss_before = (await r.json())["replica"]["rss_mib"]
    sent: dict[tuple[str, str, str], float] = {}
    pushed: list[float] = []
    dropped = refused = 0

    async def open_one(i: int) -> Any:
        nonlocal refused
        try:
            ws = await websockets.connect(f"{system.ws_url}/v1/ws/players/{player_id(i)}?"
                                          f"token={system.token(player_id(i))}", open_timeout=60)
            await ws.recv()  # subscribed
            return ws
        except (websockets.InvalidStatus, OSError, TimeoutError):
            refused += 1
            return None

    async def listen(ws: Any, player: str) -> None:
        nonlocal dropped
        try:
            async for message in ws:
                now = time.perf_counter()
                for event in orjson.loads(message).get("events", ()):
                    if event["type"] == "unlock.accepted":
                        at = sent.pop((player, event["game_id"], event["achievement_id"]), None)
                        if at is not None:
                            pushed.append((now - at) * 1000)
        except websockets.ConnectionClosed:
            dropped += 1

    acks = Outcome()
    turn = iter(range(1 << 62))
    # The ingest sockets first: they count against the replica's socket limit too.
    async with system.writers("ws", session, 2) as writers:
        t0 = time.perf_counter()
        sockets: list[Any] = []
        for start in range(0, len(watched), 200):  # 200 handshakes at a time
            sockets += await asyncio.gather(*(open_one(i) for i in watched[start:start + 200]))
        opened = [(ws, player_id(i)) for ws, i in zip(sockets, watched, strict=True) if ws is not None]
        online = [i for ws, i in zip(sockets, watched, strict=True) if ws is not None]  # unlocks go to these
        say(f"  {system.name} online: {len(opened):,} sockets open in {time.perf_counter() - t0:.1f}s, "
            f"{refused} refused")
        await asyncio.sleep(2.0)  # presence reaches every actor
        async with session.get(health) as r:
            rss_after = (await r.json())["replica"]["rss_mib"]
        listeners = [asyncio.ensure_future(listen(ws, p)) for ws, p in opened]

        async def one() -> None:
            items = [item for item in (work.next_for(work.rng.choice(online)) for _ in range(10)) if item]
            at = time.perf_counter()
            for item in items:
                sent[(item["player_id"], item["game_id"], item["achievement_id"])] = at
            await timed_send(writers[next(turn) % len(writers)], items, acks, None)

        try:
            with CpuMeter() as cpu:
                began = time.perf_counter()
                _, (reads, _) = await asyncio.gather(
                    paced(profile.online_rate / 10, profile.online_s, one, cap=64), no_reads() if not
                    profile.online_reads else paced_reads(session, system.base, system.paths, profile.online_reads,
                                                          profile.online_s, work, first_game, player_id))
                acks.seconds = time.perf_counter() - began
                await asyncio.sleep(2.0)  # the last pushes
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws, _ in opened), return_exceptions=True)
    per_socket_kib = (rss_after - rss_before) * 1024 / max(1, len(opened))
    lost = len(sent)
    say(f"  {system.name} online: push p99 {percentiles(pushed)[2]:.0f} ms, {lost} pushes missing, "
        f"{dropped} sockets dropped, {per_socket_kib:.1f} KiB per socket")
    note = (f"{len(opened):,} sockets ({refused} refused, {dropped} dropped), replica RSS +{per_socket_kib:.1f} KiB "
            f"per socket")
    p = work.players
    label = f"{system.name} (ws)"
    rows = [row(label, "g. online: send -> push", p, Outcome(acks.seconds, len(pushed), {}, pushed), cpu,
                "pushes/s", note=f"{note}; {lost} pushes not seen within 2 s"),
            row(label, "g. online: acks", p, acks, cpu, f"unlocks/s (offered {profile.online_rate:,.0f}); "
                "latency per 10", note="2 ingest sockets")]
    if profile.online_reads:
        rows.append(row(label, "g. online: reads", p, reads, cpu, f"reads/s (offered {profile.online_reads:,.0f})"))
    return rows


async def no_reads() -> tuple[Outcome, dict[str, list[float]]]:
    return Outcome(), {}


async def overload_phase(system: Podium, profile: Profile, work: Workload, session: Any, sustained: float) -> Row:
    """Twice what the cluster sustains (the ingest phase's best), paced in frames
    of 100 over 4 sockets: acks should stay bounded, the excess answered
    `overloaded` at once, and every unlock answered one way or the other."""
    rate = 2 * sustained
    out = Outcome()
    sent = 0
    turn = iter(range(1 << 62))
    async with system.writers("ws", session, 4) as writers:
        async def one() -> None:
            nonlocal sent
            items = work.batch(100)
            sent += len(items)
            await timed_send(writers[next(turn) % len(writers)], items, out, None)

        with CpuMeter() as cpu:
            began = time.perf_counter()
            await paced(rate / 100, profile.push_s, one, cap=512)
            out.seconds = time.perf_counter() - began
    answered = out.accepted + sum(out.other.values())
    shed = out.other.get("rejected", 0)
    say(f"  {system.name} overload at {rate:,.0f}/s offered: {out.rate:,.0f}/s accepted, {shed:,} shed, "
        f"ack p99 {percentiles(out.latencies_ms)[2]:.0f} ms, {sent - answered} unanswered")
    return row(f"{system.name} (ws)", "h. overload: 2x sustained", work.players, out, cpu,
               f"unlocks/s accepted (offered {rate:,.0f}); latency per 100",
               note=f"{shed:,} answered overloaded, {sent - answered} unanswered of {sent:,}")


async def growth_phase(system: System, mode: str, label: str, profile: Profile, work: Workload,
                       session: Any) -> list[Row]:
    top = system.modes[mode][-1]
    ingest = await ingest_phase(system, mode, label, work.players, profile.growth_s, work, session, [top])
    ingest.phase = "d. growth: ingest"
    with CpuMeter() as cpu:
        reads, _ = await paced_reads(session, system.base, system.paths, 200, profile.growth_s, work, first_game,
                                     player_id)
    return [ingest, row(label, "d. growth: reads (200/s, idle)", work.players, reads, cpu, "reads/s")]


async def stats_phase(system: Podium, profile: Profile, work: Workload, session: Any) -> list[Row]:
    """Issue 25's targets, three runs. (1) Ingest: an unlock run, then a stat
    update run of the same shape (phase a's sockets, frames and in flight;
    `incr wins 1` for Zipf-picked players, so the most active cross the
    `wins` threshold and their unlocks are journaled with the updates); the
    threshold unlocks and the journaled updates are then counted in
    PostgreSQL. (2) Progress pushes: `progress_sockets` watched players with a
    socket open, `progress_rate` updates/s for them; a sample is one update,
    from its frame's scheduled send to the `progress` push that shows its
    value. (3) Reads of an `asc` and a `desc` board of the same stat, closed
    loop, in alternating slices."""
    label = label_of(system)
    p = work.players
    unlocks = await ingest_phase(system, "ws", label, p, profile.ingest_s, work, session)
    unlocks.phase = "j. stats: unlock ingest"
    accepted_by: Counter[str] = Counter()

    def on_ack(items: Items, statuses: list[str], sent: float, acked: float) -> None:
        for item, status in zip(items, statuses, strict=True):
            if status == "accepted":
                accepted_by[item["player_id"]] += 1

    stream = StatStream(work, uuid.uuid4().hex[:6])
    updates = await ingest_phase(system, "ws", label, p, profile.ingest_s, stream, session, on_ack=on_ack,
                                 what="stat updates")
    updates.phase = "j. stats: stat update ingest"
    journaled, crossed = await stat_counts(system)
    due = sum(1 for n in accepted_by.values() if n >= WINS_AT_LEAST)
    accepted = sum(accepted_by.values())
    say(f"  {label} stat ingest: {crossed:,} threshold unlocks journaled ({due:,} players reached "
        f"{WINS_AT_LEAST}), {journaled:,} updates journaled of {accepted:,} accepted")
    updates.note += (f"; {crossed:,} threshold unlocks journaled ({due:,} players reached {WINS_AT_LEAST} "
                     f"accepted wins over both levels); {journaled:,} updates journaled of {accepted:,} accepted")
    rows = [unlocks, updates, *await progress_run(system, profile, session, p)]
    return rows + await board_order_reads(system, profile, session, p, sorted(accepted_by))


async def stat_counts(system: Podium) -> tuple[int, int]:
    """(stat updates of `wins` journaled, threshold unlocks journaled), from PostgreSQL."""
    conn = await asyncpg.connect(system.settings.database_url, timeout=30)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM stat_updates WHERE game_id = $1 AND stat_id = $2), "
            "(SELECT count(*) FROM unlocks WHERE game_id = $1 AND achievement_id = $3)",
            STAT_GAME, WINS, WINS_ACHIEVEMENT, timeout=60)
    finally:
        await conn.close()
    assert row is not None
    return int(row[0]), int(row[1])


async def progress_run(system: Podium, profile: Profile, session: Any, players: int) -> list[Row]:
    """`set level` updates (each a new value) round-robin over the watched
    players, in frames of 10 paced from explicit scheduled times over 2 ingest
    sockets. A `progress` push with value v settles every update of that
    player with a value <= v (pushes of one window are merged)."""
    watched = [player_id(i) for i in range(2_000, 2_000 + profile.progress_sockets)]  # preloaded, mid-board
    pending: dict[str, deque[tuple[int, float]]] = {p: deque() for p in watched}  # (value, scheduled send)
    values = dict.fromkeys(watched, 0)
    pushed: list[float] = []
    acks = Outcome()
    refused = dropped = 0
    run = uuid.uuid4().hex[:6]

    async def open_one(player: str) -> Any:
        nonlocal refused
        try:
            ws = await websockets.connect(f"{system.ws_url}/v1/ws/players/{player}?token={system.token(player)}",
                                          open_timeout=60)
            await ws.recv()  # subscribed
            return ws
        except (websockets.InvalidStatus, OSError, TimeoutError):
            refused += 1
            return None

    async def listen(ws: Any, player: str) -> None:
        nonlocal dropped
        try:
            async for message in ws:
                now = time.monotonic()
                for event in orjson.loads(message).get("events", ()):
                    if event["type"] == "progress" and event["stat_id"] == LEVEL:
                        queue = pending[player]
                        while queue and queue[0][0] <= event["value"]:
                            pushed.append((now - queue.popleft()[1]) * 1000)
        except websockets.ConnectionClosed:
            dropped += 1

    async with system.writers("ws", session, 2) as writers:  # first: they count against the socket limit too
        sockets: list[Any] = []
        for start in range(0, len(watched), 200):  # 200 handshakes at a time
            sockets += await asyncio.gather(*(open_one(pl) for pl in watched[start:start + 200]))
        opened = [(ws, pl) for ws, pl in zip(sockets, watched, strict=True) if ws is not None]
        online = [pl for _, pl in opened]
        random.Random(7).shuffle(online)
        turn = itertools.cycle(online)  # round robin: a player's updates are 1 / (rate / sockets) s apart
        await asyncio.sleep(2.0)  # presence reaches every actor
        listeners = [asyncio.ensure_future(listen(ws, pl)) for ws, pl in opened]
        limit = asyncio.Semaphore(256)  # frames in flight; a late one still counts from its scheduled time

        async def one(n: int, due: float) -> None:
            try:
                items = []
                for _ in range(10):
                    pl = next(turn)
                    value = values[pl] = values[pl] + 1
                    pending[pl].append((value, due))
                    items.append({"kind": "stat", "player_id": pl, "game_id": STAT_GAME, "stat_id": LEVEL,
                                  "op": "set", "value": value, "event_id": f"l-{run}-{value}"})
                statuses = await writers[n % len(writers)].send(items)
                acks.latencies_ms.append((time.monotonic() - due) * 1000)
                acks.count(statuses)
            finally:
                limit.release()

        try:
            with CpuMeter() as cpu:
                frames = profile.progress_rate / 10
                t0 = time.monotonic() + 0.2
                tasks: set[asyncio.Task[None]] = set()
                n = 0
                while (due := t0 + n / frames) < t0 + profile.progress_s:
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    await limit.acquire()
                    task = asyncio.ensure_future(one(n, due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    n += 1
                await asyncio.gather(*tasks)
                acks.seconds = profile.progress_s
                await asyncio.sleep(PROGRESS_GRACE_S)  # the last pushes
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws, _ in opened), return_exceptions=True)
    missing = sum(len(q) for q in pending.values())
    short = {p: len(q) for p, q in pending.items() if q}  # players with updates no push settled
    never = sum(1 for p in short if short[p] == values[p])  # ... of which none of theirs was pushed
    not_accepted = sum(acks.other.values())
    say(f"  {label_of(system)} progress: push p50/p99 {percentiles(pushed)[0]:.0f}/{percentiles(pushed)[2]:.0f} ms "
        f"over {len(pushed):,}, {missing} pushes missing ({len(short)} players, {never} of them never pushed), "
        f"{not_accepted} updates not accepted, {dropped} dropped")
    note = (f"{len(opened):,} watched players' sockets ({refused} refused, {dropped} dropped); {missing:,} updates "
            f"with no push within {PROGRESS_GRACE_S:g} s (of them {not_accepted:,} not accepted)")
    return [row(label_of(system), "j. stats: send -> progress push", players,
                Outcome(acks.seconds, len(pushed), {}, pushed), cpu, "pushes/s; from the update's scheduled send",
                note=note),
            row(label_of(system), "j. stats: progress update acks", players, acks, cpu,
                f"stat updates/s (offered {profile.progress_rate:,.0f}); latency per 10, from its scheduled send",
                note="2 ingest sockets")]


def label_of(system: System) -> str:
    return f"{system.name} (ws)"


async def board_order_reads(system: Podium, profile: Profile, session: Any, population: int,
                            players: list[str]) -> list[Row]:
    """The `asc` and the `desc` board of `wins` (the same values), read over
    HTTP by `read_clients` closed-loop clients in alternating slices (desc
    first in one round, asc first in the next), each client cycling top page
    (50), around-me (k=5) and rank of a player with a value."""
    kinds = ("top", "around", "rank")
    outs = {order: Outcome() for order in BOARDS}
    by_kind: dict[str, dict[str, list[float]]] = {order: {k: [] for k in kinds} for order in BOARDS}
    busy: dict[str, list[tuple[float, float]]] = {order: [] for order in BOARDS}  # (machine %, load gen %)
    rng = random.Random(11)
    game = f"{system.base}/v1/games/{STAT_GAME}"

    async def lane(order: str, deadline: float, first: int) -> None:
        board = BOARDS[order]
        for n in itertools.count(first):
            if time.perf_counter() >= deadline:
                return
            kind, player = kinds[n % len(kinds)], rng.choice(players)
            url = (f"{game}/leaderboard?board={board}&limit=50" if kind == "top" else
                   f"{game}/players/{player}/around?board={board}&k=5" if kind == "around" else
                   f"{game}/players/{player}/rank?board={board}")
            t0 = time.perf_counter()
            try:
                async with session.get(url) as r:
                    await r.read()
                    status = r.status
            except aiohttp.ClientError:
                status = 0
            ms = (time.perf_counter() - t0) * 1000
            outs[order].latencies_ms.append(ms)
            by_kind[order][kind].append(ms)
            outs[order].count(["accepted" if status == 200 else f"http_{status}"])

    if not players:
        return []
    for r in range(profile.order_rounds):
        for order in ("desc", "asc") if r % 2 == 0 else ("asc", "desc"):
            with CpuMeter() as cpu:
                began = time.perf_counter()
                await asyncio.gather(*(lane(order, began + profile.order_slice_s, i)
                                       for i in range(profile.read_clients)))
                outs[order].seconds += time.perf_counter() - began
            busy[order].append((cpu.machine_pct, cpu.loadgen_pct))
    rows = []
    for order, out in outs.items():
        p50, p95, p99 = percentiles(out.latencies_ms)
        kind_ms = ", ".join(f"{k} p50/p99 {percentiles(v)[0]:.1f}/{percentiles(v)[2]:.1f}"
                            for k, v in by_kind[order].items())
        extra = ", ".join(f"{k} {v}" for k, v in sorted(out.other.items()))
        say(f"  {system.name} {order} board reads: {out.rate:,.0f}/s, p50 {p50:.1f} ms ({kind_ms})")
        rows.append(Row(system.name, f"j. stats: reads, {order} board", population, out.rate, "reads/s",
                        p50, p95, p99, statistics.fmean(c for c, _ in busy[order]),
                        statistics.fmean(g for _, g in busy[order]),
                        f"{len(players):,} players on the board; {profile.read_clients} clients, closed loop, "
                        f"{profile.order_rounds} alternating slices of {profile.order_slice_s:g} s; {kind_ms}"
                        + (f"; other answers: {extra}" if extra else "")))
    return rows


# ---- one system --------------------------------------------------------------------

async def exercise(system: System, profile: Profile, phases: tuple[str, ...] = PHASES) -> list[Row]:
    rows: list[Row] = []
    work = Workload()
    main_mode = "ws" if isinstance(system, Podium) else ("batch" if "batch" in system.modes else "post")
    label = {"ws": f"{system.name} (ws)", "batch": f"{system.name} (batch)", "post": f"{system.name} (per request)"}
    sizes = {*profile.growth, profile.main_players} if "growth" in phases else {profile.main_players}
    async with http_session() as session:
        for size in sorted(sizes):
            t0 = time.perf_counter()
            await system.preload(work.grow(size))
            await asyncio.sleep(2.0)  # let boards and checkpoints settle
            say(f"{system.name}: {size:,} players preloaded in {time.perf_counter() - t0:.1f}s")
            if size == profile.main_players:
                if "idle" in phases:
                    rows += await idle_read_phase(system, label[main_mode], profile, work, session)
                if "ingest" in phases:
                    for mode in system.modes:
                        rows.append(await ingest_phase(system, mode, label[mode], size, profile.ingest_s, work,
                                                       session))
                if "mixed" in phases:
                    rows += await mixed_phase(system, main_mode, label[main_mode], profile, work, session)
                if isinstance(system, Podium):
                    if "push" in phases:
                        rows += await push_phase(system, profile, work, session)
                    if "staleness" in phases:
                        rows += await staleness_phase(system, profile, work, session)
                    if "seed" in phases:
                        rows += await seed_phase(system, profile, work, session)
                    if "online" in phases:
                        rows += await online_phase(system, profile, work, session)
                    if "stats" in phases:
                        rows += await stats_phase(system, profile, work, session)
                    if "overload" in phases:
                        best = [r.rate for r in rows if r.phase == "a. ingest" and r.system == label["ws"]]
                        sustained = max(best) if best else OVERLOAD_WITHOUT_INGEST / 2
                        rows.append(await overload_phase(system, profile, work, session, sustained))
            if size in profile.growth and "growth" in phases:
                rows += await growth_phase(system, main_mode, label[main_mode], profile, work, session)
    return rows


def run_system(system: System, profile: Profile, infra: Infra, phases: tuple[str, ...] = PHASES) -> list[Row]:
    say(f"starting {system.name}")
    system.start(infra)
    try:
        return asyncio.run(exercise(system, profile, phases))
    finally:
        system.stop()
        say(f"stopped {system.name}")


# ---- report -----------------------------------------------------------------------

def fmt(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:,.{digits}f}"  # NaN -> "-"


def table(rows: list[Row]) -> str:
    lines = ["| system | phase | players | throughput | unit | p50 ms | p95 ms | p99 ms | CPU % (2 cores) "
             "| load gen CPU % | note |", "|" + " --- |" * 11]
    for r in rows:
        lines.append(f"| {r.system} | {r.phase} | {r.players:,} | {fmt(r.rate, 0)} | {r.unit} | {fmt(r.p50)} | "
                     f"{fmt(r.p95)} | {fmt(r.p99)} | {fmt(r.cpu, 0)} | {fmt(r.loadgen, 0)} | {r.note} |")
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    ingest = {r.system: r.rate for r in rows if r.phase == "a. ingest"}
    podium = ingest.get("podium (ws)")
    out = [] if not podium else [
        f"- podium (ws) / {name}: **{podium / rate:,.1f}x** ({podium:,.0f} vs {rate:,.0f} durable unlocks/s)"
        for name, rate in ingest.items() if name != "podium (ws)" and rate > 0]
    reads = {(r.system, r.phase): r.rate for r in rows if r.phase.startswith("e. idle reads")}
    peer = reads.get(("zset", "e. idle reads: rank, HTTP"))
    for phase in ("e. idle reads: rank, HTTP", "e. idle reads: rank, socket"):
        mine = reads.get(("podium", phase))
        if mine and peer:
            how = phase.rsplit(", ", 1)[1]
            out.append(f"- podium rank reads over {how} / zset over HTTP: **{mine / peer:,.2f}x** "
                       f"({mine:,.0f} vs {peer:,.0f} reads/s, idle, closed loop)")
    j = {r.phase: r.rate for r in rows if r.phase.startswith("j. stats")}
    for mine_phase, base_phase, what in [
            ("j. stats: stat update ingest", "j. stats: unlock ingest", "podium stat updates / unlocks, same shape"),
            ("j. stats: reads, asc board", "j. stats: reads, desc board", "podium asc / desc board reads")]:
        if j.get(mine_phase) and j.get(base_phase):
            out.append(f"- {what}: **{j[mine_phase] / j[base_phase]:,.2f}x** ({j[mine_phase]:,.0f} vs "
                       f"{j[base_phase]:,.0f}/s, one after the other in phase j)")
    return out


def plots(rows: list[Row]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    made = []
    for phase, value, ylabel, name in [("d. growth: ingest", "rate", "durable unlocks/s", "bench-growth-ingest.png"),
                                       ("d. growth: ingest", "p99", "ingest p99 per request/frame (ms)",
                                        "bench-growth-ingest-p99.png"),
                                       ("d. growth: reads (200/s, idle)", "p99", "read p99 (ms)",
                                        "bench-growth-read-p99.png")]:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for system in dict.fromkeys(r.system for r in rows if r.phase == phase):
            pts = sorted((r.players, getattr(r, value)) for r in rows if r.phase == phase and r.system == system)
            ax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", label=system)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("players")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(IMAGES / name, dpi=110)
        plt.close(fig)
        made.append(IMAGES / name)
    return made


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def report(rows: list[Row], profile: Profile, command: str, wall_s: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    head = (f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, profile `{profile.name}`, commit "
            f"`{commit.stdout.strip() or '?'}`, {wall_s / 60:.1f} min wall.\n"
            f"Machine: {machine()}.\nCommand: `{command}`\n")
    return "\n".join([head, table(rows), "", "Side by side (ingest: the best level of each):", *ratios(rows)])


def write_docs(text: str, images: list[Path]) -> None:
    body = DOCS.read_text()
    pictures = "\n".join(f"![{p.stem}](img/{p.name})" for p in images)
    block = f"{START}\n{text}\n\n{pictures}\n{END}"
    if START in body:
        before, rest = body.split(START, 1)
        body = before + block + rest.split(END, 1)[1]
    else:
        body += f"\n## Latest side-by-side run (load/bench.py)\n\n{block}\n"
    DOCS.write_text(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the 60-second version")
    ap.add_argument("--systems", default="podium,zset,reference,reviewed")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"the phases to run, of {','.join(PHASES)} or their letters a-j (the preload always runs; "
                         "a partial run does not write docs/benchmarks.md)")
    ap.add_argument("--online-sockets", type=int, help="g. online: player sockets open")
    ap.add_argument("--online-rate", type=float, help="g. online: unlocks/s for those players")
    ap.add_argument("--online-reads", type=float, help="g. online: HTTP reads/s beside them (0: none)")
    ap.add_argument("--seed-seconds", type=float, help="i. seed: seconds of measuring")
    ap.add_argument("--ingest-seconds", type=float, help="a., j.: seconds of each closed-loop ingest level")
    ap.add_argument("--progress-sockets", type=int, help="j. stats: watched players' sockets for progress pushes")
    args = ap.parse_args()
    profile = QUICK if args.quick else FULL
    phases = tuple(LETTERS.get(p.strip(), p.strip()) for p in args.phases.split(",") if p.strip())
    unknown = set(phases) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}; choose from {','.join(PHASES)}")
    overrides = {"online_sockets": args.online_sockets, "online_rate": args.online_rate,
                 "online_reads": args.online_reads, "seed_s": args.seed_seconds,
                 "ingest_s": args.ingest_seconds, "progress_sockets": args.progress_sockets}
    profile = replace(profile, **{k: v for k, v in overrides.items() if v is not None})
    started = time.perf_counter()
    from podium.cluster.embedded import ensure_servers

    data_dir = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    data_dir.chmod(0o755)
    servers = ensure_servers(os.environ.get("PODIUM_DATABASE_URL"), os.environ.get("PODIUM_REDIS_URL"), data_dir)
    assert servers.database_url and servers.redis_url
    infra = Infra(servers.database_url, servers.redis_url, data_dir, uuid.uuid4().hex[:8])
    chosen = args.systems.split(",")
    variants = {"podium": Podium(),
                # Serve's own switch: user code on the replica's main loop, buffered access logs, ...
                "podium-throughput": Podium("podium-throughput", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}),
                # No rate limit checks at all: what the checks (a Redis round trip each) cost, side by side
                "podium-nolimits": Podium("podium-nolimits", settings={
                    "rate_limit_unlocks": "", "rate_limit_reads": "", "rate_limit_player_reads": "",
                    "rate_limit_handshakes": "", "trusted_proxy_hops": 0})}
    systems: list[System] = [v for k, v in variants.items() if k in chosen] + [p for p in peers() if p.name in chosen]
    rows: list[Row] = []
    out = ROOT / "load" / "results"
    out.mkdir(exist_ok=True)
    try:
        for system in systems:
            rows += run_system(system, profile, infra, phases)
            (out / f"{profile.name}-partial.md").write_text(table(rows) + "\n")  # survives a later failure
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    partial = set(phases) != set(PHASES) or any(v is not None for v in overrides.values())
    command = "make bench-quick" if args.quick else "make bench"
    if partial:
        command = "python -m load.bench " + " ".join(sys.argv[1:])
    text = report(rows, profile, command, time.perf_counter() - started)
    print(text)
    name = f"{profile.name}-{'-'.join(phases)}" if partial else profile.name
    (out / f"{name}.md").write_text(text + "\n")
    (out / f"{name}.json").write_bytes(orjson.dumps([r.__dict__ for r in rows], option=orjson.OPT_INDENT_2))
    if not args.quick and not args.no_docs and not partial:
        write_docs(text, plots(rows))


if __name__ == "__main__":
    main()

