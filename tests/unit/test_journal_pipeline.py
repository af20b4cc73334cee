"""The player shard's write pipeline with its I/O passed in: a journal kept in
a list (unique per unlock, seq-numbered, as PostgreSQL's is), folded into
per-player counters. Faults are injected where the real ones strike: after
COMMIT (the ambiguous commit), in delivery, and as calls that never return."""
from __future__ import annotations

import asyncio

import pytest

from actors.journal_pipeline import Committed, JournalPipeline, Pair
from actors.messages import AckBatch, AckStatus, Reason, Unlock, UnlockBatch
from tests.unit.polling import until


class Shard:
    """The shard's side: a journal, the points it has folded in, what reached the leaderboard."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str, str]] = []  # (seq, player, game, achievement)
        self.folded: dict[int, tuple[str, str]] = {}  # seq -> pair, each at most once
        self.leaderboard: set[Pair] = set()
        self.lose_reply_once = False  # the next commit succeeds but its caller sees an error
        self.deliveries_fail = False
        self.deliveries_hang = False
        self.journal_hangs = False

    async def journal(self, batch: UnlockBatch) -> Committed:
        if self.journal_hangs:
            await asyncio.Event().wait()
        statuses, touched, newest = [], set(), 0
        held = {(p, g, a) for _, p, g, a in self.rows}
        for key in zip(batch.player_ids, batch.game_ids, batch.achievement_ids, strict=True):
            if key in held:
                statuses.append(AckStatus.DUPLICATE)
                continue
            seq = len(self.rows) + 1
            self.rows.append((seq, *key))
            held.add(key)
            statuses.append(AckStatus.ACCEPTED)
            newest = seq
            if not self.lose_reply_once:
                self.fold(seq, key[0], key[1])
                touched.add((key[0], key[1]))
        if self.lose_reply_once:
            self.lose_reply_once = False
            raise ConnectionResetError("connection lost during COMMIT")
        return Committed(AckBatch(statuses, [None] * len(statuses)), touched, newest)

    def fold(self, seq: int, player: str, game: str) -> None:
        assert seq not in self.folded, f"seq {seq} folded in twice"
        self.folded[seq] = (player, game)

    async def reconcile(self, after_seq: int) -> tuple[set[Pair], int, int]:
        tail = [r for r in self.rows if r[0] > after_seq]
        for seq, player, game, _ in tail:
            if seq not in self.folded:
                self.fold(seq, player, game)
        return {(p, g) for _, p, g, _ in tail}, max([after_seq] + [r[0] for r in tail]), len(tail)

    async def deliver(self, pairs: set[Pair]) -> None:
        if self.deliveries_hang:
            await asyncio.Event().wait()
        if self.deliveries_fail:
            raise ConnectionError("leaderboard restarting")
        self.leaderboard |= pairs


def batch(*keys: str) -> UnlockBatch:
    return UnlockBatch.of([Unlock(f"p-{k}", "g", f"a-{k}") for k in keys])


@pytest.fixture
async def running() -> tuple[Shard, JournalPipeline]:
    shard = Shard()
    pipeline = JournalPipeline(shard.journal, shard.reconcile, shard.deliver, backlog_max=1000, deadline_s=0.5,
                               redeliver_s=0.01)
    tasks = [asyncio.ensure_future(pipeline.run_writer()), asyncio.ensure_future(pipeline.run_deliverer())]
    yield shard, pipeline
    for task in tasks:
        task.cancel()



async def test_rows_of_an_ambiguous_commit_are_counted_once_before_the_next_write(running) -> None:
    shard, pipeline = running
    assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]
    shard.lose_reply_once = True
    lost = await pipeline.submit(batch("2", "3"))  # committed, but the shard was told it failed
    assert lost == AckBatch([AckStatus.REJECTED] * 2, [Reason.UNAVAILABLE.value] * 2)  # at once: retry
    assert pipeline.suspect
    retry = await pipeline.submit(batch("2", "3", "4"))  # the client retries, with one more
    assert retry.statuses == [AckStatus.DUPLICATE, AckStatus.DUPLICATE, AckStatus.ACCEPTED]
    # every committed row is folded in exactly once (Shard.fold asserts the "once")
    assert sorted(shard.folded) == [1, 2, 3, 4]
    assert pipeline.journaled_seq == 4 and pipeline.reconciled == 2 and not pipeline.suspect
    await until(lambda: pipeline.delivered_seq == 4)
    assert shard.leaderboard == {(f"p-{k}", "g") for k in "1234"}


async def test_a_failed_reconcile_fails_the_round_and_is_retried(running) -> None:
    shard, pipeline = running
    shard.lose_reply_once = True
    assert (await pipeline.submit(batch("1"))).reasons == [Reason.UNAVAILABLE.value]
    real = shard.reconcile

    async def down(after_seq: int) -> tuple[set[Pair], int, int]:
        raise OSError("PostgreSQL is away")

    pipeline._reconcile = down  # PostgreSQL away while the shard reconciles
    assert (await pipeline.submit(batch("2"))).statuses == [AckStatus.REJECTED]
    assert pipeline.suspect and [r[0] for r in shard.rows] == [1], "nothing is written before reconciling"
    pipeline._reconcile = real
    assert (await pipeline.submit(batch("2"))).statuses == [AckStatus.ACCEPTED]
    assert sorted(shard.folded) == [1, 2]


async def test_the_watermark_never_passes_a_failed_delivery(running) -> None:
    shard, pipeline = running
    shard.deliveries_fail = True
    await pipeline.submit(batch("1", "2"))
    await until(lambda: pipeline.undelivered)
    assert pipeline.delivered_seq == 0
    await asyncio.sleep(0.05)  # several redelivery rounds fail meanwhile
    assert pipeline.delivered_seq == 0
    shard.deliveries_fail = False
    await until(lambda: pipeline.delivered_seq == 2)
    assert shard.leaderboard == {("p-1", "g"), ("p-2", "g")} and not pipeline.undelivered


async def test_a_hanging_leaderboard_delays_commits_by_at_most_the_deadline() -> None:
    shard = Shard()
    shard.deliveries_hang = True
    pipeline = JournalPipeline(shard.journal, shard.reconcile, shard.deliver, backlog_max=1, deadline_s=0.2)
    tasks = [asyncio.ensure_future(pipeline.run_writer()), asyncio.ensure_future(pipeline.run_deliverer())]
    try:
        await pipeline.submit(batch("1"))  # the backlog is full now: the writer waits for a round, bounded
        acks = await asyncio.wait_for(pipeline.submit(batch("2")), 2.0)
        assert acks.statuses == [AckStatus.ACCEPTED]
    finally:
        for task in tasks:
            task.cancel()


async def test_a_hanging_journal_answers_timeout_instead_of_waiting_forever(running) -> None:
    shard, pipeline = running
    shard.journal_hangs = True
    with pytest.raises(TimeoutError):
        await pipeline.submit(batch("1"))


async def test_recovery_resends_the_tail_and_holds_the_watermark_until_it_lands(running) -> None:
    shard, pipeline = running
    shard.deliveries_fail = True
    pipeline.resume(watermark=10, journaled_seq=12, touched={("p-x", "g")})
    await until(lambda: pipeline.undelivered)
    assert (pipeline.journaled_seq, pipeline.delivered_seq) == (12, 10)
    shard.deliveries_fail = False
    await until(lambda: pipeline.delivered_seq == 12)
    assert ("p-x", "g") in shard.leaderboard
