"""The entry point a Serve config names (KubeRay's RayService, `serve deploy`):
`gateway.kuberay:build`. Serve calls it when it deploys the config; it
migrates the database, starts the shard actors (detached: they outlive the
call) and returns the gateway application. Settings come from the
environment (PODIUM_*), as for `podium up`; PostgreSQL and Redis must be
external (PODIUM_DATABASE_URL, PODIUM_REDIS_URL)."""
from __future__ import annotations

import asyncio
from typing import Any

from ray import serve

from gateway.app import gateway_app
from gateway.launch import prepare_database, start_actors
from persistence.settings import Settings


def build(args: dict[str, Any]) -> serve.Application:
    settings = Settings(**args)
    if not (settings.database_url and settings.redis_url):
        raise ValueError("on Kubernetes PODIUM_DATABASE_URL and PODIUM_REDIS_URL must name external servers")
    settings = settings.model_copy(update={"token_secret": settings.resolved_token_secret()})
    asyncio.run(prepare_database(settings, demo_catalog=False))
    start_actors(settings, detached=True)
    return gateway_app(settings)
