"""How many entries of a board hold each score: a radix tree of 32-wide count
nodes (level k counts the scores s >> 5k), so moving an entry from one score
to another costs a few list increments per level, whatever the board's size,
and "how many score above s" is one C-level `sum` over at most 31 slots per
level (32 measured best: 256-wide nodes make a move 0.08 µs cheaper and a
rank 1.5 µs dearer; pushes need two ranks per move). Scores are integers
>= 0 (achievement points are never negative); the tree grows a level when a
score needs more bits. Ray-free, no I/O."""
from __future__ import annotations

_BITS = 5
_FAN = 1 << _BITS
_MASK = _FAN - 1


class ScoreCounts:
    __slots__ = ("_levels", "_limit")

    def __init__(self) -> None:
        self._levels: list[dict[int, list[int]]] = [{}]  # level k: node id (s >> 5(k+1)) -> counts per slot
        self._limit = _FAN  # scores below this fit the levels there are

    def add(self, score: int, delta: int) -> None:
        """`delta` more (or fewer, if negative) entries hold `score`."""
        if not 0 <= score < self._limit:
            if score < 0:
                raise ValueError(f"scores are >= 0, not {score}")
            while score >= self._limit:
                self._grow()
        s = score
        for level in self._levels:
            node = level.get(s >> _BITS)
            if node is None:
                node = level[s >> _BITS] = [0] * _FAN
            node[s & _MASK] += delta
            s >>= _BITS

    def move(self, old: int, new: int) -> None:
        """One entry holding `old` now holds `new`. The levels where both
        scores fall in the same slot are left alone: they would cancel."""
        if not 0 <= new < self._limit:
            self.add(new, 1)  # validates and grows
            self.add(old, -1)
            return
        a, b = old, new
        for level in self._levels:
            if a == b:
                return
            level[a >> _BITS][a & _MASK] -= 1
            node = level.get(b >> _BITS)
            if node is None:
                node = level[b >> _BITS] = [0] * _FAN
            node[b & _MASK] += 1
            a >>= _BITS
            b >>= _BITS

    def _grow(self) -> None:
        top = self._levels[-1].get(0)
        self._levels.append({0: [sum(top) if top else 0] + [0] * (_FAN - 1)})
        self._limit <<= _BITS

    def above(self, score: int) -> int:
        """How many entries hold a score greater than `score`."""
        if score < 0:
            return self.total()
        if score >> (_BITS * len(self._levels)):
            return 0
        total = 0
        s = score
        for level in self._levels:
            node = level.get(s >> _BITS)
            if node is not None:
                total += sum(node[(s & _MASK) + 1:])
            s >>= _BITS
        return total

    def total(self) -> int:
        top = self._levels[-1].get(0)
        return sum(top) if top else 0

    def held(self, score: int) -> int:
        """How many entries hold exactly `score`."""
        if score < 0 or score >> (_BITS * len(self._levels)):
            return 0
        node = self._levels[0].get(score >> _BITS)
        return node[score & _MASK] if node is not None else 0

    def below(self, score: int) -> int | None:
        """The greatest held score less than `score`, or None."""
        limit: int = _FAN ** len(self._levels)
        if score >= limit:
            if self.held(limit - 1):
                return limit - 1
            score = limit - 1
        s = score
        for k, level in enumerate(self._levels):
            node = level.get(s >> _BITS)
            if node is not None:
                for slot in range((s & _MASK) - 1, -1, -1):
                    if node[slot]:
                        return self._descend(k, ((s >> _BITS) << _BITS) | slot, highest=True)
            s >>= _BITS
        return None

    def above_next(self, score: int) -> int | None:
        """The least held score greater than `score`, or None."""
        if score < 0:
            if self.held(0):
                return 0
            score = 0
        if (score + 1) >> (_BITS * len(self._levels)):
            return None
        s = score
        for k, level in enumerate(self._levels):
            node = level.get(s >> _BITS)
            if node is not None:
                for slot in range((s & _MASK) + 1, _FAN):
                    if node[slot]:
                        return self._descend(k, ((s >> _BITS) << _BITS) | slot, highest=False)
            s >>= _BITS
        return None

    def highest(self) -> int | None:
        return self.below(_FAN ** len(self._levels))

    def _descend(self, k: int, prefix: int, *, highest: bool) -> int:
        """From a non-empty slot `prefix` at level k, the highest (or lowest) score under it."""
        for level in reversed(self._levels[:k]):
            node = level[prefix]
            slots = range(_MASK, -1, -1) if highest else range(_FAN)
            prefix = (prefix << _BITS) | next(i for i in slots if node[i])
        return prefix
