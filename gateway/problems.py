"""RFC 9457 problem+json responses: the one shape of every HTTP error."""
from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from ray.exceptions import ActorUnavailableError, RayActorError

from actors.errors import BadCursor, InvalidRequest, PodiumError, UnknownAchievement, UnknownGame, UnknownPlayer
from gateway.auth import Unauthorized
from gateway.frames import FrameError

_STATUS: dict[type[Exception], int] = {
    UnknownGame: 404, UnknownAchievement: 404, UnknownPlayer: 404, BadCursor: 400, Unauthorized: 401,
    InvalidRequest: 422,
}


def problem(status: int, code: str, detail: str, **extra: object) -> Response:
    body = {"type": f"https://podium.dev/problems/{code}", "title": code.replace("_", " "), "status": status,
            "detail": detail, "code": code, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(PodiumError)
    async def _domain(_: Request, exc: PodiumError) -> Response:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        cause = getattr(exc, "cause", None) or exc  # an actor's error arrives wrapped by Ray
        return problem(status, exc.code, str(cause))

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, exc: Unauthorized) -> Response:
        return problem(401, exc.code, str(exc))

    @app.exception_handler(FrameError)
    async def _frame(_: Request, exc: FrameError) -> Response:
        return problem(exc.status, exc.code, exc.detail)

    @app.exception_handler(RayActorError)
    @app.exception_handler(ActorUnavailableError)
    async def _restarting(_: Request, exc: Exception) -> Response:
        response = problem(503, "unavailable", "a shard is restarting; retry shortly")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return problem(422, "invalid_request", f"{where}: {first['msg']}")
