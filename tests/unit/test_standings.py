import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.standings import GLOBAL, Standings
from podium.wire.errors import UnknownPlayer
from podium.wire.messages import ScoreUpdates
from tests.randomness import examples


def updates(*rows: tuple[str, str, str | None, int, int, int]) -> ScoreUpdates:
    out = ScoreUpdates()
    for r in rows:
        out.add(*r)
    return out


def test_older_versions_are_ignored() -> None:
    s = Standings()
    s.apply(updates(("p", "g", None, 10, 1, 5)))
    s.apply(updates(("p", "g", None, 3, 1, 4)))  # a stale resend
    assert s.standing("g", "p").points == 10


def test_rank_changes_are_reported_per_board_and_coalesced() -> None:
    s = Standings()
    s.apply(updates(("a", "g", "eu", 10, 1, 1)))
    changes = s.apply(updates(("b", "g", "eu", 5, 2, 2), ("b", "g", "eu", 20, 3, 3)))
    got = {(c.player_id, c.board): (c.old_rank, c.new_rank) for c in changes}
    assert got == {("b", GLOBAL): (None, 1), ("b", "eu"): (None, 1)}


def test_overtaking_reports_the_move() -> None:
    s = Standings()
    s.apply(updates(("a", "g", None, 10, 1, 1), ("b", "g", None, 5, 1, 2)))
    [change] = s.apply(updates(("b", "g", None, 15, 2, 3)))
    assert (change.player_id, change.old_rank, change.new_rank, change.total) == ("b", 2, 1, 2)


def test_region_move_leaves_the_old_regional_board() -> None:
    s = Standings()
    s.apply(updates(("p", "g", "eu", 10, 1, 1)))
    s.apply(updates(("p", "g", "na", 12, 2, 2)))
    assert len(s.board("g", "eu")) == 0  # type: ignore[arg-type]
    assert s.standing("g", "p", "na").rank == 1
    with pytest.raises(UnknownPlayer):
        s.standing("g", "p", "eu")


def test_unchanged_rank_is_not_reported() -> None:
    s = Standings()
    s.apply(updates(("a", "g", None, 10, 1, 1)))
    assert s.apply(updates(("a", "g", None, 20, 2, 2))) == []


def test_only_tracked_players_get_rank_changes() -> None:
    s = Standings()
    changes = s.apply(updates(("a", "g", None, 10, 1, 1), ("b", "g", None, 20, 1, 2)), track={"b"})
    assert [c.player_id for c in changes] == ["b"]
    assert s.standing("g", "a").rank == 2  # untracked players are still ranked


def test_players_ranked_together_and_around() -> None:
    s = Standings()
    s.apply(updates(*((f"p{i}", "g", "eu", i * 10, 0, i + 1) for i in range(10))))
    together = s.ranked_together("g", ["p1", "p7", "p4", "nobody"])
    assert [(e.rank, e.player_id) for e in together] == [(1, "p7"), (2, "p4"), (3, "p1")]
    assert [e.player_id for e in s.around("g", "p9", 1)] == ["p9", "p8"]


def test_bulk_load_equals_applying_one_by_one() -> None:
    rows = [(f"p{i}", f"g{i % 2}", ("eu", "na", None)[i % 3], (i * 37) % 50, i % 7, i + 1) for i in range(200)]
    one_by_one, bulk = Standings(), Standings()
    one_by_one.apply(updates(*rows))
    bulk.bulk_load((p, g, r, pts, t, v) for p, g, r, pts, t, v in rows)
    for board_key, board in one_by_one.boards.items():
        assert bulk.boards[board_key].page(500)[0] == board.page(500)[0]


ops = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from([None, "eu", "na"]),
                         st.integers(0, 50), st.integers(0, 5)), max_size=60)


@settings(max_examples=examples(200), deadline=None)
@given(ops)
def test_ranks_agree_with_a_sort_after_any_updates(seq: list[tuple[str, str | None, int, int]]) -> None:
    s, truth = Standings(), {}
    for version, (player_id, region, points, reached) in enumerate(seq, 1):
        s.apply(updates((player_id, "g", region, points, reached, version)))
        truth[player_id] = (points, reached, region)
    for scope in (GLOBAL, "eu", "na"):
        members = [p for p in truth if scope == GLOBAL or truth[p][2] == scope]
        expected = sorted(members, key=lambda p: (-truth[p][0], truth[p][1], p))
        board = s.board("g", scope)
        got = [e.player_id for e in board.page(100)[0]] if board else []
        assert got == expected
        assert [s.standing("g", p, scope).rank for p in expected] == list(range(1, len(expected) + 1))


def test_slices_keep_every_update_in_order() -> None:
    batch = updates(*[(f"p{i}", "g", None, i, i, i) for i in range(10)])
    parts = batch.slices(4)
    assert [len(p) for p in parts] == [4, 4, 2]
    assert [pid for p in parts for pid in p.player_ids] == batch.player_ids and batch.slices(10) == [batch]


def test_rank_changes_only_for_the_boards_asked_for() -> None:
    from podium.core.periods import is_period

    s = Standings()
    u = ScoreUpdates()
    u.add("p", "arena", "eu", 10, 1, 1)
    u.add("p", "arena#day#0", "eu", 10, 1, 1)
    changes = s.apply(u, track={"p"}, ranked=lambda b: not is_period(b))
    assert {(c.game_id, c.board) for c in changes} == {("arena", "global"), ("arena", "eu")}
    assert len(s.board("arena#day#0") or ()) == 1, "the period board is updated all the same"
