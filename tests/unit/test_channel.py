"""Calls over a channel (podium/transport/channel.py) on real loopback sockets, no Ray:
each call runs in a task of its own, domain errors travel as codes, garbage
closes the connection, and a stream that breaks fails what was in flight. A
peer that stops answering or reading is dropped and asked for again; a
connection that never presents the key, or one past the cap, is closed."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from podium.transport import channel as channel_module
from podium.transport import read_wire
from podium.transport.channel import Channel, serve_calls
from podium.wire.errors import ShardUnavailable, UnknownGame
from tests.unit.polling import until

KEY = b"k" * 32


async def started(methods: dict[str, Any]) -> tuple[asyncio.Server, Channel]:
    server = await serve_calls("127.0.0.1", 0, methods, KEY)
    host, port = server.sockets[0].getsockname()[:2]

    async def resolve() -> tuple[str, int]:
        return host, port

    return server, Channel(resolve, name="shard 0", connect_timeout_s=1.0, key=KEY)


async def test_a_slow_call_does_not_hold_the_others_and_errors_travel_as_codes() -> None:
    gate = asyncio.Event()

    async def slow(payload: Any) -> Any:
        await gate.wait()
        return payload

    async def fast(payload: Any) -> Any:
        if payload == "no-such-game":
            raise UnknownGame("no game 'no-such-game'")
        return [payload, len(payload)]

    server, channel = await started({"slow": slow, "fast": fast})
    try:
        held = asyncio.ensure_future(channel.call("slow", {"a": [1, None]}))
        assert await asyncio.wait_for(channel.call("fast", "abc"), 1.0) == ["abc", 3]  # answered before `slow`
        with pytest.raises(UnknownGame, match="no-such-game"):
            await channel.call("fast", "no-such-game")
        assert not held.done()
        gate.set()
        assert await held == {"a": [1, None]}
        assert channel.connects == 1
    finally:
        await channel.close()
        server.close()


async def test_an_unknown_method_closes_the_connection_and_fails_the_call() -> None:
    async def echo(payload: Any) -> Any:
        return payload

    server, channel = await started({"echo": echo})
    try:
        with pytest.raises(ShardUnavailable):
            await asyncio.wait_for(channel.call("drop_tables", None), 2.0)
        assert await channel.call("echo", 5) == 5  # the next call reconnects
        assert channel.connects == 2
    finally:
        await channel.close()
        server.close()


async def test_a_call_that_crashes_is_answered_unavailable_and_the_stream_lives_on() -> None:
    async def broken(payload: Any) -> Any:
        raise RuntimeError("boom")

    server, channel = await started({"broken": broken})
    try:
        with pytest.raises(ShardUnavailable, match="boom"):
            await channel.call("broken", None)
        with pytest.raises(ShardUnavailable, match="boom"):
            await channel.call("broken", None)
        assert channel.connects == 1
    finally:
        await channel.close()
        server.close()


async def test_a_caller_without_the_channel_key_is_cut_off_before_any_call_runs() -> None:
    ran: list[Any] = []

    async def record(payload: Any) -> Any:
        ran.append(payload)
        return payload

    server = await serve_calls("127.0.0.1", 0, {"record": record}, KEY)
    host, port = server.sockets[0].getsockname()[:2]

    async def resolve() -> tuple[str, int]:
        return host, port

    stranger = Channel(resolve, name="shard 0", connect_timeout_s=1.0, key=b"not the key")
    try:
        with pytest.raises(ShardUnavailable):
            await asyncio.wait_for(stranger.call("record", "unlock everything"), 2.0)
        assert ran == []
    finally:
        await stranger.close()
        server.close()


async def mute_server(read: bool) -> tuple[asyncio.Server, asyncio.Event]:
    """A peer that answers nothing (its node is gone, or its loop is stuck):
    it reads and drops every byte, or (read=False) takes nothing at all."""
    release = asyncio.Event()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while read and await reader.read(65536):
            pass
        await release.wait()
        writer.close()

    return await asyncio.start_server(connection, "127.0.0.1", 0), release


def address(server: asyncio.Server) -> tuple[str, int]:
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


async def test_a_peer_that_stops_answering_is_dropped_and_its_address_asked_again() -> None:
    """Three calls in a row given up at their callers' deadline, nothing heard
    meanwhile: the stream goes and the next call resolves again (Ray restarted
    the actor elsewhere) instead of writing into the dead stream for ~15 min."""
    mute, release = await mute_server(read=True)

    async def echo(payload: Any) -> Any:
        return payload

    alive = await serve_calls("127.0.0.1", 0, {"echo": echo}, KEY)
    addresses = [address(mute), address(alive)]
    asked: list[tuple[str, int]] = []

    async def resolve() -> tuple[str, int]:
        asked.append(addresses[min(len(asked), 1)])
        return asked[-1]

    channel = Channel(resolve, name="shard 0", connect_timeout_s=1.0, key=KEY)
    try:
        for _ in range(channel_module.MAX_UNANSWERED if hasattr(channel_module, "MAX_UNANSWERED") else 3):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(channel.call("echo", 1), 0.1)
        assert await asyncio.wait_for(channel.call("echo", 2), 2.0) == 2
        assert asked == addresses and channel.connects == 2
    finally:
        release.set()
        await channel.close()
        mute.close()
        alive.close()


async def test_callers_giving_up_on_a_live_stream_do_not_drop_it() -> None:
    """A slow call given up is not a dead peer while other answers keep coming."""
    async def slow(payload: Any) -> Any:
        await asyncio.sleep(0.3)
        return payload

    async def fast(payload: Any) -> Any:
        return payload

    server, channel = await started({"slow": slow, "fast": fast})
    try:
        for i in range(5):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(channel.call("slow", i), 0.02)
            assert await channel.call("fast", i) == i
        assert channel.connects == 1
    finally:
        await channel.close()
        server.close()


async def test_a_peer_that_takes_nothing_fails_the_call_instead_of_growing_the_buffer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "SEND_TIMEOUT_S", 0.3, raising=False)
    mute, release = await mute_server(read=False)
    host, port = address(mute)

    async def resolve() -> tuple[str, int]:
        return host, port

    channel = Channel(resolve, name="shard 0", connect_timeout_s=1.0, key=KEY)
    big = "x" * (16 * 1024 * 1024)  # more than loopback's socket buffers hold
    try:
        for attempt in (1, 2):  # a retry opens a new stream; nothing piles up in the old one
            with pytest.raises(ShardUnavailable, match="took no frame"):
                await asyncio.wait_for(channel.call("echo", big), 3.0)
            assert channel._stream is not None and channel._stream.closed
            assert channel._stream.writer.transport.get_write_buffer_size() == 0
            assert channel.connects == attempt
    finally:
        release.set()
        await channel.close()
        mute.close()


def assert_probed(sock: socket.socket) -> None:
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == channel_module.KEEPALIVE_IDLE_S
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == channel_module.KEEPALIVE_PROBES
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == channel_module.USER_TIMEOUT_S * 1000


async def test_both_ends_of_a_stream_probe_the_peer_with_tcp_keepalive() -> None:
    """A node that vanishes sends no FIN or RST: the kernel's probes (and its
    limit on unacknowledged data) fail the stream in seconds, not ~15 min."""
    async def echo(payload: Any) -> Any:
        return payload

    server, channel = await started({"echo": echo})
    try:  # the caller's end
        assert await channel.call("echo", 1) == 1
        assert channel._stream is not None
        sock = channel._stream.writer.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert_probed(sock)
    finally:
        await channel.close()
        server.close()

    seen: list[socket.socket] = []
    admitted = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("socket"))
        admitted.set()
        await reader.read()

    server = await channel_module.listen("127.0.0.1", 0, KEY, session, "test")
    try:  # the server's end
        _, writer = await asyncio.open_connection(*address(server))
        writer.write(channel_module.frame(KEY))
        await asyncio.wait_for(admitted.wait(), 2.0)
        assert_probed(seen[0])
        writer.close()
    finally:
        server.close()


async def _echo_calls(host: str) -> asyncio.Server:
    async def echo(payload: Any) -> Any:
        return payload

    return await serve_calls(host, 0, {"echo": echo}, KEY)


async def _reads(host: str) -> asyncio.Server:
    async def handle(reads: list[Any]) -> list[Any]:
        return [(True, orjson.dumps("x" * args[0]) if args else b"{}") for _, args in reads]  # args: a body size

    return await read_wire.serve(host, 0, handle, KEY)


SERVERS: list[Callable[[str], Awaitable[asyncio.Server]]] = [_echo_calls, _reads]


@pytest.mark.parametrize("serve", SERVERS, ids=["calls", "reads"])
async def test_a_connection_that_never_presents_the_key_is_closed_at_the_handshake_deadline(
        serve: Callable[[str], Awaitable[asyncio.Server]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "HANDSHAKE_TIMEOUT_S", 0.2, raising=False)
    server = await serve("127.0.0.1")
    try:
        reader, writer = await asyncio.open_connection(*address(server))
        writer.write(b"\x00\x00")  # half a length prefix, then silence
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()
    finally:
        server.close()


@pytest.mark.parametrize("serve", SERVERS, ids=["calls", "reads"])
async def test_past_max_connections_a_new_connection_is_closed_at_once(
        serve: Callable[[str], Awaitable[asyncio.Server]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "MAX_CONNECTIONS", 2, raising=False)
    server = await serve("127.0.0.1")
    held = [await asyncio.open_connection(*address(server)) for _ in range(2)]
    for i, (r, w) in enumerate(held):  # admitted: each presents the key and has a call answered
        w.write(channel_module.frame(KEY) + _probe(serve, i))
        await asyncio.wait_for(channel_module.read_frame(r, channel_module.MAX_CALL), 2.0)
    try:
        reader, writer = await asyncio.open_connection(*address(server))
        assert await asyncio.wait_for(reader.read(), 1.0) == b""  # refused at once, not held
        writer.close()
        for _, w in held:
            w.close()
        decode = read_wire.decode_answers if serve is _reads else channel_module.decode_call_answer
        channel = Channel(lambda: asyncio.sleep(0, address(server)), name="shard 0", connect_timeout_s=1.0, key=KEY,
                          decode=decode)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while True:  # the places of the closed ones free up as the server sees them go
            try:
                await asyncio.wait_for(channel.request(lambda i: _probe(serve, i)), 1.0)
                break
            except ShardUnavailable:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.02)
        await channel.close()
    finally:
        server.close()


def _probe(serve: Callable[[str], Awaitable[asyncio.Server]], request_id: int) -> bytes:
    if serve is _reads:
        return read_wire.encode_request(request_id, [])
    return channel_module.encode_call(request_id, "echo", None)


@pytest.mark.parametrize("serve", SERVERS, ids=["calls", "reads"])
async def test_a_caller_that_takes_no_answers_is_cut_off(serve: Callable[[str], Awaitable[asyncio.Server]],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The server's end: answers never pile up for a caller that stopped reading."""
    monkeypatch.setattr(channel_module, "SEND_TIMEOUT_S", 0.3, raising=False)
    server = await serve("127.0.0.1")
    _, writer = await asyncio.open_connection(*address(server))
    try:
        writer.write(channel_module.frame(KEY))
        big = "x" * (4 * 1024 * 1024)
        for i in range(1, 5):  # ~16 MB of answers (echoed, or as many bodies), more than loopback buffers hold
            if serve is _reads:
                writer.write(read_wire.encode_request(i, [("rank", (len(big),))]))
            else:
                writer.write(channel_module.encode_call(i, "echo", big))
        with caplog.at_level("WARNING", logger="podium.transport.channel"):
            await until(lambda: "took no answer" in caplog.text, 5.0)
    finally:
        writer.transport.abort()
        server.close()


def _channel_to(server: asyncio.Server, serve: Callable[[str], Awaitable[asyncio.Server]]) -> Channel:
    decode = read_wire.decode_answers if serve is _reads else channel_module.decode_call_answer
    return Channel(lambda: asyncio.sleep(0, address(server)), name="shard 0", connect_timeout_s=1.0, key=KEY,
                   decode=decode)


@pytest.mark.parametrize("serve", SERVERS, ids=["calls", "reads"])
async def test_connections_that_never_present_the_key_keep_no_caller_out(
        serve: Callable[[str], Awaitable[asyncio.Server]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyless connections (each may wait HANDSHAKE_TIMEOUT_S) take none of
    the MAX_CONNECTIONS places the gateway and the player shards need; past
    MAX_HANDSHAKES of them the oldest is closed, so a flood cannot shut out a
    caller that sends its key at once either."""
    monkeypatch.setattr(channel_module, "MAX_CONNECTIONS", 2, raising=False)
    monkeypatch.setattr(channel_module, "MAX_HANDSHAKES", 3, raising=False)
    monkeypatch.setattr(channel_module, "HANDSHAKE_GRACE_S", 0.05, raising=False)
    server = await serve("127.0.0.1")
    silent = [await asyncio.open_connection(*address(server)) for _ in range(5)]
    await asyncio.sleep(0.1)  # silent past the grace: the next arrivals may close them
    callers = [_channel_to(server, serve) for _ in range(2)]
    try:
        for caller in callers:  # both places go to callers with the key
            await asyncio.wait_for(caller.request(lambda i: _probe(serve, i)), 2.0)
        assert await asyncio.wait_for(silent[0][0].read(), 1.0) == b""  # the oldest keyless one was closed
    finally:
        for caller in callers:
            await caller.close()
        for _, w in silent:
            w.transport.abort()
        server.close()


@pytest.mark.parametrize("serve", SERVERS, ids=["calls", "reads"])
async def test_a_burst_of_arrivals_closes_the_newest_not_callers_whose_keys_are_on_their_way(
        serve: Callable[[str], Awaitable[asyncio.Server]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every caller reconnecting at once after a restart: within HANDSHAKE_GRACE_S of the oldest arrival a
    connection past MAX_HANDSHAKES is closed itself (its caller retries), so none that may have sent its key
    already is cut off."""
    monkeypatch.setattr(channel_module, "MAX_HANDSHAKES", 3, raising=False)
    monkeypatch.setattr(channel_module, "HANDSHAKE_GRACE_S", 30.0, raising=False)
    server = await serve("127.0.0.1")
    first = [await asyncio.open_connection(*address(server)) for _ in range(3)]
    late_reader, late_writer = await asyncio.open_connection(*address(server))
    try:
        assert await asyncio.wait_for(late_reader.read(), 1.0) == b""  # the newest one was closed
        with pytest.raises(TimeoutError):  # the first ones are still open, waiting for their keys
            await asyncio.wait_for(first[0][0].read(), 0.2)
    finally:
        for _, w in [*first, (late_reader, late_writer)]:
            w.transport.abort()
        server.close()


def _quick_to_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every channel socket gives up on unacknowledged data after 300 ms (TCP_USER_TIMEOUT), not USER_TIMEOUT_S:
    on loopback a peer that reads nothing keeps its window shut, and the kernel then fails the stream with
    ETIMEDOUT, as it does for a vanished node."""
    keep_alive = channel_module.keep_alive

    def quick(writer: asyncio.StreamWriter) -> None:
        keep_alive(writer)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 300)

    monkeypatch.setattr(channel_module, "keep_alive", quick)


async def test_a_stream_the_kernel_gives_up_on_fails_its_calls_by_that_name(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """ETIMEDOUT (an OSError that is a TimeoutError, not a ConnectionError):
    the call fails `unavailable` saying the stream timed out, not that the
    peer took no frame for SEND_TIMEOUT_S, the reader ends without a
    traceback."""
    _quick_to_give_up(monkeypatch)
    mute, release = await mute_server(read=False)
    channel = Channel(lambda: asyncio.sleep(0, address(mute)), name="shard 0", connect_timeout_s=1.0, key=KEY)
    try:
        with caplog.at_level("WARNING"):
            with pytest.raises(ShardUnavailable, match="timed out"):
                await asyncio.wait_for(channel.call("echo", "x" * (16 * 1024 * 1024)), 8.0)
            stream = channel._stream
            assert stream is not None and stream.closed
            await until(stream.task.done)
            await asyncio.sleep(0)  # its done-callbacks
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        release.set()
        await channel.close()
        mute.close()


@pytest.mark.parametrize("serve", SERVERS, ids=["calls", "reads"])
async def test_a_caller_stream_the_kernel_gives_up_on_is_closed_and_named(
        serve: Callable[[str], Awaitable[asyncio.Server]], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The server's end: ETIMEDOUT on a caller's stream is logged as such, not
    as a caller that took no answer for SEND_TIMEOUT_S, nor as an unhandled
    exception of the connection's task."""
    _quick_to_give_up(monkeypatch)
    server = await serve("127.0.0.1")
    _, writer = await asyncio.open_connection(*address(server))
    big = 16 * 1024 * 1024  # an answer more than loopback's buffers hold; this caller reads none of it
    try:
        with caplog.at_level("WARNING"):
            writer.write(channel_module.frame(KEY))
            if serve is _reads:
                writer.write(read_wire.encode_request(1, [("rank", (big,))]))
            else:
                writer.write(channel_module.encode_call(1, "echo", "x" * big))
            await until(lambda: "stream failed" in caplog.text, 8.0)
        assert "timed out" in caplog.text
        assert "took no answer" not in caplog.text and "Unhandled" not in caplog.text
    finally:
        writer.transport.abort()
        server.close()


async def test_a_frame_past_the_write_buffer_cap_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one caller waits (up to SEND_TIMEOUT_S) for a peer to take its
    frame, the others do not pile frames up behind it: past MAX_BUFFERED a
    call fails `unavailable` at once, and the stream stays the first one's to
    decide."""
    monkeypatch.setattr(channel_module, "MAX_BUFFERED", 4 * 1024 * 1024, raising=False)
    mute, release = await mute_server(read=False)
    channel = Channel(lambda: asyncio.sleep(0, address(mute)), name="shard 0", connect_timeout_s=1.0, key=KEY)
    first = asyncio.ensure_future(channel.call("echo", "x" * (16 * 1024 * 1024)))
    try:
        await until(lambda: channel._stream is not None
                    and channel._stream.writer.transport.get_write_buffer_size() > 4 * 1024 * 1024)
        stream = channel._stream
        assert stream is not None
        buffered = stream.writer.transport.get_write_buffer_size()
        with pytest.raises(ShardUnavailable, match="retry"):
            await asyncio.wait_for(channel.call("echo", "y" * 1024), 1.0)
        assert stream.writer.transport.get_write_buffer_size() <= buffered  # nothing was added
        assert not stream.closed and not first.done()
    finally:
        release.set()
        await channel.close()
        with contextlib.suppress(Exception):
            await first
        mute.close()


async def test_answers_a_caller_does_not_take_hold_the_in_flight_places(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_IN_FLIGHT bounds the calls running or answering on a connection:
    answers waiting for a caller that reads nothing stop the server reading
    more of its calls, instead of each finished call making room for one more
    answer in the buffer."""
    monkeypatch.setattr(channel_module, "MAX_IN_FLIGHT", 2, raising=False)
    ran: list[int] = []

    async def big(payload: Any) -> Any:
        ran.append(payload)
        return "x" * (16 * 1024 * 1024)  # more than loopback's buffers hold

    server = await serve_calls("127.0.0.1", 0, {"big": big}, KEY)
    _, writer = await asyncio.open_connection(*address(server))
    try:
        writer.write(channel_module.frame(KEY))
        for i in range(6):
            writer.write(channel_module.encode_call(i, "big", i))
        await until(lambda: len(ran) >= 2)
        with pytest.raises(TimeoutError):
            await until(lambda: len(ran) > 2, 0.5)
    finally:
        writer.transport.abort()
        server.close()


async def test_calls_given_up_at_one_deadline_count_once() -> None:
    """A delivery round's parts, sent together and cancelled together by its
    one deadline, are one sign of a silent peer, not MAX_UNANSWERED: the
    stream goes at the third deadline in a row, not at the first."""
    mute, release = await mute_server(read=True)
    channel = Channel(lambda: asyncio.sleep(0, address(mute)), name="shard 0", connect_timeout_s=1.0, key=KEY)
    try:
        await channel._open()  # connected before the first deadline runs, however slow the box
        for deadline in range(1, channel_module.MAX_UNANSWERED + 1):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(channel.call("echo", i) for i in range(3))), 0.3)
            stream = channel._stream
            assert stream is not None
            assert stream.closed == (deadline == channel_module.MAX_UNANSWERED), deadline
        assert channel.connects == 1
    finally:
        release.set()
        await channel.close()
        mute.close()
