"""What waits to be pushed to one player socket. Events are merged when the
socket takes them, so a socket gets one frame per push window however many
events arrived, and a socket that reads slowly gets fewer, larger frames
instead of a growing queue. Past `limit` waiting events (after merging) the
socket is a slow consumer: the mailbox says so and takes no more."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]


def merge(events: list[Event]) -> list[Event]:
    """Rank changes of one board fold into one (first old rank, last new rank,
    last points and total) and vanish if the rank ends where it began; the
    progress events of one achievement fold into the last one (at most one per
    achievement per window); other events stay as they are. Order: first
    appearance."""
    out: list[Event | None] = []
    ranks: dict[tuple[Any, Any], int] = {}  # (game_id, board) -> index in out
    progress: dict[tuple[Any, Any], int] = {}  # (game_id, achievement_id) -> index in out
    for event in events:
        kind = event.get("type")
        if kind == "progress":
            key = (event.get("game_id"), event.get("achievement_id"))
            at = progress.get(key)
            if at is None:
                progress[key] = len(out)
                out.append(event)
            else:
                out[at] = event
            continue
        if kind != "rank.changed":
            out.append(event)
            continue
        key = (event.get("game_id"), event.get("board"))
        at = ranks.get(key)
        if at is None:
            ranks[key] = len(out)
            out.append(event)
        else:
            first = out[at]
            assert first is not None
            out[at] = {**event, "old_rank": first["old_rank"]}
    return [e for e in out if e is not None and not (e.get("type") == "rank.changed"
                                                       and e["old_rank"] == e["new_rank"])]


class Mailbox:
    """`wake` (the socket's) is called on every put and close; `wait` is for
    a reader that would rather block (an Event made only then)."""

    __slots__ = ("_events", "_ready", "_wake", "closing", "limit", "overflowed")

    def __init__(self, limit: int, wake: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.overflowed = False
        self.closing: tuple[int, str] | None = None  # (close code, reason) once the socket must go
        self._events: list[Event] = []
        self._wake = wake
        self._ready: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._events)

    def put(self, event: Event) -> bool:
        """False if the event was refused (the socket is closing or overflowed)."""
        if self.overflowed or self.closing:
            return False
        self._events.append(event)
        if len(self._events) > self.limit:
            self._events = merge(self._events)  # merging may be enough: a burst of rank moves
            if len(self._events) > self.limit:
                self.overflowed = True
                self.close(1013, f"slow consumer: more than {self.limit} pushes unread")
                return True
        self._signal()
        return True

    def close(self, code: int, reason: str) -> None:
        """Ask the socket to close with this code (draining, slow consumer)."""
        if self.closing is None:
            self.closing = (code, reason)
        self._signal()

    def _signal(self) -> None:
        if self._ready is not None:
            self._ready.set()
        if self._wake is not None:
            self._wake()

    async def wait(self) -> None:
        """Until something waits (or the socket must close)."""
        if self._ready is None:
            self._ready = asyncio.Event()
            if self._events or self.closing is not None:
                self._ready.set()
        await self._ready.wait()

    def take(self) -> list[Event]:
        """Everything waiting, merged; empty if nothing is."""
        if self._ready is not None:
            self._ready.clear()
        events, self._events = self._events, []
        return merge(events) if len(events) > 1 else events
