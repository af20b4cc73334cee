"""Stat updates in a player shard's plan: rejections, duplicates, the value
chain in batch order and threshold crossings; and the stat book's folding."""
from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from podium.core import progress
from podium.core.catalog import Catalog
from podium.core.intake import Crossing, plan_intake
from podium.core.stat_book import StatBook
from podium.core.stats import Op, StatDef, Threshold, apply, due
from podium.wire.errors import PodiumError
from podium.wire.messages import AckStatus, StatUpdate, Unlock, UnlockBatch

STATS = {"g": {"wins": StatDef("wins", "Wins", Op.INCR, 0, 10), "lap": StatDef("lap", "Lap", Op.MIN, 1, 1000),
               "level": StatDef("level", "Level", Op.SET, 1, 100)}}
THRESHOLDS = {("g", "wins"): (Threshold("five", "wins", at_least=5), Threshold("ten", "wins", at_least=10)),
              ("g", "lap"): (Threshold("fast", "lap", at_most=60),),
              ("g", "level"): (Threshold("top", "level", at_least=50),)}
CATALOG = Catalog({"g": {"a": 10, "five": 5, "ten": 10, "fast": 30, "top": 50}}, stats=STATS, thresholds=THRESHOLDS)


def su(player: str, stat: str, op: str, value: int, event: str, game: str = "g") -> StatUpdate:
    return StatUpdate(player, game, stat, op, value, event)


def test_rejections_name_what_is_wrong_and_record_nothing() -> None:
    batch = UnlockBatch.of([su("p", "wins", "incr", 1, "e0", game="nope"), su("p", "nope", "incr", 1, "e1"),
                            su("p", "wins", "max", 1, "e2"), su("p", "wins", "incr", 11, "e3"),
                            su("p", "wins", "incr", -1, "e4"), su("p", "lap", "min", 0, "e5")])
    plan = plan_intake(batch, CATALOG)
    assert plan.statuses == [AckStatus.REJECTED] * 6
    assert plan.reasons == ["unknown_game", "unknown_stat", "wrong_operator", "out_of_bounds", "out_of_bounds",
                            "out_of_bounds"]
    assert plan.stat_rows == [] and plan.rows == [] and plan.unknown_seen


def test_updates_of_one_stat_apply_one_after_the_other_in_batch_order() -> None:
    batch = UnlockBatch.of([su("p", "wins", "incr", 4, "e1"), su("p", "wins", "incr", 4, "e2"),
                            su("p", "wins", "incr", 4, "e3"),  # 13 > max 10: refused, the chain stays at 9
                            su("p", "wins", "incr", 1, "e4"), su("q", "wins", "incr", 3, "e1")])
    plan = plan_intake(batch, CATALOG, lambda p, g, s: 1 if p == "p" else None)
    assert plan.stat_rows == [0, 1, 3, 4]
    assert plan.values_after == [5, 9, 10, 3]
    assert plan.statuses == [None, None, AckStatus.REJECTED, None, None] and plan.reasons[2] == "out_of_bounds"
    assert plan.crossings == [Crossing(0, "five", 5), Crossing(3, "ten", 10)]
    assert plan.rows == [0, 1, 3, 4]


def test_a_resent_event_is_a_duplicate_whatever_it_carries_and_leaves_the_chain_alone() -> None:
    batch = UnlockBatch.of([su("p", "wins", "incr", 4, "e1"), su("p", "wins", "max", 99, "e1"),
                            su("p", "wins", "incr", 1, "e2"), su("p", "wins", "incr", 2, "e3")])
    # e2 is journaled already (its value is in `current`): a duplicate, even though it is valid
    plan = plan_intake(batch, CATALOG, lambda p, g, s: 4, journaled={2})
    assert plan.statuses == [None, AckStatus.DUPLICATE, AckStatus.DUPLICATE, None]
    assert plan.stat_rows == [0, 3] and plan.values_after == [8, 10]
    assert plan.crossings == [Crossing(0, "five", 5), Crossing(3, "ten", 10)]


def test_a_journaled_event_is_a_duplicate_even_if_it_is_now_invalid() -> None:
    batch = UnlockBatch.of([su("p", "wins", "max", 1, "e1"), su("p", "nope", "incr", 1, "e2")])
    plan = plan_intake(batch, CATALOG, journaled={0, 1})
    assert plan.statuses == [AckStatus.DUPLICATE, AckStatus.DUPLICATE] and plan.rows == []


def test_crossings_happen_once_per_round_and_an_unlock_item_of_the_same_achievement_is_a_duplicate() -> None:
    batch = UnlockBatch.of([su("p", "level", "set", 60, "e1"), su("p", "level", "set", 10, "e2"),
                            su("p", "level", "set", 70, "e3"), Unlock("p", "g", "top"), Unlock("p", "g", "a")])
    plan = plan_intake(batch, CATALOG, lambda p, g, s: 5)
    assert plan.values_after == [60, 10, 70]
    assert plan.crossings == [Crossing(0, "top", 50)]  # e3 crosses again, but the round unlocks it once
    assert plan.statuses[3] is AckStatus.DUPLICATE and plan.journal_rows == [4]
    # an unlock item before the crossing: the item inserts it, the crossing adds nothing
    batch = UnlockBatch.of([Unlock("p", "g", "top"), su("p", "level", "set", 60, "e1")])
    plan = plan_intake(batch, CATALOG, lambda p, g, s: 5)
    assert plan.journal_rows == [0] and plan.crossings == [] and plan.stat_rows == [1]


def test_a_threshold_met_already_unlocks_unless_known_unlocked() -> None:
    """A threshold added or lowered while the value meets it (or an update planned against the catalog of before)
    unlocks with the player's next update of the stat: met after, not known unlocked; "not met before" never would."""
    batch = UnlockBatch.of([su("p", "wins", "incr", 1, "e1"), su("q", "wins", "incr", 1, "e1"),
                            su("p", "lap", "min", 70, "e2")])
    plan = plan_intake(batch, CATALOG, lambda p, g, s: 5 if s == "wins" else 40)  # both met before (five; fast)
    assert plan.crossings == [Crossing(0, "five", 5), Crossing(1, "five", 5), Crossing(2, "fast", 30)]
    known = {("p", "g", "five"), ("p", "g", "fast")}
    plan = plan_intake(batch, CATALOG, lambda p, g, s: 5 if s == "wins" else 40,
                       unlocked=lambda p, g, a: (p, g, a) in known)
    assert plan.crossings == [Crossing(1, "five", 5)] and plan.values_after == [6, 6, 40]
    assert due([Threshold("five", "wins", at_least=5)], 9, lambda a: False) == ["five"]
    assert due([Threshold("five", "wins", at_least=5)], 4, lambda a: False) == []


def test_the_stat_book_knows_which_threshold_unlocks_are_journaled() -> None:
    book = StatBook()
    assert not book.unlocked("p", "g", "five")
    book.unlocks.add(("p", "g", "five"))
    assert book.unlocked("p", "g", "five") and not book.unlocked("q", "g", "five")


def test_min_stats_cross_at_most_thresholds_from_no_value() -> None:
    batch = UnlockBatch.of([su("p", "lap", "min", 90, "e1"), su("p", "lap", "min", 95, "e2"),
                            su("p", "lap", "min", 55, "e3")])
    plan = plan_intake(batch, CATALOG)
    assert plan.values_after == [90, 90, 55] and plan.crossings == [Crossing(2, "fast", 30)]


def test_batch_columns_stay_aligned_through_take_and_concat() -> None:
    unlocks = UnlockBatch.of([Unlock("p", "g", "a", "eu", 1)])
    assert not unlocks.has_stats and unlocks.stat_ids == []
    mixed = UnlockBatch.of([Unlock("p", "g", "a"), su("q", "wins", "incr", 2, "e1")])
    merged = UnlockBatch.concat([unlocks, mixed])
    assert merged.stat_ids == [None, None, "wins"] and merged.values == [None, None, 2]
    assert merged.key(0) == ("p", "g", "a") and merged.key(2) == ("q", "g", "#e1")
    assert merged.take([0, 1]).stat_ids == [] and merged.take([2]).event_ids == ["e1"]
    assert UnlockBatch.concat([unlocks, unlocks]).stat_ids == []


def test_the_stat_book_folds_newer_rows_only_and_hands_back_dirty_values() -> None:
    book = StatBook()
    book.load("p", "g", "wins", 3, 100, 10)
    assert not book.fold(10, "p", "g", "wins", 99, 200)  # in the checkpoint already
    assert book.fold(12, "p", "g", "wins", 5, 200) and book.value("p", "g", "wins") == 5
    older = {"seq": 11, "player_id": "p", "game_id": "g", "stat_id": "wins", "value_after": 4,
             "updated_at": datetime(2026, 12, 7, tzinfo=UTC)}
    assert book.replay([older]) == 0  # older than the held one: nothing moves
    keys, cols = book.take_dirty()
    assert keys == {("p", "g", "wins")} and cols == (["p"], ["g"], ["wins"], [5], [200], [12])
    assert book.dirty_count == 0
    book.mark_dirty(keys)
    assert book.dirty_count == 1 and book.of("p", "g") == {"wins": 5} and book.value("p", "g", "nope") is None
    book.fold(1, "p", "g", "lap", 70, 300)
    assert len(book) == 2


UPDATES = st.lists(st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["wins", "lap", "level"]),
                             st.integers(-3, 120), st.integers(0, 12)), max_size=40)


@given(UPDATES, st.sets(st.integers(0, 39), max_size=8))
def test_the_plan_equals_applying_the_updates_one_by_one(updates: list, journaled: set[int]) -> None:
    """Model: walk the items in order; a journaled or repeated event is skipped, a refused one leaves the value,
    and an achievement is unlocked the first time its threshold is met (nothing is unlocked before the batch)."""
    ops = {"wins": "incr", "lap": "min", "level": "set"}
    items = [su(p, s, ops[s], v, f"e{e}") for p, s, v, e in updates]
    journaled = {i for i in journaled if i < len(items)}
    plan = plan_intake(UnlockBatch.of(items), CATALOG, journaled=journaled)
    values: dict[tuple[str, str], int] = {}
    seen: set[tuple[str, str]] = set()
    unlocked: set[tuple[str, str]] = set()
    rows, after, crossed = [], [], []
    for i, u in enumerate(items):
        if i in journaled or (u.player_id, u.event_id) in seen:
            seen.add((u.player_id, u.event_id))
            continue
        before = values.get((u.player_id, u.stat_id))
        try:
            value = apply(STATS["g"][u.stat_id], before, u.op, u.value)
        except PodiumError:
            continue
        seen.add((u.player_id, u.event_id))
        values[(u.player_id, u.stat_id)] = value
        rows.append(i)
        after.append(value)
        for t in THRESHOLDS[("g", u.stat_id)]:
            if t.met(value) and (u.player_id, t.achievement_id) not in unlocked:
                unlocked.add((u.player_id, t.achievement_id))
                crossed.append((i, t.achievement_id))
    assert plan.stat_rows == rows and plan.values_after == after
    assert [(c.index, c.achievement_id) for c in plan.crossings] == crossed


def test_progress_lists_every_threshold_achievement_and_every_stat() -> None:
    out = progress.body(CATALOG, "p", "g", {"wins": 7, "lap": 61})
    assert out["stats"] == {"lap": 61, "level": None, "wins": 7}
    assert out["achievements"] == [
        {"achievement_id": "fast", "stat_id": "lap", "value": 61, "target": 60, "percent": 0, "done": False},
        {"achievement_id": "five", "stat_id": "wins", "value": 7, "target": 5, "percent": 100, "done": True},
        {"achievement_id": "ten", "stat_id": "wins", "value": 7, "target": 10, "percent": 70, "done": False},
        {"achievement_id": "top", "stat_id": "level", "value": None, "target": 50, "percent": 0, "done": False}]
    assert progress.body(CATALOG, "p", "other", {})["achievements"] == []


def test_progress_events_only_for_thresholds_that_moved() -> None:
    assert progress.events(CATALOG, "g", "wins", 3, 3) == []
    moved = progress.events(CATALOG, "g", "wins", 6, 8)  # "five" was met before and still is: no event
    assert [(e["type"], e["achievement_id"], e["value"], e["percent"]) for e in moved] == [("progress", "ten", 8, 80)]
    crossed = progress.events(CATALOG, "g", "wins", None, 5)
    assert [(e["achievement_id"], e["done"]) for e in crossed] == [("five", True), ("ten", False)]


def test_keys_are_each_items_key_in_order() -> None:
    mixed = UnlockBatch.concat([UnlockBatch.of([Unlock("p", "g", "a")]),
                                UnlockBatch.of([StatUpdate("p", "g", "wins", "incr", 1, "e1")]),
                                UnlockBatch.of([Unlock("q", "g", "b")])])
    assert mixed.keys() == [mixed.key(i) for i in range(len(mixed))] == [("p", "g", "a"), ("p", "g", "#e1"),
                                                                         ("q", "g", "b")]
    plain = UnlockBatch.of([Unlock("p", "g", "a"), Unlock("p", "h", "a")])
    assert plain.keys() == [plain.key(i) for i in range(len(plain))]
