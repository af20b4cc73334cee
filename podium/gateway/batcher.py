"""Micro-batching in a gateway replica: unlocks (and stat updates) bound for the same player shard
within a few milliseconds travel in ONE actor call. Sends run in tasks of their
own, so a client that disconnects (Serve cancels its handler) cannot cancel a
journal write half way. Ray-free: the send function is injected.

Overload is answered, not queued: past `max_pending` items per shard, and
while the shard's calls take longer than `max_delay_s` (its queue is longer
than that), new unlocks for it are acked `overloaded` at once. The delay
bound clears when a call is fast again or nothing is in flight."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from podium.wire.messages import AckBatch, AckStatus, Item, Reason, UnlockBatch

log = logging.getLogger(__name__)
Send = Callable[[int, UnlockBatch], Awaitable[AckBatch]]
Ack = tuple[AckStatus, str | None]


@dataclass(slots=True)
class _Buffer:
    chunks: list[tuple[list[Item], asyncio.Future[list[Ack]]]] = field(default_factory=list)
    items: int = 0
    timer: asyncio.TimerHandle | None = None


class ShardBatcher:
    def __init__(self, send: Send, *, window_s: float, max_items: int, max_pending: int, deadline_s: float,
                 attempt_timeout_s: float | None = None, max_delay_s: float | None = None) -> None:
        self._send = send
        self._window_s = window_s
        self._max_items = max_items
        self._max_pending = max_pending
        self._deadline_s = deadline_s
        self._attempt_s = attempt_timeout_s or deadline_s  # one call that hangs is given up on after this
        self._buffers: dict[int, _Buffer] = {}
        self._pending: dict[int, int] = {}  # items buffered or in flight, per shard
        self._max_delay_s = max_delay_s
        self._slow: set[int] = set()  # shards whose last call took longer than max_delay_s
        self._tasks: set[asyncio.Task[None]] = set()
        self.shed = 0  # items answered overloaded

    def shedding(self, shards: int) -> bool:
        """Every one of the `shards` shards is past its delay bound with calls in
        flight: a whole frame can be answered `overloaded` without parsing it."""
        return len(self._slow) >= shards and all(self._pending.get(s, 0) for s in self._slow)

    def shed_frame(self, items: int) -> list[Ack]:
        self.shed += items
        return [(AckStatus.REJECTED, Reason.OVERLOADED.value)] * items

    async def submit(self, shard: int, unlocks: list[Item]) -> list[Ack]:
        """Acks for `unlocks`, in order, once the shard has answered."""
        pending = self._pending.get(shard, 0)
        if pending + len(unlocks) > self._max_pending or (pending and shard in self._slow):
            return self.shed_frame(len(unlocks))
        future: asyncio.Future[list[Ack]] = asyncio.get_running_loop().create_future()
        buf = self._buffers.setdefault(shard, _Buffer())
        buf.chunks.append((unlocks, future))
        buf.items += len(unlocks)
        self._pending[shard] = self._pending.get(shard, 0) + len(unlocks)
        if buf.items >= self._max_items or self._window_s == 0:
            self._flush(shard)
        elif buf.timer is None:
            buf.timer = asyncio.get_running_loop().call_later(self._window_s, self._flush, shard)
        return await asyncio.shield(future)

    def _flush(self, shard: int) -> None:
        buf = self._buffers.pop(shard, None)
        if buf is None or not buf.chunks:
            return
        if buf.timer is not None:
            buf.timer.cancel()
        task = asyncio.ensure_future(self._deliver(shard, buf.chunks, buf.items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, shard: int, chunks: list[tuple[list[Item], asyncio.Future[list[Ack]]]],
                       count: int) -> None:
        batch = UnlockBatch.of([u for unlocks, _ in chunks for u in unlocks])
        began = time.monotonic()
        try:
            acks = await self._send_with_retry(shard, batch)
        finally:
            self._pending[shard] -= count
        if self._max_delay_s is not None:
            if time.monotonic() - began > self._max_delay_s:
                self._slow.add(shard)
            else:
                self._slow.discard(shard)
        start = 0
        for unlocks, future in chunks:
            end = start + len(unlocks)
            if not future.done():
                future.set_result(acks[start:end])
            start = end

    async def _send_with_retry(self, shard: int, batch: UnlockBatch) -> list[Ack]:
        """Retry until the deadline: a restarting shard answers again within
        seconds, and a retried unlock that had committed comes back 'duplicate'.
        Each attempt has its own deadline, so a call that hangs is retried too."""
        deadline = time.monotonic() + self._deadline_s
        delay = 0.05
        while True:
            try:
                left = max(0.001, deadline - time.monotonic())
                result = await asyncio.wait_for(self._send(shard, batch), min(self._attempt_s, left))
                return list(zip(result.statuses, result.reasons, strict=True))
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    log.error("shard %d unavailable for %.0fs: %r", shard, self._deadline_s, exc)
                    return [(AckStatus.REJECTED, Reason.UNAVAILABLE.value)] * len(batch)
                log.warning("shard %d call failed (%r); retrying in %.2fs", shard, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
