"""RFC 9457 problem+json responses: the one shape of every HTTP error,
including the unexpected ones (500 `internal`, logged with its traceback)."""
from __future__ import annotations

import logging

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from ray.exceptions import ActorUnavailableError, RayActorError
from starlette.exceptions import HTTPException as StarletteHTTPException

from podium.gateway.auth import Unauthorized
from podium.gateway.frames import FrameError
from podium.gateway.rate_limits import RateLimited
from podium.wire.errors import (
    BadCursor,
    Blocked,
    Forbidden,
    FriendLimit,
    InvalidRequest,
    OutOfBounds,
    Overloaded,
    PodiumError,
    ShardUnavailable,
    UnknownAchievement,
    UnknownBoard,
    UnknownGame,
    UnknownPlayer,
    UnknownSeason,
    UnknownStat,
    WrongOperator,
)

log = logging.getLogger(__name__)
_STATUS: dict[type[Exception], int] = {
    UnknownGame: 404, UnknownAchievement: 404, UnknownPlayer: 404, BadCursor: 400, Unauthorized: 401,
    InvalidRequest: 422, ShardUnavailable: 503, Overloaded: 429, FriendLimit: 409, Blocked: 403, Forbidden: 403,
    UnknownStat: 404, UnknownBoard: 404, UnknownSeason: 404, WrongOperator: 422, OutOfBounds: 422,
}
RETRY_AFTER_S = "1"


def unavailable(detail: str, status: int = 503, code: str = ShardUnavailable.code) -> Response:
    """Retry later: 503 (a shard is away) or 429 (a bounded queue is full), with Retry-After."""
    response = problem(status, code, detail)
    response.headers["Retry-After"] = RETRY_AFTER_S
    return response


def problem(status: int, code: str, detail: str, **extra: object) -> Response:
    body = {"type": f"https://podium.dev/problems/{code}", "title": code.replace("_", " "), "status": status,
            "detail": detail, "code": code, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(PodiumError)
    async def _domain(_: Request, exc: PodiumError) -> Response:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        cause = getattr(exc, "cause", None) or exc  # an actor's error arrives wrapped by Ray
        if status in (429, 503):
            return unavailable(str(cause), status, exc.code)
        return problem(status, exc.code, str(cause))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        # The router's own answers (no such path, a method the path does not take) are problems too.
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = problem(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> Response:
        response = problem(429, exc.code, str(exc), retry_after_s=exc.retry_after_s)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, exc: Unauthorized) -> Response:
        return problem(401, exc.code, str(exc))

    @app.exception_handler(FrameError)
    async def _frame(_: Request, exc: FrameError) -> Response:
        return problem(exc.status, exc.code, exc.detail)

    @app.exception_handler(RayActorError)
    @app.exception_handler(ActorUnavailableError)
    async def _restarting(_: Request, exc: Exception) -> Response:
        return unavailable("a shard is restarting; retry shortly")

    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.exceptions.OperatorInterventionError)
    async def _database_away(_: Request, exc: Exception) -> Response:
        return unavailable("PostgreSQL is unavailable or restarting; retry shortly")

    @app.exception_handler(TimeoutError)
    async def _timeout(_: Request, exc: TimeoutError) -> Response:
        return unavailable("a dependency did not answer within its deadline; retry shortly")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal", "an unexpected error; it was logged")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return problem(422, "invalid_request", f"{where}: {first['msg']}")
