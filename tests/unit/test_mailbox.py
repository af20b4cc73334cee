"""Merging pushes for one socket and bounding what waits (podium/gateway/mailbox.py)."""
from __future__ import annotations

import asyncio

from podium.gateway.mailbox import Mailbox, merge


def rank(game: str, board: str, old: int | None, new: int, points: int) -> dict:
    return {"type": "rank.changed", "game_id": game, "board": board, "old_rank": old, "new_rank": new,
            "points": points, "total": 10}


def unlock(game: str, achievement: str) -> dict:
    return {"type": "unlock.accepted", "game_id": game, "achievement_id": achievement}


def test_rank_changes_of_one_board_fold_into_first_old_and_last_new() -> None:
    events = [unlock("g", "a"), rank("g", "global", 9, 5, 10), rank("g", "eu", 3, 2, 10),
              unlock("g", "b"), rank("g", "global", 5, 4, 20), rank("h", "global", None, 1, 5)]
    assert merge(events) == [unlock("g", "a"), rank("g", "global", 9, 4, 20), rank("g", "eu", 3, 2, 10),
                             unlock("g", "b"), rank("h", "global", None, 1, 5)]


def test_a_rank_that_ends_where_it_began_is_not_sent() -> None:
    assert merge([rank("g", "global", 3, 2, 10), rank("g", "global", 2, 3, 10)]) == []


def test_take_returns_everything_waiting_merged_and_wait_blocks_until_something_comes() -> None:
    async def scenario() -> None:
        box = Mailbox(limit=10)
        waiter = asyncio.ensure_future(box.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        box.put(rank("g", "global", 9, 5, 1))
        box.put(rank("g", "global", 5, 1, 2))
        await asyncio.wait_for(waiter, 1)
        assert box.take() == [rank("g", "global", 9, 1, 2)]
        assert len(box) == 0

    asyncio.run(scenario())


def test_past_the_limit_the_socket_is_a_slow_consumer() -> None:
    box = Mailbox(limit=3)
    for i in range(10):  # rank moves merge away: one board never overflows
        box.put(rank("g", "global", i + 1, i + 2, i))
    assert not box.overflowed
    for i in range(4):  # unlocks do not merge
        box.put(unlock("g", f"a{i}"))
    assert box.overflowed and box.closing is not None and box.closing[0] == 1013
    box.put(unlock("g", "late"))
    assert all(e.get("achievement_id") != "late" for e in box.take())


def test_close_wakes_the_socket_and_keeps_the_first_reason() -> None:
    async def scenario() -> None:
        box = Mailbox(limit=3)
        waiter = asyncio.ensure_future(box.wait())
        box.close(1012, "restart")
        box.close(1013, "slow")
        await asyncio.wait_for(waiter, 1)
        assert box.closing == (1012, "restart")

    asyncio.run(scenario())


def test_progress_of_one_achievement_folds_into_the_last_in_place() -> None:
    events = [{"type": "progress", "game_id": "g", "achievement_id": "a", "value": 1},
              {"type": "unlock.accepted", "game_id": "g"},
              {"type": "progress", "game_id": "g", "achievement_id": "b", "value": 1},
              {"type": "progress", "game_id": "g", "achievement_id": "a", "value": 3}]
    assert merge(events) == [events[3], events[1], events[2]]
