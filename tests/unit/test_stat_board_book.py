"""The player shard's stat board values (podium/core/stat_boards.py): folded per
update into the boards of its stat, the same after a rebuild from the journal
rows as when folded live (whatever the seq order of duplicates), sent with
versions that skip what a leaderboard has, and season membership by time."""
from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.catalog import Catalog, StatBoard
from podium.core.periods import DAY_US, PeriodClock, board_id, season_board_id, stat_board_id
from podium.core.player_state import from_us, to_us
from podium.core.stat_boards import StatBoardBook, board_stats, unknown_stat_boards
from podium.core.stat_book import StatBook
from podium.wire.messages import ScoreUpdates

T0 = 1_796_000_000_000_000  # some Monday-ish µs
S1 = ("s1", T0 - DAY_US, T0 + 1000)
S2 = ("s2", T0 + 1000, T0 + 10 * DAY_US)


def catalog(op_order: str = "asc") -> Catalog:
    return Catalog({"g": {}}, boards={"g": {
        "lap": StatBoard("lap", "Lap", "lap", op_order, ("all", "day", "week"), (S1, S2)),
        "wins": StatBoard("wins", "Wins", "wins", "desc", ("all",), ()),
    }})


def test_an_update_counts_in_the_day_week_and_the_season_open_at_its_time() -> None:
    clock = PeriodClock()
    book = StatBoardBook(clock)
    cat = catalog()
    assert book.fold(cat, 1, "p", "g", "lap", "min", 900, T0)
    assert book.fold(cat, 2, "p", "g", "lap", "min", 950, T0 + 999)  # worse: s1's value stays 900 at T0
    assert book.fold(cat, 3, "p", "g", "lap", "min", 800, T0 + 1000)  # at s1's end: in s2 only
    base = stat_board_id("g", "lap")
    held = book.held[("p", "g")]
    assert held[season_board_id(base, "s1")] == (900, T0, 1)
    assert held[season_board_id(base, "s2")] == (800, T0 + 1000, 3)
    assert held[board_id(base, "day", clock.start("day", T0))][0] == 800
    assert not book.fold(cat, 4, "p", "g", "other", "set", 1, T0)  # no board on that stat


def test_rows_carry_the_all_time_value_from_the_stat_book_and_skip_delivered_periods() -> None:
    clock = PeriodClock()
    book, stats = StatBoardBook(clock), StatBook()
    cat = catalog()
    for seq, (sent, at) in enumerate([(900, T0), (700, T0 + 5), (700, T0 + 9)], 1):
        after = min(sent, stats.value("p", "g", "lap") or sent)
        stats.fold(seq, "p", "g", "lap", after, at)
        book.fold(cat, seq, "p", "g", "lap", "min", sent, at)
    rows = {r[1]: r for r in book.rows(cat, stats, [("p", "g")], T0 + 10, 0)}
    base = stat_board_id("g", "lap")
    assert rows[base] == ("p", base, 700, T0 + 5, 3)  # an equal best keeps the time it was reached
    assert rows[season_board_id(base, "s1")][2:] == (700, T0 + 5, 2)
    later = {r[1] for r in book.rows(cat, stats, [("p", "g")], T0 + 10, 2)}
    assert later == {base}  # the period values (version 2) reached the board already; all-time always goes
    moved = {r[1]: r[4] for r in book.rows(cat, stats, [("p", "g")], T0 + 10, 2, lambda _, seq: max(seq, 9))}
    assert moved[season_board_id(base, "s1")] == 9  # a region move re-versions every value past the watermark


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["incr", "max", "min", "set"]),
                          st.integers(-50, 50), st.integers(0, 3 * DAY_US)), min_size=1, max_size=40),
       st.integers(0, 2**32))
def test_a_rebuild_from_the_journal_equals_the_live_fold_and_refolding_changes_nothing(
        updates: list[tuple[str, str, int, int]], seed: int) -> None:
    clock = PeriodClock()
    boards = {op: StatBoard(op, op, op, "desc", ("all", "day", "week"), (S1, S2))
              for op in ("incr", "max", "min", "set")}
    cat = Catalog({"g": {}}, boards={"g": boards})
    live = StatBoardBook(clock)
    rows: list[dict[str, Any]] = []
    at = T0 - DAY_US
    for seq, (player, op, sent, step) in enumerate(updates, 1):
        at += step // 50
        live.fold(cat, seq, player, "g", op, op, sent, at)
        rows.append({"seq": seq, "player_id": player, "game_id": "g", "stat_id": op, "op": op, "value": sent,
                     "updated_at": from_us(at)})
    rebuilt = StatBoardBook(clock)
    rebuilt.rebuild(cat, rows, to_us)
    assert rebuilt.held == live.held
    again = random.Random(seed).sample(rows, len(rows))  # a reconcile folding rows it has: nothing moves
    rebuilt.rebuild(cat, again, to_us)
    assert rebuilt.held == live.held


def test_evict_forgets_closed_days_and_seasons_long_closed() -> None:
    clock = PeriodClock()
    book = StatBoardBook(clock)
    cat = catalog()
    book.fold(cat, 1, "p", "g", "lap", "min", 900, T0)
    assert len(book.held[("p", "g")]) == 3  # day, week, s1
    assert book.evict(cat, T0 + 60 * DAY_US) == 3
    # A rebuild reads from the previous week's start, or the oldest season still held if it is older.
    assert book.window_start(cat, T0) == min(S1[1], clock.previous("week", T0))
    old = Catalog({"g": {}}, boards={"g": {"lap": StatBoard("lap", "Lap", "lap", "asc", ("all",),
                                                            (("s0", T0 - 30 * DAY_US, T0 + 1),))}})
    assert book.window_start(old, T0) == T0 - 30 * DAY_US


def test_a_board_removed_from_the_catalog_is_neither_sent_nor_kept() -> None:
    """A removed board's values would be refused (or skipped) by a leaderboard
    that does not know it on every resend: the book sends none and evicts them."""
    book = StatBoardBook(PeriodClock())
    cat = catalog()
    book.fold(cat, 1, "p", "g", "lap", "min", 900, T0)
    book.fold(cat, 2, "p", "g", "wins", "incr", 1, T0)
    stats = StatBook()
    removed = Catalog({"g": {}}, boards={"g": {"wins": cat.boards["g"]["wins"]}})
    sent = {ident for _, ident, *_ in book.rows(removed, stats, [("p", "g")], T0, 0)}
    assert not any(ident.startswith(stat_board_id("g", "lap")) for ident in sent)
    of_lap = [i for i in book.held[("p", "g")] if i.startswith(stat_board_id("g", "lap"))]
    assert of_lap and book.evict(removed, T0) == len(of_lap)
    assert all(not i.startswith(stat_board_id("g", "lap")) for i in book.held[("p", "g")])
    # Still in the catalog: sent as before.
    assert {ident for _, ident, *_ in book.rows(cat, stats, [("p", "g")], T0, 0)} == set(book.held[("p", "g")])


def test_unknown_stat_boards_names_only_stat_boards_the_orders_lack() -> None:
    lap, wins = stat_board_id("g", "lap"), stat_board_id("g", "wins")
    ids = {"g", board_id("g", "day", T0), lap, season_board_id(lap, "s1"), wins + "#day#5"}
    assert unknown_stat_boards(ids, {lap}) == {wins + "#day#5"}
    assert unknown_stat_boards(ids, {lap, wins}) == set()


def test_score_updates_without_keeps_the_other_rows_in_order() -> None:
    updates = ScoreUpdates()
    for i, board in enumerate(["a", "b", "a", "c"]):
        updates.add(f"p{i}", board, None, i, i, i)
    kept = updates.without({"a"})
    assert (kept.player_ids, kept.game_ids, kept.points, kept.versions) == (["p1", "p3"], ["b", "c"], [1, 3], [1, 3])
    assert updates.without(set()) is updates


def test_board_stats_names_each_ranked_game_stat_once() -> None:
    cat = Catalog({"g": {}, "h": {}}, boards={
        "g": {"lap": StatBoard("lap", "Lap", "lap", "asc", ("all",), ()),
              "lap2": StatBoard("lap2", "Lap 2", "lap", "desc", ("day",), ()),
              "wins": StatBoard("wins", "Wins", "wins", "desc", ("all",), ())},
        "h": {}})
    assert board_stats(cat) == [("g", "lap"), ("g", "wins")]
