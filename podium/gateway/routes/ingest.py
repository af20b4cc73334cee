"""Unlock ingest: WebSocket /v1/ws/ingest (batched frames, pipelined) and
POST /v1/unlocks. Each item gets an ack, index-aligned with the frame."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from typing import Any

import orjson
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response

from podium.core.routing import shard_of
from podium.gateway import queries
from podium.gateway.admission import Refusal
from podium.gateway.auth import ANY_GAME, Unauthorized
from podium.gateway.frames import FrameError, item_ids, parse_frame
from podium.gateway.push_hub import IDLE, RESTARTING
from podium.gateway.rate_limits import RateLimited, credential_id
from podium.gateway.routes.deps import admitted, api_key_of, close_slow_consumer, handshake_refused, refuse, runtime
from podium.gateway.runtime import Runtime
from podium.telemetry import metrics
from podium.wire.errors import ShardUnavailable
from podium.wire.messages import AckStatus, Item, Reason, StatUpdate

log = logging.getLogger(__name__)
router = APIRouter()
# Frames read and not yet answered, per socket; further frames wait in TCP
# (backpressure). Deep enough that a client offering more than the shards take
# builds a queue the gateway can see and shed (`overloaded`, podium/gateway/batcher.py)
# instead of one that grows unseen in the client's socket.
FRAMES_IN_FLIGHT = 32


async def acknowledge(rt: Runtime, raw: bytes | str, scope: str, who: str, via: str = "ws") -> list[dict[str, Any]]:
    """A frame's acks, counted in the metrics (status and reason; ack time).
    `who`: the API key's digest, whose `unlocks` limit the frame counts against."""
    t0 = time.perf_counter()
    acks = await _acknowledge(rt, raw, scope, who, via)
    metrics.observe("podium_ack_seconds", time.perf_counter() - t0, via=via)
    metrics.count_all("podium_unlocks", Counter((a["status"], reason_label(a.get("reason"))) for a in acks),
                      ("status", "reason"))
    return acks


def reason_label(reason: str | None) -> str:
    """A reason as a metric label: its code, without the text an `invalid: ...`
    carries (which names the item's own field and value: unbounded)."""
    return "" if reason is None else reason.split(":", 1)[0]


async def _acknowledge(rt: Runtime, raw: bytes | str, scope: str, who: str, via: str) -> list[dict[str, Any]]:
    """Validate a frame, route its unlocks by player shard, and return the acks.
    While every shard sheds load, the whole frame is answered `overloaded`
    without validating its items (the costliest step of a frame here). Past
    the key's `unlocks` limit its valid items are `rejected`/`rate_limited`
    (a POST: RateLimited, answered 429) and nothing is recorded."""
    limits = {"max_items": rt.settings.max_frame_items, "max_bytes": rt.settings.max_frame_bytes}
    if rt.batcher.shedding(rt.settings.player_shards):
        ids = item_ids(raw, **limits)
        return [{"id": i, "status": status.value, "reason": reason}
                for i, (status, reason) in zip(ids, rt.batcher.shed_frame(len(ids)), strict=True)]
    items = parse_frame(raw, **limits)
    acks: list[dict[str, Any]] = [{"id": item.id, "status": AckStatus.REJECTED.value, "reason": item.reason}
                                  for item in items]
    by_shard: dict[int, list[tuple[int, Item]]] = defaultdict(list)
    for i, item in enumerate(items):
        if item.unlock is None:
            continue
        if scope != ANY_GAME and item.unlock.game_id != scope:
            acks[i]["reason"] = Reason.FORBIDDEN_GAME.value
            continue
        by_shard[shard_of(item.unlock.player_id, rt.settings.player_shards)].append((i, item.unlock))
    wait = await rt.limits.retry_after("unlocks", who, sum(map(len, by_shard.values())))
    if wait is not None:
        if via == "post":
            raise RateLimited("unlocks", wait)
        for i in (i for pairs in by_shard.values() for i, _ in pairs):
            acks[i].update(reason=Reason.RATE_LIMITED.value, retry_after_s=wait)
        by_shard.clear()
    shards = list(by_shard)
    results = await asyncio.gather(*(rt.batcher.submit(s, [u for _, u in by_shard[s]]) for s in shards))
    for shard, shard_acks in zip(shards, results, strict=True):
        for (i, _), (status, reason) in zip(by_shard[shard], shard_acks, strict=True):
            acks[i]["status"] = status.value
            acks[i]["reason"] = reason
    stats = [i for i, item in enumerate(items) if isinstance(item.unlock, StatUpdate)]
    stat_acks: Counter[tuple[str, ...]] = Counter((acks[i]["status"], reason_label(acks[i]["reason"])) for i in stats)
    if stat_acks:  # podium_unlocks counts them too; this tells them apart
        metrics.count_all("podium_stat_updates", stat_acks, ("status", "reason"))
    for ack in acks:
        if ack["reason"] is None:
            del ack["reason"]
    return acks


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused (413) as soon as it passes max_bytes: never read whole first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FrameError("frame_too_large", f"body is {declared} bytes; the limit is {max_bytes}", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise FrameError("frame_too_large", f"body passed {max_bytes} bytes, the limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/v1/unlocks", tags=["ingest"])
async def post_unlocks(request: Request) -> Response:
    rt = await runtime()  # not a FastAPI dependency: solving one was a visible share of a POST's cost (py-spy)
    key = api_key_of(request)
    scope = await rt.keys.scope(key)
    body = await read_body(request, rt.settings.max_frame_bytes)
    acks = await acknowledge(rt, body, scope, credential_id(key or ""), "post")
    return Response(orjson.dumps(acks), media_type="application/json")


@router.websocket("/v1/ws/ingest")
async def ingest_socket(websocket: WebSocket) -> None:
    rt: Runtime = await runtime()
    if await handshake_refused(rt, websocket):
        return
    key = api_key_of(websocket)
    try:
        await rt.keys.scope(key)
    except Unauthorized as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # before accept: the client sees HTTP 403
        return
    except ShardUnavailable as exc:  # PostgreSQL away and the key not seen lately: 503, retry
        await refuse(websocket, Refusal(ShardUnavailable.code, str(exc), 1))
        return
    async with admitted(rt, websocket) as admit:
        if admit:
            await _serve(rt, websocket, key)


async def _serve(rt: Runtime, websocket: WebSocket, key: str | None) -> None:
    await websocket.accept()
    replies: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue(FRAMES_IN_FLIGHT)
    send_timeout_s = rt.settings.socket_send_timeout_s
    revoked = asyncio.Event()
    who = credential_id(key or "")

    async def answer(raw: bytes | str) -> bytes:
        if raw == "ping":
            return b'{"type":"pong"}'
        try:
            # Every frame re-checks the key (a cache hit): a revoked key stops within api_key_cache_s.
            scope = await rt.keys.scope(key)
            query = _query_of(raw, rt.settings.max_frame_bytes)
            if query is not None:
                return await queries.answer(rt, query, limit_as=who)
            return orjson.dumps(await acknowledge(rt, raw, scope, who))
        except FrameError as exc:
            return orjson.dumps({"error": exc.code, "detail": exc.detail})
        except Unauthorized as exc:
            revoked.set()
            return orjson.dumps({"error": exc.code, "detail": str(exc)})
        except ShardUnavailable as exc:
            return orjson.dumps({"error": exc.code, "detail": str(exc)})

    async def send_in_order() -> None:
        while (task := await replies.get()) is not None:
            text = (await task).decode()
            try:  # a client that stops reading acks blocks the send once TCP's buffers fill
                await asyncio.wait_for(websocket.send_text(text), send_timeout_s)
            except TimeoutError:  # a slow consumer, as on the other sockets: the socket and its place go
                log.info("ingest socket closed: the client took no ack for %g s", send_timeout_s)
                await close_slow_consumer(websocket, send_timeout_s, f"no ack taken in {send_timeout_s:g} s")
                raise
            if revoked.is_set():
                await websocket.close(code=1008, reason="API key revoked")
                return

    # The sender stops on its own when the socket fails or a key is revoked, and the
    # replica may be told to drain: either interrupts the read loop (cheaper per frame
    # than racing every read against them).
    receiver = asyncio.current_task()
    closing = False
    interrupted = False

    def interrupt(task: asyncio.Future[Any]) -> None:
        nonlocal interrupted
        if not task.cancelled() and task.exception() is not None:
            log.info("ingest socket sender stopped: %r", task.exception())
        if not closing and receiver is not None:
            interrupted = True
            receiver.cancel()

    sender = asyncio.ensure_future(send_in_order())
    sender.add_done_callback(interrupt)
    drained = asyncio.ensure_future(rt.draining.wait())
    drained.add_done_callback(interrupt)
    idle_s = rt.settings.socket_idle_s
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), idle_s)
            except TimeoutError:  # a socket that sends nothing gives its place back
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(code=IDLE, reason=f"idle: nothing received in "
                                                           f"{idle_s:g} s"), rt.settings.socket_send_timeout_s)
                break
            if message["type"] == "websocket.disconnect":
                break
            raw: bytes | str = message.get("text") or message.get("bytes") or b""
            # At most FRAMES_IN_FLIGHT frames wait for acks; past that the socket is not read (TCP backpressure).
            # The answer runs even if the socket goes: its batch still commits.
            await replies.put(asyncio.ensure_future(answer(raw)))
    except WebSocketDisconnect:
        pass
    except asyncio.CancelledError:
        if not interrupted:
            raise  # Serve cancelled the handler (the client left): clean up below all the same
        if receiver is not None:
            receiver.uncancel()
    finally:
        closing = True
        drained.cancel()
        if not sender.done():  # let the acks already computed go out, within the deadline
            last = asyncio.ensure_future(replies.put(None))
            await asyncio.wait({last, sender}, timeout=rt.settings.call_deadline_s,
                               return_when=asyncio.FIRST_COMPLETED)
            if not sender.done():
                await asyncio.wait({sender}, timeout=rt.settings.call_deadline_s)
            last.cancel()
        if not sender.done():
            log.debug("ingest socket closed before its last replies were sent")
            sender.cancel()
        elif rt.draining.is_set():  # every frame read was answered: now tell the client to reconnect
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=RESTARTING, reason="server restarting: reconnect"),
                                       rt.settings.socket_send_timeout_s)


def _query_of(raw: bytes | str, max_bytes: int) -> dict[str, Any] | None:
    """The parsed query if this frame is one (an object with "q"); unlock frames are arrays."""
    if raw.lstrip()[:1] not in ("{", b"{"):
        return None
    if (len(raw) if isinstance(raw, bytes) else len(raw.encode())) > max_bytes:
        return None  # parse_frame answers frame_too_large
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if queries.is_query(data) else None
