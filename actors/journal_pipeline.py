"""A player shard's write pipeline without Ray: group commit of queued batches,
reconciliation after an ambiguous journal write, coalesced delivery rounds to
the leaderboards (in chunks, with a bounded backlog: actors/delivery.py), and
the watermarks that say what is safe to checkpoint. The shard passes its I/O
in (journal, settle, reconcile, deliver), so the watermark reasoning is
unit-tested without PostgreSQL or Ray.

Invariants (seq = a journal row of this shard; one writer, so rows commit in
seq order):
- every row <= journaled_seq is folded into the shard's state, and its pair
  is in `to_deliver`, `undelivered` or `in_flight`, or has reached its
  leaderboard; those three hold at most `backlog_max` pairs plus one batch;
- every row <= delivered_seq has reached its leaderboard; the checkpoint
  watermark never passes delivered_seq;
- after a journal error nothing more is written until the failed transaction
  has ended (`settle`: its COMMIT may still be landing) and the rows it may
  have committed (seq > journaled_seq) are folded in: a retry of them is then
  answered `duplicate` only because they really count."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actors.delivery import CHUNK_PAIRS, admit, chunks
from actors.messages import AckBatch, AckStatus, Reason, UnlockBatch

log = logging.getLogger(__name__)
Pair = tuple[str, str]  # (player_id, game_id)


@dataclass(frozen=True, slots=True)
class Committed:
    """What one journal transaction did: the acks of the merged batch, the
    pairs whose score changed, and the newest seq written (0 if none)."""

    acks: AckBatch
    touched: set[Pair]
    max_seq: int


Journal = Callable[[UnlockBatch], Awaitable[Committed]]
Settle = Callable[[], Awaitable[None]]  # returns once no journal transaction of the shard is still open
Reconcile = Callable[[int], Awaitable[tuple[set[Pair], int, int]]]  # after_seq -> (touched, newest seq, rows)
Deliver = Callable[[set[Pair]], Awaitable[None]]


class JournalPipeline:
    def __init__(self, journal: Journal, reconcile: Reconcile, deliver: Deliver, *, settle: Settle,
                 backlog_max: int, deadline_s: float, redeliver_s: float = 1.0,
                 chunk_pairs: int = CHUNK_PAIRS) -> None:
        self._journal = journal
        self._settle = settle
        self._reconcile = reconcile
        self._deliver = deliver
        self._backlog_max = backlog_max
        self._chunk_pairs = min(chunk_pairs, CHUNK_PAIRS)
        self._deadline_s = deadline_s
        self._redeliver_s = redeliver_s
        self._pending: list[tuple[UnlockBatch, asyncio.Future[AckBatch]]] = []
        self._wake = asyncio.Event()
        self._deliver_wake = asyncio.Event()
        self.journaled_seq = 0  # newest journal row of this shard folded into the state
        self.delivered_seq = 0  # every journal row of this shard <= this reached its leaderboard
        self.to_deliver: set[Pair] = set()  # journaled since the deliverer last took them (coalesced)
        self.undelivered: set[Pair] = set()  # the last delivery of these failed: resent with the next one
        self.in_flight: set[Pair] = set()  # taken by the running round, not yet acknowledged by their leaderboard
        self.suspect = False  # a journal write failed: rows after journaled_seq may have committed unseen
        self.reconciled = 0  # rows folded in by reconciliation (they had committed while the write failed)
        self.overloaded = 0  # unlocks answered `overloaded` because the backlog was full
        self._writing = False  # a write round (journal transaction) is running

    def resume(self, watermark: int, journaled_seq: int, touched: set[Pair]) -> None:
        """Recovery: state holds the checkpoint plus the journal up to journaled_seq;
        every pair the tail touched is resent (versioned, so resends are harmless)."""
        self.delivered_seq = watermark
        self.journaled_seq = max(watermark, journaled_seq)
        self.to_deliver = set(touched)
        self._deliver_wake.set()

    # ---- the write side ---------------------------------------------------
    async def submit(self, batch: UnlockBatch) -> AckBatch:
        """The batch's acks once its transaction committed; TimeoutError past the
        deadline (the caller retries: a committed unlock then comes back duplicate)."""
        future: asyncio.Future[AckBatch] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, future))
        self._wake.set()
        # The commit happens in the writer: a caller that goes away does not undo it.
        return await asyncio.wait_for(asyncio.shield(future), self._deadline_s)

    @property
    def pending_batches(self) -> int:
        return len(self._pending)

    @property
    def backlog(self) -> int:
        """Pairs journaled and not yet on their leaderboard (a pair may count twice: an upper bound)."""
        return len(self.to_deliver) + len(self.undelivered) + len(self.in_flight)

    @property
    def settled(self) -> bool:
        """Nothing queued, no transaction running, every journaled row delivered."""
        return (not self._pending and not self._writing and self.journaled_seq == self.delivered_seq
                and not self.backlog)

    async def run_writer(self) -> None:
        """Group commit: every batch queued while the previous commit ran goes
        into the next transaction. It never waits for the leaderboards: while
        the delivery backlog is full, batches are answered `overloaded`."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            work, self._pending = self._pending, []
            if work:
                self._writing = True
                try:
                    await self.write_round(work)
                finally:
                    self._writing = False

    async def write_round(self, work: list[tuple[UnlockBatch, asyncio.Future[AckBatch]]]) -> None:
        taken = admit(self.backlog, self._backlog_max, [len(batch) for batch, _ in work])
        if taken < len(work):
            # The leaderboards are down or far behind: holding more for them would grow
            # without bound (and every commit would wait on them). The client retries.
            refused, work = work[taken:], work[:taken]
            self.overloaded += _answer(refused, Reason.OVERLOADED)
            if not work:
                return
        try:
            if self.suspect:
                # The failed transaction's COMMIT may still be landing; a read before it
                # ends could miss rows that then count for nothing (their retry: duplicate).
                await self._settle()
                touched, newest, rows = await self._reconcile(self.journaled_seq)
                self.reconciled += rows
                self._note(touched, newest)
                self.suspect = False
            committed = await self._journal(UnlockBatch.concat([batch for batch, _ in work]))
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
        start = 0
        for batch, future in work:
            end = start + len(batch)
            if not future.done():
                future.set_result(AckBatch(committed.acks.statuses[start:end], committed.acks.reasons[start:end]))
            start = end
        self._note(committed.touched, committed.max_seq)

    def _note(self, touched: set[Pair], newest: int) -> None:
        # No await between these: keeps the first invariant.
        self.journaled_seq = max(self.journaled_seq, newest)
        self.to_deliver |= touched
        if touched:
            self._deliver_wake.set()

    # ---- the delivery side ------------------------------------------------
    async def run_deliverer(self) -> None:
        """Sends the pairs touched since the last round; under load rounds grow
        and coalesce a player's many unlocks into one update."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deliver_wake.wait(), self._redeliver_s if self.undelivered else None)
            self._deliver_wake.clear()
            await self.deliver_once()

    async def deliver_once(self) -> bool:
        """One round, one call per chunk of at most `chunk_pairs` pairs, in turn;
        True if every row journaled before it began has reached its leaderboard.
        A failed chunk ends the round: it and the chunks not sent are kept for
        the next round (a leaderboard that hangs costs one deadline per round)."""
        upto = self.journaled_seq
        self.in_flight, self.to_deliver, self.undelivered = self.to_deliver | self.undelivered, set(), set()
        try:
            for chunk in chunks(list(self.in_flight), self._chunk_pairs):
                try:
                    await self._deliver(chunk)
                except Exception as exc:
                    # Scores are absolute and versioned: resending current values later is exact.
                    log.warning("leaderboard delivery of %d pairs failed (%r); resending %d pairs", len(chunk),
                                exc, len(self.in_flight))
                    return False
                self.in_flight -= chunk  # on its leaderboard: the backlog shrinks chunk by chunk
        finally:
            self.undelivered |= self.in_flight
            self.in_flight = set()
        self.delivered_seq = max(self.delivered_seq, upto)
        return True

    def status(self) -> dict[str, object]:
        return {"pending_batches": len(self._pending), "journaled_seq": self.journaled_seq,
                "delivered_seq": self.delivered_seq, "to_deliver": len(self.to_deliver),
                "undelivered": len(self.undelivered), "backlog": self.backlog, "overloaded": self.overloaded,
                "suspect": self.suspect, "reconciled": self.reconciled}


def _answer(work: list[tuple[UnlockBatch, asyncio.Future[AckBatch]]], reason: Reason) -> int:
    """Every item `rejected` for `reason`, at once, for the client to retry after
    a back-off: `unavailable` when PostgreSQL failed the write (down, restarting,
    past its deadline; an item whose commit did land comes back `duplicate` on
    the retry), `overloaded` when the delivery backlog is full (nothing was
    written). Nothing is acked `accepted` without a commit. Returns the items."""
    items = 0
    for batch, future in work:
        items += len(batch)
        if not future.done():
            future.set_result(AckBatch([AckStatus.REJECTED] * len(batch), [reason.value] * len(batch)))
    return items


def _fail(work: list[tuple[UnlockBatch, asyncio.Future[AckBatch]]], exc: BaseException) -> None:
    for _, future in work:
        if not future.done():
            future.set_exception(exc)
