import asyncio

import orjson

from podium.gateway.board_watch import BoardWatch, Slot, changed_players, parse_key


def entry(player: str, rank: int, points: int) -> dict:
    return {"player_id": player, "rank": rank, "points": points}


def test_changed_players_are_the_new_and_the_moved() -> None:
    before = [entry("a", 1, 50), entry("b", 2, 40), entry("c", 3, 30)]
    after = [entry("b", 1, 60), entry("a", 2, 50), entry("d", 3, 35)]
    assert changed_players(before, after) == ["b", "a", "d"]
    assert changed_players(None, before) == ["a", "b", "c"]
    assert changed_players(before, before) == []


def test_a_slot_keeps_only_the_newest_frame() -> None:
    slot = Slot()
    slot.offer(b"1")
    slot.offer(b"2")
    assert slot.ready.is_set() and slot.take() == b"2" and not slot.ready.is_set() and slot.take() is None


async def test_many_watchers_of_a_board_cost_one_read_per_interval_and_see_each_change() -> None:
    board = {"total": 2, "entries": [entry("a", 1, 10), entry("b", 2, 5)]}

    async def read(key):
        return board

    watch = BoardWatch(read, every_s=0.02)
    key = ("g", None, "all", 10)
    slots = [watch.watch(key) for _ in range(1000)]
    await asyncio.sleep(0.1)
    first = [orjson.loads(s.take()) for s in slots]
    assert {f["seq"] for f in first} == {1} and first[0]["entries"] == board["entries"]
    reads = watch.reads
    assert reads <= 7  # one read per interval, not per watcher
    board = {"total": 3, "entries": [entry("b", 1, 20), entry("a", 2, 10)]}
    await asyncio.sleep(0.1)
    frames = {s.take() for s in slots}
    assert len(frames) == 1  # one encoding, the same bytes for every watcher
    second = orjson.loads(frames.pop())
    assert second["seq"] == 2 and second["changed"] == ["b", "a"] and second["total"] == 3
    late = watch.watch(key)
    assert orjson.loads(late.take())["seq"] == 2  # a newcomer gets the current top at once
    for slot in [*slots, late]:
        watch.leave(key, slot)
    assert watch.watchers == 0 and not watch._tasks  # the last one out stops the watch
    await watch.stop()


def test_a_handshake_names_a_board_or_is_refused() -> None:
    assert parse_key("g", {}, 100) == ("g", None, "all", 10)
    assert parse_key("g", {"region": "eu", "period": "day", "top": "25"}, 100) == ("g", "eu", "day", 25)
    for bad in ({"region": "EU!"}, {"period": "year"}, {"top": "0"}, {"top": "101"}, {"top": "x"}):
        try:
            parse_key("g", bad, 100)
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_a_failing_read_keeps_the_watch_alive() -> None:
    calls = []

    async def read(key):
        calls.append(key)
        if len(calls) < 3:
            raise ConnectionError("leaderboard shard restarting") if len(calls) == 1 else TypeError("odd body")
        return {"total": 1, "entries": [entry("a", 1, 1)]}

    watch = BoardWatch(read, every_s=0.01)
    slot = watch.watch(("g", None, "all", 5))
    await asyncio.sleep(0.1)
    assert orjson.loads(slot.take())["entries"] == [entry("a", 1, 1)] and len(calls) >= 3
    await watch.stop()


def test_a_stat_boards_frame_names_the_board_and_tracks_values() -> None:
    from podium.gateway.board_watch import board_frame
    before = [{"rank": 1, "player_id": "a", "value": 58000}, {"rank": 2, "player_id": "b", "value": 61000}]
    after = [{"rank": 1, "player_id": "a", "value": 57000}, {"rank": 2, "player_id": "b", "value": 61000}]
    assert changed_players(before, after) == ["a"]  # a better lap, same rank: changed
    frame = orjson.loads(board_frame(("kart/fastest-lap", None, "all", 2), {"entries": after, "total": 2,
                                                                           "order": "asc"}, before, 3))
    assert (frame["game_id"], frame["board_id"], frame["order"], frame["changed"]) == ("kart", "fastest-lap",
                                                                                        "asc", ["a"])
    points = orjson.loads(board_frame(("kart", None, "all", 2), {"entries": [], "total": 0}, None, 1))
    assert "board_id" not in points and points["game_id"] == "kart"
