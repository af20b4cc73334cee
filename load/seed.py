"""The bench's "seed" phase (load/bench.py): one node's share of the seeds'
load. Player sockets (tokens minted as a login service would) are held by
socket worker processes, open-loop HTTP rank reads come from a read worker
process of its own, and the bench process streams the unlocks over one ingest
socket, paced. Every latency counts from the SCHEDULED time of its frame or
request (time.monotonic: one clock for every process on the machine), so
neither a slow server nor a late client hides a delay; each process reports
its own loop lag, so a client that could not keep its schedule shows.

Workers are `python -m load.seed sockets|reads`: a config line on stdin,
`{"ready": ...}` on stdout once set up, a start line on stdin, then one result
line on stdout."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import websockets

from load.clients import percentiles

LAG_TICK_S = 0.01  # the workers' own loop-lag probe
GRACE_S = 3.0  # pushes and reads still counted after the last scheduled send


class LoopLag:
    """How late a 10 ms timer fires on this process's loop (the client's own lag)."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            self.lags_ms.append(max(0.0, time.monotonic() - due) * 1000)

    def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
        p50, _, p99 = percentiles(self.lags_ms)
        return {"p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "max_ms": round(max(self.lags_ms, default=0.0), 1)}


async def _line() -> dict[str, Any]:
    raw = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not raw:
        raise SystemExit("the bench went away")
    return orjson.loads(raw)


def _say(obj: object) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


async def _until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))


# ---- worker: player sockets ------------------------------------------------------

async def sockets_worker(cfg: dict[str, Any]) -> None:
    """Hold one player socket per (player, token); record when each
    `unlock.accepted` arrives: (player, game, achievement, monotonic time)."""
    receipts: list[tuple[str, str, str, float]] = []
    refused = dropped = 0

    async def open_one(player: str, token: str) -> Any:
        nonlocal refused
        try:
            ws = await websockets.connect(f"{cfg['ws_url']}/v1/ws/players/{player}?token={token}", open_timeout=60,
                                          ping_interval=None, compression=None)
            await ws.recv()  # subscribed
            return ws
        except (websockets.InvalidStatus, OSError, TimeoutError, websockets.ConnectionClosed):
            refused += 1
            return None

    async def listen(ws: Any, player: str) -> None:
        nonlocal dropped
        try:
            async for message in ws:
                now = time.monotonic()
                for event in orjson.loads(message).get("events", ()):
                    if event["type"] == "unlock.accepted":
                        receipts.append((player, event["game_id"], event["achievement_id"], now))
        except websockets.ConnectionClosed:
            dropped += 1

    pairs = cfg["players"]
    opened: list[tuple[Any, str]] = []
    for i in range(0, len(pairs), 200):  # 200 handshakes at a time
        chunk = pairs[i:i + 200]
        got = await asyncio.gather(*(open_one(p, t) for p, t in chunk))
        opened += [(ws, p) for ws, (p, _) in zip(got, chunk, strict=True) if ws is not None]
    listeners = [asyncio.ensure_future(listen(ws, p)) for ws, p in opened]
    _say({"ready": len(opened), "refused": refused, "online": [p for _, p in opened]})
    start = await _line()
    lag = LoopLag()
    await _until(start["t0"])
    lag.start()
    await _until(start["t0"] + start["seconds"] + GRACE_S)
    own = lag.stop()
    _say({"receipts": receipts, "dropped": dropped, "lag": own})
    for task in listeners:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws, _ in opened), return_exceptions=True), 20)


# ---- worker: HTTP reads ----------------------------------------------------------

async def reads_worker(cfg: dict[str, Any]) -> None:
    """`rate` reads/s open loop (half rank, a quarter top page of 50, a quarter
    around-me), each timed from its scheduled time; at most `cap` in flight
    (one not sent for want of room is counted as `skipped`)."""
    import random

    rng = random.Random(cfg.get("seed", 11))
    base, rate, players = cfg["base"], cfg["rate"], cfg["players"]
    kinds = ("rank", "top", "rank", "around")
    by_kind: dict[str, list[float]] = {k: [] for k in kinds}
    statuses: dict[str, int] = {}
    in_flight = skipped = 0

    def url(kind: str) -> str:
        i = rng.randrange(players)
        game, pid = f"g{i % 20:02d}", f"p{i:07d}"  # load/workload.py: first_game, player_id
        if kind == "rank":
            return f"{base}/v1/games/{game}/players/{pid}/rank"
        if kind == "top":
            return f"{base}/v1/games/{game}/leaderboard?limit=50"
        return f"{base}/v1/games/{game}/players/{pid}/around?k=5"

    async def one(session: aiohttp.ClientSession, kind: str, due: float) -> None:
        nonlocal in_flight
        try:
            async with session.get(url(kind)) as r:
                await r.read()
                status = str(r.status)
        except (aiohttp.ClientError, TimeoutError):
            status = "error"
        finally:
            in_flight -= 1
        by_kind[kind].append((time.monotonic() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    connector = aiohttp.TCPConnector(limit=cfg.get("cap", 4096))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(f"{base}/v1/health") as r:  # one connection warm before the clock starts
            await r.read()
        _say({"ready": 1})
        start = await _line()
        t0, seconds = start["t0"], start["seconds"]
        lag = LoopLag()
        await _until(t0)
        lag.start()
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while (due := t0 + n / rate) < t0 + seconds:
            await _until(due)
            while due <= time.monotonic() and due < t0 + seconds:  # all that is due now (a late loop catches up)
                if in_flight >= cfg.get("cap", 4096):
                    skipped += 1
                else:
                    in_flight += 1
                    task = asyncio.ensure_future(one(session, kinds[n % len(kinds)], due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                n += 1
                due = t0 + n / rate
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), GRACE_S + 30)
        _say({"by_kind": by_kind, "statuses": statuses, "scheduled": n, "skipped": skipped, "lag": lag.stop()})


# ---- the bench side ----------------------------------------------------------------

@dataclass
class Worker:
    proc: asyncio.subprocess.Process
    ready: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def spawn(cls, kind: str, cfg: dict[str, Any]) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "load.seed", kind, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 28)
        worker = cls(proc)
        worker.send(cfg)
        return worker

    def send(self, obj: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(obj) + b"\n")

    async def line(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        if not raw:
            raise RuntimeError(f"seed worker {self.proc.pid} exited ({await self.proc.wait()})")
        return orjson.loads(raw)

    async def finish(self) -> None:
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def spread(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def main() -> None:
    kind = sys.argv[1]
    cfg = orjson.loads(sys.stdin.readline())
    worker = {"sockets": sockets_worker, "reads": reads_worker}[kind]
    asyncio.run(worker(cfg))


if __name__ == "__main__":
    main()
