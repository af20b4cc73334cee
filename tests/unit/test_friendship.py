"""The friend graph's rules, the shard's mirror, passes and top-N losses."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.board_reads import friends as friends_board
from podium.core.friendship import (
    BLOCKED,
    FRIEND,
    INVITED,
    INVITED_BY,
    Change,
    FriendBook,
    Op,
    Outcome,
    passed,
    plan,
    replace_changes,
)
from podium.core.ranking import sort_key
from podium.core.social_events import TopWatch, online_friends
from podium.core.standings import Standings
from podium.wire.errors import InvalidRequest
from podium.wire.messages import ScoreUpdates
from tests.randomness import examples


def run(changes: list[Change], edges: dict | None = None, cap: int = 10) -> tuple[dict, list[Outcome]]:
    state = dict(edges or {})
    counts: dict[str, int] = {}
    for (p, _), s in state.items():
        counts[p] = counts.get(p, 0) + (s != BLOCKED)
    planned = plan(state, counts, changes, cap)
    for pair, s in planned.writes.items():
        if s is None:
            state.pop(pair, None)
        else:
            state[pair] = s
    return state, planned.outcomes


def test_invite_then_accept_makes_friends_both_ways() -> None:
    state, outcomes = run([Change("a", "b", Op.ADD, False)])
    assert state == {("a", "b"): INVITED, ("b", "a"): INVITED_BY} and outcomes == [Outcome.INVITED]
    state, outcomes = run([Change("b", "a", Op.ADD, False)], state)
    assert state == {("a", "b"): FRIEND, ("b", "a"): FRIEND} and outcomes == [Outcome.FRIENDS]
    state, outcomes = run([Change("a", "b", Op.ADD, False), Change("a", "b", Op.ADD, True)], state)
    assert outcomes == [Outcome.UNCHANGED, Outcome.UNCHANGED]


def test_a_game_server_makes_friends_at_once_but_never_across_a_block() -> None:
    state, outcomes = run([Change("a", "b", Op.ADD, True)])
    assert state == {("a", "b"): FRIEND, ("b", "a"): FRIEND} and outcomes == [Outcome.FRIENDS]
    state, outcomes = run([Change("b", "a", Op.BLOCK, False)], state)
    assert state == {("b", "a"): BLOCKED} and outcomes == [Outcome.BLOCKED]
    for by_server in (False, True):
        again, outcomes = run([Change("a", "b", Op.ADD, by_server)], state)
        assert again == state and outcomes == [Outcome.REFUSED_BLOCKED]
    again, _ = run([Change("b", "a", Op.ADD, True)], state)  # a server cannot lift the blocker's own block
    assert again == state


def test_removal_keeps_the_other_sides_block_and_lifts_ones_own() -> None:
    state = {("a", "b"): BLOCKED, ("b", "a"): BLOCKED}
    state, outcomes = run([Change("a", "b", Op.REMOVE, False)], state)
    assert state == {("b", "a"): BLOCKED} and outcomes == [Outcome.REMOVED]
    state, outcomes = run([Change("a", "b", Op.REMOVE, False)], state)
    assert state == {("b", "a"): BLOCKED} and outcomes == [Outcome.UNCHANGED]
    state, outcomes = run([Change("b", "a", Op.ADD, False)], state)  # the blocker may invite: that lifts the block
    assert state == {("b", "a"): INVITED, ("a", "b"): INVITED_BY} and outcomes == [Outcome.INVITED]


def test_the_cap_counts_both_sides_and_not_blocks() -> None:
    state, outcomes = run([Change("a", f"f{i}", Op.ADD, True) for i in range(3)], cap=2)
    assert outcomes == [Outcome.FRIENDS, Outcome.FRIENDS, Outcome.REFUSED_LIMIT]
    planned = plan(state, {"a": 2}, [Change("x", "a", Op.ADD, False)], 2)  # a is full: x cannot invite a
    assert planned.outcomes == [Outcome.REFUSED_LIMIT] and planned.limited == ["a"] and not planned.writes
    state, outcomes = run([Change("a", "f0", Op.REMOVE, True), Change("a", "z", Op.ADD, True),
                           Change("a", "y", Op.BLOCK, False)], state, cap=2)
    assert outcomes == [Outcome.REMOVED, Outcome.FRIENDS, Outcome.BLOCKED]  # a block takes no room


def test_self_edges_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        plan({}, {}, [Change("a", "a", Op.ADD, True)], 10)


def test_replacing_a_list_removes_first_and_never_adds_oneself() -> None:
    changes = replace_changes("a", ["b", "c"], ["c", "d", "a"])
    assert [(c.friend_id, c.op) for c in changes] == [("b", Op.REMOVE), ("d", Op.ADD)]
    assert all(c.by_server for c in changes)


def test_the_mirror_follows_updates_and_pages_in_order() -> None:
    book = FriendBook()
    book.load([("a", "c", FRIEND), ("a", "b", FRIEND), ("a", "x", BLOCKED), ("d", "a", INVITED)])
    assert book.friends_of("a") == ("b", "c") and book.count("a") == 2 and book.state("a", "x") == BLOCKED
    book.update([("a", "b", None), ("a", "e", FRIEND), ("a", "x", None), ("a", "y", INVITED_BY)])
    assert book.friends_of("a") == ("c", "e") and book.count("a") == 3
    assert book.listing("a", None, "", 10) == [("c", FRIEND), ("e", FRIEND), ("y", INVITED_BY)]
    assert book.listing("a", None, "c", 1) == [("e", FRIEND)]
    assert book.listing("a", INVITED_BY, "", 10) == [("y", INVITED_BY)]
    book.update([("a", "c", None), ("a", "e", None), ("a", "y", None)])
    assert "a" not in book.friends and "a" not in book.others and len(book) == 1


def key(player: str, points: int, at: int = 1) -> tuple[int, str]:
    return sort_key(player, points, at)


def test_passes_are_the_friends_between_the_old_and_new_place() -> None:
    mates = [("low", key("low", 5)), ("mid", key("mid", 15)), ("tie", key("tie", 20, 0)), ("high", key("high", 40))]
    assert passed(key("me", 10), key("me", 30), mates) == ["mid", "tie"]
    assert passed(None, key("me", 10), mates) == ["low"]
    assert passed(key("me", 30), key("me", 40, 2), mates) == []  # equal points, reached later: still behind


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(st.integers(0, 30).map(lambda i: f"p{i}"), st.tuples(st.integers(0, 50), st.integers(0, 5)),
                       min_size=1), st.integers(0, 30), st.integers(0, 4))
def test_friends_board_ranks_equal_a_sort_of_the_friends_scores(scores, me_index, k) -> None:
    standings = Standings()
    updates = ScoreUpdates()
    for version, (player, (points, at)) in enumerate(sorted(scores.items()), 1):
        updates.add(player, "g", None, points, at, version)
    standings.apply(updates)
    me = f"p{me_index}"
    mates = [*[p for p in sorted(scores) if p != me][::2], "nobody"]
    body = friends_board(standings, "g", None, me, mates, k)
    circle = [p for p in [me, *mates] if p in scores]
    expected = sorted(circle, key=lambda p: (-scores[p][0], scores[p][1], p))
    assert [e["player_id"] for e in body["entries"]] == expected
    assert [e["rank"] for e in body["entries"]] == list(range(1, len(expected) + 1))
    if me in scores:
        mine = expected.index(me)
        assert body["rank"] == mine + 1
        assert [e["player_id"] for e in body["around"]] == expected[max(0, mine - k):mine + k + 1]
    else:
        assert body["rank"] is None and body["around"] == []


def test_top_watch_reports_only_losses_it_saw() -> None:
    watch = TopWatch(3)
    assert watch.may_change("g", 0)
    assert watch.dropped("g", [("a", 30), ("b", 20), ("c", 10)]) == []  # first sight: nothing to compare with
    assert not watch.may_change("g", 9) and watch.may_change("g", 10)
    assert watch.dropped("g", [("d", 40), ("a", 30), ("b", 20)]) == ["c"]
    assert watch.dropped("g", [("d", 40), ("a", 30), ("b", 20)]) == []
    assert watch.holds("g", "b") and not watch.holds("g", "c") and not watch.holds("other", "b")
    watch.forget("g")
    assert watch.dropped("g", [("x", 1)]) == []
    assert watch.may_change("g", 0)  # fewer than N entries: anyone may enter


def test_online_friends_are_bounded_per_event() -> None:
    assert online_friends(("a", "b", "c", "d"), {"b", "c", "d"}, 2) == ["b", "c"]
    assert online_friends((), {"b"}, 2) == []
