import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import BadCursor
from actors.ranking import Board, sort_key, unpack


def board_of(*entries: tuple[str, int, int]) -> Board:
    board = Board()
    for player_id, points, reached in entries:
        board.upsert(player_id, points, reached)
    return board


def test_order_is_points_desc_then_earlier_time_then_player_id() -> None:
    board = board_of(("c", 10, 5), ("a", 10, 5), ("b", 10, 3), ("d", 20, 9))
    entries, _, _ = board.page(10)
    assert [e.player_id for e in entries] == ["d", "b", "a", "c"]
    assert [e.rank for e in entries] == [1, 2, 3, 4]


def test_sort_key_round_trips() -> None:
    assert unpack(sort_key("p", 1234, 1_700_000_000_123_456)) == ("p", 1234, 1_700_000_000_123_456)
    assert unpack(sort_key("p", 0, 0)) == ("p", 0, 0)


def test_upsert_moves_a_player_and_rank_follows() -> None:
    board = board_of(("a", 10, 1), ("b", 5, 1))
    assert board.rank("b") == 2
    board.upsert("b", 15, 2)
    assert board.rank("b") == 1 and board.rank("a") == 2 and len(board) == 2


def test_cursor_pages_forward_and_back_cover_the_board_once() -> None:
    board = board_of(*((f"p{i:02}", i, i) for i in range(25)))
    seen, cursor, pages = [], None, []
    while True:
        entries, cursor, _ = board.page(10, cursor)
        pages.append(entries)
        seen += [e.player_id for e in entries]
        if cursor is None:
            break
    assert len(seen) == 25 == len(set(seen))
    assert [e.rank for p in pages for e in p] == list(range(1, 26))
    # from the last page, prev_cursor walks back to the page before it
    last_start = board.page(10, board.page(10, board.page(10)[1])[1])
    back, _, _ = board.page(10, last_start[2])
    assert [e.rank for e in back] == list(range(11, 21))


def test_a_cursor_stays_valid_when_the_board_changes() -> None:
    board = board_of(*((f"p{i}", 100 - i, 0) for i in range(10)))
    _, cursor, _ = board.page(3)
    board.upsert("new", 1000, 0)  # lands above the cursor
    second, _, _ = board.page(3, cursor)
    assert second[0].player_id == "p3" and second[0].rank == 5


def test_forged_cursor_is_refused() -> None:
    with pytest.raises(BadCursor):
        Board().page(10, "not-a-cursor")


def test_around_includes_the_player_at_either_end() -> None:
    board = board_of(*((f"p{i}", 100 - i, 0) for i in range(10)))
    assert [e.rank for e in board.around("p0", 2)] == [1, 2, 3]
    assert [e.rank for e in board.around("p9", 2)] == [8, 9, 10]
    assert board.around("nobody", 2) == []


def test_percentile_is_share_at_or_below() -> None:
    board = board_of(*((f"p{i}", i, 0) for i in range(4)))
    assert board.percentile(1) == 100.0 and board.percentile(4) == 25.0


ops = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 50), st.integers(0, 5), st.booleans()),
               max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_ranks_agree_with_a_sort_after_any_updates(seq: list[tuple[str, int, int, bool]]) -> None:
    board, truth = Board(), {}
    for player_id, points, reached, remove in seq:
        if remove:
            board.remove(player_id)
            truth.pop(player_id, None)
        else:
            board.upsert(player_id, points, reached)
            truth[player_id] = (points, reached)
    expected = sorted(truth, key=lambda p: (-truth[p][0], truth[p][1], p))
    assert [e.player_id for e in board.page(100)[0]] == expected
    assert [board.rank(p) for p in expected] == list(range(1, len(expected) + 1))
