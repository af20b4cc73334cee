"""The FastAPI app and the Ray Serve deployment that hosts it."""
from __future__ import annotations

import inspect
import time
from typing import Any

from fastapi import FastAPI
from ray import serve
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors import metrics
from gateway import problems
from gateway.routes import boards, friends, health, ingest, page, pushes, reads, tokens
from gateway.routes.deps import install_runtime
from gateway.runtime import Runtime
from persistence.settings import Settings


class RequestMetrics:
    """Every HTTP request counted and timed by its route template (so
    `/v1/games/{game_id}/leaderboard` is one series, whatever the game) and
    status class; a pure ASGI middleware (no per-request task or copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = f"{scope['method']} {route.path}" if route is not None else "unrouted"
            metrics.count("podium_http_requests", endpoint=endpoint, status=f"{status // 100}xx")
            metrics.observe("podium_http_seconds", time.perf_counter() - t0, endpoint=endpoint)


def build_app() -> FastAPI:
    # FastAPI's own OpenTelemetry hooks (0.16x) look up the global providers on every
    # request (a few % of a POST's cost, py-spy); Podium exports to Ray's metrics instead.
    quiet = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} \
        if "telemetry" in inspect.signature(FastAPI).parameters else {}
    app = FastAPI(title="Podium", version="0.1.0",
                  description="Real-time achievements, rankings and notifications", **quiet)
    for module in (ingest, reads, friends, tokens, pushes, boards, page, health):
        app.include_router(module.router)
    problems.install(app)
    app.add_middleware(RequestMetrics)
    return app


app = build_app()


@serve.deployment(name="gateway", ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class Gateway:
    def __init__(self, settings: Settings) -> None:
        install_runtime(Runtime(settings))


def gateway_app(settings: Settings, bound: Settings | None = None) -> serve.Application:
    # A WebSocket holds one of Serve's slots for its whole life. The replica refuses
    # sockets past max_sockets_per_replica itself (gateway/admission.py), so Serve's
    # limit sits above it: HTTP requests always find room.
    # No per-request access log: formatting and writing a line per request took ~7 %
    # of the replica's CPU under reads (py-spy); errors are still logged.
    # `bound`: the settings the running replicas were made with; keeping them
    # makes a replica-count change a Serve config update (no replica restarts).
    return Gateway.options(**serve_options(settings)).bind(bound or settings)


def serve_options(settings: Settings) -> dict[str, Any]:
    """The deployment's replica count, or Serve autoscaling between
    gateway_replicas and gateway_max_replicas on ongoing requests (a socket is
    one for its life, so sockets drive it)."""
    options: dict[str, Any] = {
        "max_ongoing_requests": settings.max_sockets_per_replica + settings.max_http_in_flight,
        "logging_config": {"enable_access_log": False},
    }
    top = settings.gateway_max_replicas
    if top is None or top <= settings.gateway_replicas:
        options["num_replicas"] = settings.gateway_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.gateway_replicas, "initial_replicas": settings.gateway_replicas,
            "max_replicas": top, "target_ongoing_requests": settings.gateway_target_ongoing,
            "upscale_delay_s": settings.gateway_upscale_delay_s,
            "downscale_delay_s": settings.gateway_downscale_delay_s}
    return options
