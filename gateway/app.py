"""The FastAPI app and the Ray Serve deployment that hosts it."""
from __future__ import annotations

from fastapi import FastAPI
from ray import serve

from gateway import problems
from gateway.routes import friends, health, ingest, pushes, reads
from gateway.routes.deps import install_runtime
from gateway.runtime import Runtime
from persistence.settings import Settings


def build_app() -> FastAPI:
    app = FastAPI(title="Podium", version="0.1.0",
                  description="Real-time achievements, rankings and notifications")
    for module in (ingest, reads, friends, pushes, health):
        app.include_router(module.router)
    problems.install(app)
    return app


app = build_app()


@serve.deployment(name="gateway", ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class Gateway:
    def __init__(self, settings: Settings) -> None:
        install_runtime(Runtime(settings))


def gateway_app(settings: Settings) -> serve.Application:
    # A WebSocket holds one of Serve's slots for its whole life. The replica refuses
    # sockets past max_sockets_per_replica itself (gateway/admission.py), so Serve's
    # limit sits above it: HTTP requests always find room.
    # No per-request access log: formatting and writing a line per request took ~7 %
    # of the replica's CPU under reads (py-spy); errors are still logged.
    return Gateway.options(
        num_replicas=settings.gateway_replicas,
        max_ongoing_requests=settings.max_sockets_per_replica + settings.max_http_in_flight,
        logging_config={"enable_access_log": False},
    ).bind(settings)
