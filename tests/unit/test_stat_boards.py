"""Stat boards through every read: an asc board ranks (value asc, reached asc,
player asc), a desc board (value desc, reached asc, player asc), whatever the
updates, on the global and the regional boards, by page (cursors both ways),
rank, around-me, the friends board, "how many rank ahead" and a season's final
standings; and every read gives the stat's real value back."""
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core import ranking
from podium.core.board_order import ASC, DESC, SAFE_INT, Order
from podium.core.board_reads import answer_all
from podium.core.periods import season_board_id, stat_board_id
from podium.core.player_state import from_us
from podium.core.ranking import Board, decode_cursor
from podium.core.seasons import final_standings
from podium.core.standings import GLOBAL, Standings
from podium.wire.errors import BadCursor
from podium.wire.messages import ScoreUpdates
from tests.randomness import examples

BASE = stat_board_id("kart", "lap")
SEASON = season_board_id(BASE, "winter-26")
VALUES = [-SAFE_INT, -SAFE_INT + 1, -70_000, -1, 0, 1, 2, 59_999, 60_000, SAFE_INT - 1, SAFE_INT]

Model = dict[str, tuple[int, int, str | None]]  # player -> (value, reached, region)


def expected(order: Order, model: Model, region: str | None = None) -> list[tuple[str, int, int]]:
    """(player, value, reached) in the order the board must rank them."""
    held = [(p, v, t) for p, (v, t, r) in model.items() if region is None or r == region]
    sign = 1 if order is ASC else -1
    return sorted(held, key=lambda e: (sign * e[1], e[2], e[0]))


def ok(answer: tuple[bool, Any]) -> Any:
    assert answer[0], answer
    return answer[1]


def read(s: Standings, kind: str, *args: object) -> Any:
    return ok(answer_all(s, [(kind, args)])[0])


def check_board(s: Standings, order: Order, board: str, model: Model, region: str | None, limit: int, k: int,
                friends: list[str]) -> None:
    rows = expected(order, model, region)
    held = s.board(board, region or GLOBAL) or Board(order=order)
    assert len(held) == len(rows)
    assert [held.order.unpack(key) for key in held.keys()] == rows
    # top page and cursors, forward then back
    seen, cursor, pages = [], None, []
    while True:
        body = read(s, "page", board, region, limit, cursor)
        assert body["order"] == order.name and body["total"] == len(rows)
        seen += [(e["rank"], e["player_id"], e["value"]) for e in body["entries"]]
        pages.append((body["entries"], body["prev_cursor"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [(i + 1, p, v) for i, (p, v, _) in enumerate(rows)]
    for (entries, _), (_, back) in itertools.pairwise(pages):
        assert read(s, "page", board, region, limit, back)["entries"] == entries
    # rank and around-me
    for i, (player, value, reached) in enumerate(rows):
        body = read(s, "rank", board, region, player)
        assert (body["rank"], body["value"], body["reached_at"], body["total"]) == \
            (i + 1, value, from_us(reached).isoformat(), len(rows))
        near = read(s, "around", board, region, player, k)["entries"]
        assert [(e["rank"], e["player_id"], e["value"]) for e in near] == \
            [(j + 1, rows[j][0], rows[j][1]) for j in range(max(0, i - k), min(len(rows), i + k + 1))]
    # the friends board: the player and their friends ranked among themselves
    if rows:
        me = rows[len(rows) // 2][0]
        group = {me, *friends}
        body = read(s, "friends", board, region, me, friends, k)
        ranked = [(p, v) for p, v, _ in rows if p in group]
        assert [(e["rank"], e["player_id"], e["value"]) for e in body["entries"]] == \
            [(i + 1, p, v) for i, (p, v) in enumerate(ranked)]
        mine = [p for p, _ in ranked].index(me) + 1
        assert body["rank"] == mine
        assert [e["player_id"] for e in body["around"]] == [p for p, _ in ranked][max(0, mine - 1 - k):mine + k]
    # how many rank ahead of a value, and how many hold it
    for value in {*VALUES, *(v + d for _, v, _ in rows for d in (-1, 0, 1) if -SAFE_INT <= v + d <= SAFE_INT)}:
        better = sum(1 for _, v, _ in rows if (v < value if order is ASC else v > value))
        body = read(s, "ahead", board, region, value)
        assert (body["ahead"], body["holding"]) == (better, sum(1 for _, v, _ in rows if v == value))


updates = st.lists(st.tuples(st.sampled_from("abcdefghij"), st.sampled_from(VALUES) | st.integers(-3, 3),
                             st.integers(0, 3), st.sampled_from([None, "eu", "na"])), max_size=40)


@pytest.mark.parametrize("big", [2048, 3])  # 3: crowded values turn into SortedList buckets at once
@pytest.mark.parametrize("order", [ASC, DESC])
def test_a_stat_board_ranks_in_its_order_through_every_read(order: Order, big: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "_BIG", big)

    @settings(max_examples=examples(60), deadline=None)
    @given(updates, st.integers(1, 6), st.integers(0, 3), st.lists(st.sampled_from("abcdefghijz"), max_size=5))
    def check(moves: list[tuple[str, int, int, str | None]], limit: int, k: int, friends: list[str]) -> None:
        s = Standings()
        s.set_order(BASE, order)
        model: Model = {}
        for version, (player, value, reached, region) in enumerate(moves, 1):
            u = ScoreUpdates()
            for board in (BASE, SEASON, "kart"):  # the stat board, its season, the game's points board
                u.add(player, board, region, abs(value) % 1000 if board == "kart" else value, reached, version)
            changes = s.apply(u)
            for c in changes:
                if c.game_id != "kart":
                    assert c.points == value  # rank changes carry the real value
            model[player] = (value, reached, region)
        for board in (BASE, SEASON):
            for region in (None, "eu", "na"):
                if region is None or any(r == region for _, _, r in model.values()):
                    check_board(s, order, board, model, region, limit, k, friends)
        # a season's final standings: the global order, and each region's order within it
        rows = list(final_standings(s, SEASON))
        assert [(r.rank, r.player_id, r.value, r.reached_us) for r in rows] == \
            [(i + 1, *e) for i, e in enumerate(expected(order, model))]
        for region in ("eu", "na"):
            assert [(r.region_rank, r.player_id) for r in rows if r.region == region] == \
                [(i + 1, p) for i, (p, _, _) in enumerate(expected(order, model, region))]
        # the points board beside it is untouched by the stat board's order
        points = [(p, abs(v) % 1000, t) for p, (v, t, _) in model.items()]
        assert [e["player_id"] for e in read(s, "page", "kart", None, 100, None)["entries"]] == \
            [p for p, _, _ in sorted(points, key=lambda e: (-e[1], e[2], e[0]))]
        # recovery builds the same boards from rows
        loaded = Standings()
        loaded.set_order(BASE, order)
        loaded.bulk_load((p, BASE, r, v, t, 1) for p, v, t in expected(order, model) for r in [model[p][2]])
        for region in (None, "eu", "na"):
            keys = [list(held.keys()) if (held := x.board(BASE, region or GLOBAL)) else [] for x in (s, loaded)]
            assert keys[0] == keys[1]

    check()


def test_flipping_a_boards_order_rekeys_what_it_holds() -> None:
    s = Standings()
    s.set_order(BASE, ASC)
    u = ScoreUpdates()
    for i, (value, region) in enumerate([(61_000, "eu"), (59_000, "na"), (75_000, "eu")]):
        u.add(f"p{i}", BASE, region, value, 100 + i, i + 1)
        u.add(f"p{i}", SEASON, region, value, 100 + i, i + 1)
    s.apply(u)
    assert [e["player_id"] for e in read(s, "page", SEASON, None, 10, None)["entries"]] == ["p1", "p0", "p2"]
    s.set_order(BASE, DESC)
    for board in (BASE, SEASON):
        body = read(s, "page", board, None, 10, None)
        assert body["order"] == "desc"
        assert [(e["player_id"], e["value"]) for e in body["entries"]] == [("p2", 75_000), ("p0", 61_000),
                                                                           ("p1", 59_000)]
        assert [e["player_id"] for e in read(s, "page", board, "eu", 10, None)["entries"]] == ["p2", "p0"]
    assert read(s, "rank", SEASON, "eu", "p0")["rank"] == 2


def test_an_asc_cursor_carries_the_real_value_and_refuses_one_out_of_range() -> None:
    board = Board([ASC.key(f"p{i}", -SAFE_INT + i, 5) for i in range(5)], ASC)
    _, cursor, _ = board.page(2)
    assert cursor is not None
    direction, key = decode_cursor(cursor, ASC)
    assert (direction, ASC.unpack(key)) == ("next", ("p1", -SAFE_INT + 1, 5))
    from podium.core import cursors
    for forged in (["next", -SAFE_INT - 1, 5, "p"], ["next", 0, -1, "p"], ["next", 0, 2**53, "p"]):
        with pytest.raises(BadCursor):
            board.page(2, cursors.encode(forged))


def test_a_value_outside_the_stat_range_is_a_bad_read_not_a_crash() -> None:
    s = Standings()
    s.set_order(BASE, ASC)
    for bad in (SAFE_INT + 1, 1.5, True):
        ok_, (code, _) = answer_all(s, [("ahead", (BASE, None, bad))])[0]
        assert not ok_ and code == "invalid_request"
