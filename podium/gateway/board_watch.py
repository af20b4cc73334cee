"""Board subscriptions (WebSocket /v1/ws/boards/{game}, docs/protocol.md
"Live boards"). One watch per board and replica, not per watcher: while
anyone on the replica watches a (game, region, period, top) board, one task
reads its top page every `every_s` and, when it changed, encodes one
`board` frame that every watcher's slot receives. A slot keeps only the
newest frame, so a watcher that reads slowly skips to the latest top N
instead of queueing old ones: thousands of watchers of a board cost one
read and one encoding per update, plus one send each."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

log = logging.getLogger(__name__)
Key = tuple[str, str | None, str, int]  # game (or a stat board's `game/board`), region (None: global), period, top N
REGION_PATTERN = r"^[a-z0-9-]{1,16}$"  # every read's region parameter
PERIODS = ("all", "day", "week")
TOP_DEFAULT = 10


def parse_key(game_id: str, params: dict[str, str], top_max: int) -> Key:
    """The board a handshake asks for; ValueError says what is wrong."""
    region = params.get("region") or None
    if region is not None and not re.fullmatch(REGION_PATTERN, region):
        raise ValueError(f"region must match {REGION_PATTERN}")
    period = params.get("period", "all")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    top = params.get("top", str(TOP_DEFAULT))
    if not top.isdigit() or not 1 <= int(top) <= top_max:
        raise ValueError(f"top must be 1..{top_max}")
    return game_id, region, period, int(top)


def changed_players(before: list[dict[str, Any]] | None, after: list[dict[str, Any]]) -> list[str]:
    """Players of the new top N whose rank or points differ from the last frame's (new ones too)."""
    old = {e["player_id"]: (e["rank"], e.get("points", e.get("value"))) for e in before or ()}
    return [e["player_id"] for e in after if old.get(e["player_id"]) != (e["rank"], e.get("points", e.get("value")))]


def board_frame(key: Key, body: dict[str, Any], before: list[dict[str, Any]] | None, seq: int) -> bytes:
    game, region, period, top = key
    entries = body["entries"]
    game, _, stat_board = game.partition("/")  # a stat board's frames name it (and its order), entries carry `value`
    extra = {"board_id": stat_board, "order": body.get("order")} if stat_board else {}
    return orjson.dumps({"type": "board", "seq": seq, "game_id": game, **extra, "region": region, "period": period,
                         "top": top, "total": body["total"], "entries": entries,
                         "changed": changed_players(before, entries)})


class Slot:
    """A watcher's newest frame (older ones are dropped: conflation)."""

    def __init__(self) -> None:
        self.frame: bytes | None = None
        self.ready = asyncio.Event()

    def offer(self, frame: bytes) -> None:
        self.frame = frame
        self.ready.set()

    def take(self) -> bytes | None:
        frame, self.frame = self.frame, None
        self.ready.clear()
        return frame


class BoardWatch:
    def __init__(self, read: Callable[[Key], Awaitable[dict[str, Any]]], every_s: float) -> None:
        self._read = read
        self._every_s = every_s
        self._slots: dict[Key, set[Slot]] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._last: dict[Key, tuple[bytes, list[dict[str, Any]], int]] = {}  # frame, its entries, total
        self.reads = 0  # top reads done (one per board and interval, whatever the watchers)

    @property
    def watchers(self) -> int:
        return sum(map(len, self._slots.values()))

    def watch(self, key: Key) -> Slot:
        """A slot for `key`, offered the last frame at once if there is one."""
        slot = Slot()
        self._slots.setdefault(key, set()).add(slot)
        if key in self._last:
            slot.offer(self._last[key][0])
        if key not in self._tasks:
            self._tasks[key] = asyncio.ensure_future(self._run(key))
        return slot

    def leave(self, key: Key, slot: Slot) -> None:
        slots = self._slots.get(key)
        if slots is None:
            return
        slots.discard(slot)
        if not slots:  # the last watcher left: the watch stops
            del self._slots[key]
            self._last.pop(key, None)
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()

    async def _run(self, key: Key) -> None:
        seq = 0
        while key in self._slots:
            try:
                self.reads += 1
                body = await self._read(key)
                last = self._last.get(key)
                entries = body["entries"]
                if last is None or entries != last[1] or body["total"] != last[2]:
                    seq += 1
                    frame = board_frame(key, body, last[1] if last else None, seq)
                    self._last[key] = (frame, entries, body["total"])
                    for slot in self._slots.get(key, ()):
                        slot.offer(frame)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a shard restarting: keep the last frame, try again next interval
                log.debug("board watch %s: read failed (%r)", key, exc)
            await asyncio.sleep(self._every_s)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
