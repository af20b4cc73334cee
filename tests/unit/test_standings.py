from actors.messages import ScoreUpdates
from actors.standings import GLOBAL, Standings


def updates(*rows: tuple[str, str, str | None, int, int, int]) -> ScoreUpdates:
    out = ScoreUpdates()
    for r in rows:
        out.add(*r)
    return out


def test_older_versions_are_ignored() -> None:
    st = Standings()
    st.apply(updates(("p", "g", None, 10, 1, 5)))
    st.apply(updates(("p", "g", None, 3, 1, 4)))  # a stale resend
    assert st.entries[("g", "p")].points == 10


def test_rank_changes_are_reported_per_board_and_coalesced() -> None:
    st = Standings()
    st.apply(updates(("a", "g", "eu", 10, 1, 1)))
    changes = st.apply(updates(("b", "g", "eu", 5, 2, 2), ("b", "g", "eu", 20, 3, 3)))
    got = {(c.player_id, c.board): (c.old_rank, c.new_rank) for c in changes}
    assert got == {("b", GLOBAL): (None, 1), ("b", "eu"): (None, 1)}


def test_region_move_leaves_the_old_regional_board() -> None:
    st = Standings()
    st.apply(updates(("p", "g", "eu", 10, 1, 1)))
    st.apply(updates(("p", "g", "na", 12, 2, 2)))
    assert "p" not in st.board("g", "eu")  # type: ignore[operator]
    assert st.board("g", "na").rank("p") == 1  # type: ignore[union-attr]


def test_unchanged_rank_is_not_reported() -> None:
    st = Standings()
    st.apply(updates(("a", "g", None, 10, 1, 1)))
    assert st.apply(updates(("a", "g", None, 20, 2, 2))) == []


def test_only_tracked_players_get_rank_changes() -> None:
    st = Standings()
    changes = st.apply(updates(("a", "g", None, 10, 1, 1), ("b", "g", None, 20, 1, 2)), track={"b"})
    assert [c.player_id for c in changes] == ["b"]
    assert st.board("g").rank("a") == 2  # type: ignore[union-attr]  # untracked players are still ranked
