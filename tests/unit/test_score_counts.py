"""The score count tree against a plain Counter: counts above a score, the
next held score either way, across growth to more levels."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.score_counts import ScoreCounts
from tests.randomness import examples

scores = st.one_of(st.integers(0, 600), st.integers(0, 70_000), st.integers(0, 10**13))


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
