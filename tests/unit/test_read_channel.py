"""The read channel over real loopback sockets (no Ray): frames round-trip,
bodies are spliced unparsed, a broken or restarted shard fails what was in
flight with `unavailable` and the next read reconnects at the new address."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest

from podium.core.board_reads import Encoded, Read
from podium.gateway.queries import MAX_AMONG
from podium.gateway.read_batcher import ReadBatcher
from podium.gateway.read_channel import ReadChannel
from podium.settings import Settings
from podium.transport.read_wire import (
    MAX_REQUEST,
    WireError,
    decode_answers,
    decode_request,
    encode_answers,
    encode_request,
    frame,
    serve,
)
from podium.wire.errors import ShardUnavailable

ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 32  # tests.unit.read_server uses the same


def test_answers_round_trip_with_bodies_untouched() -> None:
    body = orjson.dumps({"rank": 3, "player_id": "é", "entries": [1, 2]})
    wire = encode_answers(7, [(True, body), (False, ("unknown_player", "nobody")), (True, b"{}")])
    request_id, answers = decode_answers(wire[4:])
    assert request_id == 7
    assert answers == [(True, body), (False, ("unknown_player", "nobody")), (True, b"{}")]


def test_requests_round_trip_and_garbage_is_refused() -> None:
    reads: list[Read] = [("rank", ("g", None, "p1")), ("page", ("g#day#0", "eu", 50, None))]
    assert decode_request(encode_request(9, reads)[4:]) == (9, reads)
    with pytest.raises(WireError):
        decode_request(b"not json")
    with pytest.raises(WireError):
        decode_answers(b"\x00\x00\x00\x02[]")
    with pytest.raises(WireError):  # a body length past the frame's end
        decode_answers(encode_answers(1, [(True, b"{}")])[4:-1])


class Shard:
    """A stand-in for the shard's handler, behind the real `serve`."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def handle(self, reads: list[Read]) -> list[Encoded]:
        await self.hold.wait()
        self.batches.append(len(reads))
        return [(True, orjson.dumps({"player": args[-1]})) if kind == "rank" else (False, ("invalid_request", kind))
                for kind, args in reads]


async def started(shard: Shard) -> tuple[asyncio.Server, tuple[str, int]]:
    server = await serve("127.0.0.1", 0, shard.handle, KEY)
    host, port = server.sockets[0].getsockname()[:2]
    return server, (host, port)


async def test_reads_come_back_as_fragments_and_interleave_by_id() -> None:
    shard = Shard()
    server, address = await started(shard)
    resolved = 0

    async def resolve() -> tuple[str, int]:
        nonlocal resolved
        resolved += 1
        return address

    channel = ReadChannel(resolve, name="shard 0", connect_timeout_s=1.0, key=KEY)
    try:
        answers = await asyncio.gather(*(channel.send([("rank", ("g", None, f"p{i}")), ("nope", ())])
                                         for i in range(20)))
        for i, ((ok, body), error) in enumerate(answers):
            assert ok and isinstance(body, orjson.Fragment)
            assert orjson.loads(orjson.dumps({"body": body})) == {"body": {"player": f"p{i}"}}
            assert error == (False, ("invalid_request", "nope"))
        assert resolved == 1 and channel.connects == 1 and sum(shard.batches) == 40
    finally:
        await channel.close()
        server.close()


async def server_process() -> tuple[asyncio.subprocess.Process, tuple[str, int]]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.unit.read_server",
                                                stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    port = int(await asyncio.wait_for(proc.stdout.readline(), 10.0))
    return proc, ("127.0.0.1", port)


async def test_a_shard_killed_mid_read_fails_it_and_the_next_read_reconnects() -> None:
    first, address = await server_process()
    addresses = [address]

    async def resolve() -> tuple[str, int]:
        return addresses[-1]

    channel = ReadChannel(resolve, name="shard 0", connect_timeout_s=2.0, key=KEY)
    second = None
    try:
        assert (await channel.send([("rank", ("g", None, "a"))]))[0][0]
        in_flight = asyncio.ensure_future(channel.send([("rank", ("g", None, "hang"))]))
        await asyncio.sleep(0.1)
        first.kill()  # SIGKILL: the process and its sockets are gone mid-read
        with pytest.raises(ShardUnavailable):
            await asyncio.wait_for(in_flight, 5.0)
        second, new_address = await server_process()  # a restarted shard listens on a new port
        addresses.append(new_address)
        [(ok, body)] = await channel.send([("rank", ("g", None, "c"))])
        assert ok and orjson.loads(orjson.dumps(body)) == {"player": "c"}
        assert channel.connects == 2
    finally:
        await channel.close()
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_an_unreachable_shard_is_unavailable_at_once() -> None:
    async def resolve() -> tuple[str, int]:
        raise ConnectionRefusedError("actor is restarting")

    channel = ReadChannel(resolve, name="shard 3", connect_timeout_s=1.0, key=KEY)
    with pytest.raises(ShardUnavailable, match="shard 3"):
        await channel.send([("rank", ("g", None, "a"))])


async def test_a_peer_that_sends_an_oversize_frame_is_cut_off() -> None:
    shard = Shard()
    server, (host, port) = await started(shard)
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(frame(KEY) + (MAX_REQUEST + 1).to_bytes(4, "big"))  # requests are small; 1 MiB + 1 is refused
        assert await asyncio.wait_for(reader.read(), 2.0) == b""  # closed, nothing answered
        writer.close()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(frame(KEY) + frame(b"[1, 2, 3]"))
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()
        assert shard.batches == []
    finally:
        server.close()


IDENT_MAX = 64  # podium/gateway/frames.Ident: every player and game id the edge takes
LONGEST_BOARD = "g" * IDENT_MAX + "#week#" + "9" * 17  # a period board id (podium/core/periods.board_id)
LONGEST_REGION = "r" * 16  # podium/gateway/board_watch.REGION_PATTERN


def ids(n: int, tag: str) -> list[str]:
    return [f"{tag}{i:0{IDENT_MAX - len(tag)}d}" for i in range(n)]


def friends_max() -> int:
    [most] = [m.le for m in Settings.model_fields["friends_max"].metadata if getattr(m, "le", None) is not None]
    return int(most)


async def answer_all(reads: list[Read]) -> list[Encoded]:
    return [(True, orjson.dumps({"kind": kind, "n": len(args[-1]) if kind == "among" else 0})) for kind, args in reads]


async def test_the_largest_legal_reads_fit_a_request_and_the_shard_takes_them() -> None:
    """Both limits of the wire agree: the biggest read the edge lets through
    (a friends board at the highest friends_max, an among of MAX_AMONG ids,
    every id at its longest) fits under the shard's MAX_REQUEST, with the
    largest request id the wire can carry."""
    largest: list[Read] = [
        ("friends", (LONGEST_BOARD, LONGEST_REGION, ids(1, "p")[0], ids(friends_max(), "f"), 50)),
        ("among", (LONGEST_BOARD, LONGEST_REGION, ids(MAX_AMONG, "a"))),
    ]
    for read in largest:
        assert len(encode_request(2**64 - 1, [read])) - 4 <= MAX_REQUEST
    server = await serve("127.0.0.1", 0, answer_all, KEY)
    host, port = server.sockets[0].getsockname()[:2]
    channel = ReadChannel(lambda: asyncio.sleep(0, (host, port)), name="shard 0", connect_timeout_s=1.0, key=KEY)
    try:
        for read in largest:
            [(ok, _)] = await asyncio.wait_for(channel.send([read]), 5.0)
            assert ok
        assert channel.connects == 1
    finally:
        await channel.close()
        server.close()


async def test_reads_that_would_cross_the_request_cap_go_in_separate_requests() -> None:
    """80 among reads of 200 ids of 64 characters are ~1.07 MB: in one request
    the shard would close the stream and fail every read on it, anyone's."""
    sizes: list[int] = []

    async def handle(reads: list[Read]) -> list[Encoded]:
        sizes.append(len(encode_request(1, reads)))
        return await answer_all(reads)

    server = await serve("127.0.0.1", 0, handle, KEY)
    host, port = server.sockets[0].getsockname()[:2]
    channel = ReadChannel(lambda: asyncio.sleep(0, (host, port)), name="shard 0", connect_timeout_s=1.0, key=KEY)
    batcher = ReadBatcher(lambda _, reads: channel.send(reads), window_s=0.05, max_batch=512, max_pending=10_000,
                          timeout_s=5.0)
    try:
        bodies = await asyncio.gather(*(batcher.read(0, "among", LONGEST_BOARD, None, ids(MAX_AMONG, f"a{k}-"))
                                        for k in range(80)))
        assert [orjson.loads(orjson.dumps(b))["n"] for b in bodies] == [MAX_AMONG] * 80
        assert len(sizes) >= 2 and max(sizes) - 4 <= MAX_REQUEST  # split by size, each under the cap
        assert batcher.calls == len(sizes) and channel.connects == 1
    finally:
        await channel.close()
        server.close()
