from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.board_order import SAFE_INT
from podium.core.periods import DAY, WEEK, PeriodClock, board_id, season_board_id, stat_board_id
from podium.core.player_state import to_us
from podium.core.seasons import Season, Seasons
from podium.core.stat_periods import OPS, PeriodValue, boards_at, fold, period_value
from tests.randomness import examples


def us(*args: int) -> int:
    return to_us(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


def run(op: str, *updates: tuple[int, int]) -> PeriodValue | None:
    return period_value(op, updates, 0, 100)


def test_incr_sums_the_increments_of_the_period_from_zero() -> None:
    assert run("incr", (3, 1), (-5, 2), (4, 3)) == (2, 3)
    assert run("incr", (0, 7)) == (0, 7)  # an increment of 0 enters the player at 0
    assert run("incr", (5, 1), (0, 9)) == (5, 1)  # unchanged: still reached at 1


def test_max_and_min_keep_the_best_sent_and_when_it_was_first_reached() -> None:
    assert run("max", (10, 1), (30, 2), (20, 3), (30, 4)) == (30, 2)
    assert run("min", (61_000, 1), (59_000, 2), (59_000, 3), (60_000, 4)) == (59_000, 2)
    assert run("max", (-7, 5)) == (-7, 5)  # no value before the first update, even a negative one


def test_set_keeps_the_last_value_set() -> None:
    assert run("set", (10, 1), (3, 2)) == (3, 2)
    assert run("set", (10, 1), (3, 2), (3, 6)) == (3, 2)  # setting the same value again is not a change
    assert run("set", (10, 1), (3, 2), (10, 6)) == (10, 6)


def test_updates_outside_the_period_do_not_count_and_its_end_is_excluded() -> None:
    assert period_value("incr", [(1, -1), (2, 0), (4, 99), (8, 100)], 0, 100) == (6, 99)
    assert period_value("max", [(9, 100)], 0, 100) is None


def test_an_unchanged_value_returns_what_was_held() -> None:
    held = (5, 1)
    assert fold("max", held, 3, 9) is held and fold("incr", held, 0, 9) is held


def test_an_incr_period_sum_saturates_at_the_safe_range() -> None:
    assert run("incr", (SAFE_INT, 1), (SAFE_INT, 2)) == (SAFE_INT, 1)
    assert run("incr", (-SAFE_INT, 1), (-SAFE_INT, 2)) == (-SAFE_INT, 1)


def test_an_unknown_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        fold("decr", None, 1, 0)


def test_an_update_counts_in_the_day_week_and_season_the_board_has() -> None:
    base, clock = stat_board_id("kart", "lap"), PeriodClock()
    seasons = Seasons([Season("winter-26", us(2026, 12, 1), us(2027, 3, 1))])
    at = us(2026, 12, 7, 10)  # a Monday
    assert boards_at(base, at, clock, ["all", "day", "week"], seasons) == [
        board_id(base, DAY, us(2026, 12, 7)), board_id(base, WEEK, us(2026, 12, 7)),
        season_board_id(base, "winter-26")]
    assert boards_at(base, at, clock, ["all"]) == []
    assert boards_at(base, us(2027, 3, 1), clock, ["week"], seasons) == [board_id(base, WEEK, us(2027, 3, 1))]


@settings(max_examples=examples(200), deadline=None)
@given(st.sampled_from(OPS), st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 10 * 86_400_000_000)),
                                      max_size=30))
def test_folding_as_updates_come_equals_folding_each_period_from_scratch(
        op: str, updates: list[tuple[int, int]]) -> None:
    """What the player shard does (one fold per update into each board it counts
    in) gives every day's, week's and season's value from scratch."""
    base, clock = stat_board_id("g", "b"), PeriodClock()
    seasons = Seasons([Season("s1", 86_400_000_000, 3 * 86_400_000_000), Season("s2", 3 * 86_400_000_000,
                                                                                7 * 86_400_000_000)])
    held: dict[str, PeriodValue] = {}
    for sent, at in updates:
        for board in boards_at(base, at, clock, ["day", "week"], seasons):
            held[board] = fold(op, held.get(board), sent, at)
    windows = {board_id(base, kind, clock.start(kind, at)): (clock.start(kind, at), clock.start(kind, at) +
                                                             (86_400_000_000 if kind == DAY else 7 * 86_400_000_000))
               for _, at in updates for kind in (DAY, WEEK)}
    windows |= {season_board_id(base, s.season_id): (s.start_us, s.end_us) for s in seasons}
    for board, (start, end) in windows.items():
        assert held.get(board) == period_value(op, updates, start, end)
