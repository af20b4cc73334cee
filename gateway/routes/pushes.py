"""WebSocket /v1/ws/players/{player_id}: a player's live pushes (rank.changed,
unlock.accepted), delivered via Redis from whichever actor produced them, and
read queries (rank, page, around, among, dashboard) answered on the same
socket in order of completion (gateway/queries.py)."""
from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, WebSocket

from gateway import queries
from gateway.auth import Unauthorized, verify_token
from gateway.routes.deps import bearer_of, runtime
from gateway.runtime import Runtime

router = APIRouter()


@router.websocket("/v1/ws/players/{player_id}")
async def player_socket(websocket: WebSocket, player_id: str) -> None:
    rt = await runtime()
    try:
        verify_token(rt.settings.resolved_token_secret(), bearer_of(websocket), player_id)
    except Unauthorized as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # before accept: the client sees HTTP 403
        return
    pushes = await rt.hub.attach(player_id)
    answers: asyncio.Queue[bytes] = asyncio.Queue()  # bounded by the in-flight limit below
    in_flight = asyncio.Semaphore(rt.settings.max_socket_queries)
    tasks: set[asyncio.Task[None]] = set()
    try:
        await websocket.accept()
        await websocket.send_text(orjson.dumps({"type": "subscribed", "player_id": player_id}).decode())
        incoming = asyncio.ensure_future(websocket.receive())
        outgoing = asyncio.ensure_future(pushes.get())
        answered = asyncio.ensure_future(answers.get())
        while True:
            done, _ = await asyncio.wait({incoming, outgoing, answered}, return_when=asyncio.FIRST_COMPLETED)
            if outgoing in done:
                await websocket.send_text(outgoing.result().decode())
                outgoing = asyncio.ensure_future(pushes.get())
            if answered in done:
                await websocket.send_text(answered.result().decode())
                answered = asyncio.ensure_future(answers.get())
            if incoming in done:
                message = incoming.result()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text == "ping":
                    await websocket.send_text('{"type":"pong"}')
                elif text is not None or message.get("bytes"):
                    await in_flight.acquire()  # past the limit, stop reading: TCP pushes back
                    task = asyncio.ensure_future(_query(rt, text if text is not None else message["bytes"],
                                                        answers, in_flight))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                incoming = asyncio.ensure_future(websocket.receive())
    finally:
        for pending in (incoming, outgoing, answered, *tasks):
            pending.cancel()
        await rt.hub.detach(player_id, pushes)


async def _query(rt: Runtime, raw: str | bytes, answers: asyncio.Queue[bytes], in_flight: asyncio.Semaphore) -> None:
    try:
        await answers.put(await answer_frame(rt, raw))
    finally:
        in_flight.release()


async def answer_frame(rt: Runtime, raw: str | bytes) -> bytes:
    """A query frame's reply; anything else on a socket that takes queries is an `invalid_request` error."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode())
    if size > rt.settings.max_frame_bytes:
        return orjson.dumps({"type": "error", "id": None, "code": "frame_too_large",
                             "detail": f"frame is {size} bytes; the limit is {rt.settings.max_frame_bytes}"})
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return orjson.dumps({"type": "error", "id": None, "code": "malformed_json", "detail": str(exc)})
    if not queries.is_query(data):
        return orjson.dumps({"type": "error", "id": None, "code": "invalid_request",
                             "detail": 'a frame is "ping" or a query object with "q"'})
    return await queries.answer(rt, data)
