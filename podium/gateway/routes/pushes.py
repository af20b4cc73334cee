"""WebSocket /v1/ws/players/{player_id}: a player's live pushes (rank.changed,
unlock.accepted), delivered via Redis from whichever actor produced them and
merged into at most one `update` frame per push window (podium/gateway/mailbox.py),
and read queries (rank, page, around, among, dashboard) answered on the same
socket in order of completion (podium/gateway/queries.py)."""
from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send

from podium.gateway import queries
from podium.gateway.auth import Unauthorized
from podium.gateway.mailbox import Mailbox
from podium.gateway.push_hub import IDLE, RESTARTING
from podium.gateway.routes.deps import admitted, bearer_of, close_slow_consumer, handshake_refused, runtime
from podium.gateway.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter()
INBOX_ON_CONNECT = 100  # inbox items sent on connect (the inbox keeps at most inbox_max)


class PlayerSocketRoute:
    """The route's app, plain ASGI: FastAPI's WebSocket wrapper (two AsyncExitStacks
    and an exception wrapper, ~4 KiB held for a socket's life) serves dependencies,
    which this route has none of; what the handler raises reaches the app's
    exception middleware and uvicorn as before."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await player_socket(WebSocket(scope, receive=receive, send=send), scope["path_params"]["player_id"])


router.routes.append(WebSocketRoute("/v1/ws/players/{player_id}", PlayerSocketRoute(), name="player_socket"))


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
    session = PlayerSession(rt, websocket)
    mailbox = session.mailbox = await rt.hub.attach(player_id, session.wake)
    if rt.draining.is_set():
        mailbox.close(RESTARTING, "server restarting: reconnect")
    try:
        await websocket.accept()
        await session.send(orjson.dumps({"type": "subscribed", "player_id": player_id}).decode())
        if inbox_since is not None:
            await session.send((await _inbox_frame(rt, player_id, inbox_since)).decode())
        session.ready = True
        session.wake()  # what came meanwhile goes out now
        await session.read(player_id)
    except TimeoutError:
        session.slow = True
    except WebSocketDisconnect:
        pass
    finally:
        session.stop()
        # The mailbox wakes the session (mailbox -> session.wake -> session -> mailbox): a cycle the
        # replica's frozen heap (podium/gateway/heap.py) would keep until its next compaction. Broken here.
        session.mailbox = None
        await rt.hub.detach(player_id, mailbox)
    if session.slow:
        send_timeout_s = rt.settings.socket_send_timeout_s
        log.info("player socket of %s closed: the client did not read for %.0fs", player_id, send_timeout_s)
        await close_slow_consumer(websocket, send_timeout_s, f"no frame taken in {send_timeout_s:g} s")


class PlayerSession:
    """One open player socket, as little as it can hold while it waits: the
    handler reads the client's frames itself; pushes go out from a task that
    exists only while the mailbox has something for the socket (at most one
    `update` frame per push window); each query frame is answered by a task
    of its own, which sends its reply (replies go in order of completion).
    A frame the client does not take within socket_send_timeout_s, wherever it
    was sent from, makes the socket a slow consumer: the reader stops at once
    and the socket is closed 1013."""

    __slots__ = ("_deadline", "_in_flight", "_pusher", "_queries", "last_push", "mailbox", "ready", "rt", "slow",
                 "websocket")

    def __init__(self, rt: Runtime, websocket: WebSocket) -> None:
        self.rt = rt
        self.websocket = websocket
        self.mailbox: Mailbox | None = None
        self.ready = False  # `subscribed` (and the inbox) went out: pushes may follow
        self.slow = False
        self.last_push = -1e9
        self._pusher: asyncio.Task[None] | None = None
        self._queries: set[asyncio.Task[None]] | None = None
        self._in_flight: asyncio.Semaphore | None = None
        self._deadline: asyncio.Timeout | None = None  # the reader's, while it waits for a frame

    async def send(self, text: str) -> None:
        # A client that stops reading blocks the send once TCP's buffers fill: past the
        # timeout it is a slow consumer and the socket goes.
        async with asyncio.timeout(self.rt.settings.socket_send_timeout_s):
            await self.websocket.send_text(text)

    def wake(self) -> None:
        """The mailbox has something (an event, or a close): start the pusher if it is not running."""
        if self.ready and self._pusher is None and not self.slow:
            self._pusher = asyncio.ensure_future(self._push())

    async def _push(self) -> None:
        mailbox = self.mailbox
        assert mailbox is not None
        loop = asyncio.get_running_loop()
        window_s = self.rt.settings.push_window_ms / 1000
        try:
            while True:
                if mailbox.closing is not None:
                    code, reason = mailbox.closing
                    async with asyncio.timeout(self.rt.settings.socket_send_timeout_s):
                        await self.websocket.close(code=code, reason=reason)  # the reader hears the disconnect
                    return
                delay = self.last_push + window_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # events arriving meanwhile join this frame
                    continue
                events = mailbox.take()
                if events:
                    self.last_push = loop.time()
                    await self.send(orjson.dumps({"type": "update", "events": events}).decode())
                if not len(mailbox) and mailbox.closing is None:
                    return
        except TimeoutError:
            self._slow_consumer()
        except (WebSocketDisconnect, RuntimeError):  # gone or closed meanwhile: the reader ends it
            pass
        finally:
            self._pusher = None

    def _slow_consumer(self) -> None:
        self.slow = True
        if self._deadline is not None and not self._deadline.expired():
            self._deadline.reschedule(asyncio.get_running_loop().time())  # the reader stops now

    async def read(self, player_id: str) -> None:
        """Frames from the client until it leaves, sends nothing for socket_idle_s (closed
        4408), or a send times out (the caller closes it 1013)."""
        idle_s = self.rt.settings.socket_idle_s
        while not self.slow:
            try:
                async with asyncio.timeout(idle_s) as self._deadline:
                    message = await self.websocket.receive()
            except TimeoutError:
                if not self.slow:
                    async with asyncio.timeout(self.rt.settings.socket_send_timeout_s):
                        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # closed by the pusher meanwhile
                            await self.websocket.close(code=IDLE, reason=f"idle: nothing received in {idle_s:g} s")
                return
            finally:
                self._deadline = None
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text == "ping":
                try:
                    await self.send('{"type":"pong"}')
                except (WebSocketDisconnect, RuntimeError):  # the pusher closed the socket meanwhile (drain, overflow)
                    return
            elif text is not None or message.get("bytes") is not None:  # an empty frame is answered too
                if self._in_flight is None:
                    self._in_flight = asyncio.Semaphore(self.rt.settings.max_socket_queries)
                    self._queries = set()
                await self._in_flight.acquire()  # past the limit, stop reading: TCP pushes back
                task = asyncio.ensure_future(self._query(text if text is not None else message["bytes"], player_id))
                assert self._queries is not None
                self._queries.add(task)
                task.add_done_callback(self._queries.discard)

    async def _query(self, raw: str | bytes, owner: str) -> None:
        assert self._in_flight is not None
        try:
            frame = await answer_frame(self.rt, raw, owner)
            try:
                await self.send(frame.decode())
            except TimeoutError:
                self._slow_consumer()
            except (WebSocketDisconnect, RuntimeError):  # gone, or closed meanwhile: the reader ends it
                pass
        finally:
            self._in_flight.release()

    def stop(self) -> None:
        self.ready = False
        for task in (self._pusher, *(self._queries or ())):
            if task is not None:
                task.cancel()


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
