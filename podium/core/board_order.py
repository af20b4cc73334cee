"""How a board turns a value into the score its engine ranks (podium/core/ranking.py:
highest score first, in a radix tree of non-negative counts) and back. Three
orders share that one engine: achievement points (the score is the points),
and a stat board's `desc` and `asc` orders, which map a stat value within
+-SAFE_INT into [0, 2**55): `desc` as MID + value, `asc` as
(2**55 - 1 - MID) - value, so the lowest value of an asc board is its
highest score. An asc score is the desc score with its 55 bits flipped: an
asc board's radix tree is the mirror image of the desc board's over the same
values (same levels, same nodes), and both cost one add and one multiply by
+-1 per key - so an asc read costs what a desc read costs. MID puts value 0
in the middle of its node at every level of the tree (binary 10000 per
5-bit digit), so values on both sides of 0 need no deeper a tree than
values spread as widely on one side (the tree's depth follows the spread of
what it holds, podium/core/score_counts.py). Reads, cursors and rank changes
carry the real value; only the keys inside a board hold the score.
Ray-free, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SAFE_INT: Final = 2**53 - 1  # a stat value's bound (safe in JavaScript): the same as podium/core/stats.SAFE_INT
STAT_BITS: Final = 55  # a stat board's scores: 11 levels of 5 bits
MID: Final = sum(16 << (5 * k) for k in range(11))  # 0b10000_10000_..._10000: the middle at every level
TIME_BITS: Final = 53  # microseconds since the epoch fit until the year 2255
TIME_MASK: Final = (1 << TIME_BITS) - 1

SortKey = tuple[int, str]  # ((-score << TIME_BITS) | reached_us, player_id): ascending is the board's order


@dataclass(frozen=True, slots=True)
class Order:
    """score = sign * value + offset; value = sign * (score - offset). `low`
    and `high` bound the values the order accepts (None: unbounded above)."""

    name: str
    sign: int
    offset: int
    low: int
    high: int | None

    def accepts(self, value: int) -> bool:
        return self.low <= value and (self.high is None or value <= self.high)

    def score(self, value: int) -> int:
        if not self.accepts(value):
            raise ValueError(f"{value} is outside what a {self.name} board holds")
        return self.sign * value + self.offset

    def value(self, score: int) -> int:
        return self.sign * (score - self.offset)

    def key(self, player_id: str, value: int, reached_us: int) -> SortKey:
        return (-self.score(value) << TIME_BITS) | reached_us, player_id

    def unpack(self, key: SortKey) -> tuple[str, int, int]:
        """(player_id, value, reached_us) of a key this order built."""
        packed, player_id = key
        return player_id, self.sign * (-(packed >> TIME_BITS) - self.offset), packed & TIME_MASK

    @property
    def is_stat(self) -> bool:
        return self.name != "points"


POINTS: Final = Order("points", 1, 0, 0, None)  # achievement points: never negative, the score as it is
DESC: Final = Order("desc", 1, MID, -SAFE_INT, SAFE_INT)  # a stat board, highest value first
ASC: Final = Order("asc", -1, (1 << STAT_BITS) - 1 - MID, -SAFE_INT, SAFE_INT)  # lowest first: desc's mirror
STAT_ORDERS: Final = {DESC.name: DESC, ASC.name: ASC}


def stat_order(name: str) -> Order:
    """The order a catalog board names ("desc" or "asc")."""
    order = STAT_ORDERS.get(name)
    if order is None:
        raise ValueError(f"a board's order is asc or desc, not {name!r}")
    return order
