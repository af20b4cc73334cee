from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.history import day_series
from podium.core.periods import (
    DAY,
    DAY_US,
    HOUR_US,
    SEASON,
    WEEK,
    BoardRef,
    PeriodClock,
    base_of,
    board_id,
    describe,
    game_of,
    is_period,
    is_stat_board,
    parse,
    parse_board_id,
    season_board_id,
    stat_board_id,
)
from podium.core.player_state import PeriodStats, PlayerBook, to_us
from podium.core.ranking import unpack
from podium.core.standings import GLOBAL, Standings
from tests.randomness import examples


def us(*args: int) -> int:
    return to_us(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


def test_day_starts_at_the_reset_hour() -> None:
    clock = PeriodClock(reset_hour=6)
    assert clock.start(DAY, us(2026, 11, 22, 5, 59)) == us(2026, 11, 21, 6)
    assert clock.start(DAY, us(2026, 11, 22, 6, 0)) == us(2026, 11, 22, 6)
    assert PeriodClock().start(DAY, us(2026, 11, 22, 23, 59)) == us(2026, 11, 22)


def test_week_is_the_iso_week_from_monday_at_the_reset_hour() -> None:
    clock = PeriodClock(reset_hour=3)
    # 2026-11-23 is a Monday
    assert clock.start(WEEK, us(2026, 11, 23, 2, 59)) == us(2026, 11, 16, 3)
    assert clock.start(WEEK, us(2026, 11, 23, 3)) == us(2026, 11, 23, 3)
    assert datetime.fromtimestamp(clock.start(WEEK, us(2026, 12, 31)) / 1e6, UTC).isoweekday() == 1


def test_only_current_and_previous_periods_are_live() -> None:
    clock, now = PeriodClock(), us(2026, 11, 22, 12)
    assert clock.is_live(DAY, us(2026, 11, 21), now) and clock.is_live(DAY, us(2026, 11, 22), now)
    assert not clock.is_live(DAY, us(2026, 11, 20), now)
    assert clock.live_starts(now) == [(DAY, us(2026, 11, 21)), (DAY, us(2026, 11, 22)),
                                      (WEEK, us(2026, 11, 9)), (WEEK, us(2026, 11, 16))]


def test_reset_hour_is_checked() -> None:
    with pytest.raises(ValueError):
        PeriodClock(24)


def test_board_ids_round_trip_and_describe_the_period() -> None:
    b = board_id("arena", DAY, us(2026, 11, 22))
    assert parse_board_id(b) == ("arena", DAY, us(2026, 11, 22)) and is_period(b)
    assert parse_board_id("arena") == ("arena", "all", None) and not is_period("arena")
    assert describe(b) == {"game_id": "arena", "period": DAY, "period_start": "2026-11-22T00:00:00+00:00",
                           "period_end": "2026-11-23T00:00:00+00:00"}


def test_stat_and_season_board_ids_round_trip_and_describe_the_board() -> None:
    base = stat_board_id("kart-party", "fastest-lap")
    day, season = board_id(base, DAY, us(2026, 12, 7)), season_board_id(base, "winter-26")
    assert parse(base) == BoardRef("kart-party", "fastest-lap", "all")
    assert parse(day) == BoardRef("kart-party", "fastest-lap", DAY, start_us=us(2026, 12, 7))
    assert parse(season) == BoardRef("kart-party", "fastest-lap", SEASON, season_id="winter-26")
    assert parse("kart-party") == BoardRef("kart-party", None, "all") and parse(season).base == base
    assert parse_board_id(season) == (base, SEASON, None)  # no start: never retired by the day/week clock
    assert {base_of(b) for b in (base, day, season)} == {base} and is_period(season) and not is_period(base)
    assert {game_of(b) for b in (base, day, season, "kart-party")} == {"kart-party"}
    assert is_stat_board(season) and not is_stat_board(board_id("kart-party", DAY, 0))
    assert describe(season) == {"game_id": "kart-party", "board_id": "fastest-lap", "period": SEASON,
                                "season_id": "winter-26"}
    assert describe(season, (us(2026, 12, 1), us(2027, 3, 1)))["period_end"] == "2027-03-01T00:00:00+00:00"
    assert describe(day)["period_start"] == "2026-12-07T00:00:00+00:00"
    assert describe(base) == {"game_id": "kart-party", "board_id": "fastest-lap", "period": "all"}


ident = st.text("abcXYZ019_.:@-", min_size=1, max_size=8)


@settings(max_examples=examples(300), deadline=None)
@given(ident, st.one_of(st.none(), ident), st.sampled_from(["all", DAY, WEEK, SEASON]), st.integers(0, 2**53),
       ident)
def test_board_ids_parse_back_to_what_built_them_so_no_two_collide(
        game: str, board: str | None, kind: str, start: int, season: str) -> None:
    base = game if board is None else stat_board_id(game, board)
    built = season_board_id(base, season) if kind == SEASON else board_id(base, kind, start)
    want = BoardRef(game, board, kind, start if kind in (DAY, WEEK) else None, season if kind == SEASON else None)
    assert parse(built) == want


def test_an_unlock_counts_in_its_day_and_week_and_old_periods_are_not_sent() -> None:
    book, now = PlayerBook(), us(2026, 11, 22, 12)
    book.apply(1, "p", "g", 10, us(2026, 11, 19, 8))  # two days ago: out of the live days, same week
    book.apply(2, "p", "g", 5, us(2026, 11, 22, 9))
    updates = book.score_updates({("p", "g")}, now)
    got = {updates.game_ids[i]: updates.points[i] for i in range(len(updates))}
    assert got == {"g": 15, board_id("g", DAY, us(2026, 11, 22)): 5, board_id("g", WEEK, us(2026, 11, 16)): 15}


def test_a_delivered_period_score_is_not_sent_again_unless_a_region_move_reversions_it() -> None:
    book, now = PlayerBook(), us(2026, 11, 22, 12)
    book.region_change("p", "na", 0)
    book.apply(1, "p", "g", 10, us(2026, 11, 21, 8))  # yesterday: a live day, delivered below
    book.apply(2, "p", "g", 5, us(2026, 11, 22, 9))  # today
    yesterday, today = board_id("g", DAY, us(2026, 11, 21)), board_id("g", DAY, us(2026, 11, 22))
    assert yesterday in book.score_updates({("p", "g")}, now).game_ids  # nothing delivered yet
    sent = book.score_updates({("p", "g")}, now, delivered_upto=1).game_ids
    assert yesterday not in sent and {"g", today, board_id("g", WEEK, us(2026, 11, 16))} <= set(sent)
    moved = book.region_change("p", "eu", 3)  # the move must reach yesterday's board too
    updates = book.score_updates(moved, now, delivered_upto=2)
    assert yesterday in updates.game_ids and set(updates.versions) == {3}


def test_closed_periods_are_evicted_only_once_checkpointed() -> None:
    book, now = PlayerBook(), us(2026, 11, 22, 12)
    book.apply(1, "p", "g", 10, us(2026, 11, 2))
    assert book.evict_periods(now) == 0  # still dirty
    book.take_dirty()
    assert book.evict_periods(now) == 2  # its day and its week
    assert book.periods[("p", "g")] == {}


def test_recovered_closed_periods_are_evicted_at_the_first_look() -> None:
    book, now = PlayerBook(), us(2026, 11, 22, 12)
    book.load_period("p", "g", DAY, us(2026, 11, 2), PeriodStats(10, 1, us(2026, 11, 2), 1))
    book.load_period("p", "g", DAY, us(2026, 11, 22), PeriodStats(5, 1, us(2026, 11, 22), 2))
    assert book.evict_periods(now) == 1
    assert list(book.periods[("p", "g")]) == [(DAY, us(2026, 11, 22))]


class SweepingBook(PlayerBook):
    """The eviction as it was: every held period looked at on every call."""

    def evict_periods(self, now_us: int) -> int:
        evicted = 0
        for (player_id, game_id), held in self.periods.items():
            for kind, start in [p for p in held if not self.clock.is_live(p[0], p[1], now_us)]:
                if (player_id, game_id, kind, start) not in self._dirty_periods:
                    del held[(kind, start)]
                    evicted += 1
        return evicted


ops = st.lists(st.one_of(
    st.tuples(st.just("apply"), st.sampled_from("abc"), st.sampled_from(["g1", "g2"]),
              st.integers(min_value=-20 * DAY_US, max_value=0)),  # an unlock stamped up to 20 days back
    st.tuples(st.just("checkpoint"), st.booleans()),  # the write succeeds, or fails (rows go back to dirty)
    st.tuples(st.just("later"), st.integers(min_value=0, max_value=3 * DAY_US))), max_size=80)


@settings(max_examples=examples(200), deadline=None)
@given(ops)
def test_eviction_forgets_what_a_sweep_of_every_period_would(steps: list) -> None:
    """Periods closing as time moves, unlocks stamped in closed periods, failed
    checkpoints: after each eviction the book holds what the full sweep keeps."""
    now = us(2026, 11, 20, 12)
    books = [PlayerBook(), SweepingBook()]
    for seq, step in enumerate(steps, start=1):
        if step[0] == "apply":
            for book in books:
                book.apply(seq, step[1], step[2], 5, now + step[3])
        elif step[0] == "later":
            now += step[1]
        else:
            for book in books:
                dirty = book.take_dirty()
                if not step[1]:
                    book.mark_dirty(dirty)
                    continue
                book.evict_periods(now)
            assert books[0].periods == books[1].periods


def test_history_overlays_memory_on_the_checkpoint_and_fills_gaps() -> None:
    first = us(2026, 11, 20)
    series = day_series([("g", first, 5, 1), ("g", first + DAY_US, 7, 1)], [("g", first + DAY_US, 9, 2)], first, 3)
    assert [(d["points"], d["unlocked"]) for d in series] == [(5, 1), (9, 2), (0, 0)]
    assert series[2]["day_start"] == "2026-11-22T00:00:00+00:00" and series[2]["games"] == []


events = st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from(["g1", "g2"]), st.sampled_from([0, 5, 10, 25]),
                            st.integers(min_value=0, max_value=12 * HOUR_US), st.booleans()),
                  min_size=1, max_size=60)


@settings(max_examples=examples(150), deadline=None)
@given(events, st.integers(min_value=0, max_value=23))
def test_period_boards_agree_with_a_sort_after_any_updates_and_resets(rows: list, reset_hour: int) -> None:
    """Unlocks flow PlayerBook -> Standings as in the actors, with time moving
    across resets and closed periods retired; every live board then equals a
    sort of the journal rows of its period."""
    clock = PeriodClock(reset_hour)
    book, standings = PlayerBook(clock), Standings()
    now = us(2026, 11, 20)
    journal = []
    for seq, (player, game, points, step, retire) in enumerate(rows, start=1):
        now += step
        book.apply(seq, player, game, points, now)
        journal.append((player, game, points, now))
        standings.apply(book.score_updates({(player, game)}, now))
        if retire:
            for board in list(standings.entries):
                _, kind, start = parse_board_id(board)
                if start is not None and not clock.is_live(kind, start, now):
                    standings.drop(board)
    for kind, start in clock.live_starts(now):
        for game in ("g1", "g2"):
            expected: dict[str, list[int]] = {}
            for player, g, points, at in journal:
                if g == game and clock.start(kind, at) == start:
                    held = expected.setdefault(player, [0, at])  # a first unlock sets the time
                    held[0] += points
                    if points > 0:
                        held[1] = at  # time only moves forward here
            board = standings.board(board_id(game, kind, start), GLOBAL)
            got = [unpack(k) for k in board.keys()] if board else []
            want = sorted(((p, pts, at) for p, (pts, at) in expected.items()), key=lambda e: (-e[1], e[2], e[0]))
            assert got == want


def test_period_rows_survive_a_checkpoint_round_trip() -> None:
    book = PlayerBook()
    book.apply(1, "p", "g", 10, us(2026, 11, 22, 1))
    cols = book.take_dirty().period_columns
    again = PlayerBook()
    for p, g, kind, start, pts, n, reached, seq in zip(*cols, strict=True):
        again.load_period(p, g, kind, start, PeriodStats(pts, n, reached, seq))
    assert again.periods == book.periods
    assert sorted(cols[3]) == [us(2026, 11, 16), us(2026, 11, 22)]  # its week, its day
