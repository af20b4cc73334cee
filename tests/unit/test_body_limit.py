"""POST /v1/unlocks stops reading a body once it passes the limit: a replica
never buffers an oversize body whole (tested at the ASGI interface)."""
from __future__ import annotations

import pytest
from starlette.requests import Request

from podium.gateway.frames import FrameError
from podium.gateway.routes.ingest import read_body

CHUNK = 64 * 1024


def request_of(chunks: int, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[Request, list[int]]:
    taken = [0]

    async def receive() -> dict[str, object]:
        taken[0] += 1
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": taken[0] < chunks}

    scope = {"type": "http", "method": "POST", "path": "/v1/unlocks", "headers": headers or []}
    return Request(scope, receive), taken


async def test_an_oversize_body_is_refused_after_the_limit_not_after_the_body() -> None:
    request, taken = request_of(chunks=1024)  # 64 MiB offered
    with pytest.raises(FrameError) as err:
        await read_body(request, max_bytes=1024 * 1024)
    assert (err.value.code, err.value.status) == ("frame_too_large", 413)
    assert taken[0] == 17, "it stops at the first chunk past 1 MiB"


async def test_a_declared_oversize_body_is_refused_before_reading() -> None:
    request, taken = request_of(chunks=1, headers=[(b"content-length", str(10 * 1024 * 1024).encode())])
    with pytest.raises(FrameError):
        await read_body(request, max_bytes=1024 * 1024)
    assert taken[0] == 0


async def test_a_body_within_the_limit_is_read_whole() -> None:
    request, _ = request_of(chunks=4)
    assert len(await read_body(request, max_bytes=1024 * 1024)) == 4 * CHUNK
