"""One ranked board: a SortedList of sort keys. Order is total: points desc,
then the time the score was reached asc, then player_id asc. Ranks are
1-based. Pages use keyset cursors (the last entry's sort key), never offsets.
The board holds only keys; its owner (Standings) keeps each player's key, so
a player's global and regional boards share one key object."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sortedcontainers import SortedList

from actors import cursors
from actors.errors import BadCursor

_TIME_BITS = 53  # microseconds since the epoch fit until the year 2255
_TIME_MASK = (1 << _TIME_BITS) - 1

SortKey = tuple[int, str]


def sort_key(player_id: str, points: int, reached_us: int) -> SortKey:
    """One int packs (-points, reached_us) so ascending order is the board's order."""
    return (-points << _TIME_BITS) | reached_us, player_id


def unpack(key: SortKey) -> tuple[str, int, int]:
    packed, player_id = key
    return player_id, -(packed >> _TIME_BITS), packed & _TIME_MASK


@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int
    player_id: str
    points: int
    reached_us: int


def encode_cursor(key: SortKey, direction: str) -> str:
    # Unpacked: the packed int passes 64 bits from 1,024 points on, and JSON
    # numbers beyond that are not portable (orjson refuses them).
    player_id, points, reached = unpack(key)
    return cursors.encode([direction, points, reached, player_id])


def decode_cursor(token: str) -> tuple[str, SortKey]:
    direction, points, reached, player_id = cursors.decode(token, (str, int, int, str))
    if direction not in ("next", "prev") or int(reached) < 0:  # type: ignore[call-overload]
        raise BadCursor("cursor is not one this server issued")
    return str(direction), sort_key(str(player_id), int(points), int(reached))  # type: ignore[call-overload]


class Board:
    __slots__ = ("_order",)

    def __init__(self, keys: Iterable[SortKey] = ()) -> None:
        self._order: SortedList = SortedList(keys)  # bulk load: one sort, not n inserts

    def __len__(self) -> int:
        return len(self._order)

    def add(self, key: SortKey) -> None:
        self._order.add(key)

    def discard(self, key: SortKey) -> None:
        self._order.discard(key)

    def rank_of(self, key: SortKey) -> int:
        """1-based rank of a key that is on the board."""
        return self._order.index(key) + 1

    def _ranked(self, start: int, stop: int) -> list[Ranked]:
        out = []
        for offset, key in enumerate(self._order.islice(start, stop)):
            player_id, points, reached = unpack(key)
            out.append(Ranked(start + offset + 1, player_id, points, reached))
        return out

    def page(self, limit: int, cursor: str | None = None) -> tuple[list[Ranked], str | None, str | None]:
        """A page of at most `limit` entries after (or before) the cursor.
        Returns (entries, next_cursor, prev_cursor); a cursor is None at an end."""
        size = len(self._order)
        start, stop = 0, min(limit, size)
        if cursor is not None:
            direction, key = decode_cursor(cursor)
            if direction == "next":
                start = self._order.bisect_right(key)
                stop = min(start + limit, size)
            else:
                stop = self._order.bisect_left(key)
                start = max(0, stop - limit)
        entries = self._ranked(start, stop)
        next_cursor = encode_cursor(self._order[stop - 1], "next") if entries and stop < size else None
        prev_cursor = encode_cursor(self._order[start], "prev") if entries and start > 0 else None
        return entries, next_cursor, prev_cursor

    def around(self, key: SortKey, k: int) -> list[Ranked]:
        """k entries above and below `key` (on the board), itself included."""
        at = self._order.index(key)
        return self._ranked(max(0, at - k), min(len(self._order), at + k + 1))

    def percentile(self, rank: int) -> float:
        """Share of the board ranked at or below `rank`: 100.0 for rank 1."""
        total = len(self._order)
        return round(100.0 * (total - rank + 1) / total, 2) if total else 0.0
