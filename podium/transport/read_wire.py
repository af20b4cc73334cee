"""The leaderboard shards' read channel: reads travel gateway -> shard over a
plain TCP stream the shard listens on, not as a Ray actor call each
(podium/transport/channel.py says why and holds the framing and the client). Ray-free:
the shard shell runs `serve`, the gateway's ReadChannel speaks the client side.

Frames are a 4-byte big-endian length, then the payload.
- request: orjson `[id, [[kind, [args...]], ...]]` (the reads of podium/core/board_reads.py)
- answer: orjson `[id, [[1, nbytes] | [0, code, detail], ...]]`, then the
  bodies of the successful reads back to back. Bodies are JSON already, so the
  gateway splices them into its responses without parsing them again."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from podium.core.board_reads import Encoded, Read
from podium.transport.channel import WireError, drain, frame, listen, read_frame

MAX_ANSWER = 64 * 1024 * 1024  # a batch of 512 pages of 200 entries is ~10 MB; past this a peer is broken
# What a shard reads of one request, from anyone who connects (past it the
# connection closes, failing every read in flight on it); the gateway's
# ReadBatcher fills a request by count and by bytes up to MAX_READS_BYTES (the
# reads' read_size), so no batch of legal reads crosses it.
MAX_REQUEST = 1024 * 1024
_ENVELOPE = len(b"[,[]]") + 20  # a request's bytes besides its reads: brackets, an id of up to 20 digits
MAX_READS_BYTES = MAX_REQUEST - _ENVELOPE
_LEN = 4

Handler = Callable[[list[Read]], Awaitable[list[Encoded]]]
__all__ = ["MAX_ANSWER", "MAX_READS_BYTES", "MAX_REQUEST", "WireError", "decode_answers", "decode_request",
           "encode_answers", "encode_request", "frame", "read_size", "serve"]


def read_size(read: Read) -> int:
    """The bytes a read adds to a request (encode_request): its JSON and a comma."""
    kind, args = read
    return len(orjson.dumps([kind, list(args)])) + 1


def encode_request(request_id: int, reads: list[Read]) -> bytes:
    return frame(orjson.dumps([request_id, [[kind, list(args)] for kind, args in reads]]))


def decode_request(payload: bytes) -> tuple[int, list[Read]]:
    try:
        request_id, reads = orjson.loads(payload)
        return int(request_id), [(str(kind), tuple(args)) for kind, args in reads]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise WireError(f"not a read request: {exc}") from exc


def encode_answers(request_id: int, answers: list[Encoded]) -> bytes:
    heads: list[list[object]] = []
    bodies: list[bytes] = []
    for ok, body in answers:
        if ok:
            assert isinstance(body, bytes)
            heads.append([1, len(body)])
            bodies.append(body)
        else:
            code, detail = body
            heads.append([0, code, detail])
    head = orjson.dumps([request_id, heads])
    return frame(len(head).to_bytes(_LEN, "big") + head + b"".join(bodies))


def decode_answers(payload: bytes) -> tuple[int, list[Encoded]]:
    """(request id, answers); a body stays bytes (JSON), an error is (code, detail)."""
    try:
        size = int.from_bytes(payload[:_LEN], "big")
        request_id, heads = orjson.loads(payload[_LEN:_LEN + size])
        at = _LEN + size
        out: list[Encoded] = []
        for head in heads:
            if head[0]:
                out.append((True, payload[at:at + head[1]]))
                at += head[1]
            else:
                out.append((False, (str(head[1]), str(head[2]))))
        if at != len(payload):
            raise WireError("answer bodies do not add up to the frame")
        return int(request_id), out
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError) as exc:
        raise WireError(f"not a read answer: {exc}") from exc


async def serve(host: str, port: int, handle: Handler, key: bytes) -> asyncio.Server:
    """Listen for gateway replicas; each connection's requests are answered in
    order, each by `handle` on the caller's event loop (the shard's own)."""
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request_id, reads = decode_request(await read_frame(reader, MAX_REQUEST))
            writer.write(encode_answers(request_id, await handle(reads)))
            await drain(writer)  # a replica that stops reading stalls only its own stream, until SEND_TIMEOUT_S

    return await listen(host, port, key, session, "read channel")
