"""Reads gathered per leaderboard shard: one call per shard per window, each
read answered or failed alone, bounded, with a deadline."""
from __future__ import annotations

import asyncio

import pytest

from podium.core.board_reads import Answer, Read
from podium.gateway.read_batcher import ReadBatcher
from podium.wire.errors import InvalidRequest, Overloaded, ShardUnavailable, UnknownPlayer


class Shards:
    def __init__(self, hang: bool = False) -> None:
        self.calls: list[tuple[int, int]] = []
        self.hang = hang

    async def __call__(self, shard: int, reads: list[Read]) -> list[Answer]:
        if self.hang:
            await asyncio.Event().wait()
        self.calls.append((shard, len(reads)))
        return [(False, ("unknown_player", f"{args[0]} has no score")) if args[0].startswith("nobody")
                else (True, {"kind": kind, "player": args[0]}) for kind, args in reads]


def batcher(send: Shards, **kw: float) -> ReadBatcher:
    return ReadBatcher(send, window_s=kw.get("window_s", 0.005), max_batch=int(kw.get("max_batch", 100)),
                       max_pending=int(kw.get("max_pending", 1000)), timeout_s=kw.get("timeout_s", 1.0))


async def test_concurrent_reads_of_one_shard_share_one_call_and_fail_alone() -> None:
    send = Shards()
    b = batcher(send)
    results = await asyncio.gather(*(b.read(0, "rank", f"p{i}") for i in range(20)), b.read(1, "rank", "q"),
                                   b.read(0, "rank", "nobody-1"), return_exceptions=True)
    assert sorted(send.calls) == [(0, 21), (1, 1)]
    assert results[0] == {"kind": "rank", "player": "p0"} and results[20] == {"kind": "rank", "player": "q"}
    assert isinstance(results[21], UnknownPlayer) and "nobody-1" in str(results[21])
    assert (b.calls, b.reads) == (2, 22)


async def test_a_full_batch_goes_without_waiting_for_the_window() -> None:
    send = Shards()
    b = batcher(send, window_s=5.0, max_batch=4)
    await asyncio.wait_for(asyncio.gather(*(b.read(0, "page", f"p{i}") for i in range(4))), 1.0)
    assert send.calls == [(0, 4)]


async def test_past_the_bound_reads_are_refused_at_once() -> None:
    send = Shards(hang=True)
    b = batcher(send, max_pending=3, timeout_s=0.2)
    waiting = [asyncio.ensure_future(b.read(0, "rank", f"p{i}")) for i in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await b.read(0, "rank", "one-more")
    for task in waiting:  # and the hanging shard is given up on at the deadline
        with pytest.raises(ShardUnavailable):
            await task
    assert b._pending[0] == 0


async def test_a_caller_that_leaves_does_not_break_the_batch() -> None:
    send = Shards()
    b = batcher(send, window_s=0.02)
    leaving = asyncio.ensure_future(b.read(0, "rank", "gone"))
    staying = asyncio.ensure_future(b.read(0, "rank", "here"))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == {"kind": "rank", "player": "here"}


async def test_a_large_read_travels_alone_and_counts_against_the_bound() -> None:
    send = Shards()
    b = batcher(send, window_s=0.01, max_pending=3)
    results = await asyncio.gather(b.read(0, "rank", "p1"), b.read(0, "friends", "big", alone=True),
                                   b.read(0, "rank", "p2"), return_exceptions=True)
    assert results[1] == {"kind": "friends", "player": "big"}
    assert sorted(send.calls) == [(0, 1), (0, 2)]  # the large read in a request of its own
    assert b._pending[0] == 0
    with pytest.raises(UnknownPlayer):
        await b.read(0, "friends", "nobody", alone=True)


async def test_a_batch_closes_before_its_encoded_size_would_pass_the_cap() -> None:
    send = Shards()
    b = ReadBatcher(send, window_s=0.01, max_batch=100, max_pending=1000, timeout_s=1.0, max_bytes=30,
                    size=lambda read: 10 * len(read[1][0]))  # "p" = 10 bytes, "pp" = 20
    await asyncio.gather(b.read(0, "rank", "p"), b.read(0, "rank", "p"), b.read(0, "rank", "p"),
                         b.read(0, "rank", "pp"), b.read(0, "rank", "p"))
    assert send.calls == [(0, 3), (0, 2)]  # 30 exactly fits | +20 would pass it: 20+10 when the window ends
    assert b._pending[0] == 0


async def test_a_read_larger_than_a_request_is_refused_without_being_sent() -> None:
    send = Shards()
    b = ReadBatcher(send, window_s=0.01, max_batch=100, max_pending=1000, timeout_s=1.0, max_bytes=30,
                    size=lambda read: 10 * len(read[1][0]))
    with pytest.raises(InvalidRequest, match="40 bytes"):
        await b.read(0, "rank", "pppp")
    with pytest.raises(InvalidRequest):
        await b.read(0, "friends", "pppp", alone=True)
    assert send.calls == [] and b._pending.get(0, 0) == 0
