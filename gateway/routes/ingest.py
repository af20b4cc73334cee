"""Unlock ingest: WebSocket /v1/ws/ingest (batched frames, pipelined) and
POST /v1/unlocks. Each item gets an ack, index-aligned with the frame."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response

from actors.messages import AckStatus, Reason, Unlock
from actors.routing import shard_of
from gateway import queries
from gateway.auth import ANY_GAME, Unauthorized
from gateway.frames import FrameError, parse_frame
from gateway.routes.deps import api_key_of, runtime
from gateway.routes.pushes import answer_frame
from gateway.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter()
FRAMES_IN_FLIGHT = 8  # per socket: further frames wait in TCP (backpressure)


async def acknowledge(rt: Runtime, raw: bytes | str, scope: str) -> list[dict[str, Any]]:
    """Validate a frame, route its unlocks by player shard, and return the acks."""
    items = parse_frame(raw, max_items=rt.settings.max_frame_items, max_bytes=rt.settings.max_frame_bytes)
    acks: list[dict[str, Any]] = [{"id": item.id, "status": AckStatus.REJECTED.value, "reason": item.reason}
                                  for item in items]
    by_shard: dict[int, list[tuple[int, Unlock]]] = defaultdict(list)
    for i, item in enumerate(items):
        if item.unlock is None:
            continue
        if scope != ANY_GAME and item.unlock.game_id != scope:
            acks[i]["reason"] = Reason.FORBIDDEN_GAME.value
            continue
        by_shard[shard_of(item.unlock.player_id, rt.settings.player_shards)].append((i, item.unlock))
    shards = list(by_shard)
    results = await asyncio.gather(*(rt.batcher.submit(s, [u for _, u in by_shard[s]]) for s in shards))
    for shard, shard_acks in zip(shards, results, strict=True):
        for (i, _), (status, reason) in zip(by_shard[shard], shard_acks, strict=True):
            acks[i]["status"] = status.value
            acks[i]["reason"] = reason
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
async def post_unlocks(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    scope = await rt.keys.scope(api_key_of(request))
    body = await read_body(request, rt.settings.max_frame_bytes)
    return Response(orjson.dumps(await acknowledge(rt, body, scope)), media_type="application/json")


@router.websocket("/v1/ws/ingest")
async def ingest_socket(websocket: WebSocket) -> None:
    rt: Runtime = await runtime()
    key = api_key_of(websocket)
    try:
        await rt.keys.scope(key)
    except Unauthorized as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # before accept: the client sees HTTP 403
        return
    await websocket.accept()
    replies: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue(FRAMES_IN_FLIGHT)
    revoked = asyncio.Event()

    async def answer(raw: bytes | str) -> bytes:
        try:
            # Every frame re-checks the key (a cache hit): a revoked key stops within api_key_cache_s.
            scope = await rt.keys.scope(key)
            if raw.lstrip()[:1] in ("{", b"{") and _is_query(raw):  # unlock frames are arrays
                return await answer_frame(rt, raw)
            return orjson.dumps(await acknowledge(rt, raw, scope))
        except FrameError as exc:
            return orjson.dumps({"error": exc.code, "detail": exc.detail})
        except Unauthorized as exc:
            revoked.set()
            return orjson.dumps({"error": exc.code, "detail": str(exc)})

    async def send_in_order() -> None:
        while (task := await replies.get()) is not None:
            await websocket.send_text((await task).decode())
            if revoked.is_set():
                await websocket.close(code=1008, reason="API key revoked")
                return

    sender = asyncio.ensure_future(send_in_order())
    try:
        while True:
            got, message = await _unless_stopped(websocket.receive(), sender)
            if not got or message["type"] == "websocket.disconnect":
                break
            raw = message.get("text") if message.get("text") is not None else message.get("bytes") or b""
            # Bounded: at most FRAMES_IN_FLIGHT frames wait for acks; if the sender died, stop.
            work = asyncio.ensure_future(answer(raw))  # runs even if the socket goes: the batch still commits
            got, _ = await _unless_stopped(replies.put(work), sender)
            if not got:
                break
    except WebSocketDisconnect:
        pass
    finally:
        try:  # let the acks already computed go out, within the deadline, then stop the sender
            await asyncio.wait_for(_unless_stopped(replies.put(None), sender), rt.settings.call_deadline_s)
            await asyncio.wait_for(sender, rt.settings.call_deadline_s)
        except Exception as exc:
            log.debug("ingest socket closed before its last replies were sent: %r", exc)
            sender.cancel()


def _is_query(raw: bytes | str) -> bool:
    try:
        return queries.is_query(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return False


async def _unless_stopped(step: Any, sender: asyncio.Future[None]) -> tuple[bool, Any]:
    """(True, step's result), or (False, None) once the sender has stopped first."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task, sender}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return True, task.result()
    task.cancel()
    return False, None
