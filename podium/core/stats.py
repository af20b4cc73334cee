"""Player stats, pure: a stat's operator folds an update into its value, thresholds turn a value into unlocks, and
progress says how far a player is from one. The player shard calls `apply` and `due` when it journals a stat
update (the crossing's unlock goes in the same transaction); reads call `progress`. No I/O, no clock."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from podium.wire.errors import OutOfBounds, WrongOperator

SAFE_INT = 2**53 - 1  # every stat value and every sent value lies within +-SAFE_INT: exact in JavaScript's numbers


class Op(StrEnum):
    INCR = "incr"  # value += sent (may be negative); starts from 0
    MAX = "max"  # keep the greater
    MIN = "min"  # keep the lesser
    SET = "set"  # replace


@dataclass(frozen=True, slots=True)
class StatDef:
    """One stat of a game's catalog. Bounds are optional; without them +-SAFE_INT still holds."""

    stat_id: str
    name: str
    op: Op
    min_value: int | None = None
    max_value: int | None = None

    @property
    def low(self) -> int:
        return -SAFE_INT if self.min_value is None else self.min_value

    @property
    def high(self) -> int:
        return SAFE_INT if self.max_value is None else self.max_value


@dataclass(frozen=True, slots=True)
class Threshold:
    """An achievement unlocked by a stat's value: exactly one of at_least / at_most."""

    achievement_id: str
    stat_id: str
    at_least: int | None = None
    at_most: int | None = None

    def __post_init__(self) -> None:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(f"threshold of {self.achievement_id}: exactly one of at_least and at_most")

    def met(self, value: int | None) -> bool:
        """A stat that has no value yet meets no threshold."""
        if value is None:
            return False
        if self.at_least is not None:
            return value >= self.at_least
        assert self.at_most is not None
        return value <= self.at_most

    @property
    def target(self) -> int:
        return self.at_least if self.at_least is not None else self.at_most  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a value is from a threshold. percent is 0..100, rounded down, and 100 only when done; an at_most
    threshold (a best time to beat) has no halfway, so it is 0 or 100."""

    value: int | None
    target: int
    percent: int
    done: bool


def apply(stat: StatDef, current: int | None, op: str, value: int) -> int:
    """The stat's value after one update. Raises WrongOperator when `op` is not the stat's operator and OutOfBounds
    when the sent value (max/min/set) or the result (incr) leaves [min, max] or +-SAFE_INT; the caller then records
    nothing, so `current` stays the value."""
    if op != stat.op.value:
        raise WrongOperator(f"{stat.stat_id} takes {stat.op.value}, not {op}")
    if not -SAFE_INT <= value <= SAFE_INT:  # the edge refuses these already; the core holds its own invariant
        raise OutOfBounds(f"{stat.stat_id}: {value} is outside +-(2**53 - 1)")
    if stat.op is Op.INCR:
        result = (current or 0) + value
        if not stat.low <= result <= stat.high:
            raise OutOfBounds(f"{stat.stat_id}: {current or 0} + {value} = {result} is outside "
                              f"[{stat.low}, {stat.high}]")
        return result
    if not stat.low <= value <= stat.high:
        raise OutOfBounds(f"{stat.stat_id}: {value} is outside [{stat.low}, {stat.high}]")
    if current is None or stat.op is Op.SET:
        return value
    return max(current, value) if stat.op is Op.MAX else min(current, value)


def crossings(thresholds: Iterable[Threshold], before: int | None, after: int) -> list[str]:
    """The achievement ids whose threshold was not met before the update and is met after, in the given order."""
    return [t.achievement_id for t in thresholds if not t.met(before) and t.met(after)]


def due(thresholds: Iterable[Threshold], after: int, unlocked: Callable[[str], bool]) -> list[str]:
    """The achievement ids to unlock once a stat's value is `after`: met, and not yet unlocked by this player. Not
    "not met before": a threshold added or lowered while the player's value already meets it (or an update planned
    against a catalog of before) would otherwise never unlock. The unlock's unique key still makes it once only."""
    return [t.achievement_id for t in thresholds if t.met(after) and not unlocked(t.achievement_id)]


def progress(threshold: Threshold, value: int | None) -> Progress:
    """A player's progress towards a threshold achievement; `value` None when the stat has no value yet."""
    done = threshold.met(value)
    target = threshold.target
    if done:
        percent = 100
    elif threshold.at_least is None or value is None or target <= 0:
        percent = 0  # at_most, no value yet, or a target at or below zero: no meaningful fraction
    else:
        percent = min(99, max(0, value * 100 // target))
    return Progress(value, target, percent, done)
