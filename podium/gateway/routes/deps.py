"""Shared route plumbing: the replica's Runtime and the credentials of a request.
Serve hands the replica a deserialized copy of the FastAPI app, so the Runtime
lives here, in the process, set once by the deployment's constructor."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import xxhash
from fastapi import Depends
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from podium.gateway.admission import Refusal
from podium.gateway.problems import problem
from podium.gateway.push_hub import SLOW_CONSUMER
from podium.gateway.rate_limits import RateLimited, credential_id
from podium.gateway.runtime import Runtime

_runtime: Runtime | None = None


def install_runtime(rt: Runtime) -> None:
    global _runtime
    _runtime = rt


async def runtime() -> Runtime:
    assert _runtime is not None, "the gateway deployment installs the runtime at start"
    return await _runtime.ready()


def api_key_of(conn: HTTPConnection) -> str | None:
    return conn.headers.get("x-api-key") or conn.query_params.get("api_key")


def bearer_of(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return conn.query_params.get("token")


def client_address(conn: HTTPConnection, trusted_hops: int) -> str | None:
    """The client's address for per-address limits: the X-Forwarded-For entry
    the `trusted_hops`-th proxy in front appended (counted from the right).
    None without trusted proxies: Serve's HAProxy does not forward the address,
    so every client would look alike (docs/operations.md "Rate limits")."""
    if trusted_hops <= 0:
        return None
    hops = [h.strip() for h in ",".join(conn.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    if len(hops) >= trusted_hops:
        return hops[-trusted_hops]
    return conn.client.host if conn.client else None  # it did not come through the proxies


async def per_address(request: Request, rt: Runtime = Depends(runtime)) -> None:
    """A router dependency: every HTTP request counts against its address's `reads` limit."""
    address = client_address(request, rt.settings.trusted_proxy_hops)
    if address is not None:
        await rt.limits.metered("reads", address)


async def server_or_player(rt: Runtime, conn: HTTPConnection, player_id: str) -> bool:
    """True for a game server (any valid API key), False for the player's own
    token; Unauthorized (401) for anything else (docs/protocol.md, "Credentials").
    Counts against that credential's `player_reads` limit (RateLimited: 429)."""
    key = api_key_of(conn)
    if key:
        await rt.keys.scope(key)
        await rt.limits.metered("player_reads", credential_id(key))
        return True
    rt.tokens.verify(bearer_of(conn), player_id)
    await rt.limits.metered("player_reads", f"player:{player_id}")
    return False


async def handshake_refused(rt: Runtime, websocket: WebSocket) -> bool:
    """True (and answered 429 + Retry-After) when the address is past its `handshakes` limit."""
    address = client_address(websocket, rt.settings.trusted_proxy_hops)
    wait = None if address is None else await rt.limits.retry_after("handshakes", address)
    if wait is None:
        return False
    await refuse(websocket, Refusal(RateLimited.code, f"too many socket handshakes from this address; retry "
                                    f"after {wait} s", wait, 429))
    return True


def json_response(body: object) -> Response:
    """A JSON body serialized once by orjson (FastAPI would walk it with
    jsonable_encoder first: the larger share of a small read's cost here)."""
    return Response(orjson.dumps(body), media_type="application/json")


def public_json(request: Request, body: object, max_age_s: int) -> Response:
    """Public data (boards, ranks, the catalog): `Cache-Control` lets browsers
    and CDNs keep it `max_age_s` (the staleness a lobby screen can show), and
    the ETag - a hash of the exact bytes - answers a repeat `If-None-Match`
    with 304 and no body."""
    content = orjson.dumps(body)
    etag = f'"{xxhash.xxh64_hexdigest(content)}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age_s}"}
    asked = request.headers.get("if-none-match")
    if asked and (asked.strip() == "*" or etag in {tag.strip().removeprefix("W/") for tag in asked.split(",")}):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


async def refuse(websocket: WebSocket, refusal: Refusal) -> None:
    """Answer a WebSocket handshake with HTTP 503 (or 429) + Retry-After and a problem
    body, at once (the ASGI denial-response extension; uvicorn has it). A server
    without it gets a close before accept: the client sees HTTP 403."""
    response = problem(refusal.status, refusal.code, refusal.detail)
    response.headers["Retry-After"] = str(refusal.retry_after_s)
    await deny(websocket, response, 1013)


async def deny(websocket: WebSocket, response: Response, close_code: int = 1008) -> None:
    """Answer a handshake with an HTTP response (a problem) instead of the upgrade."""
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(code=close_code, reason=orjson.loads(bytes(response.body))["detail"][:120])


@asynccontextmanager
async def admitted(rt: Runtime, websocket: WebSocket, player_id: str | None = None) -> AsyncIterator[bool]:
    """Hold one of the replica's socket places (a player's, or an ingest
    socket's: None) for the socket's life; False once refused (answered 503)."""
    refusal = rt.admission.enter(player_id)
    if refusal is not None:
        await refuse(websocket, refusal)
        yield False
        return
    try:
        yield True
    finally:
        rt.admission.leave(player_id)


async def close_slow_consumer(websocket: WebSocket, timeout_s: float, detail: str) -> None:
    """A client took no frame within socket_send_timeout_s: close the socket 1013. The close frame
    reaches a client that still reads; one that reads nothing has its connection dropped after at
    most a second more, and either way the socket's place is given back."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=SLOW_CONSUMER, reason=f"slow consumer: {detail}"),
                               min(timeout_s, 1.0))
