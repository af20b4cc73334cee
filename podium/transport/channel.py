"""Streams between Podium's processes that skip Ray's per-call machinery: on
this box a Ray actor call carrying a batch of 250 unlocks costs ~600 µs of
CPU in the caller and ~600 µs in the actor; a frame on an open TCP stream
costs ~35-45 µs on each side (load/ measured, docs/benchmarks.md). Ray still
places, names, restarts and supervises the actors; each actor tells its
address through a Ray call, and the caller asks again after any failure
(a restarted actor listens on a new port). Ray-free.

- `Channel`: the client side, one stream per peer, requests multiplexed by id.
- calls (`serve_calls` / `Channel.call`): request `[id, method, payload]`,
  answer `[id, 1, result]` or `[id, 0, code, detail]`; each request runs in a
  task of its own, so one slow call does not hold the others (a player
  shard's group commit takes every batch that waits). The reads protocol
  (podium/transport/read_wire.py) shares the framing, the server's guard (`listen`)
  and the client.
- Dead peers: a node that vanishes sends no FIN or RST, so a stream is also
  dropped (and the address asked again) when TCP keepalive probes go
  unanswered, when sent data stays unacknowledged for USER_TIMEOUT_S, when
  callers give up on calls at MAX_UNANSWERED deadlines in a row with no
  answer from the peer meanwhile, or when the peer takes no frame for
  SEND_TIMEOUT_S. Until then what waits for it in a caller's write buffer
  stays under MAX_BUFFERED: retries and big parts do not pile up there."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from podium.core.tasks import log_failure
from podium.wire.errors import PodiumError, ShardUnavailable, from_code
from podium.wire.messages import MAX_CALL

log = logging.getLogger(__name__)
_LEN = 4
MAX_BUFFERED = 2 * MAX_CALL  # frames a caller's stream holds for a peer that is slow to take them; past it a call fails
MAX_IN_FLIGHT = 1024  # calls of one connection running or answering; past it the server stops reading it
_MAX_KEY = 256
HANDSHAKE_TIMEOUT_S = 5.0  # a connection that has not presented the key within this is closed
MAX_CONNECTIONS = 4096  # admitted (past the key), per channel server; callers hold one each (replicas, player shards)
MAX_HANDSHAKES = 2048  # connections still to present the key, per channel server: above every legitimate caller
# (1,024 player shards at most, plus the gateway replicas) reconnecting at once after a restart
HANDSHAKE_GRACE_S = 1.0  # past MAX_HANDSHAKES, only a connection silent this long is closed for a new one
_WARN_EVERY_S = 10.0  # a flood of connections past a cap is logged once this often, not once a connection
SEND_TIMEOUT_S = 10.0  # a frame the peer does not take within this (its TCP window stays shut) drops the stream
MAX_UNANSWERED = 3  # deadlines in a row that found the peer silent (_Stream.given_up): the stream is dropped
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 10, 5, 3  # an idle stream to a vanished node: ~25 s
USER_TIMEOUT_S = 30  # data the peer has not acknowledged within this fails the stream (Linux TCP_USER_TIMEOUT)

Resolve = Callable[[], Awaitable[tuple[str, int]]]
Decode = Callable[[bytes], tuple[int, Any]]  # an answer frame's payload -> (request id, result or exception)
Method = Callable[[Any], Awaitable[Any]]


class WireError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_LEN, "big") + payload


async def read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    """The next frame's payload; IncompleteReadError at a clean end of stream."""
    size = int.from_bytes(await reader.readexactly(_LEN), "big")
    if size > limit:
        raise WireError(f"a frame of {size} bytes is over the {limit} limit")
    return await reader.readexactly(size)


async def admit(reader: asyncio.StreamReader, key: bytes) -> None:
    """A connection's first frame must be the cluster's channel key (Settings.
    channel_key), within HANDSHAKE_TIMEOUT_S: a port on the node is reachable
    by more than the cluster."""
    deadline = asyncio.timeout(HANDSHAKE_TIMEOUT_S)
    try:
        async with deadline:
            presented = await read_frame(reader, _MAX_KEY)
    except TimeoutError as exc:
        if not deadline.expired():
            raise  # the kernel gave up on the stream (ETIMEDOUT): not this deadline
        raise WireError(f"the connection sent no channel key within {HANDSHAKE_TIMEOUT_S:g} s") from exc
    if not hmac.compare_digest(presented, key):
        raise WireError("the connection did not present the channel key")


def keep_alive(writer: asyncio.StreamWriter) -> None:
    """Have the kernel probe an idle stream and give up on unacknowledged data,
    so a peer whose node vanished fails the stream in seconds, not ~15 min."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                          ("TCP_KEEPCNT", KEEPALIVE_PROBES), ("TCP_USER_TIMEOUT", USER_TIMEOUT_S * 1000)):
        if hasattr(socket, option):  # Linux has them all; elsewhere the system defaults stand
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


class PeerStuck(TimeoutError):
    """The peer took no frame for SEND_TIMEOUT_S."""


def _stream_failed(exc: OSError) -> bool:
    """An OSError that is neither the peer closing the stream (ConnectionError)
    nor our own send deadline (PeerStuck): mostly ETIMEDOUT, the kernel giving
    up on the peer (keepalive probes unanswered, data unacknowledged for
    USER_TIMEOUT_S), which Python raises as a TimeoutError."""
    return not isinstance(exc, (ConnectionError, PeerStuck))


async def drain(writer: asyncio.StreamWriter) -> None:
    """Wait until the peer takes what was written; PeerStuck past
    SEND_TIMEOUT_S. A stream that fails meanwhile raises its OSError: a
    ConnectionError, or ETIMEDOUT when the kernel gave up on the peer (a
    TimeoutError too, but not this deadline)."""
    deadline = asyncio.timeout(SEND_TIMEOUT_S)
    try:
        async with deadline:
            await writer.drain()
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise PeerStuck(f"the peer took no frame for {SEND_TIMEOUT_S:g} s") from exc


Session = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def listen(host: str, port: int, key: bytes, session: Session, what: str) -> asyncio.Server:
    """A channel server: each connection gets keepalive, is admitted by its
    key, then served by `session` until either side goes. At most
    MAX_CONNECTIONS admitted connections (a new one past it is closed at once)
    and MAX_HANDSHAKES still to present the key: a new one past that closes
    the oldest of them if it was silent HANDSHAKE_GRACE_S (else the new one
    is closed: a burst of callers, whose keys are coming), so keyless connections (each may wait
    HANDSHAKE_TIMEOUT_S) neither take the callers' places nor keep out a
    caller, which sends its key at once. A peer that takes no frame for
    SEND_TIMEOUT_S is cut off (abort: its unsent answers are dropped, not held
    until the kernel gives up)."""
    admitted = 0
    handshaking: dict[asyncio.StreamWriter, float] = {}  # when each arrived, in order of arrival
    warned_at: dict[str, float] = {}

    def warn(kind: str, message: str, *args: object) -> None:
        now = time.monotonic()  # at most once per _WARN_EVERY_S a kind: a flood must not flood the log
        last = warned_at.get(kind)
        if last is None or now - last >= _WARN_EVERY_S:
            warned_at[kind] = now
            log.warning(message, *args)

    def full() -> bool:
        if admitted < MAX_CONNECTIONS:
            return False
        warn("full", "%s: %d connections open, the most allowed; closing new ones", what, admitted)
        return True

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal admitted
        if full():
            writer.close()
            return
        now = time.monotonic()
        if len(handshaking) >= MAX_HANDSHAKES:
            oldest, since = next(iter(handshaking.items()))
            if now - since < HANDSHAKE_GRACE_S:  # a burst of callers (a restart), not a flood: their keys are coming
                warn("handshakes", "%s: %d connections have not sent the channel key yet, the most allowed; "
                     "closing new ones", what, MAX_HANDSHAKES)
                writer.close()
                return
            del handshaking[oldest]
            oldest.transport.abort()  # its admit() ends at the end of its stream
            warn("handshakes", "%s: %d connections have not sent the channel key yet, the most allowed; "
                 "closing the oldest of them", what, MAX_HANDSHAKES)
        handshaking[writer] = now
        counted = stuck = False
        try:
            keep_alive(writer)
            await admit(reader, key)
            handshaking.pop(writer, None)
            if full():
                return
            admitted += 1
            counted = True
            await session(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the caller went away
        except WireError as exc:
            log.warning("%s: closing a connection that sent garbage (%s)", what, exc)
        except PeerStuck:
            stuck = True
            log.warning("%s: the caller took no answer for %g s; dropping its connection", what, SEND_TIMEOUT_S)
        except OSError as exc:  # ETIMEDOUT: keepalive or TCP_USER_TIMEOUT gave up on the caller
            log.warning("%s: a caller's stream failed (%s); closing it", what, exc)
        finally:
            handshaking.pop(writer, None)
            if counted:
                admitted -= 1
            if stuck:
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(connection, host, port)


# ---- calls -------------------------------------------------------------------------

def encode_call(request_id: int, method: str, payload: Any) -> bytes:
    return frame(orjson.dumps([request_id, method, payload]))


def decode_call_answer(payload: bytes) -> tuple[int, Any]:
    try:
        answer = orjson.loads(payload)
        if answer[1]:
            return int(answer[0]), answer[2]
        return int(answer[0]), from_code(str(answer[2]), str(answer[3]))
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError) as exc:
        raise WireError(f"not a call answer: {exc}") from exc


async def serve_calls(host: str, port: int, methods: dict[str, Method], key: bytes) -> asyncio.Server:
    """Listen for callers; each request runs `methods[name](payload)` in its own
    task on the caller's event loop (the actor's), answered when it is done."""
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        running: set[asyncio.Task[None]] = set()
        room = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def run(request_id: int, method: Method, payload: Any) -> None:
            try:
                try:
                    answer = [request_id, 1, await method(payload)]
                except PodiumError as exc:
                    answer = [request_id, 0, exc.code, str(exc)]
                except Exception as exc:  # answered, and logged: a caller retries or resends
                    log.exception("channel call failed")
                    answer = [request_id, 0, "unavailable", f"{type(exc).__name__}: {exc}"]
                writer.write(frame(orjson.dumps(answer)))
                await drain(writer)
            except PeerStuck:
                log.warning("channel: the caller took no answer for %g s; dropping its connection", SEND_TIMEOUT_S)
                writer.transport.abort()
            except OSError:
                pass  # the caller went away, or its stream failed; the session ends on its own (and listen says so)
            finally:  # only once the caller took the answer: answers it does not read hold places too
                room.release()

        try:
            while True:
                try:
                    request_id, name, payload = orjson.loads(await read_frame(reader, MAX_CALL))
                    method = methods[name]
                except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
                    raise WireError(f"not a call: {exc!r}") from exc
                await room.acquire()
                task = asyncio.ensure_future(run(int(request_id), method, payload))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:  # a caller that goes away: calls already running finish (their effects stand)
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    return await listen(host, port, key, session, "channel")


# ---- the client --------------------------------------------------------------------

def asking(ask: Callable[[], Awaitable[Any]]) -> Resolve:
    """A Resolve from a call that answers the peer's (host, port), such as a
    Ray actor method's `.remote()` (any awaitable)."""
    async def resolve() -> tuple[str, int]:
        host, port = await ask()
        return str(host), int(port)

    return resolve


class _Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str,
                 decode: Decode, max_answer: int) -> None:
        self.reader, self.writer, self.name = reader, writer, name
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.closed = False
        self.unanswered = 0  # give-ups counted since the peer last answered anything (given_up)
        self.sent = 0  # calls sent on this stream
        self.quiet_from = 0  # calls sent before this one say nothing more of the peer (given_up)
        self.task = asyncio.ensure_future(self._read_answers(decode, max_answer))
        self.task.add_done_callback(log_failure)

    async def _read_answers(self, decode: Decode, max_answer: int) -> None:
        failure: Exception = ShardUnavailable(f"{self.name} closed its channel; retry shortly")
        try:
            while True:
                request_id, result = decode(await read_frame(self.reader, max_answer))
                self.unanswered = 0  # the peer is there, even if this answer's caller has gone
                self.quiet_from = self.sent
                future = self.waiting.pop(request_id, None)
                if future is not None and not future.done():
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        except (asyncio.IncompleteReadError, OSError, WireError) as exc:
            if isinstance(exc, WireError):
                log.error("%s: channel sent garbage (%s); reconnecting", self.name, exc)
            elif isinstance(exc, OSError) and _stream_failed(exc):
                log.warning("%s: the channel's stream failed (%s); reconnecting", self.name, exc)
                failure = self._failure(exc)
        finally:
            self.close(failure)

    async def send(self, data: bytes) -> None:
        """Write a frame and wait until the peer takes it: a peer that takes
        nothing for SEND_TIMEOUT_S fails the stream (every call waiting on it,
        this one too). Meanwhile the other callers' frames wait in the write
        buffer, up to MAX_BUFFERED: a frame that would take it past that fails
        at once (ShardUnavailable; the stream stays, for the frames ahead of it
        to decide), so retries and big parts do not pile up behind a slow peer."""
        buffered = self.writer.transport.get_write_buffer_size()
        if buffered and buffered + len(data) > MAX_BUFFERED:
            raise ShardUnavailable(f"{self.name} has not yet taken {buffered} bytes of frames; retry shortly")
        self.writer.write(data)
        try:
            await drain(self.writer)
        except PeerStuck:
            self.close(ShardUnavailable(f"{self.name} took no frame for {SEND_TIMEOUT_S:g} s; reconnecting"),
                       abort=True)
        except OSError as exc:
            self.close(self._failure(exc) if _stream_failed(exc) else
                       ShardUnavailable(f"{self.name} closed its channel; retry shortly"), abort=True)

    def _failure(self, exc: OSError) -> ShardUnavailable:
        return ShardUnavailable(f"{self.name} channel failed ({exc.strerror or exc}); retry shortly")

    def given_up(self, call: int) -> None:
        """The caller of the `call`-th call sent on this stream gave up before
        its answer came. MAX_UNANSWERED deadlines in a row that find the peer
        silent: it is gone or stuck, so the stream goes and the next call asks
        for the address again (Ray may have restarted the actor elsewhere).

        A give-up counts only if the call was sent after the peer last answered
        anything and after the last give-up that counted: calls cancelled
        together by one deadline (the parts of one delivery round, which a
        `gather` under one `wait_for` cancels at once) or by deadlines that
        overlap (batches in flight side by side) count once, and the stream
        goes only after three deadlines, one after another, heard nothing. A
        caller cancelled for another reason (its client went away) cannot be
        told from a deadline here, so it counts the same way; but any answer
        resets the count, and a live peer answers that very call soon after."""
        if call < self.quiet_from:
            return
        self.quiet_from = self.sent
        self.unanswered += 1
        if self.unanswered >= MAX_UNANSWERED and not self.closed:
            log.warning("%s: %d deadlines in a row got no answer; dropping the stream", self.name, self.unanswered)
            self.close(ShardUnavailable(f"{self.name} stopped answering; retry shortly"), abort=True)

    def close(self, failure: Exception, abort: bool = False) -> None:
        self.closed = True
        if abort:  # what waits in the buffer is for a peer that takes nothing: drop it
            self.writer.transport.abort()
        else:
            self.writer.close()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(failure)
        self.waiting.clear()


class Channel:
    """One stream to one peer, opened on first use at the address `resolve`
    gives and opened again, at the address asked again, after any failure."""

    def __init__(self, resolve: Resolve, *, name: str, connect_timeout_s: float, key: bytes,
                 decode: Decode = decode_call_answer, max_answer: int = MAX_CALL) -> None:
        self._resolve = resolve
        self._key = key
        self._name = name
        self._connect_timeout_s = connect_timeout_s
        self._decode = decode
        self._max_answer = max_answer
        self._stream: _Stream | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.connects = 0  # streams opened (more than one: the peer restarted or the stream broke)

    async def request(self, encode: Callable[[int], bytes]) -> Any:
        """Send the frame `encode(request id)` and wait for its answer;
        ShardUnavailable if the stream breaks (callers set the deadline; a
        call given up at it may count towards dropping a silent stream:
        _Stream.given_up)."""
        stream = await self._open()
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        stream.waiting[request_id] = future
        call = stream.sent
        stream.sent += 1
        try:
            await stream.send(encode(request_id))
            return await future
        except asyncio.CancelledError:
            if not future.done() or future.cancelled():  # (cancelling the task cancels the future it awaits)
                stream.given_up(call)
            raise
        finally:
            stream.waiting.pop(request_id, None)

    async def call(self, method: str, payload: Any) -> Any:
        """The method's result, or its domain error raised as such."""
        return await self.request(lambda request_id: encode_call(request_id, method, payload))

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
                    keep_alive(writer)
                    writer.write(frame(self._key))
            except ShardUnavailable:
                raise
            except Exception as exc:  # a recovering or restarting peer, a refused connect, a deadline
                raise ShardUnavailable(f"{self._name} channel: {type(exc).__name__}; retry shortly") from exc
            self._stream = _Stream(reader, writer, self._name, self._decode, self._max_answer)
            self.connects += 1
            return self._stream

    async def close(self) -> None:
        if self._stream is not None:
            task = self._stream.task
            self._stream.close(ShardUnavailable(f"{self._name} channel closed"))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
