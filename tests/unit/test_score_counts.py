"""The score count tree against a plain Counter: counts above a score, the
next held score either way, across growth to more levels."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.score_counts import ScoreCounts
from tests.randomness import examples

# near 0, spread, huge, and clustered far from 0 on both sides of a high alignment (a stat board's scores)
scores = st.one_of(st.integers(0, 600), st.integers(0, 70_000), st.integers(0, 10**13),
                   st.integers(2**53 - 40, 2**53 + 40), st.integers(2**55 - 70, 2**55 - 1))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(scores, st.sampled_from(["add", "remove", "move"])), max_size=80),
       st.lists(scores, max_size=20))
def test_counts_answer_as_a_plain_counter(moves: list[tuple[int, str]], probes: list[int]) -> None:
    tree, truth = ScoreCounts(), Counter[int]()
    for score, op in moves:
        if op == "remove" and truth[score]:
            tree.add(score, -1)
            truth[score] -= 1
        elif op == "move" and +truth:
            old = sorted(+truth)[score % len(+truth)]
            tree.move(old, score)
            truth[old] -= 1
            truth[score] += 1
        else:
            tree.add(score, 1)
            truth[score] += 1
    held = sorted(s for s, n in truth.items() if n)
    assert tree.total() == sum(truth.values())
    assert tree.highest() == (held[-1] if held else None)
    for probe in [*probes, -1, 0, *held]:
        assert tree.above(probe) == sum(n for s, n in truth.items() if s > probe)
        assert tree.held(probe) == truth[probe]
        assert tree.below(probe) == max((s for s in held if s < probe), default=None)
        assert tree.above_next(probe) == min((s for s in held if s > probe), default=None)


def test_negative_scores_are_refused() -> None:
    with pytest.raises(ValueError):
        ScoreCounts().add(-1, 1)


def test_an_empty_tree_holds_nothing() -> None:
    tree = ScoreCounts()
    assert (tree.total(), tree.highest(), tree.below(5), tree.above_next(-1), tree.above(0)) == (0, None, None, None, 0)


def test_the_depth_follows_the_spread_of_the_scores_not_their_size() -> None:
    near, far = ScoreCounts(), ScoreCounts()
    for v in range(0, 90_000, 7):
        near.add(v, 1)
        far.add(2**53 + 50_000 + v, 1)  # a stat board's lap times: huge scores, spread like the points
    assert near.depth == far.depth == 4
    assert far.above(2**53 + 50_000) == far.total() - 1 and far.highest() == 2**53 + 50_000 + 89_999
    far.add(0, 1)  # something far away widens the window, and every count stays right
    assert far.depth == 11 and far.above(0) == far.total() - 1 and far.above_next(0) == 2**53 + 50_000


def test_an_emptied_tree_starts_over_at_a_score_outside_its_window() -> None:
    tree = ScoreCounts()
    tree.add(5, 1)
    tree.add(2**54, 1)
    tree.add(5, -1)
    tree.add(2**54, -1)
    tree.add(2**60 + 3, 1)  # nothing held: no need to widen the window to reach it
    assert tree.depth == 1 and tree.highest() == 2**60 + 3 and tree.below(2**60 + 3) is None
    assert tree.above(5) == 1 and tree.above_next(5) == 2**60 + 3
