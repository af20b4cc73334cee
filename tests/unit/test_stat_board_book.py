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
from podium.core.stat_boards import StatBoardBook, board_stats, only, series, unknown_stat_boards
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


def every_op_catalog() -> Catalog:
    """Game g with a desc board per operator (all, day, week and two seasons), each on the stat of its name."""
    boards = {op: StatBoard(op, op, op, "desc", ("all", "day", "week"), (S1, S2))
              for op in ("incr", "max", "min", "set")}
    return Catalog({"g": {}}, boards={"g": boards})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["incr", "max", "min", "set"]),
                          st.integers(-50, 50), st.integers(0, 3 * DAY_US)), min_size=1, max_size=40),
       st.integers(0, 2**32))
def test_a_rebuild_from_the_journal_equals_the_live_fold_and_refolding_changes_nothing(
        updates: list[tuple[str, str, int, int]], seed: int) -> None:
    clock, cat = PeriodClock(), every_op_catalog()
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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["incr", "max", "min", "set"]),
                          st.integers(-50, 50), st.integers(0, 3 * DAY_US)), min_size=1, max_size=40),
       st.data())
def test_a_checkpoint_and_the_rows_after_its_watermark_equal_the_live_fold(
        updates: list[tuple[str, str, int, int]], data: st.DataObject) -> None:
    """Recovery's shape: the checkpoint is taken at some point of the stream, its
    watermark at or before that point (delivered lags journaled); loading it and
    folding the rows after the watermark gives the live values."""
    clock, cat = PeriodClock(), every_op_catalog()
    live = StatBoardBook(clock)
    rows: list[dict[str, Any]] = []
    taken_at = data.draw(st.integers(0, len(updates)))
    watermark = data.draw(st.integers(0, taken_at))
    checkpoint: dict[tuple[str, str, str], tuple[int, int, int]] = {}
    at = T0 - DAY_US
    for seq, (player, op, sent, step) in enumerate([*updates, ("p1", "incr", 0, 0)], 1):
        if seq == taken_at + 1:
            _, cols, _ = live.take_dirty()
            checkpoint.update({(p, g, b): (v, r, s) for p, g, b, v, r, s in zip(*cols, strict=True)})
        if seq > len(updates):
            break
        at += step // 50
        live.fold(cat, seq, player, "g", op, op, sent, at)
        rows.append({"seq": seq, "player_id": player, "game_id": "g", "stat_id": op, "op": op, "value": sent,
                     "updated_at": from_us(at)})
    recovered = StatBoardBook(clock)
    loaded = recovered.load(cat, [(*k, *v) for k, v in checkpoint.items()], T0, series(cat))
    assert loaded == len(checkpoint)
    recovered.rebuild(cat, [r for r in rows if r["seq"] > watermark], to_us)
    assert recovered.held == {pair: held for pair, held in live.held.items() if held}


def test_load_skips_closed_windows_and_series_the_checkpoint_does_not_hold_and_deletes_them() -> None:
    clock = PeriodClock()
    cat = catalog()
    live = StatBoardBook(clock)
    live.fold(cat, 1, "p", "g", "lap", "min", 900, T0)  # day, week, s1
    live.fold(cat, 2, "p", "g", "lap", "min", 800, T0 + 3 * DAY_US)  # a later day and s2 (same week or the next)
    _, cols, gone = live.take_dirty()
    assert gone == [] and len(cols[0]) == len(live.held[("p", "g")])
    rows = list(zip(*cols, strict=True))
    base = stat_board_id("g", "lap")
    day0 = board_id(base, "day", clock.start("day", T0))
    day3 = board_id(base, "day", clock.start("day", T0 + 3 * DAY_US))
    now = T0 + 3 * DAY_US + 1
    book = StatBoardBook(clock)
    assert book.load(cat, rows, now, series(cat)) == len(rows) - 1
    assert day0 not in book.held[("p", "g")] and day3 in book.held[("p", "g")]  # day0 closed: not loaded
    assert book.held[("p", "g")][season_board_id(base, "s1")] == (900, T0, 1)  # s1 ended < 7 days ago: held
    assert book.dirty_count == 1  # day0's row is deleted by the next checkpoint, nothing else is written
    assert book.take_dirty()[2] == [("p", "g", day0)]
    # s1's dates changed in the catalog: its series is not the checkpoint's; its row is not taken, and deleted
    moved = Catalog({"g": {}}, boards={"g": {**cat.boards["g"], "lap": StatBoard(
        "lap", "Lap", "lap", "asc", ("all", "day", "week"), (("s1", T0 - 2 * DAY_US, T0 + 1000), S2))}})
    other = StatBoardBook(clock)
    other.load(moved, rows, now, series(cat))
    assert season_board_id(base, "s1") not in other.held[("p", "g")]
    assert ("p", "g", season_board_id(base, "s1")) in other.take_dirty()[2]
    # ... unless the rebuild of that series holds the value again: then it is written, not deleted
    again = StatBoardBook(clock)
    again.load(moved, rows, now, series(cat))
    again.fold(only(moved, series(moved) - series(cat)), 1, "p", "g", "lap", "min", 900, T0)
    _, cols, gone = again.take_dirty()
    assert ("p", "g", season_board_id(base, "s1")) not in gone
    assert season_board_id(base, "s1") in cols[2]
    # A checkpoint written before any series was held whole: nothing is taken
    assert StatBoardBook(clock).load(cat, rows, now, set()) == 0


def test_only_keeps_just_the_series_asked_for_and_a_catalog_change_forgets_changed_series() -> None:
    cat = catalog()
    base = stat_board_id("g", "lap")
    every = series(cat)
    assert every == {f"{base}#day#lap", f"{base}#week#lap", f"{base}#season#s1#{S1[1]}#{S1[2]}#lap",
                     f"{base}#season#s2#{S2[1]}#{S2[2]}#lap"}  # wins keeps no period
    part = only(cat, {f"{base}#day#lap", f"{base}#season#s2#{S2[1]}#{S2[2]}#lap"})
    assert part.boards == {"g": {"lap": StatBoard("lap", "Lap", "lap", "asc", ("day",), (S2,))}}
    assert only(cat, set()).boards == {}
    book = StatBoardBook(PeriodClock())
    book.fold(part, 1, "p", "g", "lap", "min", 900, T0 + 2000)
    assert set(book.held[("p", "g")]) == {board_id(base, "day", PeriodClock().start("day", T0)),
                                          season_board_id(base, "s2")}
    book.complete = set(every)
    changed = Catalog({"g": {}}, boards={"g": {"lap": StatBoard("lap", "Lap", "wins", "asc", ("all", "day"), ())}})
    book.catalog_changed(changed)
    assert book.complete == set()  # the board ranks another stat now: no series of it is held whole
    book.complete = set(every)
    book.catalog_changed(Catalog({"g": {}}, boards={"g": {"lap": StatBoard("lap", "Lap", "lap", "asc", ("day",), ())}}))
    assert book.complete == {f"{base}#day#lap"}
    # and when the removed ones come back, they stay out: rows folded meanwhile did not count in them
    book.catalog_changed(cat)
    assert book.complete == {f"{base}#day#lap"}


def test_a_forgotten_value_is_deleted_once_and_a_failed_checkpoint_gives_everything_back() -> None:
    clock = PeriodClock()
    cat = catalog()
    book = StatBoardBook(clock)
    book.fold(cat, 1, "p", "g", "lap", "min", 900, T0)
    keys, cols, gone = book.take_dirty()
    assert len(cols[0]) == 3 and gone == [] and book.dirty_count == 0
    book.mark_dirty(keys, gone)  # the write failed
    assert book.dirty_count == 3
    book.take_dirty()
    assert book.evict(cat, T0 + 60 * DAY_US) == 3
    keys, cols, gone = book.take_dirty()
    assert cols[0] == [] and len(gone) == 3
    assert book.dirty_count == 0
