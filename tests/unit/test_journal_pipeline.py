"""The player shard's write pipeline with its I/O passed in: a journal kept in
a list (unique per unlock, seq-numbered, as PostgreSQL's is), folded into
per-player counters. Faults are injected where the real ones strike: after
COMMIT (the ambiguous commit), during COMMIT (rows that land only after the
error was seen), in delivery, and as calls that never return."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from actors.journal_pipeline import Committed, JournalPipeline, Pair
from actors.messages import AckBatch, AckStatus, Reason, Unlock, UnlockBatch
from tests.unit.polling import until


class Shard:
    """The shard's side: a journal, the points it has folded in, what reached the leaderboard."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str, str]] = []  # (seq, player, game, achievement): committed, visible
        self.landing: list[tuple[int, str, str, str]] = []  # a COMMIT still in flight: visible once it lands
        self.folded: dict[int, tuple[str, str]] = {}  # seq -> pair, each at most once
        self.leaderboard: set[Pair] = set()
        self.calls: list[int] = []  # pairs per delivery call
        self.lose_reply_once = False  # the next commit succeeds but its caller sees an error
        self.land_late_once = False  # the next commit's caller sees an error while its COMMIT is still landing
        self.deliveries_fail = False
        self.deliveries_hang = False
        self.journal_hangs = False

    async def journal(self, batch: UnlockBatch) -> Committed:
        if self.journal_hangs:
            await asyncio.Event().wait()
        assert not self.landing, "a write while an earlier transaction of this shard is still open"
        statuses, touched, newest = [], set(), 0
        held = {(p, g, a) for _, p, g, a in self.rows}
        ambiguous = self.lose_reply_once or self.land_late_once
        written = self.landing if self.land_late_once else self.rows
        for key in zip(batch.player_ids, batch.game_ids, batch.achievement_ids, strict=True):
            if key in held:
                statuses.append(AckStatus.DUPLICATE)
                continue
            seq = len(self.rows) + len(self.landing) + 1  # seq is drawn at INSERT, before COMMIT
            written.append((seq, *key))
            held.add(key)
            statuses.append(AckStatus.ACCEPTED)
            newest = seq
            if not ambiguous:
                self.fold(seq, key[0], key[1])
                touched.add((key[0], key[1]))
        if ambiguous:
            self.lose_reply_once = self.land_late_once = False
            raise TimeoutError("command_timeout during COMMIT")
        return Committed(AckBatch(statuses, [None] * len(statuses)), touched, newest)

    def land(self) -> None:
        """The COMMIT in flight completes: its rows become visible."""
        self.rows += self.landing
        self.landing = []

    async def settle(self) -> None:
        """As journal.settle: returns once no transaction of the shard is open (a landing one lands)."""
        self.land()

    def fold(self, seq: int, player: str, game: str) -> None:
        assert seq not in self.folded, f"seq {seq} folded in twice"
        self.folded[seq] = (player, game)

    async def reconcile(self, after_seq: int) -> tuple[set[Pair], int, int]:
        tail = [r for r in self.rows if r[0] > after_seq]
        for seq, player, game, _ in tail:
            if seq not in self.folded:
                self.fold(seq, player, game)
        self.land()  # the worst moment for a COMMIT still in flight to land: just after the read
        return {(p, g) for _, p, g, _ in tail}, max([after_seq] + [r[0] for r in tail]), len(tail)

    async def deliver(self, pairs: set[Pair]) -> None:
        if self.deliveries_hang:
            await asyncio.Event().wait()
        if self.deliveries_fail:
            raise ConnectionError("leaderboard restarting")
        self.calls.append(len(pairs))
        self.leaderboard |= pairs


def pipeline_of(shard: Shard, **options: object) -> JournalPipeline:
    defaults: dict[str, object] = {"backlog_max": 1000, "deadline_s": 0.5, "redeliver_s": 0.01}
    return JournalPipeline(shard.journal, shard.reconcile, shard.deliver, settle=shard.settle,
                           **{**defaults, **options})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def run(pipeline: JournalPipeline) -> AsyncIterator[JournalPipeline]:
    tasks = [asyncio.ensure_future(pipeline.run_writer()), asyncio.ensure_future(pipeline.run_deliverer())]
    try:
        yield pipeline
    finally:
        for task in tasks:
            task.cancel()


def batch(*keys: str) -> UnlockBatch:
    return UnlockBatch.of([Unlock(f"p-{k}", "g", f"a-{k}") for k in keys])


@pytest.fixture
async def running() -> AsyncIterator[tuple[Shard, JournalPipeline]]:
    shard = Shard()
    async with run(pipeline_of(shard)) as pipeline:
        yield shard, pipeline


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


async def test_rows_of_a_commit_still_landing_after_its_error_are_counted_before_the_next_write(running) -> None:
    """The COMMIT outlives its command_timeout: its rows become visible only
    later. Reconciling before it has settled would miss them, the next write
    would move journaled_seq past them, and the client's retry would be told
    `duplicate` for unlocks that count nowhere."""
    shard, pipeline = running
    assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]
    shard.land_late_once = True
    assert (await pipeline.submit(batch("2", "3"))).reasons == [Reason.UNAVAILABLE.value] * 2
    retry = await pipeline.submit(batch("2", "3", "4"))
    assert retry.statuses == [AckStatus.DUPLICATE, AckStatus.DUPLICATE, AckStatus.ACCEPTED]
    assert sorted(shard.folded) == [1, 2, 3, 4], "a duplicate ack for rows that were never counted"
    assert pipeline.reconciled == 2 and pipeline.journaled_seq == 4
    await until(lambda: pipeline.delivered_seq == 4)
    assert shard.leaderboard == {(f"p-{k}", "g") for k in "1234"}


async def test_a_failed_settle_fails_the_round_and_nothing_is_written(running) -> None:
    shard, pipeline = running
    shard.land_late_once = True
    assert (await pipeline.submit(batch("1"))).reasons == [Reason.UNAVAILABLE.value]

    async def still_open() -> None:
        raise TimeoutError("an append of this shard is still open")

    pipeline._settle = still_open
    assert (await pipeline.submit(batch("2"))).reasons == [Reason.UNAVAILABLE.value]
    assert pipeline.suspect and not shard.rows, "nothing is read or written before the open commit ends"
    pipeline._settle = shard.settle
    assert (await pipeline.submit(batch("2"))).statuses == [AckStatus.ACCEPTED]
    assert sorted(shard.folded) == [1, 2]


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


async def test_a_hanging_leaderboard_never_holds_a_commit() -> None:
    shard = Shard()
    shard.deliveries_hang = True
    async with run(pipeline_of(shard, backlog_max=1, deadline_s=5.0)) as pipeline:
        assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]  # the backlog is full now
        acks = await asyncio.wait_for(pipeline.submit(batch("2")), 0.1)  # answered at once, not held
        assert acks == AckBatch([AckStatus.REJECTED], [Reason.OVERLOADED.value])


async def test_a_full_backlog_answers_overloaded_at_once_and_drains_when_the_leaderboard_is_back() -> None:
    """A leaderboard down under heavy ingest: what waits for it is bounded
    (`backlog_max` plus one batch), ingest is told `overloaded` meanwhile, and
    every accepted unlock reaches the leaderboard once it answers again."""
    shard = Shard()
    shard.deliveries_fail = True
    async with run(pipeline_of(shard, backlog_max=50, chunk_pairs=8)) as pipeline:
        accepted: set[Pair] = set()
        answers: list[str | None] = []
        for n in range(40):
            keys = [f"{n}-{i}" for i in range(7)]
            acks = await asyncio.wait_for(pipeline.submit(batch(*keys)), 0.2)
            answers += acks.reasons
            accepted |= {(f"p-{k}", "g") for k, s in zip(keys, acks.statuses, strict=True)
                         if s == AckStatus.ACCEPTED}
            assert pipeline.backlog <= 50 + 7
        assert answers.count(Reason.OVERLOADED.value) >= 200 and len(accepted) == 56
        assert len(shard.rows) == 56, "an overloaded unlock is not journaled"
        assert pipeline.overloaded == answers.count(Reason.OVERLOADED.value)
        shard.deliveries_fail = False
        await until(lambda: pipeline.settled)
        assert shard.leaderboard == accepted and pipeline.delivered_seq == 56
        assert max(shard.calls) <= 8
        assert (await pipeline.submit(batch("after"))).statuses == [AckStatus.ACCEPTED]


async def test_a_backlog_is_delivered_in_chunks_and_a_failed_chunk_keeps_only_what_did_not_land() -> None:
    shard = Shard()
    pipeline = pipeline_of(shard, chunk_pairs=10)
    for n in range(3):  # 25 pairs journaled while the deliverer is not running
        await pipeline.write_round([(batch(*[f"{n}-{i}" for i in range(10 if n < 2 else 5)]),
                                     asyncio.get_running_loop().create_future())])
    assert pipeline.backlog == 25 and pipeline.journaled_seq == 25
    real = shard.deliver

    async def second_call_fails(pairs: set[Pair]) -> None:
        if shard.calls:
            raise ConnectionError("leaderboard went away")
        await real(pairs)

    pipeline._deliver = second_call_fails
    assert not await pipeline.deliver_once()
    assert shard.calls == [10] and pipeline.backlog == 15 and pipeline.delivered_seq == 0
    assert not pipeline.in_flight and len(pipeline.undelivered) == 15
    pipeline._deliver = real
    assert await pipeline.deliver_once()
    assert shard.calls == [10, 10, 5] and pipeline.backlog == 0 and pipeline.delivered_seq == 25
    assert len(shard.leaderboard) == 25


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
