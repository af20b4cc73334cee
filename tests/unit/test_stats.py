"""The stat operators, bounds, threshold crossings and progress (podium/core/stats.py): worked cases, then
properties over random update sequences (derandomized in `make test`, tests/randomness.py)."""
from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.stats import SAFE_INT, Op, StatDef, Threshold, apply, crossings, progress
from podium.wire.errors import OutOfBounds, PodiumError, WrongOperator, from_code
from podium.wire.messages import Reason
from tests.randomness import examples

WINS = StatDef("races_won", "Races won", Op.INCR, min_value=0)
LAP = StatDef("best_lap_ms", "Best lap (ms)", Op.MIN, min_value=1, max_value=3_600_000)
SPEED = StatDef("top_speed", "Top speed", Op.MAX)
LEVEL = StatDef("level", "Level", Op.SET, min_value=1, max_value=100)


def test_incr_starts_from_zero_and_may_go_down() -> None:
    assert apply(WINS, None, "incr", 3) == 3
    assert apply(WINS, 3, "incr", -2) == 1


def test_incr_bounds_hold_the_result_not_the_sent_value() -> None:
    with pytest.raises(OutOfBounds):
        apply(WINS, 1, "incr", -2)  # 1 - 2 < min 0
    assert apply(WINS, 5, "incr", -5) == 0
    capped = StatDef("x", "x", Op.INCR, max_value=10)
    assert apply(capped, -100, "incr", 105) == 5  # a sent value past max is fine when the result is not


def test_max_min_set_keep_the_greater_the_lesser_the_last() -> None:
    assert apply(SPEED, None, "max", -7) == -7  # no value until the first update, not 0
    assert apply(SPEED, 10, "max", 4) == 10
    assert apply(SPEED, 10, "max", 12) == 12
    assert apply(LAP, None, "min", 70_000) == 70_000
    assert apply(LAP, 70_000, "min", 80_000) == 70_000
    assert apply(LAP, 70_000, "min", 59_000) == 59_000
    assert apply(LEVEL, 50, "set", 3) == 3


def test_max_min_set_bounds_hold_the_sent_value() -> None:
    with pytest.raises(OutOfBounds):
        apply(LAP, 70_000, "min", 0)  # below min 1, even though min() would keep it
    with pytest.raises(OutOfBounds):
        apply(LAP, 70_000, "min", 3_600_001)  # above max, even though min() would drop it
    with pytest.raises(OutOfBounds):
        apply(LEVEL, 5, "set", 101)


def test_values_past_the_safe_integer_are_out_of_bounds_without_explicit_bounds() -> None:
    with pytest.raises(OutOfBounds):
        apply(SPEED, None, "max", SAFE_INT + 1)
    with pytest.raises(OutOfBounds):
        apply(StatDef("x", "x", Op.INCR), SAFE_INT, "incr", 1)
    assert apply(StatDef("x", "x", Op.INCR), SAFE_INT - 1, "incr", 1) == SAFE_INT
    with pytest.raises(OutOfBounds):
        apply(StatDef("x", "x", Op.INCR), -SAFE_INT, "incr", 2 * SAFE_INT)  # a sent value past it, whatever the sum


def test_an_operator_other_than_the_stats_is_refused() -> None:
    for op in ("max", "min", "set", "INCR", "add", ""):
        with pytest.raises(WrongOperator):
            apply(WINS, 1, op, 1)
    assert apply(WINS, 1, Op.INCR, 1) == 2  # the enum is its string


def test_a_threshold_needs_exactly_one_bound() -> None:
    with pytest.raises(ValueError):
        Threshold("a", "s")
    with pytest.raises(ValueError):
        Threshold("a", "s", at_least=1, at_most=2)
    assert Threshold("a", "s", at_most=7).target == 7


def test_crossings_are_the_thresholds_newly_met() -> None:
    century = Threshold("century", "races_won", at_least=100)
    ten = Threshold("ten", "races_won", at_least=10)
    assert crossings([ten, century], None, 100) == ["ten", "century"]
    assert crossings([ten, century], 10, 100) == ["century"]
    assert crossings([ten, century], 100, 150) == []
    assert crossings([ten, century], 100, 5) == []  # falling below is no event
    sub_minute = Threshold("sub-minute", "best_lap_ms", at_most=59_999)
    assert crossings([sub_minute], None, 59_999) == ["sub-minute"]
    assert crossings([sub_minute], 60_000, 61_000) == []
    assert crossings([Threshold("zero", "s", at_least=0)], None, 0) == ["zero"]  # no value is not 0


def test_progress_rounds_down_and_is_100_only_when_done() -> None:
    century = Threshold("century", "races_won", at_least=100)
    assert progress(century, None) == progress(century, None)
    assert (progress(century, None).percent, progress(century, None).done) == (0, False)
    assert progress(century, 57).percent == 57
    assert progress(century, 99).percent == 99
    assert (progress(century, 100).percent, progress(century, 100).done) == (100, True)
    assert progress(century, 250).percent == 100
    assert progress(Threshold("c", "s", at_least=3), 2).percent == 66
    assert progress(Threshold("c", "s", at_least=1000), 999).percent == 99
    assert progress(century, -5).percent == 0
    sub_minute = Threshold("sub-minute", "best_lap_ms", at_most=59_999)
    assert (progress(sub_minute, 60_000).percent, progress(sub_minute, 59_999).percent) == (0, 100)
    negative = Threshold("n", "s", at_least=-10)
    assert (progress(negative, -20).percent, progress(negative, -10).percent) == (0, 100)
    assert progress(century, 57).target == 100 and progress(century, 57).value == 57


def test_the_three_errors_travel_as_codes_and_are_ack_reasons() -> None:
    from podium.wire.errors import UnknownStat

    for cls, reason in ((UnknownStat, Reason.UNKNOWN_STAT), (WrongOperator, Reason.WRONG_OPERATOR),
                        (OutOfBounds, Reason.OUT_OF_BOUNDS)):
        assert cls.code == reason.value
        again = from_code(cls.code, "detail")
        assert type(again) is cls and str(again) == "detail" and isinstance(again, PodiumError)


# ---- properties -------------------------------------------------------------------------------

SMALL = st.integers(-60, 60)
VALUES = st.one_of(SMALL, SMALL, SMALL, st.integers(-SAFE_INT - 5, SAFE_INT + 5))  # mostly small, some huge


@st.composite
def stats(draw: st.DrawFn, ops: tuple[Op, ...] = tuple(Op)) -> StatDef:
    op = draw(st.sampled_from(ops))
    low = draw(st.one_of(st.none(), SMALL))
    high = draw(st.one_of(st.none(), st.integers(low if low is not None else -60, 60)))
    return StatDef("s", "S", op, low, high)


@st.composite
def thresholds_for(draw: st.DrawFn, stat: StatDef) -> list[Threshold]:
    """What the catalog allows: at_least on incr/max/set, at_most on min/set."""
    kinds = {Op.INCR: ["at_least"], Op.MAX: ["at_least"], Op.MIN: ["at_most"], Op.SET: ["at_least", "at_most"]}
    out = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds[stat.op]))
        out.append(Threshold(f"a{i}", stat.stat_id, **{kind: draw(SMALL)}))
    return out


def model(stat: StatDef, values: list[int]) -> tuple[int | None, list[bool]]:
    """The value a sequence should end on, and which updates are accepted, computed another way: bounds on the
    sent value do not depend on the state, so max/min/set are a max/min/last over the values in bounds."""
    low, high = stat.low, stat.high
    if stat.op is Op.INCR:
        total, accepted = 0, []
        for v in values:
            ok = abs(v) <= SAFE_INT and low <= total + v <= high
            total += v if ok else 0
            accepted.append(ok)
        return (total if any(accepted) else None), accepted
    accepted = [low <= v <= high for v in values]
    kept = [v for v, ok in zip(values, accepted, strict=True) if ok]
    if not kept:
        return None, accepted
    return {Op.MAX: max(kept), Op.MIN: min(kept), Op.SET: kept[-1]}[stat.op], accepted


def fold(stat: StatDef, values: list[int], thresholds: Sequence[Threshold] = ()) -> tuple[
        int | None, list[bool], list[str], list[int | None]]:
    """Fold the updates as the player shard does: a rejected update records nothing and keeps the value."""
    current: int | None = None
    accepted: list[bool] = []
    fired: list[str] = []
    seen: list[int | None] = []
    for v in values:
        try:
            after = apply(stat, current, stat.op.value, v)
        except OutOfBounds:
            accepted.append(False)
        else:
            accepted.append(True)
            fired += crossings(thresholds, current, after)
            current = after
        seen.append(current)
    return current, accepted, fired, seen


@settings(max_examples=examples(400), deadline=None)
@given(st.data())
def test_a_folded_sequence_equals_the_model_and_never_leaves_its_bounds(data: st.DataObject) -> None:
    stat = data.draw(stats())
    values = data.draw(st.lists(VALUES, max_size=30))
    current, accepted, _, seen = fold(stat, values)
    expected, expected_accepted = model(stat, values)
    assert accepted == expected_accepted  # rejected exactly when the model rejects
    assert current == expected
    for value in seen:
        assert value is None or stat.low <= value <= stat.high


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_a_rejected_update_leaves_the_value_unchanged(data: st.DataObject) -> None:
    stat = data.draw(stats())
    values = data.draw(st.lists(VALUES, min_size=1, max_size=20))
    _, accepted, _, seen = fold(stat, values)
    for i, ok in enumerate(accepted):
        if not ok:
            assert seen[i] == (seen[i - 1] if i else None)


@settings(max_examples=examples(400), deadline=None)
@given(st.data())
def test_crossings_fire_exactly_once_along_a_monotone_sequence(data: st.DataObject) -> None:
    stat = data.draw(stats((Op.INCR, Op.MAX, Op.MIN)))
    thresholds = data.draw(thresholds_for(stat))
    values = data.draw(st.lists(st.integers(0, 60) if stat.op is Op.INCR else VALUES, max_size=30))
    current, _, fired, _ = fold(stat, values, thresholds)
    assert len(fired) == len(set(fired))  # at most once each
    assert set(fired) == {t.achievement_id for t in thresholds if t.met(current)}  # and once if met at the end


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_every_threshold_met_at_the_end_fired_on_the_way_whatever_the_operator(data: st.DataObject) -> None:
    stat = data.draw(stats())
    thresholds = data.draw(thresholds_for(stat))
    values = data.draw(st.lists(VALUES, max_size=30))
    current, _, fired, _ = fold(stat, values, thresholds)
    assert {t.achievement_id for t in thresholds if t.met(current)} <= set(fired)


@settings(max_examples=examples(300), deadline=None)
@given(SMALL, st.one_of(st.none(), SMALL), st.one_of(st.none(), SMALL))
def test_progress_is_0_to_100_monotone_and_100_exactly_when_done(target: int, a: int | None, b: int | None) -> None:
    t = Threshold("a", "s", at_least=target)
    pa, pb = progress(t, a), progress(t, b)
    for p, v in ((pa, a), (pb, b)):
        assert 0 <= p.percent <= 100 and (p.percent == 100) == p.done == t.met(v)
    if a is not None and b is not None and a <= b:
        assert pa.percent <= pb.percent
