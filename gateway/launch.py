"""Bringing a Podium cluster up: resolve servers (embedded when no URL is set),
migrate, start Ray, the shard actors and the Serve gateway. Used by
`podium up` and by the integration tests, so both run the same path."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import ray
import redis.asyncio as aioredis
from ray import serve

from actors.leaderboard_shard import LeaderboardShard
from actors.player_shard import PlayerShard
from actors.routing import leaderboard_shard_name, player_shard_name
from gateway.app import gateway_app
from gateway.limits import haproxy_maxconn, nofile_limit
from gateway.push_hub import drain_all, draining_key
from persistence import api_keys, catalog_store, migrations
from persistence.db import create_pool
from persistence.embedded import EmbeddedServers, ensure_servers
from persistence.settings import Settings

log = logging.getLogger(__name__)
DEMO_CATALOG = Path(__file__).resolve().parent / "demo_catalog.json"
_owned: list[Any] = []  # a non-detached actor dies once its owner drops every handle


def serve_env(settings: Settings) -> dict[str, str]:
    """HAProxy ingress: ~3x the default proxy's throughput on these machines.
    Its connection limit (default 4,096, past which it queues connections
    silently) covers every replica's sockets and HTTP requests, as far as the
    node's file descriptors allow (gateway/limits.py).
    User code runs on the replica's own event loop, not Serve's separate
    thread: there a WebSocket send went into an unbounded queue, so a client
    that stopped reading grew the replica's memory without limit and never
    looked slow; on the replica's loop a send waits for the socket (TCP
    backpressure), and the gateway closes a socket that stays shut.
    """
    maxconn = haproxy_maxconn(settings, nofile_limit())
    return {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_MAXCONN": str(maxconn),
            "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
            # A stopping replica stays reachable this long so HAProxy can drop it
            # (Serve's default, 30 s, made every `podium up` stop take 40 s); HAProxy
            # checks its servers every 250 ms once one fails.
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
            "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.haproxy_stats_port),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.haproxy_metrics_port)}


def resolve_servers(settings: Settings) -> tuple[Settings, EmbeddedServers]:
    servers = ensure_servers(settings.database_url, settings.redis_url, settings.data_dir)
    resolved = settings.model_copy(update={"database_url": servers.database_url, "redis_url": servers.redis_url,
                                           "token_secret": settings.resolved_token_secret()})
    return resolved, servers


async def prepare_database(settings: Settings, *, demo_catalog: bool = True) -> str | None:
    """Migrate; on an empty catalog load the demo one; return the dev API key
    (kept in data_dir so every `up` prints the same one)."""
    pool = await create_pool(settings.database_url or "", max_size=2, timeout_s=settings.recovery_timeout_s)
    try:
        async with pool.acquire() as conn:
            applied = await migrations.apply(conn)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            if demo_catalog and not await conn.fetchval("SELECT count(*) FROM games"):
                await catalog_store.import_catalog(conn, load_catalog_file(DEMO_CATALOG))
            if not demo_catalog:
                return None
            key_file = settings.data_dir / "dev_api_key"
            if key_file.exists():
                key = key_file.read_text().strip()
                try:
                    await api_keys.lookup(conn, key)
                    return key
                except api_keys.KeyNotFound:
                    pass
            key = await api_keys.create(conn, game_id=None, label="dev key from podium up")
            key_file.write_text(key)
            key_file.chmod(0o600)
            return key
    finally:
        await pool.close()


def load_catalog_file(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    games = data["games"] if isinstance(data, dict) else data
    for game in games:
        game.setdefault("name", game["game_id"])
        for ach in game.get("achievements", []):
            ach.setdefault("name", ach["achievement_id"])
    return games


def start_ray(settings: Settings, *, num_cpus: int | None = None, dashboard: bool = True) -> None:
    env = serve_env(settings)
    os.environ.update(env)  # the local raylet, hence Serve's controller and proxies, inherit it
    if not ray.is_initialized():
        extra: dict[str, Any] = {}
        if settings.ray_address is None and settings.metrics_port is not None:
            extra["_metrics_export_port"] = settings.metrics_port  # a cluster Podium starts itself
        ray.init(address=settings.ray_address, namespace=settings.ray_namespace, num_cpus=num_cpus,
                 include_dashboard=dashboard, runtime_env={"env_vars": env}, log_to_driver=False, **extra)


def start_actors(settings: Settings, *, detached: bool = False) -> list[Any]:
    """Create every shard actor (or find the running ones) and wait until each
    has recovered, leaderboards first. Non-detached by default: they die with
    the driver that made them, so Ctrl-C on `podium up` stops the cluster cleanly."""
    lifetime = "detached" if detached else None
    started: list[Any] = []
    for cls, name_of, count in ((LeaderboardShard, leaderboard_shard_name, settings.leaderboard_shards),
                                (PlayerShard, player_shard_name, settings.player_shards)):
        # SPREAD: on several nodes the shards go to different ones (and a lost
        # node takes as few as it can with it); on one node it changes nothing.
        handles = [cls.options(name=name_of(i), namespace=settings.ray_namespace, get_if_exists=True,  # type: ignore[attr-defined]
                               lifetime=lifetime, scheduling_strategy="SPREAD").remote(i, settings)
                   for i in range(count)]
        ray.get([h.status.remote() for h in handles])
        started += handles
    _owned.extend(started)
    return started


def deploy(settings: Settings) -> None:
    """Start (or find) the shard actors, then the Serve gateway on host:port."""
    start_actors(settings)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(gateway_app(settings), name="podium", route_prefix="/")


def bring_up(settings: Settings, *, num_cpus: int | None = None, dashboard: bool = True,
             demo_catalog: bool = True) -> tuple[Settings, EmbeddedServers, str | None]:
    resolved, servers = resolve_servers(settings)
    key = asyncio.run(prepare_database(resolved, demo_catalog=demo_catalog))
    start_ray(resolved, num_cpus=num_cpus, dashboard=dashboard)
    deploy(resolved)
    return resolved, servers, key


def drain_gateways(settings: Settings, *, timeout_s: float = 5.0) -> None:
    """Have every gateway replica close its sockets with 1012 (clients reconnect)
    and refuse new ones, then wait until each replica that heard it reports no
    socket left (at most timeout_s): Serve itself would wait for every open
    socket to end, and cut the ones left without a close frame."""
    async def run() -> None:
        client = aioredis.from_url(settings.redis_url or "", socket_timeout=settings.redis_timeout_s)
        key = draining_key(settings.redis_prefix)
        try:
            await client.delete(key)
            heard = await drain_all(client, settings.redis_prefix)
            deadline = time.monotonic() + timeout_s
            left = -1
            while time.monotonic() < deadline:
                counts = [int(v) for v in (await client.hgetall(key)).values()]
                left = sum(counts)
                if len(counts) >= heard and not left:
                    break
                await asyncio.sleep(0.05)
            log.info("drained %d gateway replica(s); %s socket(s) still open", heard, max(left, 0))
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    except Exception:
        log.warning("could not drain the gateway replicas; stopping anyway", exc_info=True)


def tear_down(servers: EmbeddedServers | None, settings: Settings | None = None) -> None:
    if settings is not None:
        drain_gateways(settings)
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
        if servers is not None:
            servers.stop()
