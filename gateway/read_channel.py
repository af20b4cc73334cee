"""A gateway replica's stream to one leaderboard shard's read channel
(actors/read_wire.py): requests multiplexed by id on one connection, opened
on first use at the address the shard gives (`resolve`, a Ray call), and
opened again - at the address asked again - after any failure, since a
restarted shard listens on a new port. Ray-free: `resolve` is injected.
Bodies come back as orjson Fragments: JSON that is spliced, never parsed."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

import orjson

from actors.board_reads import Answer, Read
from actors.errors import ShardUnavailable
from actors.read_wire import MAX_ANSWER, WireError, decode_answers, encode_request, read_frame
from actors.tasks import log_failure

log = logging.getLogger(__name__)
Resolve = Callable[[], Awaitable[tuple[str, int]]]


class _Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        self.reader, self.writer, self.name = reader, writer, name
        self.waiting: dict[int, asyncio.Future[list[Answer]]] = {}
        self.closed = False
        self.task = asyncio.ensure_future(self._read_answers())
        self.task.add_done_callback(log_failure)

    async def _read_answers(self) -> None:
        failure: Exception = ShardUnavailable(f"{self.name} closed its read channel; retry shortly")
        try:
            while True:
                request_id, answers = decode_answers(await read_frame(self.reader, MAX_ANSWER))
                future = self.waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result([(True, orjson.Fragment(body)) if ok else (False, body)
                                       for ok, body in answers])
        except (asyncio.IncompleteReadError, ConnectionError, WireError) as exc:
            if isinstance(exc, WireError):
                log.error("%s: read channel sent garbage (%s); reconnecting", self.name, exc)
        finally:
            self.close(failure)

    def close(self, failure: Exception) -> None:
        self.closed = True
        self.writer.close()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(failure)
        self.waiting.clear()


class ReadChannel:
    def __init__(self, resolve: Resolve, *, name: str, connect_timeout_s: float) -> None:
        self._resolve = resolve
        self._name = name
        self._connect_timeout_s = connect_timeout_s
        self._stream: _Stream | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.connects = 0  # streams opened (more than one: the shard restarted or the stream broke)

    async def send(self, reads: list[Read]) -> list[Answer]:
        """One answer per read, in order; ShardUnavailable if the stream breaks
        (the caller's deadline bounds a shard that does not answer)."""
        stream = await self._open()
        request_id = next(self._ids)
        future: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        stream.waiting[request_id] = future
        try:
            stream.writer.write(encode_request(request_id, reads))
            return await future
        finally:
            stream.waiting.pop(request_id, None)

    async def _open(self) -> _Stream:
        stream = self._stream
        if stream is not None and not stream.closed:
            return stream
        async with self._lock:  # one connect at a time; the others wait for it
            if self._stream is not None and not self._stream.closed:
                return self._stream
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    host, port = await self._resolve()
                    reader, writer = await asyncio.open_connection(host, port)
            except ShardUnavailable:
                raise
            except Exception as exc:  # a recovering or restarting shard, a refused connect, a deadline
                raise ShardUnavailable(f"{self._name} read channel: {type(exc).__name__}; retry shortly") from exc
            self._stream = _Stream(reader, writer, self._name)
            self.connects += 1
            return self._stream

    async def close(self) -> None:
        if self._stream is not None:
            task = self._stream.task
            self._stream.close(ShardUnavailable(f"{self._name} read channel closed"))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
