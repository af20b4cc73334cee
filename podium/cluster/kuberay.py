"""The entry point a Serve config names (KubeRay's RayService, `serve deploy`):
`podium.cluster.kuberay:build` (the HTTP plane, route prefix /) and
`podium.cluster.kuberay:build_sockets` (the socket plane, route prefix /v1/ws).
Serve calls them when it deploys the config; `build` migrates the database,
starts the shard actors (detached: they outlive the call) and returns the
HTTP plane; the socket plane's replicas find the shards by name once they
are up. Settings come from the
environment (PODIUM_*), as for `podium up`; PostgreSQL and Redis must be
external (PODIUM_DATABASE_URL, PODIUM_REDIS_URL)."""
from __future__ import annotations

import asyncio
from typing import Any

from ray import serve

from podium.cluster.launch import prepare_database, start_actors
from podium.gateway.app import SOCKETS_APP_NAME, gateway_apps
from podium.settings import Settings


def build(args: dict[str, Any]) -> serve.Application:
    settings = Settings(**args)
    if not (settings.database_url and settings.redis_url):
        raise ValueError("on Kubernetes PODIUM_DATABASE_URL and PODIUM_REDIS_URL must name external servers")
    settings = settings.model_copy(update={"token_secret": settings.resolved_token_secret()})
    asyncio.run(prepare_database(settings, demo_catalog=False))
    start_actors(settings, detached=True)
    return _plane(settings, "podium")


def build_sockets(args: dict[str, Any]) -> serve.Application:
    settings = Settings(**args)
    return _plane(settings.model_copy(update={"token_secret": settings.resolved_token_secret()}), SOCKETS_APP_NAME)


def _plane(settings: Settings, name: str) -> serve.Application:
    if not settings.split_planes:
        raise ValueError("the Serve config names both planes: leave split_planes on (true)")
    return next(p.app for p in gateway_apps(settings) if p.name == name)
