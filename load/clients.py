"""Load-generating clients for the benchmark: writers (Podium's ingest socket,
HTTP per request, HTTP batches), closed-loop and paced drivers, and the
latency/CPU bookkeeping. Latencies of paced work are taken from the time a
request was due, not when it was sent, so a system that falls behind cannot
hide it (no coordinated omission)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
import websockets

from load.workload import Workload

Items = list[dict[str, Any]]  # unlocks (strings) or stat updates (an integer `value`)


class Batches(Protocol):
    """What a closed loop draws its frames from: the unlock workload or a stat stream."""

    def batch(self, n: int) -> Items: ...


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3  # type: ignore[return-value]
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return at(0.50), at(0.95), at(0.99)


class CpuMeter:
    """Machine CPU busy share (all cores, from /proc/stat) and the load
    generator's own CPU (this process), over one phase."""

    def __enter__(self) -> CpuMeter:
        self._stat = self._read()
        self._self = self._rusage()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy0, total0 = self._stat
        busy1, total1 = self._read()
        self.machine_pct = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
        wall = time.perf_counter() - self._wall
        self.loadgen_pct = 100.0 * (self._rusage() - self._self) / max(wall, 1e-9) / (os.cpu_count() or 1)

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    @staticmethod
    def _rusage() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime


# ---- writers: send a list of unlocks, return one status per unlock ----------

class HttpWriter:
    """POST per request (one unlock per body; `one_object` peers take a bare
    object) or per batch (a JSON array)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, one_object: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        self.session, self.url, self.one_object, self.headers = session, url, one_object, headers or {}

    async def send(self, items: Items) -> list[str]:
        body = items[0] if self.one_object else items
        try:
            async with self.session.post(self.url, data=orjson.dumps(body),
                                         headers={"content-type": "application/json", **self.headers}) as r:
                if r.status != 200:
                    await r.read()
                    return [f"http_{r.status}"] * len(items)
                data = orjson.loads(await r.read())
        except aiohttp.ClientError as exc:  # e.g. a keep-alive connection the server closed: counted, not fatal
            return [type(exc).__name__] * len(items)
        return [data["status"]] if isinstance(data, dict) else [a["status"] for a in data]


class WsWriter:
    """Podium's ingest socket: frames (unlocks or queries) are pipelined and answered in order."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url, self.api_key = url, api_key
        self._waiting: deque[asyncio.Future[Any]] = deque()

    async def __aenter__(self) -> WsWriter:
        self.ws = await websockets.connect(self.url, additional_headers={"X-API-Key": self.api_key}, max_size=None)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        async for message in self.ws:
            self._waiting.popleft().set_result(orjson.loads(message))

    async def _ask(self, frame: object) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        await self.ws.send(orjson.dumps(frame).decode())
        return await future

    async def send(self, items: Items) -> list[str]:
        reply = await self._ask(items)
        if not isinstance(reply, list):
            raise RuntimeError(f"frame refused: {reply}")
        return [a["status"] for a in reply]

    async def query(self, query: dict[str, object]) -> bool:
        """One query frame; True if it was answered with a result."""
        return (await self._ask(query)).get("type") == "result"


Writer = HttpWriter | WsWriter


@dataclass
class Outcome:
    seconds: float = 0.0
    accepted: int = 0
    other: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def count(self, statuses: list[str]) -> None:
        for s in statuses:
            if s == "accepted":
                self.accepted += 1
            else:
                self.other[s] = self.other.get(s, 0) + 1

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


OnAck = Callable[[Items, list[str], float, float], None]  # (items, statuses, sent, acked)


async def timed_send(writer: Writer, items: Items, out: Outcome, on_ack: OnAck | None) -> None:
    sent = time.perf_counter()
    statuses = await writer.send(items)
    acked = time.perf_counter()
    out.latencies_ms.append((acked - sent) * 1000)
    out.count(statuses)
    if on_ack:
        on_ack(items, statuses, sent, acked)


async def closed_loop(writers: list[Writer], in_flight: int, batch: int, seconds: float, work: Batches,
                      on_ack: OnAck | None = None) -> Outcome:
    """Each writer keeps `in_flight` requests (or frames) of `batch` unlocks
    outstanding for `seconds`; throughput counts accepted items (unlocks or stat updates)."""
    out = Outcome()
    deadline = time.perf_counter() + seconds

    async def lane(writer: Writer) -> None:
        while time.perf_counter() < deadline:
            await timed_send(writer, work.batch(batch), out, on_ack)

    start = time.perf_counter()
    await asyncio.gather(*(lane(w) for w in writers for _ in range(in_flight)))
    out.seconds = time.perf_counter() - start
    return out


async def paced(rate: float, seconds: float, job: Callable[[], Awaitable[None]], *, cap: int) -> int:
    """Start `job` `rate` times a second for `seconds` (at most `cap` running);
    returns how many were started. Jobs time themselves from when they were due."""
    started = 0
    limit = asyncio.Semaphore(cap)
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()

    async def run() -> None:
        try:
            await job()
        finally:
            limit.release()

    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate) + 1
        while started < due and time.perf_counter() - start < seconds:
            await limit.acquire()  # a system that falls behind makes us wait here: stop at the deadline
            task = asyncio.ensure_future(run())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        await asyncio.sleep(min(0.005, 1.0 / rate))
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    return started


async def paced_writes(writers: list[Writer], rate: float, batch: int, seconds: float, work: Workload,
                       cap: int, on_ack: OnAck | None = None) -> Outcome:
    """Offer `rate` unlocks/s as requests of `batch` unlocks, spread over the writers."""
    out = Outcome()
    turn = iter(range(1 << 62))

    async def one() -> None:  # started when due, so its time counts from then
        await timed_send(writers[next(turn) % len(writers)], work.batch(batch), out, on_ack)

    start = time.perf_counter()
    await paced(rate / batch, seconds, one, cap=cap)
    out.seconds = time.perf_counter() - start
    return out


@dataclass
class ReadPaths:
    rank: Callable[[str, str], str]
    top: Callable[[str], str]
    around: Callable[[str, str], str]


async def paced_reads(session: aiohttp.ClientSession, base: str, paths: ReadPaths, rate: float, seconds: float,
                      work: Workload, first_game: Callable[[int], str], player: Callable[[int], str],
                      ) -> tuple[Outcome, dict[str, list[float]]]:
    """`rate` reads/s: half rank, a quarter top page, a quarter around-me."""
    out = Outcome()
    by_kind: dict[str, list[float]] = {"rank": [], "top": [], "around": []}
    kinds = ("rank", "top", "rank", "around")
    turn = iter(range(1 << 62))

    async def one() -> None:
        kind = kinds[next(turn) % len(kinds)]
        i = work.any_player()
        game, pid = first_game(i), player(i)
        url = base + (paths.rank(game, pid) if kind == "rank" else paths.top(game) if kind == "top"
                      else paths.around(game, pid))
        due = time.perf_counter()
        try:
            async with session.get(url) as r:
                await r.read()
                status = r.status
        except aiohttp.ClientError:
            status = 0
        ms = (time.perf_counter() - due) * 1000
        out.latencies_ms.append(ms)
        by_kind[kind].append(ms)
        out.count(["accepted" if status == 200 else f"http_{status}"])

    start = time.perf_counter()
    await paced(rate, seconds, one, cap=256)
    out.seconds = time.perf_counter() - start
    return out, by_kind


async def closed_reads(read: Callable[[int], Awaitable[bool]], lanes: int, seconds: float,
                       work: Workload) -> Outcome:
    """`lanes` readers, each sending its next read as soon as the last is answered
    (as wrk -c does); a read of a random player, counted if it succeeded."""
    out = Outcome()
    deadline = time.perf_counter() + seconds

    async def lane() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            ok = await read(work.any_player())
            out.latencies_ms.append((time.perf_counter() - t0) * 1000)
            out.count(["accepted" if ok else "error"])

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    out.seconds = time.perf_counter() - start
    return out


@contextlib.asynccontextmanager
async def http_session(connections: int = 256) -> Any:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session
