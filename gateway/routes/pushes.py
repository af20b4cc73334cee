"""WebSocket /v1/ws/players/{player_id}: a player's live pushes (rank.changed,
unlock.accepted), delivered via Redis from whichever actor produced them."""
from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, WebSocket

from gateway.auth import Unauthorized, verify_token
from gateway.routes.deps import bearer_of, runtime

router = APIRouter()


@router.websocket("/v1/ws/players/{player_id}")
async def player_socket(websocket: WebSocket, player_id: str) -> None:
    rt = await runtime()
    try:
        verify_token(rt.settings.resolved_token_secret(), bearer_of(websocket), player_id)
    except Unauthorized as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # before accept: the client sees HTTP 403
        return
    queue = await rt.hub.attach(player_id)
    try:
        await websocket.accept()
        await websocket.send_text(orjson.dumps({"type": "subscribed", "player_id": player_id}).decode())
        incoming = asyncio.ensure_future(websocket.receive())
        while True:
            outgoing = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({incoming, outgoing}, return_when=asyncio.FIRST_COMPLETED)
            if outgoing in done:
                await websocket.send_text(outgoing.result().decode())
            else:
                outgoing.cancel()
            if incoming in done:
                message = incoming.result()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") == "ping":
                    await websocket.send_text('{"type":"pong"}')
                incoming = asyncio.ensure_future(websocket.receive())
    finally:
        await rt.hub.detach(player_id, queue)
