"""Leaderboard reads gathered per shard: every read bound for one leaderboard
shard within `window_s` (or until `max_batch` wait, or their encoded sizes
reach `max_bytes`, the shard's request cap) travels as ONE request on the
shard's read channel (podium/gateway/read_channel.py), so under load the round trip
is paid per batch, not per read. Bounded:
past `max_pending` reads waiting for one shard, a read is refused at once
(Overloaded). Ray-free: the send function is injected (as in batcher.py)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from podium.core.board_reads import Answer, Read
from podium.transport.read_wire import MAX_READS_BYTES, read_size
from podium.wire.errors import InvalidRequest, Overloaded, ShardUnavailable, from_code

log = logging.getLogger(__name__)
Send = Callable[[int, list[Read]], Awaitable[list[Answer]]]


class ReadBatcher:
    def __init__(self, send: Send, *, window_s: float, max_batch: int, max_pending: int, timeout_s: float,
                 max_bytes: int = MAX_READS_BYTES, size: Callable[[Read], int] = read_size) -> None:
        self._send = send
        self._window_s = window_s
        self._max_batch = max_batch
        self._max_bytes = max_bytes  # what the reads of one request may add up to (the receiver's cap)
        self._size = size
        self._max_pending = max_pending
        self._timeout_s = timeout_s
        self._buffers: dict[int, list[tuple[Read, asyncio.Future[Answer]]]] = {}
        self._bytes: dict[int, int] = {}  # encoded size of each shard's buffer
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._pending: dict[int, int] = {}  # reads buffered or in flight, per shard
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # requests sent (reads / calls = the batching factor)
        self.reads = 0

    async def read(self, shard: int, kind: str, *args: Any, alone: bool = False) -> Any:
        """The read's body; its domain error raised as such. A large read
        (`alone`: a friends board carries up to friends_max ids) travels in a
        request of its own. A read that would take its batch past `max_bytes`
        closes that batch and opens the next, so no request passes the shard's
        cap (which would close the stream and fail every read on it)."""
        if self._pending.get(shard, 0) >= self._max_pending:
            raise Overloaded(f"{self._max_pending} reads already wait for leaderboard shard {shard}; retry shortly")
        read: Read = (kind, args)
        size = self._size(read)
        if size > self._max_bytes:  # unreachable with the edge's limits; never sent, so no stream breaks
            raise InvalidRequest(f"this read is {size} bytes; a leaderboard request carries at most {self._max_bytes}")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        if alone:
            self._pending[shard] = self._pending.get(shard, 0) + 1
            self._start(shard, [(read, future)])
            return self._body(await future)
        if self._bytes.get(shard, 0) + size > self._max_bytes:
            self._flush(shard)  # what waits goes now; this read starts the next request
        buffer = self._buffers.setdefault(shard, [])
        buffer.append((read, future))
        self._bytes[shard] = self._bytes.get(shard, 0) + size
        self._pending[shard] = self._pending.get(shard, 0) + 1
        if len(buffer) >= self._max_batch or self._window_s == 0:
            self._flush(shard)
        elif shard not in self._timers:
            self._timers[shard] = asyncio.get_running_loop().call_later(self._window_s, self._flush, shard)
        return self._body(await future)

    @staticmethod
    def _body(answer: Answer) -> Any:
        ok, body = answer
        if ok:
            return body
        raise from_code(*body)

    def _flush(self, shard: int) -> None:
        timer = self._timers.pop(shard, None)
        if timer is not None:
            timer.cancel()
        work = self._buffers.pop(shard, [])
        self._bytes.pop(shard, None)
        if work:
            self._start(shard, work)

    def _start(self, shard: int, work: list[tuple[Read, asyncio.Future[Answer]]]) -> None:
        task = asyncio.ensure_future(self._call(shard, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, shard: int, work: list[tuple[Read, asyncio.Future[Answer]]]) -> None:
        self.calls += 1
        self.reads += len(work)
        try:
            answers = await asyncio.wait_for(self._send(shard, [read for read, _ in work]), self._timeout_s)
        except Exception as exc:
            failure: BaseException = exc
            if isinstance(exc, TimeoutError):
                failure = ShardUnavailable(f"leaderboard shard {shard} did not answer within {self._timeout_s:g}s")
            for _, future in work:
                if not future.done():
                    future.set_exception(failure)
            return
        finally:
            self._pending[shard] -= len(work)
        for (_, future), answer in zip(work, answers, strict=True):
            if not future.done():  # a caller that went away cancelled its own future
                future.set_result(answer)
