"""What an open player socket costs below its handler: uvicorn's WebSocket
protocol and Serve's per-request wrapper (docs/architecture.md, "Memory per
socket"; load/socket_memory.py measures it).

Serve builds uvicorn's config itself and passes no WebSocket option, but in
each process where it starts an HTTP server (a gateway replica, a proxy) it
first calls the function that RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH names
(set by podium/cluster/launch.py): `ingress_middlewares` below. It
- has uvicorn take WebSockets with `SocketProtocol`: a player socket is
  offered no permessage-deflate (a zlib compressor and decompressor with their
  windows, ~45 KiB a socket, for push frames of a few hundred bytes), a socket
  lets go of its handshake's request and response once accepted, and its
  receive queue is a list and one waiter (asyncio.Queue: ~3 KiB a socket);
- returns `PlayerSocketHint`, which gives each player socket handshake Serve's
  per-request hint `x-request-disconnect-disabled: ?1`: Serve then runs the
  handler without a second task that reads ahead of it into an unbounded queue
  to notice the client leaving (its own proxy does the same for WebSockets
  once accepted). The handler reads the disconnect itself, and a client that
  sends faster than it is answered is held back by TCP.
Board and ingest sockets keep uvicorn's and Serve's defaults (compression:
their frames are large)."""
from __future__ import annotations

import asyncio
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

PLAYER_SOCKETS = "/v1/ws/players/"
DISCONNECT_DISABLED = (b"x-request-disconnect-disabled", b"?1")  # ray.serve: SERVE_HTTP_REQUEST_DISCONNECT_..._HEADER


def ingress_middlewares() -> list[Middleware]:
    """Serve's HTTP callback (RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH): runs
    before Serve builds uvicorn's config in this process."""
    import uvicorn.config

    uvicorn.config.WS_PROTOCOLS["auto"] = f"{__name__}:SocketProtocol"
    return [Middleware(PlayerSocketHint)]


class PlayerSocketHint:
    """Pure ASGI: player socket handshakes carry Serve's disconnect-disabled hint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].startswith(PLAYER_SOCKETS):
            headers = scope["headers"]
            if isinstance(headers, list):
                headers.append(DISCONNECT_DISABLED)  # uvicorn's, made for this handshake
            else:
                scope["headers"] = [*headers, DISCONNECT_DISABLED]
        await self.app(scope, receive, send)


class Inbox:
    """The put_nowait / get / empty of asyncio.Queue that uvicorn's protocol
    uses, as a list and the futures of whoever waits (usually one reader)."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
                return

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if self._items and waiter.done() and not waiter.cancelled():
                    self._wake_next(waiter)  # it was woken for an item it will not take
                raise
            finally:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return self._items.pop(0)

    def _wake_next(self, woken: asyncio.Future[None]) -> None:
        for waiter in self._waiters or ():
            if waiter is not woken and not waiter.done():
                waiter.set_result(None)
                return


class SocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (websockets' sans-I/O core), lighter per socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        if event.path.startswith(PLAYER_SOCKETS):
            self.conn.available_extensions = []  # no permessage-deflate negotiated
        super().handle_connect(event)

    def start_keepalive(self) -> None:
        # Called once the handshake response is written: the handshake's request and response
        # are not needed again. websockets' parser keeps the request for the socket's life
        # (a local of its generator), so its headers are emptied in place (~2.5 KiB a socket).
        self.request.headers.clear()
        self.response.headers.clear()
        self.request = self.response = None  # type: ignore[assignment]
        super().start_keepalive()
