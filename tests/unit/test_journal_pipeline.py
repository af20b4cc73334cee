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

from podium.core.journal_pipeline import Committed, JournalPipeline, Pair
from podium.wire.messages import ALL_GAMES, AckBatch, AckStatus, Reason, StatUpdate, Unlock, UnlockBatch
from tests.unit.polling import until

TOTALS = 2  # the leaderboard shard of every player's total
SHARD_OF_GAME = {"g": 0, "g-a": 0, "g-b": 1, "g-new": 0}


def route(pair: Pair) -> list[tuple[int, Pair]]:
    """As delivery.destinations: the pair to its game's shard, the player's total to TOTALS."""
    return [(SHARD_OF_GAME[pair[1]], pair), (TOTALS, (pair[0], ALL_GAMES))]


def plan(batch: UnlockBatch) -> list[int]:
    """As plan_intake: a `bad-*` achievement is unknown; a repeat within the batch is not inserted."""
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for i, key in enumerate(zip(batch.player_ids, batch.game_ids, batch.achievement_ids, strict=True)):
        if key[2].startswith("bad") or key in seen:
            continue
        seen.add(key)
        rows.append(i)
    return rows


class Shard:
    """The shard's side: a journal, the points it has folded in, what reached each leaderboard shard."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str, str]] = []  # (seq, player, game, achievement): committed, visible
        self.landing: list[tuple[int, str, str, str]] = []  # a COMMIT still in flight: visible once it lands
        self.folded: dict[int, tuple[str, str]] = {}  # seq -> pair, each at most once
        self.boards: dict[int, set[Pair]] = {}  # leaderboard shard -> items that landed there
        self.calls: list[int] = []  # items per delivery call
        self.lose_reply_once = False  # the next commit succeeds but its caller sees an error
        self.land_late_once = False  # the next commit's caller sees an error while its COMMIT is still landing
        self.deliveries_fail = False
        self.deliveries_hang = False
        self.failing: set[int] = set()  # leaderboard shards that refuse deliveries
        self.hung: set[int] = set()  # leaderboard shards whose calls answer nothing until their deadline
        self.journal_hangs = False

    @property
    def leaderboard(self) -> set[Pair]:
        """The game pairs that landed, on whichever shard."""
        return {pair for shard, items in self.boards.items() if shard != TOTALS for pair in items}

    async def journal(self, batch: UnlockBatch) -> Committed:
        if self.journal_hangs:
            await asyncio.Event().wait()
        assert not self.landing, "a write while an earlier transaction of this shard is still open"
        statuses, reasons, touched, newest = [], [], set(), 0
        held = {(p, g, a) for _, p, g, a in self.rows}
        ambiguous = self.lose_reply_once or self.land_late_once
        written = self.landing if self.land_late_once else self.rows
        for key in (batch.key(i) for i in range(len(batch))):  # a stat update's: (player, game, "#" + event)
            if key[2].startswith("bad"):
                statuses.append(AckStatus.REJECTED)
                reasons.append("unknown_achievement")
                continue
            reasons.append(None)
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
        return Committed(AckBatch(statuses, reasons), touched, newest)

    async def journaled(self, batch: UnlockBatch) -> list[bool]:
        held = {(p, g, a) for _, p, g, a in self.rows}
        return [batch.key(i) in held for i in range(len(batch))]

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

    async def deliver(self, shard: int, items: set[Pair]) -> None:
        if self.deliveries_hang:
            await asyncio.Event().wait()
        if shard in self.hung:  # until the call's deadline (the player shard's _deliver has one)
            await asyncio.sleep(0.2)
            raise TimeoutError(f"leaderboard shard {shard} did not answer")
        if self.deliveries_fail or shard in self.failing:
            raise ConnectionError(f"leaderboard shard {shard} restarting")
        self.calls.append(len(items))
        self.boards.setdefault(shard, set()).update(items)

    def landed(self, seq: int) -> bool:
        """Every item of journal row `seq` is on its leaderboard shard."""
        player, game = self.folded[seq]
        return all(item in self.boards.get(shard, set()) for shard, item in route((player, game)))


def pipeline_of(shard: Shard, **options: object) -> JournalPipeline:
    defaults: dict[str, object] = {"backlog_max": 1000, "deadline_s": 0.5, "redeliver_s": 0.01, "plan": plan}
    return JournalPipeline(shard.journal, shard.reconcile, shard.deliver, settle=shard.settle,
                           route=route, journaled=shard.journaled, **{**defaults, **options})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def run(pipeline: JournalPipeline) -> AsyncIterator[JournalPipeline]:
    tasks = [asyncio.ensure_future(pipeline.run_writer()), asyncio.ensure_future(pipeline.run_deliverer())]
    try:
        yield pipeline
    finally:
        for task in tasks:
            task.cancel()


def batch(*keys: str, game: str = "g") -> UnlockBatch:
    return UnlockBatch.of([Unlock(f"p-{k}", game, f"a-{k}") for k in keys])


def undelivered(pipeline: JournalPipeline) -> int:
    """Items held for leaderboard shards whose last delivery failed."""
    return int(pipeline.status()["undelivered"])  # type: ignore[call-overload]


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
    await until(lambda: undelivered(pipeline))
    assert pipeline.delivered_seq == 0
    await asyncio.sleep(0.05)  # several redelivery rounds fail meanwhile
    assert pipeline.delivered_seq == 0
    shard.deliveries_fail = False
    await until(lambda: pipeline.delivered_seq == 2)
    assert shard.leaderboard == {("p-1", "g"), ("p-2", "g")} and not undelivered(pipeline)


async def test_a_hanging_leaderboard_never_holds_a_commit() -> None:
    shard = Shard()
    shard.deliveries_hang = True
    async with run(pipeline_of(shard, backlog_max=1, deadline_s=5.0)) as pipeline:
        assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]  # the backlog is full now
        acks = await asyncio.wait_for(pipeline.submit(batch("2")), 0.1)  # answered at once, not held
        assert acks == AckBatch([AckStatus.REJECTED], [Reason.OVERLOADED.value])


async def test_a_full_backlog_answers_overloaded_at_once_and_drains_when_the_leaderboard_is_back() -> None:
    """Leaderboards down under heavy ingest: what waits for each is bounded
    (`backlog_max` plus one unlock), ingest is told `overloaded` meanwhile, and
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
            assert pipeline.backlog <= 50 + 1
        assert answers.count(Reason.OVERLOADED.value) >= 200 and len(accepted) == 50
        assert len(shard.rows) == 50, "an overloaded unlock is not journaled"
        assert pipeline.overloaded == answers.count(Reason.OVERLOADED.value)
        shard.deliveries_fail = False
        await until(lambda: pipeline.settled)
        assert shard.leaderboard == accepted and pipeline.delivered_seq == 50
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
    sent: list[int] = []

    async def second_call_fails(to: int, items: set[Pair]) -> None:
        if to == 0:
            sent.append(len(items))
            if len(sent) == 2:
                raise ConnectionError("leaderboard went away")
        await real(to, items)

    pipeline._deliver = second_call_fails
    assert not await pipeline.deliver_once()
    assert sent == [10, 10] and pipeline.backlog == 15 and pipeline.delivered_seq == 0
    assert pipeline.lanes[0].size == 15 and not pipeline.lanes[0].in_flight and undelivered(pipeline) == 15
    assert pipeline.lanes[TOTALS].idle, "the totals shard took its own chunks"
    pipeline._deliver = real
    assert await pipeline.deliver_once()
    assert pipeline.backlog == 0 and pipeline.delivered_seq == 25
    assert len(shard.leaderboard) == 25 and len(shard.boards[TOTALS]) == 25


async def test_a_hanging_journal_answers_timeout_instead_of_waiting_forever(running) -> None:
    shard, pipeline = running
    shard.journal_hangs = True
    with pytest.raises(TimeoutError):
        await pipeline.submit(batch("1"))


async def test_recovery_resends_the_tail_and_holds_the_watermark_until_it_lands(running) -> None:
    shard, pipeline = running
    shard.deliveries_fail = True
    pipeline.resume(watermark=10, journaled_seq=12, touched={("p-x", "g")})
    await until(lambda: undelivered(pipeline))
    assert (pipeline.journaled_seq, pipeline.delivered_seq) == (12, 10)
    shard.deliveries_fail = False
    await until(lambda: pipeline.delivered_seq == 12)
    assert ("p-x", "g") in shard.leaderboard


async def test_a_hung_leaderboard_stalls_neither_the_healthy_ones_nor_their_unlocks() -> None:
    """Leaderboard shard 0 (game g-a) hangs; shard 1 (g-b) and the totals shard
    answer. Shard 1 gets every g-b score and the totals shard every total while
    shard 0 hangs; its lane alone fills and refuses g-a unlocks, g-b unlocks go
    on being accepted; the watermark stays below the first undelivered g-a row
    and every row at or below it is on all its boards, at every moment."""
    shard = Shard()
    shard.hung = {0}
    async with run(pipeline_of(shard, backlog_max=5, deadline_s=5.0)) as pipeline:
        answers: dict[str, list[AckStatus]] = {"g-a": [], "g-b": []}
        for n in range(10):
            for game in ("g-a", "g-b"):
                acks = await asyncio.wait_for(pipeline.submit(batch(f"{game}-{n}", game=game)), 0.2)
                answers[game] += acks.statuses
                assert all(shard.landed(seq) for seq in shard.folded if seq <= pipeline.delivered_seq)
        assert answers["g-b"] == [AckStatus.ACCEPTED] * 10, "a hung shard refused unlocks for a healthy one"
        assert answers["g-a"].count(AckStatus.ACCEPTED) == 5 and pipeline.lanes[0].size <= 5 + 1
        accepted_b = {(f"p-g-b-{n}", "g-b") for n in range(10)}
        await until(lambda: shard.boards.get(1) == accepted_b)  # delivered while shard 0 hangs
        await until(lambda: len(shard.boards.get(TOTALS, ())) == 15)
        first_a = min(seq for seq, (_, game) in shard.folded.items() if game == "g-a")
        assert pipeline.delivered_seq < first_a <= pipeline.journaled_seq
        assert all(shard.landed(seq) for seq in shard.folded if seq <= pipeline.delivered_seq)
        shard.hung = set()
        await until(lambda: pipeline.delivered_seq == pipeline.journaled_seq == 15, timeout=10)
        assert all(shard.landed(seq) for seq in shard.folded) and pipeline.settled


async def test_a_failing_totals_shard_holds_only_the_totals_and_the_watermark() -> None:
    shard = Shard()
    shard.failing = {TOTALS}
    async with run(pipeline_of(shard)) as pipeline:
        for n in range(4):
            assert (await pipeline.submit(batch(str(n), game=("g-a", "g-b")[n % 2]))).statuses == [AckStatus.ACCEPTED]
        await until(lambda: len(shard.leaderboard) == 4)  # every game board has its scores
        assert pipeline.delivered_seq == 0 and pipeline.status()["failing_leaderboards"] == [TOTALS]
        assert pipeline.lanes[TOTALS].size == 4 and pipeline.lanes[0].idle and pipeline.lanes[1].idle
        shard.failing = set()
        await until(lambda: pipeline.delivered_seq == 4)
        assert all(shard.landed(seq) for seq in shard.folded)


async def test_a_full_backlog_still_answers_duplicates_and_invalid_items() -> None:
    """With the backlog full, only the unlocks that would be journaled are
    refused: a retry of one already journaled is `duplicate`, an unknown
    achievement `rejected` for what it is, and nothing else is charged."""
    shard = Shard()
    shard.hung = {0}
    async with run(pipeline_of(shard, backlog_max=1, deadline_s=5.0)) as pipeline:
        assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]  # the backlog is full now
        retry = UnlockBatch.of([Unlock("p-1", "g", "a-1"), Unlock("p-2", "g", "bad-2"), Unlock("p-3", "g", "a-3"),
                                Unlock("p-3", "g", "a-3")])
        acks = await asyncio.wait_for(pipeline.submit(retry), 0.2)
        assert acks.statuses == [AckStatus.DUPLICATE, AckStatus.REJECTED, AckStatus.REJECTED, AckStatus.REJECTED]
        assert acks.reasons == [None, "unknown_achievement", Reason.OVERLOADED.value, Reason.OVERLOADED.value]
        assert pipeline.overloaded == 2 and [r[0] for r in shard.rows] == [1]


async def test_a_slow_write_round_answers_overloaded_past_the_queue_cap_at_once() -> None:
    """PostgreSQL slow: while one round waits, resends queue up to
    `pending_max` unlocks; past that a batch is refused at once, not held
    until its deadline."""
    shard = Shard()
    shard.journal_hangs = True
    async with run(pipeline_of(shard, pending_max=10, deadline_s=5.0)) as pipeline:
        stuck = asyncio.ensure_future(pipeline.submit(batch("0")))  # the round that hangs
        await until(lambda: pipeline._writing)
        queued = [asyncio.ensure_future(pipeline.submit(batch(*[f"{n}-{i}" for i in range(4)]))) for n in range(2)]
        await until(lambda: pipeline.pending_batches == 2)
        acks = await asyncio.wait_for(pipeline.submit(batch("late-1", "late-2", "late-3")), 0.2)
        assert acks == AckBatch([AckStatus.REJECTED] * 3, [Reason.OVERLOADED.value] * 3)
        assert pipeline.pending_batches == 2 and pipeline.overloaded == 3
        for task in (stuck, *queued):
            task.cancel()


async def test_a_resend_of_an_unlock_queued_or_in_the_round_waits_for_that_copy_past_the_queue_cap() -> None:
    """PostgreSQL slow and the queue at its cap: the gateway's call timed out
    (actor_call_timeout_s) and it resends. An unlock whose earlier copy is in
    the running round or still queued will be journaled by that copy, so it is
    not answered `overloaded` (which says: not journaled): the resend gets that
    copy's answer, and is neither queued nor journaled again. An unlock of the
    same batch with no copy on its way is still refused at once."""
    shard = Shard()
    gate = asyncio.Event()
    journal = shard.journal

    async def slow_journal(b: UnlockBatch) -> Committed:
        await gate.wait()
        return await journal(b)

    pipeline = pipeline_of(shard, pending_max=4, deadline_s=5.0)
    pipeline._journal = slow_journal
    async with run(pipeline):
        first = asyncio.ensure_future(pipeline.submit(batch("r")))  # the round that waits on PostgreSQL
        await until(lambda: pipeline._writing)
        queued = asyncio.ensure_future(pipeline.submit(batch("q1", "q2", "q3", "q4")))  # the queue is full
        await until(lambda: pipeline.pending_batches == 1)
        first.cancel()  # the gateway's attempt timed out: the copy in the round goes on
        resend = asyncio.ensure_future(pipeline.submit(batch("r", "q2", "new", "q2")))
        await asyncio.sleep(0.05)
        assert not resend.done(), "a resend of a copy on its way to the journal was answered before that copy"
        assert pipeline.pending_batches == 1 and pipeline.status()["pending_unlocks"] == 4, "queued twice"
        assert pipeline.overloaded == 1 and pipeline.joined == 2  # `new` alone has no copy queued
        gate.set()
        acks = await asyncio.wait_for(resend, 1.0)
        # Each unlock is `accepted` once: the copies that joined hear `duplicate` (a retry of theirs that committed).
        assert acks.statuses == [AckStatus.DUPLICATE, AckStatus.DUPLICATE, AckStatus.REJECTED, AckStatus.DUPLICATE]
        assert acks.reasons == [None, None, Reason.OVERLOADED.value, None]
        assert (await queued).statuses == [AckStatus.ACCEPTED] * 4
        assert sorted(a for _, _, _, a in shard.rows) == ["a-q1", "a-q2", "a-q3", "a-q4", "a-r"]
        # Answered: the copies are off the map, so a later resend is journaled (`duplicate`), not attached.
        assert (await pipeline.submit(batch("r", "new"))).statuses == [AckStatus.DUPLICATE, AckStatus.ACCEPTED]
        assert not pipeline._held


async def test_a_resend_of_an_unlock_whose_round_failed_gets_that_rounds_answer() -> None:
    """The copy's round fails (PostgreSQL away): the resend waiting on it is
    answered `unavailable` with it, and nothing is left on the map."""
    shard = Shard()
    gate = asyncio.Event()

    async def failing_journal(b: UnlockBatch) -> Committed:
        await gate.wait()
        raise ConnectionError("PostgreSQL went away")

    pipeline = pipeline_of(shard, pending_max=1, deadline_s=5.0)
    pipeline._journal = failing_journal
    async with run(pipeline):
        first = asyncio.ensure_future(pipeline.submit(batch("r")))
        await until(lambda: pipeline._writing)
        resend = asyncio.ensure_future(pipeline.submit(batch("r")))
        await asyncio.sleep(0.02)
        assert not resend.done() and pipeline.pending_batches == 0
        gate.set()
        assert (await resend) == (await first) == AckBatch([AckStatus.REJECTED], [Reason.UNAVAILABLE.value])
        assert not pipeline._held and pipeline.overloaded == 0



async def test_an_unlock_the_plan_learns_of_by_a_refresh_is_admitted_against_the_backlog() -> None:
    """The plan does not know game `g-new` until a refresh (the shard's catalog
    reload) adds it: the round plans and admits again, so with its lane full
    the unlock is answered `overloaded` and not journaled. A round the plan
    takes whole does not refresh."""
    shard = Shard()
    shard.hung = {0}
    known = {"g"}
    refreshes: list[int] = []

    def plan_known(b: UnlockBatch) -> list[int]:
        return [i for i in plan(b) if b.game_ids[i] in known]

    async def refresh(b: UnlockBatch) -> bool:
        refreshes.append(len(b))
        known.add("g-new")
        return True

    async with run(pipeline_of(shard, plan=plan_known, refresh=refresh, backlog_max=1, deadline_s=5.0)) as pipeline:
        assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]  # lane 0 is full now
        assert not refreshes
        acks = await asyncio.wait_for(pipeline.submit(batch("2", game="g-new")), 0.2)
        assert refreshes == [1] and acks == AckBatch([AckStatus.REJECTED], [Reason.OVERLOADED.value])
        assert [r[0] for r in shard.rows] == [1] and pipeline.lanes[0].size <= 1 + 1


async def test_a_failed_refresh_answers_unavailable_and_journals_nothing() -> None:
    shard = Shard()

    async def refresh(b: UnlockBatch) -> bool:
        raise TimeoutError("no connection free in the pool")

    async with run(pipeline_of(shard, refresh=refresh)) as pipeline:
        acks = await pipeline.submit(UnlockBatch.of([Unlock("p-1", "g", "a-1"), Unlock("p-2", "g", "bad-2")]))
        assert acks.reasons == [Reason.UNAVAILABLE.value] * 2 and not shard.rows


async def test_a_round_started_beside_the_lane_loops_neither_loses_items_nor_moves_the_watermark_past_them() -> None:
    """deliver_once() while a lane loop's round to the same shard is in flight:
    the second round waits for the first (one round per lane at a time), so the
    first round's items are not lost when a chunk of it fails, and no lane's
    delivered_seq passes a row that has not landed."""
    shard = Shard()
    gate = asyncio.Event()
    deliver = shard.deliver
    failed: list[set[Pair]] = []

    async def first_fails_late(to: int, items: set[Pair]) -> None:
        if to == 0 and ("p-1", "g") in items and not failed:
            failed.append(items)
            await gate.wait()
            raise ConnectionError("leaderboard shard 0 restarting")
        await deliver(to, items)

    pipeline = pipeline_of(shard, redeliver_s=0.05)
    pipeline._deliver = first_fails_late
    async with run(pipeline):
        assert (await pipeline.submit(batch("1"))).statuses == [AckStatus.ACCEPTED]
        await until(lambda: failed)  # the lane loop's round to shard 0 carries row 1
        assert (await pipeline.submit(batch("2"))).statuses == [AckStatus.ACCEPTED]
        beside = asyncio.ensure_future(pipeline.deliver_once())
        await asyncio.sleep(0.02)
        gate.set()  # row 1's chunk fails
        await asyncio.wait_for(beside, 1.0)
        assert all(shard.landed(seq) for seq in shard.folded if seq <= pipeline.delivered_seq)
        assert all(shard.landed(seq) for seq in shard.folded if seq <= pipeline.delivered_to(0))
        await until(lambda: pipeline.settled)
        assert all(shard.landed(seq) for seq in shard.folded) and pipeline.delivered_seq == 2


async def test_a_stat_update_resent_while_its_copy_is_in_the_round_waits_for_it_and_counts_once() -> None:
    """Stat updates are keyed by their event id: a resend (whatever value it
    carries) joins the copy on its way and hears `duplicate`; after an
    ambiguous commit the retry is `duplicate` because the first copy counted."""
    shard = Shard()
    gate = asyncio.Event()
    journal = shard.journal

    async def slow_journal(b: UnlockBatch) -> Committed:
        await gate.wait()
        return await journal(b)

    def update(event: str, value: int = 1) -> UnlockBatch:
        return UnlockBatch.of([StatUpdate("p", "g", "wins", "incr", value, event)])

    pipeline = pipeline_of(shard, deadline_s=5.0, plan=lambda b: list(range(len(b))))
    pipeline._journal = slow_journal
    async with run(pipeline):
        first = asyncio.ensure_future(pipeline.submit(update("e1")))
        await until(lambda: pipeline._writing)
        resend = asyncio.ensure_future(pipeline.submit(UnlockBatch.concat([update("e1", 9), update("e2")])))
        await asyncio.sleep(0.02)
        assert not resend.done() and pipeline.joined == 1
        gate.set()
        assert (await first).statuses == [AckStatus.ACCEPTED]
        assert (await resend).statuses == [AckStatus.DUPLICATE, AckStatus.ACCEPTED]
        shard.lose_reply_once = True
        assert (await pipeline.submit(update("e3"))).reasons == [Reason.UNAVAILABLE.value]
        assert (await pipeline.submit(update("e3"))).statuses == [AckStatus.DUPLICATE]
    assert sorted(a for _, _, _, a in shard.rows) == ["#e1", "#e2", "#e3"]


async def test_pairs_touched_on_their_boards_only_do_not_go_to_the_totals_shard() -> None:
    """A stat row moves its game's stat boards, never the player's total: such a
    pair (Committed.boards_only) is owed to its game's shard alone. A pair an
    unlock touched in the same round still goes to both."""
    shard = Shard()
    journal = shard.journal

    async def stat_rows_boards_only(b: UnlockBatch) -> Committed:
        done = await journal(b)
        stat_pairs = {(b.player_ids[i], b.game_ids[i]) for i in range(len(b)) if b.is_stat(i)}
        unlock_pairs = {(b.player_ids[i], b.game_ids[i]) for i in range(len(b)) if not b.is_stat(i)}
        return Committed(done.acks, done.touched, done.max_seq, stat_pairs - unlock_pairs)

    pipeline = pipeline_of(shard, plan=lambda b: list(range(len(b))))
    pipeline._journal = stat_rows_boards_only
    async with run(pipeline):
        acks = await pipeline.submit(UnlockBatch.concat([
            UnlockBatch.of([StatUpdate("p-stat", "g", "wins", "incr", 1, "e1")]),
            UnlockBatch.of([StatUpdate("p-both", "g-b", "wins", "incr", 1, "e2"), Unlock("p-both", "g-b", "a")])]))
        assert acks.statuses == [AckStatus.ACCEPTED] * 3
        await until(lambda: pipeline.delivered_seq >= 3)
    assert shard.boards[0] == {("p-stat", "g")}
    assert shard.boards[1] == {("p-both", "g-b")}
    assert shard.boards[TOTALS] == {("p-both", ALL_GAMES)}  # not p-stat's total: nothing of it moved
