import itertools

import pytest

from podium.core import ranking
from podium.core.ranking import Board, sort_key, unpack
from podium.wire.errors import BadCursor


def board_of(*entries: tuple[str, int, int]) -> Board:
    return Board(sort_key(*e) for e in entries)


def test_order_is_points_desc_then_earlier_time_then_player_id() -> None:
    board = board_of(("c", 10, 5), ("a", 10, 5), ("b", 10, 3), ("d", 20, 9))
    entries, _, _ = board.page(10)
    assert [e.player_id for e in entries] == ["d", "b", "a", "c"]
    assert [e.rank for e in entries] == [1, 2, 3, 4]


def test_sort_key_round_trips() -> None:
    assert unpack(sort_key("p", 1234, 1_700_000_000_123_456)) == ("p", 1234, 1_700_000_000_123_456)
    assert unpack(sort_key("p", 0, 0)) == ("p", 0, 0)


def test_cursor_pages_forward_and_back_cover_the_board_once() -> None:
    board = board_of(*((f"p{i:02}", i, i) for i in range(25)))
    seen, cursor, ranks = [], None, []
    while True:
        entries, cursor, _ = board.page(10, cursor)
        seen += [e.player_id for e in entries]
        ranks += [e.rank for e in entries]
        if cursor is None:
            break
    assert len(seen) == 25 == len(set(seen)) and ranks == list(range(1, 26))
    _, to_second, _ = board.page(10)
    _, to_third, _ = board.page(10, to_second)
    third, _, back_to_second = board.page(10, to_third)
    assert [e.rank for e in third] == list(range(21, 26))
    assert [e.rank for e in board.page(10, back_to_second)[0]] == list(range(11, 21))


def test_a_cursor_stays_valid_when_the_board_changes() -> None:
    board = board_of(*((f"p{i}", 100 - i, 0) for i in range(10)))
    _, cursor, _ = board.page(3)
    board.add(sort_key("new", 1000, 0))  # lands above the cursor
    second, _, _ = board.page(3, cursor)
    assert second[0].player_id == "p3" and second[0].rank == 5


def test_forged_cursor_is_refused() -> None:
    with pytest.raises(BadCursor):
        Board().page(10, "not-a-cursor")


def test_around_includes_the_key_at_either_end() -> None:
    board = board_of(*((f"p{i}", 100 - i, 0) for i in range(10)))
    assert [e.rank for e in board.around(sort_key("p0", 100, 0), 2)] == [1, 2, 3]
    assert [e.rank for e in board.around(sort_key("p9", 91, 0), 2)] == [8, 9, 10]


def test_percentile_is_share_at_or_below() -> None:
    board = board_of(*((f"p{i}", i, 0) for i in range(4)))
    assert board.percentile(1) == 100.0 and board.percentile(4) == 25.0


def test_pages_of_large_scores_have_cursors_both_ways() -> None:
    """A packed key passes 64 bits from 1,024 points on: cursors must not carry it."""
    board = Board([sort_key(f"p{i}", 10**12 - i, 1_800_000_000_000_000) for i in range(30)])
    first, cursor, _ = board.page(10)
    second, _, back = board.page(10, cursor)
    assert [e.rank for e in second] == list(range(11, 21))
    assert board.page(10, back)[0] == first


@pytest.mark.parametrize("big", [2048, 3])  # 3: buckets turn into SortedLists almost at once
def test_the_board_answers_as_a_sorted_list_after_any_moves(big: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Property: adds, discards and moves of crowded and sparse scores, then order,
    ranks, pages both ways and around-me equal a plain sort's."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.randomness import examples

    monkeypatch.setattr(ranking, "_BIG", big)
    entry = st.tuples(st.sampled_from("abcdefgh"), st.sampled_from([0, 1, 5, 300, 70_000, 10**12]),
                      st.integers(0, 4))

    @settings(max_examples=examples(150), deadline=None)
    @given(st.lists(st.tuples(entry, st.sampled_from(["add", "discard", "move"])), max_size=60),
           st.integers(1, 7), st.integers(0, 3))
    def check(moves: list[tuple[tuple[str, int, int], str]], limit: int, k: int) -> None:
        board, held = Board(), set()
        for (player, pts, at), op in moves:
            key = sort_key(player, pts, at)
            if op == "discard":
                board.discard(key)
                held.discard(key)
            elif op == "move" and held and key not in held:
                old = sorted(held)[at % len(held)]
                board.move(old, key)
                held.discard(old)
                held.add(key)
            else:
                if key not in held:
                    board.add(key)
                held.add(key)
        want = sorted(held)
        assert list(board.keys()) == want and len(board) == len(want)
        for i, key in enumerate(want):
            assert board.rank_of(key) == i + 1
            assert [(e.rank, sort_key(e.player_id, e.points, e.reached_us)) for e in board.around(key, k)] == \
                [(j + 1, want[j]) for j in range(max(0, i - k), min(len(want), i + k + 1))]
        seen, cursor, pages = [], None, []
        while True:
            entries, cursor, back = board.page(limit, cursor)
            pages.append((entries, back))
            seen += [(e.rank, sort_key(e.player_id, e.points, e.reached_us)) for e in entries]
            if cursor is None:
                break
        assert seen == [(i + 1, key) for i, key in enumerate(want)]
        for (entries, _), (_, back) in itertools.pairwise(pages):
            assert board.page(limit, back)[0] == entries  # "prev" from page n+1 is page n

    check()
