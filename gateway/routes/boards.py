"""WebSocket /v1/ws/boards/{game_id}?region=&period=&top=: a board's top N,
then a new `board` frame whenever it changes, at most every board_push_ms
(docs/protocol.md "Live boards"). Public like the boards; one watch per
board and replica feeds every watcher (gateway/board_watch.py)."""
from __future__ import annotations

import asyncio
import re

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from actors.errors import UnknownGame
from gateway.board_watch import Key
from gateway.problems import problem
from gateway.push_hub import IDLE
from gateway.queries import REGION_PATTERN
from gateway.routes.deps import admitted, deny, handshake_refused, runtime
from gateway.runtime import Runtime

router = APIRouter()
PERIODS = ("all", "day", "week")
TOP_DEFAULT = 10


def parse_key(game_id: str, params: dict[str, str], top_max: int) -> Key:
    """The board a handshake asks for; ValueError says what is wrong."""
    region = params.get("region") or None
    if region is not None and not re.fullmatch(REGION_PATTERN, region):
        raise ValueError(f"region must match {REGION_PATTERN}")
    period = params.get("period", "all")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    top = params.get("top", str(TOP_DEFAULT))
    if not top.isdigit() or not 1 <= int(top) <= top_max:
        raise ValueError(f"top must be 1..{top_max}")
    return game_id, region, period, int(top)


@router.websocket("/v1/ws/boards/{game_id}")
async def board_socket(websocket: WebSocket, game_id: str) -> None:
    rt = await runtime()
    if await handshake_refused(rt, websocket):
        return
    try:
        key = parse_key(game_id, dict(websocket.query_params), rt.settings.board_top_max)
        await rt.require_game(game_id)
    except ValueError as exc:
        await deny(websocket, problem(422, "invalid_request", str(exc)))
        return
    except UnknownGame as exc:
        await deny(websocket, problem(404, exc.code, str(exc)))
        return
    async with admitted(rt, websocket) as admit:
        if admit:
            await _serve(rt, websocket, key)


async def _serve(rt: Runtime, websocket: WebSocket, key: Key) -> None:
    await websocket.accept()
    slot = rt.boards.watch(key)
    idle_s, send_timeout_s = rt.settings.socket_idle_s, rt.settings.socket_send_timeout_s
    loop = asyncio.get_running_loop()
    heard = loop.time()
    incoming = asyncio.ensure_future(websocket.receive())
    ready = asyncio.ensure_future(slot.ready.wait())
    try:
        while True:
            done, _ = await asyncio.wait({incoming, ready}, timeout=heard + idle_s - loop.time(),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done and loop.time() >= heard + idle_s:
                await asyncio.wait_for(websocket.close(code=IDLE, reason=f"idle: nothing received in {idle_s:g} s"),
                                       send_timeout_s)
                break
            if ready in done:
                frame = slot.take()
                if frame is not None:  # a slow client skips straight to the newest top N
                    await asyncio.wait_for(websocket.send_text(frame.decode()), send_timeout_s)
                ready = asyncio.ensure_future(slot.ready.wait())
            if incoming in done:
                message = incoming.result()
                if message["type"] == "websocket.disconnect":
                    break
                heard = loop.time()
                reply = ('{"type":"pong"}' if message.get("text") == "ping" else orjson.dumps(
                    {"type": "error", "id": None, "code": "invalid_request",
                     "detail": 'a board socket takes only "ping"'}).decode())
                await asyncio.wait_for(websocket.send_text(reply), send_timeout_s)
                incoming = asyncio.ensure_future(websocket.receive())
    except (TimeoutError, WebSocketDisconnect):
        pass  # a client that stopped reading (or left) gives its place back
    finally:
        for pending in (incoming, ready):
            pending.cancel()
        rt.boards.leave(key, slot)
