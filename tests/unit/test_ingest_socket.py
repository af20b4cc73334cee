"""The ingest socket (podium/gateway/routes/ingest.py) against a stand-in WebSocket:
a client that stops reading its acks is closed as a slow consumer after
socket_send_timeout_s, as the push and board sockets are, instead of holding
the handler and its place until socket_idle_s."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from podium.gateway.push_hub import SLOW_CONSUMER
from podium.gateway.routes.ingest import _serve
from podium.settings import Settings


class NotReading:
    """A client that sent one frame, then neither reads nor sends: every send
    blocks, as once TCP's buffers are full."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = [{"type": "websocket.receive", "text": "ping"}]
        self.closed: list[tuple[int, str]] = []
        self.never = asyncio.Event()

    async def accept(self) -> None:
        return None

    async def receive(self) -> dict[str, Any]:
        if self.frames:
            return self.frames.pop(0)
        await self.never.wait()
        raise AssertionError("unreachable")

    async def send_text(self, text: str) -> None:
        await self.never.wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed.append((code, reason))


async def test_a_client_that_stops_reading_acks_is_closed_as_a_slow_consumer() -> None:
    settings = Settings(token_secret="unit-test-secret", socket_send_timeout_s=0.2, socket_idle_s=60.0,
                        call_deadline_s=1.0)
    rt: Any = SimpleNamespace(settings=settings, draining=asyncio.Event())
    client = NotReading()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(_serve(rt, client, "key"), 3.0)  # not socket_idle_s (60 s): the place is given back
    assert loop.time() - started < 2.0
    assert [code for code, _ in client.closed] == [SLOW_CONSUMER]
    assert "slow consumer" in client.closed[0][1]
