from podium.core.board_reads import answer_all
from podium.core.standings import Standings
from podium.wire.messages import ScoreUpdates


def standings() -> Standings:
    s = Standings()
    updates = ScoreUpdates()
    for i, points in enumerate([30, 10, 20]):
        updates.add(f"p{i}", "arena", "eu" if i else "na", points, 100 + i, i + 1)
    s.apply(updates)
    return s


def test_a_batch_of_reads_is_answered_in_order_each_alone() -> None:
    answers = answer_all(standings(), [
        ("rank", ("arena", None, "p2")),
        ("rank", ("arena", None, "nobody")),
        ("page", ("arena", "eu", 10, None)),
        ("among", ("arena", None, ["p1", "p0"])),
        ("around", ("arena", None, "p1", 1)),
        ("drop_table", ()),
    ])
    assert answers[0][0] and (answers[0][1]["rank"], answers[0][1]["points"]) == (2, 20)
    assert answers[1] == (False, ("unknown_player", "nobody has no score on arena"))
    assert [e["player_id"] for e in answers[2][1]["entries"]] == ["p2", "p1"]
    assert [(e["rank"], e["player_id"]) for e in answers[3][1]["entries"]] == [(1, "p0"), (2, "p1")]
    assert [e["player_id"] for e in answers[4][1]["entries"]] == ["p2", "p1"]
    assert answers[5][0] is False and answers[5][1][0] == "invalid_request"


def test_regions_lists_the_regional_boards_with_players_largest_first() -> None:
    s = standings()
    updates = ScoreUpdates()
    updates.add("p3", "puzzle", "asia", 5, 200, 4)
    s.apply(updates)
    ok, body = answer_all(s, [("regions", ("arena",))])[0]
    assert ok and body == {"game_id": "arena", "period": "all", "total": 3,
                           "regions": [{"region": "eu", "total": 2}, {"region": "na", "total": 1}]}
    assert answer_all(s, [("regions", ("nothing-here",))])[0][1]["regions"] == []
