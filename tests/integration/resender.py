"""A careful client of POST /v1/unlocks, for the drivers that reshape or break
their cluster (resharding.py, outages.py): it resends every unlock not acked
`accepted`/`duplicate` (HTTP errors, 503s and `rejected: unavailable |
overloaded` alike) after a back-off, as docs/protocol.md asks, and logs what
each attempt got.

At most IN_FLIGHT attempts are on the wire at once, fewer than the client's
connections, and the rest wait their turn here: queued inside httpcore's pool
instead, each request costs O(queued x connections) (its
_assign_requests_to_connections), and the thousands of resends of a long
resharding pause kept the driver busy on a core doing only that, starving the
cluster it waited for."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
import orjson

IN_FLIGHT = 64  # attempts on the wire at once; below CONNECTIONS so a read beside them always finds one
CONNECTIONS = 100  # httpx's default pool size, written out


class Resender:
    def __init__(self, base: str, key: str, unlock: Callable[[int], dict[str, str]], timeout_s: float = 10.0) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=timeout_s, headers={"X-API-Key": key},
                                      limits=httpx.Limits(max_connections=CONNECTIONS))
        self.on_wire = asyncio.Semaphore(IN_FLIGHT)
        self.unlock = unlock
        self.acked: dict[int, str] = {}
        self.latency: dict[int, float] = {}  # first send -> final ack
        self.attempts: list[tuple[float, float, dict[str, int]]] = []  # sent at, answered after, outcomes
        self.resends = 0

    async def frame(self, first: int, size: int) -> None:
        todo = list(range(first, first + size))
        began = time.monotonic()
        pause = 0.2
        while todo:
            async with self.on_wire:
                sent = time.monotonic()  # when it went on the wire: `took` is the server's answer time
                try:
                    response = await self.http.post("/v1/unlocks",
                                                    content=orjson.dumps([self.unlock(n) for n in todo]))
                    acks = response.json() if response.status_code == 200 else None
                    outcome = (Counter(f"{a['status']}/{a.get('reason', '')}" for a in acks) if acks is not None
                               else Counter({f"http/{response.status_code}": len(todo)}))
                except httpx.HTTPError as exc:
                    acks, outcome = None, Counter({f"error/{type(exc).__name__}": len(todo)})
                self.attempts.append((sent, time.monotonic() - sent, dict(outcome)))
            for n, ack in zip(todo, acks or [], strict=False):
                if ack["status"] in ("accepted", "duplicate"):
                    self.acked[n] = ack["status"]
                    self.latency[n] = time.monotonic() - began
                elif ack.get("reason") not in ("unavailable", "overloaded"):
                    raise AssertionError(f"unexpected ack {ack} for {self.unlock(n)}")
            todo = [n for n in todo if n not in self.acked]
            if todo:  # as a client should: back off (Retry-After says 1 s)
                self.resends += 1
                await asyncio.sleep(pause)
                pause = min(2.0, pause * 2)

    def between(self, start: float, end: float) -> tuple[Counter[str], list[float]]:
        """Outcomes and latencies of the attempts sent in [start, end)."""
        outcomes: Counter[str] = Counter()
        latencies = []
        for sent, took, outcome in self.attempts:
            if start <= sent < end:
                outcomes.update(outcome)
                latencies.append(took)
        return outcomes, sorted(latencies)

    def first_after(self, start: float, status: str) -> float | None:
        """Seconds from `start` to the first answer carrying `status` to an attempt sent after it."""
        times = [sent + took - start for sent, took, outcome in self.attempts
                 if sent >= start and any(k.startswith(status) for k in outcome)]
        return round(min(times), 2) if times else None


async def stream(client: Resender, seconds: float, start: int, tasks: list[asyncio.Task[None]],
                 frames_per_s: float = 10, size: int = 20) -> int:
    """Frames of `size` at `frames_per_s` for `seconds`, each resent until acked; the next unlock number."""
    n, began = start, time.monotonic()
    while time.monotonic() - began < seconds:
        tasks.append(asyncio.ensure_future(client.frame(n, size)))
        n += size
        await asyncio.sleep(1 / frames_per_s)
    return n


async def whole_board(http: httpx.AsyncClient, game: str, *, prefix: str = "") -> dict[str, int]:
    """Every entry of a game's all-time global board whose player id starts with `prefix`, page by page
    ({} if a page is refused)."""
    entries: dict[str, int] = {}
    cursor = None
    while True:
        response = await http.get(f"/v1/games/{game}/leaderboard",
                                  params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        if response.status_code != 200:
            return {}
        page = response.json()
        entries.update({e["player_id"]: e["points"] for e in page["entries"] if e["player_id"].startswith(prefix)})
        cursor = page["next_cursor"]
        if cursor is None:
            return entries
