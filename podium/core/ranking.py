"""One ranked board of sort keys. Order is total: score desc, then the time
the score was reached asc, then player_id asc. Ranks are 1-based. Pages use
keyset cursors (the entry's value, time and player), never offsets.
The score is what the board's Order (podium/core/board_order.py) makes of a
value: achievement points as they are, a stat's value shifted so that its
desc or asc order is "highest score first" - one engine for every order.
The board holds only keys; its owner (Standings) keeps each player's key, so
a player's global and regional boards share one key object."""
from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from sortedcontainers import SortedList

from podium.core import cursors
from podium.core.board_order import POINTS, TIME_BITS, TIME_MASK, Order, SortKey
from podium.core.score_counts import ScoreCounts
from podium.wire.errors import BadCursor

__all__ = ["Board", "Ranked", "SortKey", "decode_cursor", "encode_cursor", "sort_key", "unpack"]


def sort_key(player_id: str, points: int, reached_us: int) -> SortKey:
    """An achievement-points key (Order POINTS, without its checks: the hot path of every unlock)."""
    return (-points << TIME_BITS) | reached_us, player_id


def unpack(key: SortKey) -> tuple[str, int, int]:
    packed, player_id = key
    return player_id, -(packed >> TIME_BITS), packed & TIME_MASK


@dataclass(frozen=True, slots=True)
class Ranked:
    """One ranked entry. `points` is the board's value as readers see it:
    achievement points, or the stat's real value on a stat board."""

    rank: int
    player_id: str
    points: int
    reached_us: int

    @property
    def value(self) -> int:
        return self.points


def encode_cursor(key: SortKey, direction: str, order: Order = POINTS) -> str:
    # The real value, unpacked: the packed int passes 64 bits from 1,024
    # points on, and JSON numbers beyond that are not portable (orjson refuses them).
    player_id, value, reached = order.unpack(key)
    return cursors.encode([direction, value, reached, player_id])


def decode_cursor(token: str, order: Order = POINTS) -> tuple[str, SortKey]:
    direction, value, reached, player_id = cursors.decode(token, (str, int, int, str))
    if (direction not in ("next", "prev") or not 0 <= int(reached) <= TIME_MASK  # type: ignore[call-overload]
            or not order.accepts(int(value))):  # type: ignore[call-overload]
        raise BadCursor("cursor is not one this server issued")
    return str(direction), order.key(str(player_id), int(value), int(reached))  # type: ignore[call-overload]


_BIG = 2048  # a score held by more entries than this keeps them in a SortedList, not a plain list


class Board:
    """Entries grouped by score: a bucket per score (its keys in board order:
    reached asc, then player_id) and the count of entries per score in a radix
    tree (podium/core/score_counts.py). A move - the only write an unlock causes -
    touches one or two small buckets and a few counters, so its cost does not
    grow with the board; a rank is the count above the score plus the place in
    the bucket. Buckets past _BIG entries (a crowd at the first score of a
    game) become SortedLists, so no move shifts a long list."""

    __slots__ = ("_buckets", "_counts", "_len", "order")

    def __init__(self, keys: Iterable[SortKey] = (), order: Order = POINTS) -> None:
        self.order = order  # how its keys were built: what reads and cursors turn scores back into
        self._buckets: dict[int, list[SortKey] | SortedList] = {}
        self._counts = ScoreCounts()
        self._len = 0
        grouped: dict[int, list[SortKey]] = {}
        for key in keys:
            score = -(key[0] >> TIME_BITS)
            bucket = grouped.get(score)
            if bucket is None:
                grouped[score] = [key]
            else:
                bucket.append(key)
        self._fill(grouped)

    @classmethod
    def of_buckets(cls, grouped: dict[int, list[SortKey]], order: Order = POINTS) -> Board:
        """A board from keys already grouped by score (recovery builds these as the rows stream)."""
        board = cls(order=order)
        board._fill(grouped)
        return board

    def _fill(self, grouped: dict[int, list[SortKey]]) -> None:
        """Bulk load into an empty board: one sort and one count per score."""
        for score, bucket in grouped.items():
            bucket.sort()  # linear when the keys came in board order
            self._counts.add(score, len(bucket))
            self._buckets[score] = SortedList(bucket) if len(bucket) > _BIG else bucket
            self._len += len(bucket)

    def __len__(self) -> int:
        return self._len

    def keys(self) -> Iterator[SortKey]:
        """Every key in board order."""
        return self._forward(self._counts.highest(), 0)

    def add(self, key: SortKey) -> None:
        score = -(key[0] >> TIME_BITS)
        self._counts.add(score, 1)  # first: it refuses a negative score before anything changes
        self._put(score, key)
        self._len += 1

    def discard(self, key: SortKey) -> None:
        """Remove `key` if it is on the board."""
        score = -(key[0] >> TIME_BITS)
        if self._take(score, key):
            self._counts.add(score, -1)
            self._len -= 1

    def move(self, old: SortKey, new: SortKey) -> None:
        """`old` (on the board) becomes `new`: what a player's new score does."""
        before, after = -(old[0] >> TIME_BITS), -(new[0] >> TIME_BITS)
        if not self._take(before, old):
            self.add(new)
            return
        self._counts.move(before, after)
        self._put(after, new)

    def _put(self, score: int, key: SortKey) -> None:
        bucket = self._buckets.get(score)
        if bucket is None:
            self._buckets[score] = [key]
        elif isinstance(bucket, list):
            if key > bucket[-1]:
                bucket.append(key)  # the common case: the newest to reach this score
            else:
                insort(bucket, key)
            if len(bucket) > _BIG:
                self._buckets[score] = SortedList(bucket)
        else:
            bucket.add(key)

    def _take(self, score: int, key: SortKey) -> bool:
        bucket = self._buckets.get(score)
        if bucket is None:
            return False
        i = bisect_left(bucket, key) if isinstance(bucket, list) else bucket.bisect_left(key)
        if i == len(bucket) or bucket[i] != key:
            return False
        del bucket[i]
        if not bucket:
            del self._buckets[score]
        return True

    def _at(self, key: SortKey) -> tuple[int, int]:
        """(score, index in its bucket) of the first key at or after `key` in board order."""
        score = -(key[0] >> TIME_BITS)
        bucket = self._buckets.get(score)
        if bucket is None:
            return score, 0
        return score, bisect_left(bucket, key) if isinstance(bucket, list) else bucket.bisect_left(key)

    def rank_of(self, key: SortKey) -> int:
        """1-based rank of a key that is on the board."""
        score, i = self._at(key)
        return self._counts.above(score) + i + 1

    def _forward(self, score: int | None, i: int) -> Iterator[SortKey]:
        """Keys in board order from index i of score's bucket on."""
        buckets, counts = self._buckets, self._counts
        while score is not None:
            bucket = buckets.get(score)
            if bucket is not None:
                yield from (bucket[i:] if isinstance(bucket, list) else bucket.islice(i))
            score, i = counts.below(score), 0

    def _backward(self, score: int | None, i: int) -> Iterator[SortKey]:
        """Keys in reverse board order from just before index i of score's bucket."""
        buckets, counts = self._buckets, self._counts
        while score is not None:
            bucket = buckets.get(score)
            if bucket is not None:
                if i > 0:
                    yield from (bucket[i - 1::-1] if isinstance(bucket, list) else bucket.islice(0, i, reverse=True))
            score = counts.above_next(score)
            i = len(buckets[score]) if score is not None else 0

    def _ranked(self, first_rank: int, keys: Iterable[SortKey]) -> list[Ranked]:
        unpacked = unpack if self.order is POINTS else self.order.unpack
        return [Ranked(first_rank + offset, *unpacked(key)) for offset, key in enumerate(keys)]

    def page(self, limit: int, cursor: str | None = None) -> tuple[list[Ranked], str | None, str | None]:
        """A page of at most `limit` entries after (or before) the cursor.
        Returns (entries, next_cursor, prev_cursor); a cursor is None at an end."""
        if cursor is None:
            first = 1
            keys = list(islice(self._forward(self._counts.highest(), 0), limit))
        else:
            direction, key = decode_cursor(cursor, self.order)
            score, i = self._at(key)
            if direction == "next":
                bucket = self._buckets.get(score)
                if bucket is not None and i < len(bucket) and bucket[i] == key:
                    i += 1  # strictly after the cursor's entry
                first = self._counts.above(score) + i + 1
                keys = list(islice(self._forward(score, i), limit))
            else:
                keys = list(islice(self._backward(score, i), limit))[::-1]
                first = self._counts.above(score) + i + 1 - len(keys)
        entries = self._ranked(first, keys)
        last = first + len(keys) - 1
        next_cursor = encode_cursor(keys[-1], "next", self.order) if keys and last < self._len else None
        prev_cursor = encode_cursor(keys[0], "prev", self.order) if keys and first > 1 else None
        return entries, next_cursor, prev_cursor

    def around(self, key: SortKey, k: int) -> list[Ranked]:
        """k entries above and below `key` (on the board), itself included."""
        score, i = self._at(key)
        above = list(islice(self._backward(score, i), k))[::-1]
        rest = list(islice(self._forward(score, i), k + 1))
        return self._ranked(self._counts.above(score) + i + 1 - len(above), above + rest)

    def ahead_of(self, value: int) -> int:
        """How many entries rank ahead of anyone holding `value` (a better
        value: greater on a desc board, lower on an asc one)."""
        return self._counts.above(self.order.score(value))

    def holding(self, value: int) -> int:
        """How many entries hold exactly `value`."""
        return self._counts.held(self.order.score(value))

    def percentile(self, rank: int) -> float:
        """Share of the board ranked at or below `rank`: 100.0 for rank 1."""
        total = self._len
        return round(100.0 * (total - rank + 1) / total, 2) if total else 0.0
