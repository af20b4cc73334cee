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
from gateway.auth import ALL_GAMES, Unauthorized
from gateway.frames import FrameError, parse_frame
from gateway.routes.deps import api_key_of, runtime
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
        if scope != ALL_GAMES and item.unlock.game_id != scope:
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


@router.post("/v1/unlocks", tags=["ingest"])
async def post_unlocks(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    scope = await rt.keys.scope(api_key_of(request))
    body = await request.body()
    return Response(orjson.dumps(await acknowledge(rt, body, scope)), media_type="application/json")


@router.websocket("/v1/ws/ingest")
async def ingest_socket(websocket: WebSocket) -> None:
    rt: Runtime = await runtime()
    try:
        scope = await rt.keys.scope(api_key_of(websocket))
    except Unauthorized as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # before accept: the client sees HTTP 403
        return
    await websocket.accept()
    replies: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue(FRAMES_IN_FLIGHT)

    async def answer(raw: bytes | str) -> bytes:
        try:
            return orjson.dumps(await acknowledge(rt, raw, scope))
        except FrameError as exc:
            return orjson.dumps({"error": exc.code, "detail": exc.detail})

    async def send_in_order() -> None:
        while (task := await replies.get()) is not None:
            await websocket.send_text((await task).decode())

    sender = asyncio.ensure_future(send_in_order())
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text") if message.get("text") is not None else message.get("bytes") or b""
            await replies.put(asyncio.ensure_future(answer(raw)))
            if sender.done():
                break
    except WebSocketDisconnect:
        pass
    finally:
        if not sender.done():
            await replies.put(None)
            try:
                await sender
            except Exception:
                log.debug("ingest socket closed before its last replies were sent")
