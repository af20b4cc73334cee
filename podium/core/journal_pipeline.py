"""A player shard's write pipeline without Ray: group commit of queued batches,
reconciliation after an ambiguous journal write, and delivery to the
leaderboards, one lane per leaderboard shard (in chunks, with a bounded
backlog per shard: podium/core/delivery.py), and the watermarks that say what is
safe to checkpoint. The shard passes its I/O in (plan, refresh, journal,
settle, reconcile, journaled, deliver), so the watermark reasoning is
unit-tested without PostgreSQL or Ray.

Invariants (seq = a journal row of this shard; one writer, so rows commit in
seq order):
- every row <= journaled_seq is folded into the shard's state, and each item
  it touched (its pair on its game's shard, the player's total on the totals
  shard) is waiting or in flight in that shard's lane, or has reached it;
- a lane's `delivered_seq`: while the lane holds anything, every row <= it
  has reached that leaderboard shard; an idle lane has everything up to
  journaled_seq. The shard's `delivered_seq` is the least of these, so it
  passes no undelivered item of any shard, and the checkpoint watermark never
  passes it (recovery resends everything after the watermark). One stopped
  leaderboard holds it back; the others' lanes go on delivering;
- after a journal error nothing more is written until the failed transaction
  has ended (`settle`: its COMMIT may still be landing) and the rows it may
  have committed (seq > journaled_seq) are folded in: a retry of them is then
  answered `duplicate` only because they really count."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from podium.core.delivery import CHUNK_PAIRS, admit, chunks
from podium.settings import PENDING_UNLOCKS_MAX
from podium.wire.messages import AckBatch, AckStatus, Key, Reason, UnlockBatch

# `pending_max` (Settings.pending_unlocks_max): unlocks queued for the next write round. A round (or a
# settle) may take up to db_timeout_s; meanwhile a gateway that timed out resends, and each resend would
# queue another copy. Past it a batch's new unlocks are answered `overloaded` at once (one batch is always
# taken). A resent unlock whose earlier copy is still queued or in the running round is never refused (it
# will be journaled, and `overloaded` says it was not): it waits for that copy's answer instead, and is not
# queued again. The map of those copies holds only unlocks admitted under the cap (queued or in the round).

log = logging.getLogger(__name__)
Pair = tuple[str, str]  # (player_id, game_id)


@dataclass(frozen=True, slots=True)
class Committed:
    """What one journal transaction did: the acks of the merged batch, the
    pairs whose score changed, and the newest seq written (0 if none).
    `boards_only`: pairs of `touched` whose change leaves the player's total
    as it was (a stat board's value moved, no points and no region): they go
    to their game's leaderboard shard only, not to the totals shard."""

    acks: AckBatch
    touched: set[Pair]
    max_seq: int
    boards_only: frozenset[Pair] | set[Pair] = frozenset()


Journal = Callable[[UnlockBatch], Awaitable[Committed]]
Settle = Callable[[], Awaitable[None]]  # returns once no journal transaction of the shard is still open
Reconcile = Callable[[int], Awaitable[tuple[set[Pair], int, int]]]  # after_seq -> (touched, newest seq, rows)
Deliver = Callable[[int, set[Pair]], Awaitable[None]]  # (leaderboard shard, items) -> once they landed there
Plan = Callable[[UnlockBatch], Sequence[int]]  # in memory: the indices the journal would insert (valid, first)
# Called when the plan leaves some unlocks out: reloads what the plan knows (the catalog, if the batch names a game
# or achievement it lacks; rate-limited) and returns True if it did. The journal must journal by the catalog the
# last plan used, so that what it inserts is exactly what admission let through.
Refresh = Callable[[UnlockBatch], Awaitable[bool]]
# A touched pair -> (leaderboard shard, item) per lane, its game's boards first, then the player's total.
Route = Callable[[Pair], Sequence[tuple[int, Pair]]]
Journaled = Callable[[UnlockBatch], Awaitable[list[bool]]]  # which items (unlocks, stat events) it already holds
Work = list[tuple[UnlockBatch, asyncio.Future[AckBatch]]]  # queued batches, each with its answer


@dataclass(slots=True)
class Lane:
    """What one leaderboard shard is owed."""

    delivered_seq: int  # while the lane holds anything: every row <= it has landed on this shard
    waiting: set[Pair] = field(default_factory=set)  # not yet taken by a round: new, or resent after a failure
    in_flight: set[Pair] = field(default_factory=set)  # taken by the running round, not yet acknowledged
    failing: bool = False  # its last round failed: the next waits redeliver_s
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # One round at a time: a second would replace in_flight (losing the first's items) and move
    # delivered_seq past rows the first has not landed. Its lane loop and deliver_once() callers share it.
    round_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def size(self) -> int:
        return len(self.waiting) + len(self.in_flight)

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.in_flight


class JournalPipeline:
    def __init__(self, journal: Journal, reconcile: Reconcile, deliver: Deliver, *, settle: Settle, plan: Plan,
                 route: Route, journaled: Journaled | None = None, refresh: Refresh | None = None,
                 backlog_max: int, deadline_s: float,
                 redeliver_s: float = 1.0, chunk_pairs: int = CHUNK_PAIRS,
                 pending_max: int = PENDING_UNLOCKS_MAX) -> None:
        self._journal = journal
        self._settle = settle
        self._reconcile = reconcile
        self._deliver = deliver
        self._plan = plan
        self._refresh = refresh
        self._route = route
        self._journaled = journaled
        self._backlog_max = backlog_max
        self._chunk_pairs = min(chunk_pairs, CHUNK_PAIRS)
        self._deadline_s = deadline_s
        self._redeliver_s = redeliver_s
        self._pending_max = pending_max
        self._pending: Work = []
        self._pending_unlocks = 0
        # Each unlock queued or in the running round -> its batch's answer and its index there (a resend of it
        # waits for that answer). Entries leave when their answer is set, with no await in between.
        self._held: dict[Key, tuple[asyncio.Future[AckBatch], int]] = {}
        self.joined = 0  # resent unlocks that waited for their copy on its way to the journal
        self._wake = asyncio.Event()
        self._new_lane = asyncio.Event()
        self.journaled_seq = 0  # newest journal row of this shard folded into the state
        self._floor = 0  # delivered_seq with no lane busy and nothing journaled after it (recovery's watermark)
        self.lanes: dict[int, Lane] = {}  # leaderboard shard -> what it is owed
        self.suspect = False  # a journal write failed: rows after journaled_seq may have committed unseen
        self.reconciled = 0  # rows folded in by reconciliation (they had committed while the write failed)
        self.overloaded = 0  # unlocks answered `overloaded` (a full lane, or too many queued)
        self._writing = False  # a write round (journal transaction) is running

    def resume(self, watermark: int, journaled_seq: int, touched: set[Pair]) -> None:
        """Recovery: state holds the checkpoint plus the journal up to journaled_seq;
        every pair the tail touched is resent (versioned, so resends are harmless)."""
        self.lanes = {}
        self._floor = watermark
        self.journaled_seq = watermark
        self._note(touched, max(watermark, journaled_seq))

    @property
    def delivered_seq(self) -> int:
        """Every journal row of this shard <= this reached every leaderboard it goes to."""
        busy = [lane.delivered_seq for lane in self.lanes.values() if not lane.idle]
        return min(busy) if busy else max(self._floor, self.journaled_seq)

    def delivered_to(self, shard: int) -> int:
        """Every row <= this reached leaderboard shard `shard` (its period scores at or below are on it)."""
        lane = self.lanes.get(shard)
        return self.delivered_seq if lane is None or lane.idle else lane.delivered_seq

    # ---- the write side ---------------------------------------------------
    async def submit(self, batch: UnlockBatch) -> AckBatch:
        """The batch's acks once its transaction committed; TimeoutError past the
        deadline (the caller retries: a committed unlock then comes back duplicate).
        An unlock whose earlier copy is queued or in the running round (a resend
        after the caller's timeout) gets that copy's answer and is not queued
        again. Past `pending_max` unlocks already queued, the others are answered
        `overloaded` at once (nothing of them journaled)."""
        copies: list[tuple[int, asyncio.Future[AckBatch], int]] = []  # (index here, copy's answer, index there)
        fresh: list[int] = []
        statuses: list[AckStatus] = [AckStatus.REJECTED] * len(batch)
        reasons: list[str | None] = [Reason.OVERLOADED.value] * len(batch)
        joined: set[Key] = set()
        keys = batch.keys()
        for i, key in enumerate(keys):
            held = self._held.get(key)
            if held is None:
                fresh.append(i)  # a repeat of one of these within the batch: the plan answers it
            elif key in joined:
                statuses[i], reasons[i] = AckStatus.DUPLICATE, None  # as the plan answers a repeat
            else:
                joined.add(key)
                copies.append((i, *held))
        waits: list[asyncio.Future[AckBatch]] = [answer for _, answer, _ in copies]
        own: asyncio.Future[AckBatch] | None = None
        if fresh and self._pending_unlocks + len(fresh) > self._pending_max and self._pending:
            # A write round or a settle is slow (PostgreSQL): every resend would queue another copy.
            self.overloaded += len(fresh)
        elif fresh:
            part = batch if len(fresh) == len(batch) else batch.take(fresh)
            own = asyncio.get_running_loop().create_future()
            self._pending.append((part, own))
            self._pending_unlocks += len(part)
            for j, i in enumerate(fresh):
                self._held.setdefault(keys[i], (own, j))  # a repeat within the batch: its first
            self._wake.set()
            waits.append(own)
        self.joined += len(copies)
        if not copies:
            if own is None:
                return AckBatch(statuses, reasons)
            # The commit happens in the writer: a caller that goes away does not undo it.
            return await asyncio.wait_for(asyncio.shield(own), self._deadline_s)
        await asyncio.wait_for(asyncio.shield(asyncio.gather(*set(waits))), self._deadline_s)
        if own is not None:
            for i, status, reason in zip(fresh, own.result().statuses, own.result().reasons, strict=True):
                statuses[i], reasons[i] = status, reason
        for i, answer, j in copies:  # the copy's answer; `accepted` once per unlock: a joiner hears `duplicate`
            status = answer.result().statuses[j]
            statuses[i] = AckStatus.DUPLICATE if status is AckStatus.ACCEPTED else status
            reasons[i] = answer.result().reasons[j]
        return AckBatch(statuses, reasons)

    @property
    def pending_batches(self) -> int:
        return len(self._pending)

    @property
    def backlog(self) -> int:
        """Items the fullest lane holds (what `backlog_max` bounds)."""
        return max((lane.size for lane in self.lanes.values()), default=0)

    @property
    def backlog_total(self) -> int:
        """Items journaled and not yet on their leaderboard, over every lane."""
        return sum(lane.size for lane in self.lanes.values())

    @property
    def settled(self) -> bool:
        """Nothing queued, no transaction running, every journaled row delivered."""
        return (not self._pending and not self._writing and self.journaled_seq == self.delivered_seq
                and not self.backlog_total)

    async def run_writer(self) -> None:
        """Group commit: every batch queued while the previous commit ran goes
        into the next transaction. It never waits for the leaderboards: an
        unlock bound for a leaderboard shard whose lane is full is answered
        `overloaded`."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            work, self._pending, self._pending_unlocks = self._pending, [], 0
            if work:
                self._writing = True
                try:
                    await self.write_round(work)
                finally:
                    self._writing = False

    async def write_round(self, work: Work) -> None:
        try:
            await self._write(work)
        finally:
            # Every batch of the round has its answer now (or never will: the writer was stopped): a resend
            # of one of its unlocks from here on is queued and journaled (`duplicate` if this committed it).
            for batch, future in work:
                for key in batch.keys():
                    if self._held.get(key, (None, 0))[0] is future:
                        del self._held[key]

    async def _write(self, work: Work) -> None:
        merged = UnlockBatch.concat([batch for batch, _ in work])
        try:
            if self.suspect:
                # The failed transaction's COMMIT may still be landing; a read before it
                # ends could miss rows that then count for nothing (their retry: duplicate).
                await self._settle()
                touched, newest, count = await self._reconcile(self.journaled_seq)
                self.reconciled += count
                self._note(touched, newest)
                self.suspect = False
            # In memory first: an invalid item or a repeat within the round adds nothing to any lane.
            rows = self._plan(merged)
            if len(rows) < len(merged) and self._refresh is not None and await self._refresh(merged):
                # A game added since the catalog was loaded: its unlocks are admitted like any other.
                rows = self._plan(merged)
            statuses: list[AckStatus | None] = [None] * len(merged)
            reasons: list[str | None] = [None] * len(merged)
            refused = self._refuse(merged, rows)
            if refused:
                # The leaderboard shards these go to are down or far behind: holding more
                # for them would grow without bound. An unlock the journal already holds
                # (a retry of a commit whose reply was lost) is a duplicate, not refused.
                keys = {_key(merged, i) for i in refused}
                which = [i for i in range(len(merged)) if _key(merged, i) in keys]
                held = await self._journaled(merged.take(which)) if self._journaled else [False] * len(which)
                for i, known in zip(which, held, strict=True):
                    statuses[i] = AckStatus.DUPLICATE if known else AckStatus.REJECTED
                    reasons[i] = None if known else Reason.OVERLOADED.value
                self.overloaded += reasons.count(Reason.OVERLOADED.value)
            rest = [i for i in range(len(merged)) if statuses[i] is None]
            # The whole round as admission planned it (its plan is then the write's), or what was not refused.
            written = merged if len(rest) == len(merged) else merged.take(rest)
            committed = await self._journal(written) if rest else Committed(AckBatch([], []), set(), 0)
        except BaseException as exc:
            # The transaction may have committed even though we saw an error (a
            # connection lost during COMMIT): reconcile before the next write.
            self.suspect = True
            if not isinstance(exc, Exception):
                _fail(work, RuntimeError("the journal writer was stopped"))
                raise
            log.warning("journal write failed for %d batches (%r); reconciling before the next",
                        len(work), exc)
            _answer(work, Reason.UNAVAILABLE)
            return
        for i, status, reason in zip(rest, committed.acks.statuses, committed.acks.reasons, strict=True):
            statuses[i], reasons[i] = status, reason
        start = 0
        for batch, future in work:
            end = start + len(batch)
            if not future.done():
                future.set_result(AckBatch(statuses[start:end], reasons[start:end]))  # type: ignore[arg-type]
            start = end
        self._note(committed.touched, committed.max_seq, committed.boards_only)

    def _refuse(self, merged: UnlockBatch, rows: Sequence[int]) -> list[int]:
        """The journal rows whose lane (their game's shard, or the totals shard) is full."""
        held = {shard: lane.size for shard, lane in self.lanes.items()}
        if max(held.values(), default=0) + 2 * len(rows) < self._backlog_max:
            return []  # a row charges a lane at most twice (game and total on one shard): none can fill
        routes = [[shard for shard, _ in self._route((merged.player_ids[i], merged.game_ids[i]))] for i in rows]
        return [i for i, ok in zip(rows, admit(held, self._backlog_max, routes), strict=True) if not ok]

    def _note(self, touched: set[Pair], newest: int, boards_only: Collection[Pair] = ()) -> None:
        # No await between these: keeps the first invariant.
        for pair in touched:
            routes = self._route(pair)
            for shard, item in routes[:1] if pair in boards_only else routes:  # the first: the game's boards
                lane = self.lanes.get(shard)
                if lane is None:
                    lane = self.lanes[shard] = Lane(max(self.journaled_seq, self._floor))
                    self._new_lane.set()
                elif lane.idle:
                    # Everything up to now has landed there: its watermark moves up to it
                    # before rows after it are owed (delivered_seq never goes back).
                    lane.delivered_seq = max(lane.delivered_seq, self.journaled_seq, self._floor)
                lane.waiting.add(item)
                lane.wake.set()
        self.journaled_seq = max(self.journaled_seq, newest)

    # ---- the delivery side ------------------------------------------------
    async def run_deliverer(self) -> None:
        """One loop per leaderboard shard: a shard that hangs or fails holds only
        its own lane; the others deliver as if it were not there."""
        loops: dict[int, asyncio.Task[None]] = {}
        try:
            while True:
                self._new_lane.clear()
                for shard in self.lanes:
                    if shard not in loops:
                        loops[shard] = asyncio.ensure_future(self._run_lane(shard))
                new_lane = asyncio.ensure_future(self._new_lane.wait())
                done, _ = await asyncio.wait([new_lane, *loops.values()], return_when=asyncio.FIRST_COMPLETED)
                new_lane.cancel()
                for task in done - {new_lane}:
                    task.result()  # a lane loop's error ends this (supervised) loop
                loops = {shard: task for shard, task in loops.items() if not task.done()}
        finally:
            for task in loops.values():
                task.cancel()
            await asyncio.gather(*loops.values(), return_exceptions=True)

    async def _run_lane(self, shard: int) -> None:
        """Sends what the shard is owed; under load rounds grow and coalesce a
        player's many unlocks into one update. After a failure it waits
        `redeliver_s` before trying that shard again."""
        while True:
            lane = self.lanes.get(shard)  # resume() replaces the lanes
            if lane is None:
                return  # started again if the shard gets a lane again
            if lane.failing:
                await asyncio.sleep(self._redeliver_s)
            else:
                await lane.wake.wait()
            lane.wake.clear()
            await self.deliver_once(shard)

    async def deliver_once(self, shard: int | None = None) -> bool:
        """One round to `shard` (every shard, concurrently, if None): one call per
        chunk of at most `chunk_pairs` items, in turn; True if every item it held
        when the round began has landed. A failed chunk ends that shard's round:
        it and the chunks not sent are kept for its next round (a shard that
        hangs costs its own lane one deadline per round, and no other lane).
        Safe beside the lane loops: a round waits for the lane's running one."""
        if shard is None:
            results = await asyncio.gather(*(self.deliver_once(s) for s in list(self.lanes)))
            return all(results)
        lane = self.lanes[shard]
        async with lane.round_lock:
            return await self._round(shard, lane)

    async def _round(self, shard: int, lane: Lane) -> bool:
        if not lane.waiting:
            return not lane.in_flight
        upto = self.journaled_seq  # every item of rows <= upto is in lane.waiting or landed already
        lane.in_flight, lane.waiting = lane.waiting, set()
        try:
            for chunk in chunks(list(lane.in_flight), self._chunk_pairs):
                try:
                    await self._deliver(shard, chunk)
                except Exception as exc:
                    # Scores are absolute and versioned: resending current values later is exact.
                    log.warning("delivery of %d items to leaderboard shard %d failed (%r); resending %d items",
                                len(chunk), shard, exc, len(lane.in_flight))
                    lane.failing = True
                    return False
                lane.in_flight -= chunk  # on its leaderboard: the backlog shrinks chunk by chunk
        finally:
            lane.waiting |= lane.in_flight
            lane.in_flight = set()
        lane.failing = False
        lane.delivered_seq = max(lane.delivered_seq, upto)
        return True

    def status(self) -> dict[str, object]:
        lanes = self.lanes.values()
        return {"pending_batches": len(self._pending), "pending_unlocks": self._pending_unlocks,
                "journaled_seq": self.journaled_seq, "delivered_seq": self.delivered_seq,
                "to_deliver": sum(len(lane.waiting) for lane in lanes),
                "undelivered": sum(lane.size for lane in lanes if lane.failing),
                "backlog": self.backlog, "backlog_total": self.backlog_total,
                "backlog_by_leaderboard": {str(s): lane.size for s, lane in sorted(self.lanes.items()) if lane.size},
                "failing_leaderboards": sorted(s for s, lane in self.lanes.items() if lane.failing),
                "overloaded": self.overloaded, "resends_joined": self.joined, "suspect": self.suspect,
                "reconciled": self.reconciled}


def _key(batch: UnlockBatch, i: int) -> Key:
    return batch.key(i)


def _refused(n: int, reason: Reason) -> AckBatch:
    return AckBatch([AckStatus.REJECTED] * n, [reason.value] * n)


def _answer(work: Work, reason: Reason) -> int:
    """Every item `rejected` for `reason`, at once, for the client to retry after
    a back-off: `unavailable` when PostgreSQL failed the write (down, restarting,
    past its deadline; an item whose commit did land comes back `duplicate` on
    the retry). Nothing is acked `accepted` without a commit. Returns the items."""
    items = 0
    for batch, future in work:
        items += len(batch)
        if not future.done():
            future.set_result(_refused(len(batch), reason))
    return items


def _fail(work: Work, exc: BaseException) -> None:
    for _, future in work:
        if not future.done():
            future.set_exception(exc)
