"""What a stat's value is within a period (a day, a week, a season), per
operator - the value its period boards rank:
  - incr: the sum of the increments made within the period (from 0, so it may
    be negative, and an `incr` of 0 enters the player at 0);
  - max / min: the greatest / least value sent within the period;
  - set: the last value set within the period.
Each is a fold over the period's updates in journal order, starting from no
value; `reached_us` is when the period value last changed (an update that
leaves it as it is, such as an equal best, keeps the earlier time: who got
there first ranks first). Membership is by the update's server time, the same
half-open windows as unlocks (periods.PeriodClock, seasons.Season).
The player shard keeps one PeriodValue per player, stat and live period and
calls `fold` per update. Ray-free, no I/O."""
from __future__ import annotations

from collections.abc import Collection, Iterable

from podium.core.board_order import SAFE_INT
from podium.core.periods import PERIODS, PeriodClock, board_id, season_board_id
from podium.core.seasons import Seasons

PeriodValue = tuple[int, int]  # (value, reached_us)
OPS = ("incr", "max", "min", "set")  # podium/core/stats.Op's values


def fold(op: str, held: PeriodValue | None, sent: int, at_us: int) -> PeriodValue:
    """The period value once an update of `op` sending `sent` at `at_us` is
    applied. Returns `held` itself when the value does not change, so a
    caller can tell that no board needs the update. An incr sum is held
    within +-SAFE_INT (saturating): each all-time value is within it, but a
    period's sum of increments could in principle reach twice that."""
    if op == "incr":
        value = max(-SAFE_INT, min(SAFE_INT, (held[0] if held is not None else 0) + sent))
    elif op == "max":
        value = sent if held is None or sent > held[0] else held[0]
    elif op == "min":
        value = sent if held is None or sent < held[0] else held[0]
    elif op == "set":
        value = sent
    else:
        raise ValueError(f"a stat's operator is one of {', '.join(OPS)}, not {op!r}")
    if held is not None and value == held[0]:
        return held
    return value, at_us


def period_value(op: str, updates: Iterable[tuple[int, int]], start_us: int, end_us: int) -> PeriodValue | None:
    """The period value from scratch: `updates` ((sent, at_us), journal order)
    folded over those within [start_us, end_us); None when none is."""
    held: PeriodValue | None = None
    for sent, at_us in updates:
        if start_us <= at_us < end_us:
            held = fold(op, held, sent, at_us)
    return held


def boards_at(base: str, at_us: int, clock: PeriodClock, periods: Collection[str],
              seasons: Seasons | None = None) -> list[str]:
    """The period and season boards of a stat board (`base`, podium/core/periods.stat_board_id)
    an update at `at_us` counts in: its day and week (those the board has among `periods`)
    and the season open at that time, if any. The all-time board (ALL_TIME
    in `periods`, the stat board's base id) takes the stat's own value, not a period fold: it is not listed."""
    out = [board_id(base, kind, clock.start(kind, at_us)) for kind in PERIODS if kind in periods]
    season = seasons.open_at(at_us) if seasons is not None else None
    if season is not None:
        out.append(season_board_id(base, season.season_id))
    return out

