"""WebSocket /v1/ws/boards/{game_id}?region=&period=&top=: a board's top N,
then a new `board` frame whenever it changes, at most every board_push_ms
(docs/protocol.md "Live boards"). Public like the boards; one watch per
board and replica feeds every watcher (podium/gateway/board_watch.py)."""
from __future__ import annotations

import asyncio
import contextlib

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from podium.core.periods import stat_board_id
from podium.gateway.board_watch import Key, Slot, parse_key
from podium.gateway.problems import problem
from podium.gateway.push_hub import IDLE
from podium.gateway.routes.deps import admitted, close_slow_consumer, deny, handshake_refused, runtime
from podium.gateway.runtime import Runtime
from podium.wire.errors import UnknownBoard, UnknownGame

router = APIRouter()
@router.websocket("/v1/ws/boards/{game_id}")
async def board_socket(websocket: WebSocket, game_id: str) -> None:
    rt = await runtime()
    if await handshake_refused(rt, websocket):
        return
    try:
        params = dict(websocket.query_params)
        key = parse_key(game_id, params, rt.settings.board_top_max)
        await rt.require_game(game_id)
        if params.get("board"):  # a catalog stat board of the game (its all-time, day or week board)
            await rt.stat_board(game_id, params["board"], key[2], False, None)  # unknown board / period: 404
            key = (stat_board_id(game_id, params["board"]), *key[1:])
    except ValueError as exc:
        await deny(websocket, problem(422, "invalid_request", str(exc)))
        return
    except (UnknownGame, UnknownBoard) as exc:
        await deny(websocket, problem(404, exc.code, str(exc)))
        return
    async with admitted(rt, websocket) as admit:
        if admit:
            await _serve(rt, websocket, key)


async def _serve(rt: Runtime, websocket: WebSocket, key: Key) -> None:
    await websocket.accept()
    slot = rt.boards.watch(key)
    timeout_s = rt.settings.socket_send_timeout_s
    # Two loops, each waiting on one thing: a frame goes out with one wake-up and
    # no per-frame task (an asyncio.wait over both per frame cost more than the send).
    sending = asyncio.ensure_future(_send_frames(websocket, slot, timeout_s))
    listening = asyncio.ensure_future(_listen(websocket, rt.settings.socket_idle_s, timeout_s))
    try:
        await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, listening):
            task.cancel()
        await asyncio.gather(sending, listening, return_exceptions=True)
        rt.boards.leave(key, slot)


async def _send_frames(websocket: WebSocket, slot: Slot, timeout_s: float) -> None:
    """The newest frame, whenever there is one; a slow client skips straight to the newest top N.
    A client that stops reading for timeout_s gives its place back."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await slot.ready.wait()
            frame = slot.take()
            if frame is not None:
                try:
                    async with asyncio.timeout(timeout_s):
                        await websocket.send_text(frame.decode())
                except TimeoutError:
                    await close_slow_consumer(websocket, timeout_s, f"no frame taken in {timeout_s:g} s")
                    return


async def _listen(websocket: WebSocket, idle_s: float, timeout_s: float) -> None:
    """Pings answered until the client leaves, or sends nothing for idle_s (closed 4408)."""
    with contextlib.suppress(TimeoutError, WebSocketDisconnect):
        while True:
            try:
                async with asyncio.timeout(idle_s):
                    message = await websocket.receive()
            except TimeoutError:
                async with asyncio.timeout(timeout_s):
                    await websocket.close(code=IDLE, reason=f"idle: nothing received in {idle_s:g} s")
                return
            if message["type"] == "websocket.disconnect":
                return
            reply = ('{"type":"pong"}' if message.get("text") == "ping" else orjson.dumps(
                {"type": "error", "id": None, "code": "invalid_request",
                 "detail": 'a board socket takes only "ping"'}).decode())
            async with asyncio.timeout(timeout_s):
                await websocket.send_text(reply)
