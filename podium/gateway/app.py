"""The FastAPI app and the Ray Serve deployments that host it: the socket plane (/v1/ws/...)
and the HTTP plane (everything else), one codebase split by route path."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import RunTarget
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium.gateway import problems
from podium.gateway.routes import boards, friends, health, ingest, page, pushes, reads, tokens
from podium.gateway.routes.deps import install_runtime
from podium.gateway.runtime import Runtime
from podium.settings import Settings
from podium.telemetry import metrics


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


# The socket plane is every route under this prefix (player, board and ingest sockets, and the
# socket plane's own health); the HTTP plane is the rest. HAProxy (Serve's, one per node) sends
# each request to its plane's replicas by this prefix, the longest route prefix that matches.
SOCKET_PREFIX = "/v1/ws"
HTTP, SOCKETS, BOTH = "http", "sockets", "both"
MODULES = (ingest, reads, friends, tokens, pushes, boards, page, health)


def in_socket_plane(path: str) -> bool:
    return path == SOCKET_PREFIX or path.startswith(SOCKET_PREFIX + "/")


class Unprefixed:
    """Serve mounts the socket plane at SOCKET_PREFIX (root_path), and Starlette routes on the path
    less root_path; the routes keep their whole paths (/v1/ws/players/{id}), so the prefix is given
    back to the path here. An app mounted elsewhere (a test's own prefix) is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        if root.endswith(SOCKET_PREFIX):
            scope = {**scope, "root_path": root[:-len(SOCKET_PREFIX)]}
        await self.app(scope, receive, send)


def build_app(plane: str = BOTH) -> FastAPI:
    """One plane's app: the routes of every route module that belong to it (one codebase, the routes
    split by path, never copied). The HTTP plane keeps the OpenAPI docs."""
    docs = plane != SOCKETS
    # FastAPI's own OpenTelemetry hooks (0.16x) look up the global providers on every
    # request (a few % of a POST's cost, py-spy); Podium exports to Ray's metrics instead.
    quiet: dict[str, Any] = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} \
        if "telemetry" in inspect.signature(FastAPI).parameters else {}
    app = FastAPI(title="Podium", version="0.1.0", description="Real-time achievements, rankings and notifications",
                  openapi_url="/openapi.json" if docs else None, docs_url="/docs" if docs else None,
                  redoc_url="/redoc" if docs else None, **quiet)
    routes = [route for module in MODULES for route in module.router.routes
              if plane == BOTH or in_socket_plane(getattr(route, "path", "")) == (plane == SOCKETS)]
    app.router.routes.extend(routes)  # the route objects themselves: their dependencies and tags come along
    problems.install(app)
    if plane == SOCKETS:
        app.add_middleware(Unprefixed)
    else:
        app.add_middleware(RequestMetrics)
    return app


class _Replica:
    def __del__(self) -> None:
        # Serve calls this as the replica stops: the last COUNT_FLUSH_S of counts reach Ray's counters.
        metrics.flush_counts()


# Serve needs each deployment's ingress at import; one class per plane, the same constructor.
@serve.deployment(name="http", ray_actor_options={"num_cpus": 0})
@serve.ingress(build_app(HTTP))
class HttpPlane(_Replica):
    def __init__(self, settings: Settings) -> None:
        install_runtime(Runtime(settings, plane=HTTP))


@serve.deployment(name="sockets", ray_actor_options={"num_cpus": 0})
@serve.ingress(build_app(SOCKETS))
class SocketPlane(_Replica):
    def __init__(self, settings: Settings) -> None:
        install_runtime(Runtime(settings, plane=SOCKETS))


@serve.deployment(name="gateway", ray_actor_options={"num_cpus": 0})
@serve.ingress(build_app(BOTH))
class Gateway(_Replica):
    def __init__(self, settings: Settings) -> None:
        install_runtime(Runtime(settings, plane=BOTH))


@dataclass(frozen=True, slots=True)
class Plane:
    """A Serve application to run: its name, route prefix and bound deployment."""
    name: str
    route_prefix: str
    app: serve.Application


def gateway_apps(settings: Settings, bound: Settings | None = None) -> list[Plane]:
    """The gateway as Serve applications on one port: with split_planes (the default), the socket
    plane at SOCKET_PREFIX and the HTTP plane at "/", each with its own replicas and autoscaling, so
    a burst of reads never waits on (nor delays) the loop that runs pushes and acks; else one
    deployment for both.
    A WebSocket holds one of Serve's slots for its whole life. The replica refuses sockets past
    max_sockets_per_replica itself (podium/gateway/admission.py), so Serve's limit sits above it: HTTP
    requests always find room.
    `bound`: the settings the running replicas were made with, kept for a replica-count change. Serve
    still restarts the replicas then: an imperative deploy (serve.run) gets a new random code version
    each time (ray/serve/_private/client.py), seen with `podium scale --http-replicas` on 2026-12-07."""
    args = bound or settings
    if not settings.split_planes:
        return [Plane(APP_NAME, "/", Gateway.options(**serve_options(settings)).bind(args))]  # type: ignore[attr-defined]
    # serve.ingress is typed as giving the class back, not the Deployment serve.deployment makes of it:
    sockets = SocketPlane.options(**serve_options(settings)).bind(args)  # type: ignore[attr-defined]
    http = HttpPlane.options(**serve_options(settings, HTTP)).bind(args)  # type: ignore[attr-defined]
    return [Plane(SOCKETS_APP_NAME, SOCKET_PREFIX, sockets), Plane(APP_NAME, "/", http)]


APP_NAME = "podium"  # the HTTP plane, or the whole gateway without split_planes
SOCKETS_APP_NAME = "podium-sockets"
APP_NAMES = (APP_NAME, SOCKETS_APP_NAME)


def run_gateway(settings: Settings, bound: Settings | None = None, only: set[str] | None = None) -> None:
    """Deploy (or update) every plane of the gateway together, or the ones named in `only` (the others
    are left running, untouched); a plane that split_planes no longer asks for is removed."""
    planes = gateway_apps(settings, bound)
    chosen = [p for p in planes if only is None or p.name in only]
    serve.run_many([RunTarget(target=p.app, name=p.name, route_prefix=p.route_prefix) for p in chosen])
    for name in set(APP_NAMES) - {p.name for p in planes}:
        if name in serve.status().applications:
            serve.delete(name)


def delete_gateway() -> None:
    """Remove every plane's app (both at once; one that is not there is no error) and wait until they are gone."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()  # raises if Serve is not running
    if client is not None:
        client.delete_apps(list(APP_NAMES), blocking=True)


def serve_options(settings: Settings, plane: str = SOCKETS) -> dict[str, Any]:
    """A plane's replica count, or Serve autoscaling between its least and most
    replicas on ongoing requests: a socket is one for its life, so sockets drive
    the socket plane (gateway_*), requests in flight the HTTP plane (http_*)."""
    options: dict[str, Any] = {"logging_config": {"enable_access_log": False}}
    if plane == HTTP:
        least, top, target = settings.http_replicas, settings.http_max_replicas, settings.http_target_ongoing
        delays = settings.http_upscale_delay_s, settings.http_downscale_delay_s
        options["max_ongoing_requests"] = settings.max_http_in_flight
    else:
        least, top, target = settings.gateway_replicas, settings.gateway_max_replicas, settings.gateway_target_ongoing
        delays = settings.gateway_upscale_delay_s, settings.gateway_downscale_delay_s
        options["max_ongoing_requests"] = settings.max_sockets_per_replica + settings.max_http_in_flight
    if top is None or top <= least:
        options["num_replicas"] = least
    else:
        options["autoscaling_config"] = {
            "min_replicas": least, "initial_replicas": least, "max_replicas": top,
            "target_ongoing_requests": target, "upscale_delay_s": delays[0], "downscale_delay_s": delays[1]}
    return options
