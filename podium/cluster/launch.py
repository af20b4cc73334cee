"""Bringing a Podium cluster up: resolve servers (embedded when no URL is set),
migrate, start Ray, the shard actors and the Serve gateway. Used by
`podium up` and by the integration tests, so both run the same path."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
import redis.asyncio as aioredis
from ray import serve

from podium.actors.leaderboard_shard import LeaderboardShard
from podium.actors.player_shard import PlayerShard
from podium.cluster.embedded import EmbeddedServers, ensure_servers
from podium.cluster.processes import haproxy_dir
from podium.core.catalog_file import CatalogFileError, parse_file
from podium.core.routing import leaderboard_shard_name, player_shard_name, shard_of
from podium.gateway.app import APP_NAME, SOCKETS_APP_NAME, delete_gateway, run_gateway
from podium.gateway.limits import HAPROXY_BUFSIZE, haproxy_maxconn, nofile_limit
from podium.gateway.push_hub import drain_all, draining_key
from podium.persistence import api_keys, catalog_store, migrations
from podium.persistence.db import create_pool
from podium.settings import Settings
from podium.transport import directory

log = logging.getLogger(__name__)
DEMO_CATALOG = Path(__file__).resolve().parent / "demo_catalog.json"
_owned: list[Any] = []  # a non-detached actor dies once its owner drops every handle


def serve_env(settings: Settings) -> dict[str, str]:
    """HAProxy ingress: ~3x the default proxy's throughput on these machines.
    Its connection limit (default 4,096, past which it queues connections
    silently) covers every replica's sockets and HTTP requests, as far as the
    node's file descriptors allow (podium/gateway/limits.py).
    User code runs on the replica's own event loop, not Serve's separate
    thread: there a WebSocket send went into an unbounded queue, so a client
    that stopped reading grew the replica's memory without limit and never
    looked slow; on the replica's loop a send waits for the socket (TCP
    backpressure), and the gateway closes a socket that stays shut.
    """
    maxconn = haproxy_maxconn(settings, nofile_limit())
    return {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_MAXCONN": str(maxconn),
            "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
            "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "podium.gateway.ingress:ingress_middlewares",
            # A stopping replica stays reachable this long so HAProxy can drop it
            # (Serve's default, 30 s, made every `podium up` stop take 40 s); HAProxy
            # checks its servers every 250 ms once one fails.
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
            # HAProxy drops a connection whose client sends nothing this long (its default is an
            # hour): one that never finishes its request is gone before a replica sees it; a
            # socket is closed by the replica first, after socket_idle_s without a frame or ping.
            "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": str(math.ceil(settings.socket_idle_s) + 10),
            "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": str(HAPROXY_BUFSIZE),  # the largest legal request fits
            "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.haproxy_stats_port),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.haproxy_metrics_port),
            # A request whose replica refuses the connection is tried once more, on another replica
            # if there is one (Serve's config redispatches); each try waits up to 1 s in HAProxy, so
            # with the one replica gone a client hears 503 + Retry-After after ~1 s, not ~3 s.
            "RAY_SERVE_HAPROXY_RETRIES": "1",
            # Serve gives a starting proxy 5 s to say it is ready, then kills it, and serve.start fails
            # on the dead proxy: on a busy node (three clusters starting in the suite) HAProxy's manager
            # can take longer. A proxy that never starts still fails the start, after 30 s.
            "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30",
            "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(settings.serve_fallback_port),
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": settings.replica_ports.split("-")[0],
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": settings.replica_ports.split("-")[1],
            **haproxy_env(settings)}


def haproxy_env(settings: Settings) -> dict[str, str]:
    """Serve runs podium/cluster/haproxy_shim.py (`podium-haproxy`) as HAProxy when it is installed."""
    base = haproxy_dir(settings)
    env = {"RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(base / "haproxy.cfg"),
           "RAY_SERVE_HAPROXY_SOCKET_PATH": str(base / "admin.sock"),
           "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(base),
           "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(base / "server-state"),
           "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(base / "metrics.sock"),
           "PODIUM_HAPROXY_ADMIN_HOST": settings.haproxy_admin_host}
    shim = shutil.which("podium-haproxy") or shutil.which("podium-haproxy", path=str(Path(sys.executable).parent))
    if shim:
        env["RAY_SERVE_HAPROXY_BINARY_PATH"] = shim
    return env


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
    """A catalog file's games, checked whole and normalized (podium/core/catalog_file.py); raises
    CatalogFileError naming the game and the field, before anything is written."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogFileError(f"{path}: not a readable JSON file ({exc})") from exc
    return parse_file(data)


def start_ray(settings: Settings, *, num_cpus: int | None = None, dashboard: bool = True) -> None:
    env = serve_env(settings)
    haproxy_dir(settings).mkdir(mode=0o700, exist_ok=True)
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
        handles = [cls.options(name=name_of(i), namespace=settings.ray_namespace, get_if_exists=True,  # type: ignore[union-attr]
                               lifetime=lifetime, scheduling_strategy="SPREAD").remote(i, settings)
                   for i in range(count)]
        ray.get([h.status.remote() for h in handles])
        started += handles
    _owned.extend(started)
    return started


def stop_ray(settings: Settings) -> None:
    """Stop what start_ray and deploy started in this process (Serve, then Ray) and remove
    the cluster's HAProxy directory. For tests and benches; `podium up` stops through tear_down."""
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
        shutil.rmtree(haproxy_dir(settings), ignore_errors=True)


def deploy(settings: Settings) -> None:
    """Start (or find) the shard actors, then the Serve gateway (both planes) on host:port."""
    start_actors(settings)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    run_gateway(settings)


class StartFailed(Exception):
    """A step of bring_up failed; str() is one line an operator can act on."""


def bring_up(settings: Settings, *, num_cpus: int | None = None, dashboard: bool = True,
             demo_catalog: bool = True) -> tuple[Settings, EmbeddedServers, str | None]:
    """Everything `podium up` starts. A failure raises StartFailed naming the step, after
    what had started was stopped."""
    db = "the embedded PostgreSQL" if settings.database_url is None else "PODIUM_DATABASE_URL"
    with _step(f"the embedded servers in {settings.data_dir.resolve()}"):
        resolved, servers = resolve_servers(settings)
    try:
        with _step(f"PostgreSQL ({db})"):
            key = asyncio.run(prepare_database(resolved, demo_catalog=demo_catalog))
        with _step("Ray" if settings.ray_address is None else f"Ray at PODIUM_RAY_ADDRESS={settings.ray_address}"):
            start_ray(resolved, num_cpus=num_cpus, dashboard=dashboard)
        with _step("the shard actors and the Serve gateway"):
            deploy(resolved)
    except BaseException:
        try:
            ray.shutdown()
        finally:
            servers.stop()
        raise
    return resolved, servers, key


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        text = " ".join(str(exc).split())[:400] or type(exc).__name__
        raise StartFailed(f"{what} could not be used: {type(exc).__name__}: {text}") from exc


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
    """Drain the sockets (clients reconnect elsewhere), then stop Ray and the embedded servers.
    A cluster Podium started itself goes whole with ray.shutdown (Serve's HAProxy dies with its
    actor: podium/cluster/haproxy_shim.py); on a cluster it joined, Serve is shut down within the stop's
    budget, as Serve's own 30 s wait would outlast it."""
    t0 = time.monotonic()
    if settings is not None:
        drain_gateways(settings, timeout_s=min(3.0, settings.stop_timeout_s / 5))
    try:
        if settings is not None and settings.ray_address is not None:
            from ray.serve.context import _get_global_client

            try:
                _get_global_client().shutdown(timeout_s=max(1.0, settings.stop_timeout_s / 2))  # type: ignore[union-attr]
            except Exception:
                log.warning("Serve did not shut down cleanly", exc_info=True)
    finally:
        ray.shutdown()
        log.info("Ray stopped (%.1f s into the stop)", time.monotonic() - t0)
        if servers is not None:
            servers.stop()


# ---- resharding at runtime (podium scale) -------------------------------------------
SCALE_KEY = "scale:requests"  # Redis list (after the prefix): `podium scale` pushes, `podium up` pops
QUIESCE_TIMEOUT_S = 20.0


def scale_key(prefix: str) -> str:
    return f"{prefix}{SCALE_KEY}"


def scale_result_key(prefix: str, request_id: str) -> str:
    return f"{prefix}scale:result:{request_id}"


def reshard(settings: Settings, *, player_shards: int | None = None, leaderboard_shards: int | None = None,
            replicas: int | None = None, http_replicas: int | None = None) -> tuple[Settings, dict[str, Any]]:
    """Move a running cluster to new shard counts (and replica count); returns
    the new settings and what happened, with timings. Unlocks pause meanwhile:
    the gateway is drained (sockets close 1012, clients reconnect) and removed,
    so no replica routes by the old layout; every player shard stops taking
    unlocks, lets its queue commit and reach the leaderboards, and
    checkpoints; the players' rows move to their new shards in one
    transaction (podium/persistence/layout.py); the old actors go, the new ones
    recover, the gateway (both planes) comes back. Only replica counts
    changing (`replicas`: the socket plane's, `http_replicas`: the HTTP
    plane's) is a Serve update with no pause."""
    from podium.persistence.layout import relayout_players

    new = settings.model_copy(update={k: v for k, v in (("player_shards", player_shards),
                                                        ("leaderboard_shards", leaderboard_shards),
                                                        ("gateway_replicas", replicas),
                                                        ("http_replicas", http_replicas)) if v is not None})
    t0 = time.monotonic()
    def counts(s: Settings) -> list[int]:
        return [s.player_shards, s.leaderboard_shards, s.gateway_replicas, s.http_replicas]

    report: dict[str, Any] = {"from": counts(settings), "to": counts(new)}
    if (new.player_shards, new.leaderboard_shards) == (settings.player_shards, settings.leaderboard_shards):
        # Serve restarts whatever it redeploys (a new code version per imperative deploy), so only the
        # plane whose count changed is redeployed; the socket plane's sockets are closed 1012 first
        # (clients reconnect), never cut without a close frame.
        changed: set[str] = set()
        if new.http_replicas != settings.http_replicas:
            changed.add(APP_NAME)
        if new.gateway_replicas != settings.gateway_replicas:
            changed.add(SOCKETS_APP_NAME if settings.split_planes else APP_NAME)
        if SOCKETS_APP_NAME in changed or (APP_NAME in changed and not settings.split_planes):
            drain_gateways(settings)
        if changed:
            run_gateway(new, bound=settings, only=changed)
        report["paused_s"] = 0.0
        report["redeployed"] = sorted(changed)
        return new, report
    drain_gateways(settings)
    delete_gateway()
    report["gateway_down_s"] = round(time.monotonic() - t0, 2)
    old_players = [ray.get_actor(player_shard_name(i), namespace=settings.ray_namespace)
                   for i in range(settings.player_shards)]
    report["watermarks"] = ray.get([h.quiesce.remote(QUIESCE_TIMEOUT_S) for h in old_players])
    report["settled_s"] = round(time.monotonic() - t0, 2)
    if new.player_shards != settings.player_shards:
        async def relayout() -> dict[str, int]:
            pool = await create_pool(settings.database_url or "", max_size=1, timeout_s=settings.recovery_timeout_s)
            try:
                async with pool.acquire() as conn:
                    return await relayout_players(conn, settings.player_shards, new.player_shards,
                                                  lambda p: shard_of(p, new.player_shards))
            finally:
                await pool.close()

        report["relayout"] = asyncio.run(relayout())
    report["relayout_s"] = round(time.monotonic() - t0, 2)
    _relayout_actors(settings, new)
    report["actors_s"] = round(time.monotonic() - t0, 2)
    run_gateway(new)
    report["paused_s"] = round(time.monotonic() - t0, 2)
    log.info("resharded: %s", report)
    return new, report


def _relayout_actors(old: Settings, new: Settings) -> None:
    """Shards that stay are reconfigured in place (no new process: on 2 cores Ray
    starts 2 worker processes at a time, ~6 s each); removed ones are killed
    and added ones created; returns once every shard has recovered."""
    waits: list[Any] = []
    for cls, name_of, before, after in ((LeaderboardShard, leaderboard_shard_name, old.leaderboard_shards,
                                         new.leaderboard_shards),
                                        (PlayerShard, player_shard_name, old.player_shards, new.player_shards)):
        for i in range(after, before):
            _kill(name_of(i), old.ray_namespace)
        for i in range(min(before, after)):
            waits.append(ray.get_actor(name_of(i), namespace=old.ray_namespace).reconfigure.remote(new))
        for i in range(before, after):
            handle = cls.options(name=name_of(i), namespace=new.ray_namespace,  # type: ignore[union-attr]
                                 scheduling_strategy="SPREAD").remote(i, new)
            _owned.append(handle)
            waits.append(handle.status.remote())
    directory.forget()
    ray.get(waits)


def _kill(name: str, namespace: str) -> None:
    """Kill a shard actor for good and wait until its name is free."""
    try:
        handle = ray.get_actor(name, namespace=namespace)
    except ValueError:
        return
    ray.kill(handle, no_restart=True)
    if handle in _owned:
        _owned.remove(handle)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            return
        time.sleep(0.05)


def serve_scale_requests(settings: Settings, redis_url: str) -> Settings:
    """Take one waiting `podium scale` request, if any, and answer it; returns the settings now in force."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=settings.redis_timeout_s)
    try:
        raw = client.rpop(scale_key(settings.redis_prefix))
        if raw is None:
            return settings
        request = json.loads(raw)  # type: ignore[arg-type]
        try:
            settings, report = reshard(settings, player_shards=request.get("player_shards"),
                                       leaderboard_shards=request.get("leaderboard_shards"),
                                       replicas=request.get("replicas"), http_replicas=request.get("http_replicas"))
            answer = {"ok": True, **report}
        except Exception as exc:
            log.exception("resharding failed")
            answer = {"ok": False, "error": repr(exc)[:500]}
        key = scale_result_key(settings.redis_prefix, request["id"])
        client.rpush(key, json.dumps(answer, default=str))
        client.expire(key, 600)
        return settings
    finally:
        client.close()
