"""WebSocket /v1/ws/players/{player_id}: a player's live pushes (rank.changed,
unlock.accepted), delivered via Redis from whichever actor produced them and
merged into at most one `update` frame per push window (gateway/mailbox.py),
and read queries (rank, page, around, among, dashboard) answered on the same
socket in order of completion (gateway/queries.py)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gateway import queries
from gateway.auth import Unauthorized
from gateway.push_hub import IDLE, RESTARTING
from gateway.routes.deps import admitted, bearer_of, close_slow_consumer, handshake_refused, runtime
from gateway.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter()
INBOX_ON_CONNECT = 100  # inbox items sent on connect (the inbox keeps at most inbox_max)


@router.websocket("/v1/ws/players/{player_id}")
async def player_socket(websocket: WebSocket, player_id: str) -> None:
    rt = await runtime()
    if await handshake_refused(rt, websocket):
        return
    try:
        rt.tokens.verify(bearer_of(websocket), player_id)
    except Unauthorized as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # before accept: the client sees HTTP 403
        return
    inbox_since = websocket.query_params.get("inbox_since")
    async with admitted(rt, websocket, player_id) as admit:
        if admit:
            await _serve(rt, websocket, player_id, inbox_since)


async def _inbox_frame(rt: Runtime, player_id: str, since: str) -> bytes:
    """The `inbox` frame sent on connect: items after `since` (a number, or
    `unread`: after the read cursor), at most one page."""
    try:
        after = None if since == "unread" else int(since)
        if after is not None and not 0 <= after < 2**63:  # a PostgreSQL bigint
            raise ValueError(since)
    except ValueError:
        return orjson.dumps({"type": "error", "id": None, "code": "invalid_request",
                             "detail": "inbox_since is an inbox id (>= 0) or `unread`"})
    try:
        body = await rt.call(rt.player_shard(player_id).inbox.remote(player_id, after, INBOX_ON_CONNECT))
    except Exception:
        return orjson.dumps({"type": "error", "id": None, "code": "unavailable",
                             "detail": "the inbox could not be read; GET /v1/players/{id}/inbox later"})
    return orjson.dumps({"type": "inbox", **body})


async def _serve(rt: Runtime, websocket: WebSocket, player_id: str, inbox_since: str | None) -> None:
    mailbox = await rt.hub.attach(player_id)
    if rt.draining.is_set():
        mailbox.close(RESTARTING, "server restarting: reconnect")
    answers: asyncio.Queue[bytes] = asyncio.Queue()  # bounded by the in-flight limit below
    in_flight = asyncio.Semaphore(rt.settings.max_socket_queries)
    tasks: set[asyncio.Task[None]] = set()
    window_s = rt.settings.push_window_ms / 1000
    send_timeout_s = rt.settings.socket_send_timeout_s
    loop = asyncio.get_running_loop()
    last_push = -window_s
    idle_s = rt.settings.socket_idle_s

    async def next_push() -> list[dict[str, Any]]:
        """What the socket is sent next: at most one frame per push window."""
        await mailbox.wait()
        delay = last_push + window_s - loop.time()
        if delay > 0 and mailbox.closing is None:
            await asyncio.sleep(delay)  # events arriving meanwhile join this frame
        return mailbox.take()

    async def send(text: str) -> None:
        # A client that stops reading blocks the send once TCP's buffers fill: past the
        # timeout it is a slow consumer and the socket goes.
        await asyncio.wait_for(websocket.send_text(text), send_timeout_s)

    incoming = outgoing = answered = None
    try:
        await websocket.accept()
        await send(orjson.dumps({"type": "subscribed", "player_id": player_id}).decode())
        if inbox_since is not None:
            await send((await _inbox_frame(rt, player_id, inbox_since)).decode())
        incoming = asyncio.ensure_future(websocket.receive())
        outgoing = asyncio.ensure_future(next_push())
        answered = asyncio.ensure_future(answers.get())
        heard = loop.time()  # when the client last sent anything (a ping, a query)
        while True:
            done, _ = await asyncio.wait({incoming, outgoing, answered}, timeout=heard + idle_s - loop.time(),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done and loop.time() >= heard + idle_s:
                await asyncio.wait_for(websocket.close(code=IDLE, reason=f"idle: nothing received in {idle_s:g} s"),
                                       send_timeout_s)
                break
            if outgoing in done:
                if mailbox.closing is not None:
                    code, reason = mailbox.closing
                    await asyncio.wait_for(websocket.close(code=code, reason=reason), send_timeout_s)
                    break
                events = outgoing.result()
                if events:
                    last_push = loop.time()
                    await send(orjson.dumps({"type": "update", "events": events}).decode())
                outgoing = asyncio.ensure_future(next_push())
            if answered in done:
                await send(answered.result().decode())
                answered = asyncio.ensure_future(answers.get())
            if incoming in done:
                message = incoming.result()
                if message["type"] == "websocket.disconnect":
                    break
                heard = loop.time()
                text = message.get("text")
                if text == "ping":
                    await send('{"type":"pong"}')
                elif text is not None or message.get("bytes") is not None:  # an empty frame is answered too
                    await in_flight.acquire()  # past the limit, stop reading: TCP pushes back
                    task = asyncio.ensure_future(_query(rt, text if text is not None else message["bytes"],
                                                        answers, in_flight, player_id))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                incoming = asyncio.ensure_future(websocket.receive())
    except TimeoutError:
        log.info("player socket of %s closed: the client did not read for %.0fs", player_id, send_timeout_s)
        await close_slow_consumer(websocket, send_timeout_s, f"no frame taken in {send_timeout_s:g} s")
    except WebSocketDisconnect:
        pass
    finally:
        for pending in (incoming, outgoing, answered, *tasks):
            if pending is not None:
                pending.cancel()
        await rt.hub.detach(player_id, mailbox)


async def _query(rt: Runtime, raw: str | bytes, answers: asyncio.Queue[bytes], in_flight: asyncio.Semaphore,
                 owner: str) -> None:
    try:
        await answers.put(await answer_frame(rt, raw, owner))
    finally:
        in_flight.release()


async def answer_frame(rt: Runtime, raw: str | bytes, owner: str) -> bytes:
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
    return await queries.answer(rt, data, owner)
