"""How `podium up` stops with 1,000 player sockets open, and how a lone gateway
replica's crash looks to clients, measured on real processes (embedded
PostgreSQL and Redis, Ray, Serve's HAProxy), round after round:

    PYTHONPATH=. .venv/bin/python load/stop_probe.py --rounds 5 --crash-rounds 2,4

Each round starts `podium up` the way tests/integration/test_lifecycle.py does
(a data dir and node ports of its own, one replica, one player shard), waits
for /v1/health 200 and opens --sockets player sockets (--concurrency at a time,
each until its "subscribed" frame). In a crash round it SIGKILLs the replica
(its pid from /v1/ws/health: a socket plane replica), GETs /v1/ws/health every 100 ms until it is 200 again
(every other answer should be 503 + Retry-After + problem+json; the rest are
counted as `bad`) and opens sockets again up to --sockets. Then it sends SIGTERM
to `podium up`'s process group and times: the process's exit, the end of every
pid ever seen below it (sampled every 250 ms from the start), the gateway port
(and all four node ports) free. It counts the close codes the sockets got and
lists any process still naming the data dir or its HAProxy dir (and says
whether that dir, /tmp/podium-hap-*, was left on disk). One JSON line
per round, then a table. Processes a round leaves are killed (by pid) after
they are reported; the data dir and HAProxy dir are removed, the round's log
is kept in --logs."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from podium.cluster.processes import haproxy_dir
from podium.gateway.auth import mint_token
from podium.settings import Settings
from tests.integration.test_lifecycle import Up, _alive, _describe, _free, marked, start, wait_healthy

STOP_WAIT_S = 60.0  # give up measuring a stop after this long
RECOVERY_WAIT_S = 180.0
KEEPALIVE_S = 30.0  # app-level ping: the gateway closes a socket silent for socket_idle_s (120 s)
LOG_LINES = re.compile(r"stopping Podium|drained|Ray stopped|driver left|did not stop|killed \d+|Podium stopped|"
                       r"second signal|Traceback|ERROR|stopped PostgreSQL|stopped Redis|embedded .* stopped")


@dataclass
class Socket:
    player: str
    ws: Any
    reader: asyncio.Task[None] | None = None
    code: int | None = None
    closed_at: float | None = None


@dataclass
class Opened:
    sockets: list[Socket] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # handshake answers other than 101, by status/error
    failed: int = 0  # players that got no socket after every try
    seconds: float = 0.0


class Sampler(threading.Thread):
    """Adds `podium up`'s subtree to up.seen every 250 ms, so short-lived pids count too."""

    def __init__(self, up: Up) -> None:
        super().__init__(daemon=True)
        self.up = up
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.up.snapshot()
            self.done.wait(0.25)


async def _read(sock: Socket) -> None:
    """Take every frame (so the gateway never sees a slow consumer) and ping now and then."""
    async def keepalive() -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await sock.ws.send("ping")

    pinger = asyncio.ensure_future(keepalive())
    try:
        async for _ in sock.ws:
            pass
    except websockets.ConnectionClosed:
        pass
    finally:
        pinger.cancel()
        sock.code = sock.ws.close_code
        sock.closed_at = time.monotonic()


async def open_sockets(up: Up, players: list[str], concurrency: int) -> Opened:
    """One socket per player, `concurrency` handshakes at a time, each until its "subscribed" frame."""
    out = Opened()
    gate = asyncio.Semaphore(concurrency)
    port = up.ports["PODIUM_PORT"]
    t0 = time.monotonic()

    async def one(player: str) -> None:
        url = f"ws://127.0.0.1:{port}/v1/ws/players/{player}?token={mint_token(up.secret, player, 3600)}"
        for _ in range(30):
            async with gate:
                try:
                    ws = await websockets.connect(url, open_timeout=30, ping_interval=None, max_queue=None)
                except websockets.InvalidStatus as exc:
                    out.refused[str(exc.response.status_code)] += 1
                    ws = None
                except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                    out.refused[type(exc).__name__] += 1
                    ws = None
                if ws is not None:
                    try:
                        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                    except (websockets.ConnectionClosed, TimeoutError) as exc:
                        out.refused[f"no subscribed: {type(exc).__name__}"] += 1
                        await ws.close()
                        ws = None
                    else:
                        if frame.get("type") != "subscribed":
                            out.refused[f"first frame {frame.get('type')}"] += 1
                            await ws.close()
                            ws = None
                if ws is not None:
                    sock = Socket(player, ws)
                    sock.reader = asyncio.ensure_future(_read(sock))
                    out.sockets.append(sock)
                    return
            await asyncio.sleep(1.0)
        out.failed += 1

    await asyncio.gather(*(one(p) for p in players))
    out.seconds = time.monotonic() - t0
    return out


def replica_pid(up: Up) -> int:
    body = httpx.get(f"{up.base}/v1/ws/health", headers={"Connection": "close"}, timeout=10).json()
    return int(body["replica"]["pid"])


async def crash_gap(up: Up) -> dict[str, Any]:
    """SIGKILL the socket plane replica; GET /v1/ws/health every 100 ms until 200. What did clients get meanwhile?"""
    pid = await asyncio.to_thread(replica_pid, up)
    statuses: Counter[str] = Counter()
    bad: list[dict[str, Any]] = []
    timeline: list[tuple[float, str]] = []
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    recovered: float | None = None
    async with httpx.AsyncClient(timeout=10, headers={"Connection": "close"}) as client:
        while time.monotonic() < t0 + RECOVERY_WAIT_S:
            at = round(time.monotonic() - t0, 2)
            try:
                response = await client.get(f"{up.base}/v1/ws/health")
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                statuses[key] += 1
                timeline.append((at, key))
                await asyncio.sleep(0.1)
                continue
            key = str(response.status_code)
            statuses[key] += 1
            if not timeline or timeline[-1][1] != key:
                timeline.append((at, key))
            if response.status_code == 200:
                recovered = time.monotonic() - t0
                break
            problem = (response.status_code == 503 and response.headers.get("retry-after") == "1"
                       and response.headers.get("content-type") == "application/problem+json")
            if not problem:
                bad.append({"at": at, "status": response.status_code,
                            "retry_after": response.headers.get("retry-after"),
                            "content_type": response.headers.get("content-type"), "body": response.text[:200]})
            await asyncio.sleep(0.1)
    new_pid = await asyncio.to_thread(replica_pid, up) if recovered is not None else None
    return {"killed_pid": pid, "new_pid": new_pid, "recovery_s": None if recovered is None else round(recovered, 2),
            "answers": dict(statuses), "bad": len(bad), "bad_examples": bad[:3], "timeline": timeline[:20]}


def measure_stop(up: Up) -> dict[str, Any]:
    """SIGTERM to the process group; seconds until exit, all pids seen gone, gateway port and all ports free."""
    up.snapshot()
    gateway = up.ports["PODIUM_PORT"]
    t0 = time.monotonic()
    os.killpg(up.proc.pid, signal.SIGTERM)
    exit_s = pids_s = port_s = ports_s = None
    left: list[int] = []
    while time.monotonic() < t0 + STOP_WAIT_S:
        now = time.monotonic() - t0
        if exit_s is None and up.proc.poll() is not None:
            exit_s = now
        if pids_s is None:
            left = [pid for pid in tuple(up.seen) if _alive(pid)]  # tuple(): the sampler adds to it
            if not left:
                pids_s = now
        if port_s is None and _free(gateway):
            port_s = now
        if ports_s is None and all(_free(p) for p in up.ports.values()):
            ports_s = now
        if None not in (exit_s, pids_s, port_s, ports_s):
            break
        time.sleep(0.05)

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {"exit_s": r(exit_s), "pids_gone_s": r(pids_s), "port_free_s": r(port_s), "all_ports_free_s": r(ports_s),
            "returncode": up.proc.returncode, "pids_seen": len(up.seen),
            "pids_left": [_describe(pid) for pid in left] if pids_s is None else []}


async def run_round(n: int, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"round": n, "crash": n in args.crash_rounds}
    t0 = time.monotonic()
    up = await asyncio.to_thread(start, f"probe{n}", extra={"PODIUM_STOP_TIMEOUT_S": str(args.stop_timeout)})
    result["data_dir"] = str(up.data_dir)
    result["pgid"] = up.proc.pid
    sampler = Sampler(up)
    sampler.start()
    all_sockets: list[Socket] = []
    try:
        await asyncio.to_thread(wait_healthy, up)
        result["start_s"] = round(time.monotonic() - t0, 1)
        tag = uuid.uuid4().hex[:6]
        players = [f"stop-{tag}-{i}" for i in range(args.sockets)]
        opened = await open_sockets(up, players, args.concurrency)
        all_sockets += opened.sockets
        result["open"] = {"sockets": len(opened.sockets), "seconds": round(opened.seconds, 1),
                          "refused": dict(opened.refused), "failed": opened.failed}
        if result["crash"]:
            gap = await crash_gap(up)
            # the killed replica's sockets: wait (briefly) until each has seen its close
            lost = [s for s in all_sockets if s.reader is not None]
            await asyncio.wait([s.reader for s in lost if s.reader], timeout=15)
            closed = [s for s in lost if s.closed_at is not None]
            gap["sockets_closed_by_crash"] = len(closed)
            gap["crash_close_codes"] = dict(Counter(str(s.code) for s in closed))
            result["crash_gap"] = gap
            again = [s.player for s in closed]
            reopened = await open_sockets(up, again, args.concurrency)
            all_sockets += reopened.sockets
            result["reopen"] = {"sockets": len(reopened.sockets), "seconds": round(reopened.seconds, 1),
                                "refused": dict(reopened.refused), "failed": reopened.failed}
        live = [s for s in all_sockets if s.closed_at is None]
        result["sockets_at_stop"] = len(live)
        result["health_before_stop"] = (await asyncio.to_thread(
            lambda: httpx.get(f"{up.base}/v1/ws/health", headers={"Connection": "close"}, timeout=10).json()
        )).get("push_sockets")
        result["stop"] = await asyncio.to_thread(measure_stop, up)
        sampler.done.set()
        await asyncio.wait([s.reader for s in live if s.reader], timeout=10)
        result["close_codes"] = dict(Counter(str(s.code) if s.closed_at is not None else "still open" for s in live))
        result["marked_left"] = await asyncio.to_thread(marked, up)
        hap = hap_dir(up)
        result["haproxy_dir_left"] = str(hap) if hap.exists() else None  # files, not processes
        lines = [line for line in up.output().splitlines() if LOG_LINES.search(line)]
        result["log"] = [line[:220] for line in lines][-12:]
    finally:
        sampler.done.set()
        sampler.join(5)
        for sock in all_sockets:
            if sock.reader is not None and not sock.reader.done():
                sock.reader.cancel()
        await asyncio.gather(*(s.ws.close() for s in all_sockets if s.closed_at is None), return_exceptions=True)
        result["cleanup_killed"] = cleanup(up)
        args.logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(up.log, args.logs / f"round-{n}.log")
        shutil.rmtree(up.data_dir, ignore_errors=True)
        shutil.rmtree(hap_dir(up), ignore_errors=True)
    return result


def hap_dir(up: Up) -> Path:
    return haproxy_dir(Settings.model_validate({"data_dir": up.data_dir}))


def cleanup(up: Up) -> list[str]:
    """Kill (by pid) whatever of this round is still running; say what it was."""
    killed: list[str] = []
    if up.proc.poll() is None:
        killed.append(f"podium up {up.proc.pid}")
        os.killpg(up.proc.pid, signal.SIGKILL)
        up.proc.wait(10)
    pids = {pid for pid in up.seen if _alive(pid)}
    pids |= {int(line.split()[0]) for line in marked(up)}
    for pid in sorted(pids):
        killed.append(_describe(pid))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


def table(results: list[dict[str, Any]]) -> str:
    head = ("round", "crash", "start s", "sockets", "gap answers", "bad", "recovery s", "reopened", "at stop",
            "exit s", "pids gone s", "port free s", "close codes", "left")
    rows = [head]
    for r in results:
        gap = r.get("crash_gap", {})
        stop = r.get("stop", {})
        rows.append((str(r["round"]), "yes" if r["crash"] else "", str(r.get("start_s", "")),
                     str(r.get("open", {}).get("sockets", "")),
                     " ".join(f"{k}x{v}" for k, v in gap.get("answers", {}).items()), str(gap.get("bad", "")),
                     str(gap.get("recovery_s", "")), str(r.get("reopen", {}).get("sockets", "")),
                     str(r.get("sockets_at_stop", "")), str(stop.get("exit_s", "")),
                     str(stop.get("pids_gone_s", "")), str(stop.get("port_free_s", "")),
                     " ".join(f"{k}x{v}" for k, v in r.get("close_codes", {}).items()),
                     str(len(r.get("marked_left", [])) + len(stop.get("pids_left", [])))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--crash-rounds", type=lambda s: {int(x) for x in s.split(",") if x}, default={2, 4})
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--stop-timeout", type=float, default=15.0, help="PODIUM_STOP_TIMEOUT_S")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/stop-probe-logs"))
    args = parser.parse_args()
    results = []
    for n in range(1, args.rounds + 1):
        result = await run_round(n, args)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(table(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
