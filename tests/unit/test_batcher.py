import asyncio

import pytest

from podium.gateway.batcher import ShardBatcher
from podium.wire.messages import AckBatch, AckStatus, Unlock, UnlockBatch
from tests.unit.polling import until


class Recorder:
    def __init__(self, fail_times: int = 0, delay: float = 0.0, hang_times: int = 0) -> None:
        self.calls: list[tuple[int, int]] = []
        self.started = 0
        self.fail_times = fail_times
        self.hang_times = hang_times
        self.delay = delay

    async def __call__(self, shard: int, batch: UnlockBatch) -> AckBatch:
        self.started += 1
        if self.hang_times:
            self.hang_times -= 1
            await asyncio.Event().wait()  # a call that never answers
        await asyncio.sleep(self.delay)
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("shard restarting")
        self.calls.append((shard, len(batch)))
        return AckBatch([AckStatus.ACCEPTED] * len(batch), [None] * len(batch))


def unlocks(n: int) -> list[Unlock]:
    return [Unlock(f"p{i}", "g", "a") for i in range(n)]


def batcher(send: Recorder, **kw: float) -> ShardBatcher:
    return ShardBatcher(send, window_s=kw.get("window_s", 0.01), max_items=int(kw.get("max_items", 100)),
                        max_pending=int(kw.get("max_pending", 1000)), deadline_s=kw.get("deadline_s", 2.0),
                        attempt_timeout_s=kw.get("attempt_timeout_s"), max_delay_s=kw.get("max_delay_s"))



async def test_concurrent_submits_to_one_shard_share_one_call() -> None:
    send = Recorder()
    b = batcher(send)
    results = await asyncio.gather(*(b.submit(0, unlocks(3)) for _ in range(5)), b.submit(1, unlocks(2)))
    assert sorted(send.calls) == [(0, 15), (1, 2)]
    assert [len(r) for r in results] == [3, 3, 3, 3, 3, 2]


async def test_a_full_buffer_flushes_without_waiting_for_the_window() -> None:
    send = Recorder()
    b = batcher(send, window_s=5.0, max_items=10)
    await asyncio.wait_for(b.submit(0, unlocks(10)), 1.0)
    assert send.calls == [(0, 10)]


async def test_a_failing_shard_is_retried() -> None:
    send = Recorder(fail_times=2)
    acks = await batcher(send).submit(0, unlocks(2))
    assert acks == [(AckStatus.ACCEPTED, None)] * 2 and send.calls == [(0, 2)]


async def test_past_the_deadline_items_are_rejected_unavailable() -> None:
    send = Recorder(fail_times=1000)
    acks = await batcher(send, deadline_s=0.2).submit(0, unlocks(2))
    assert acks == [(AckStatus.REJECTED, "unavailable")] * 2


async def test_over_the_pending_limit_items_are_rejected_overloaded() -> None:
    send = Recorder(delay=0.2)
    b = batcher(send, max_pending=5)
    first = asyncio.ensure_future(b.submit(0, unlocks(4)))
    await until(lambda: b._pending.get(0) == 4)
    assert await b.submit(0, unlocks(2)) == [(AckStatus.REJECTED, "overloaded")] * 2
    assert len(await first) == 4


async def test_while_calls_are_slower_than_the_delay_bound_new_items_are_shed_at_once() -> None:
    send = Recorder(delay=0.15)
    b = batcher(send, max_delay_s=0.1, window_s=0.0)
    first = asyncio.ensure_future(b.submit(0, unlocks(3)))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(b.submit(0, unlocks(3)))  # still in flight when the first returns
    assert len(await first) == 3  # both admitted before anything was known to be slow
    third = asyncio.ensure_future(b.submit(0, unlocks(2)))  # the shard is slow and a call is still in flight
    assert await asyncio.wait_for(third, 0.05) == [(AckStatus.REJECTED, "overloaded")] * 2
    assert b.shed == 2
    assert [a[0] for a in await second] == [AckStatus.ACCEPTED] * 3
    assert [a[0] for a in await b.submit(1, unlocks(1))] == [AckStatus.ACCEPTED]  # other shards are not affected
    send.delay = 0.0
    assert [a[0] for a in await b.submit(0, unlocks(1))] == [AckStatus.ACCEPTED]  # nothing in flight: a probe
    assert 0 not in b._slow  # and a fast call clears the bound


async def test_a_cancelled_caller_does_not_cancel_the_send() -> None:
    send = Recorder(delay=0.05)
    b = batcher(send)
    caller = asyncio.ensure_future(b.submit(0, unlocks(3)))
    await until(lambda: send.started == 1)  # the send is in flight
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await until(lambda: send.calls == [(0, 3)])


async def test_a_call_that_hangs_is_given_up_on_and_retried() -> None:
    send = Recorder(hang_times=1)
    acks = await asyncio.wait_for(batcher(send, attempt_timeout_s=0.05).submit(0, unlocks(2)), 1.0)
    assert acks == [(AckStatus.ACCEPTED, None)] * 2 and send.started == 2


async def test_a_shard_that_never_answers_is_unavailable_at_the_deadline() -> None:
    send = Recorder(hang_times=1000)
    acks = await asyncio.wait_for(batcher(send, deadline_s=0.2, attempt_timeout_s=10).submit(0, unlocks(1)), 1.0)
    assert acks == [(AckStatus.REJECTED, "unavailable")]


async def test_a_frame_is_shed_whole_only_while_every_shard_is_slow() -> None:
    send = Recorder(delay=0.15)
    b = batcher(send, max_delay_s=0.1, window_s=0.0)
    firsts = [asyncio.ensure_future(b.submit(s, unlocks(1))) for s in (0, 1)]
    await asyncio.sleep(0.05)
    seconds = [asyncio.ensure_future(b.submit(s, unlocks(1))) for s in (0, 1)]
    assert not b.shedding(2)
    await asyncio.gather(*firsts)  # both shards were slow, and both still have a call in flight
    assert b.shedding(2) and not b.shedding(3)
    assert b.shed_frame(3) == [(AckStatus.REJECTED, "overloaded")] * 3 and b.shed == 3
    await asyncio.gather(*seconds)
    assert not b.shedding(2)  # nothing in flight any more
