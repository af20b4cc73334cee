"""How many entries of a board hold each score: a radix tree of 32-wide count
nodes (level k counts the scores s >> 5k), so moving an entry from one score
to another costs a few list increments per level, whatever the board's size,
and "how many score above s" is one C-level `sum` over at most 31 slots per
level (32 measured best: 256-wide nodes make a move 0.08 µs cheaper and a
rank 1.5 µs dearer; pushes need two ranks per move). Scores are integers
>= 0 (achievement points are never negative; a stat board maps its values
onto [0, 2**55), podium/core/board_order.py).
The tree covers a window [base, base + 32**levels), base a multiple of
32**levels, and grows a level (widening the window to the aligned one 32
times larger) when a score falls outside it. So the depth follows the spread
of the scores held, not their magnitude: a stat board's values, shifted near
2**54, cost as many levels as points spread as widely. Ray-free, no I/O."""
from __future__ import annotations

_BITS = 5
_FAN = 1 << _BITS
_MASK = _FAN - 1


class ScoreCounts:
    __slots__ = ("_base", "_levels", "_limit")

    def __init__(self) -> None:
        # level k: node id (r >> 5(k+1)) -> counts per slot, where r = score - base
        self._levels: list[dict[int, list[int]]] = [{}]
        self._limit = _FAN  # the window's width: relative scores below this fit the levels there are
        self._base = 0

    def _cover(self, score: int) -> None:
        """Widen the window until it holds `score` (an empty tree starts over at it)."""
        if score < 0:
            raise ValueError(f"scores are >= 0, not {score}")
        if not self.total():
            self._levels, self._limit, self._base = [{}], _FAN, score - (score & _MASK)
            return
        while not 0 <= score - self._base < self._limit:
            self._grow()

    def add(self, score: int, delta: int) -> None:
        """`delta` more (or fewer, if negative) entries hold `score`."""
        s = score - self._base
        if not 0 <= s < self._limit:
            self._cover(score)
            s = score - self._base
        for level in self._levels:
            node = level.get(s >> _BITS)
            if node is None:
                node = level[s >> _BITS] = [0] * _FAN
            node[s & _MASK] += delta
            s >>= _BITS

    def move(self, old: int, new: int) -> None:
        """One entry holding `old` now holds `new`. The levels where both
        scores fall in the same slot are left alone: they would cancel."""
        base = self._base
        if not 0 <= new - base < self._limit:
            self.add(new, 1)  # validates and grows
            self.add(old, -1)
            return
        a, b = old - base, new - base
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
        """One level more: the window becomes the aligned one 32 times wider
        holding it. Node ids are relative to the base, so when the base moves
        down every node is renumbered (rare: a tree grows a dozen times at most)."""
        wider = self._limit << _BITS
        base = self._base - self._base % wider
        shift = self._base - base  # a multiple of the old width
        if shift:
            for k, level in enumerate(self._levels):
                d = shift >> (_BITS * (k + 1))
                self._levels[k] = {node_id + d: node for node_id, node in level.items()}
        slot = shift >> (_BITS * len(self._levels))  # where the old window sits in the new top node
        top = self._levels[-1].get(slot)
        node = [0] * _FAN
        node[slot] = sum(top) if top else 0
        self._levels.append({0: node})
        self._limit, self._base = wider, base

    def above(self, score: int) -> int:
        """How many entries hold a score greater than `score`."""
        s = score - self._base
        if s < 0:
            return self.total()
        if s >= self._limit:
            return 0
        total = 0
        for level in self._levels:
            node = level.get(s >> _BITS)
            if node is not None:
                total += sum(node[(s & _MASK) + 1:])
            s >>= _BITS
        return total

    @property
    def depth(self) -> int:
        """How many levels the tree has: what a rank look-up walks."""
        return len(self._levels)

    def total(self) -> int:
        top = self._levels[-1].get(0)
        return sum(top) if top else 0

    def held(self, score: int) -> int:
        """How many entries hold exactly `score`."""
        s = score - self._base
        if not 0 <= s < self._limit:
            return 0
        node = self._levels[0].get(s >> _BITS)
        return node[s & _MASK] if node is not None else 0

    def below(self, score: int) -> int | None:
        """The greatest held score less than `score`, or None."""
        limit, base = self._limit, self._base
        s = score - base
        if s <= 0:
            return None
        if s >= limit:
            if self.held(base + limit - 1):
                return base + limit - 1
            s = limit - 1
        for k, level in enumerate(self._levels):
            node = level.get(s >> _BITS)
            if node is not None:
                for slot in range((s & _MASK) - 1, -1, -1):
                    if node[slot]:
                        return base + self._descend(k, ((s >> _BITS) << _BITS) | slot, highest=True)
            s >>= _BITS
        return None

    def above_next(self, score: int) -> int | None:
        """The least held score greater than `score`, or None."""
        base = self._base
        s = score - base
        if s < 0:
            if self.held(base):
                return base
            s = 0
        if s + 1 >= self._limit:
            return None
        for k, level in enumerate(self._levels):
            node = level.get(s >> _BITS)
            if node is not None:
                for slot in range((s & _MASK) + 1, _FAN):
                    if node[slot]:
                        return base + self._descend(k, ((s >> _BITS) << _BITS) | slot, highest=False)
            s >>= _BITS
        return None

    def highest(self) -> int | None:
        return self.below(self._base + self._limit)

    def _descend(self, k: int, prefix: int, *, highest: bool) -> int:
        """From a non-empty slot `prefix` at level k, the highest (or lowest) relative score under it."""
        for level in reversed(self._levels[:k]):
            node = level[prefix]
            slots = range(_MASK, -1, -1) if highest else range(_FAN)
            prefix = (prefix << _BITS) | next(i for i in slots if node[i])
        return prefix
