"""Integration tier: one real Ray, a real PostgreSQL and Redis, a running Serve
gateway. PODIUM_DATABASE_URL / PODIUM_REDIS_URL point at servers to use;
without them embedded ones start. Either way the session creates its own
database and Redis key prefix, and drops them at the end."""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import redis

from podium.cluster import launch
from podium.cluster.embedded import EmbeddedServers, ensure_servers
from podium.cluster.processes import free_port, own_ports
from podium.persistence import api_keys, catalog_store
from podium.settings import Settings

TEST_CATALOG: list[dict[str, Any]] = [
    {"game_id": "arena", "name": "Arena", "achievements": [
        {"achievement_id": f"a{i}", "name": f"A{i}", "points": p} for i, p in enumerate([10, 20, 30, 40, 0, 5])]},
    {"game_id": "puzzle", "name": "Puzzle", "achievements": [
        {"achievement_id": f"p{i}", "name": f"P{i}", "points": 7 * (i + 1)} for i in range(4)]},
]


SOCKETS_PER_REPLICA = 64  # small, so a test can fill a replica
UNLOCKS_PER_S, READS_PER_S, PLAYER_READS_PER_S, HANDSHAKES_PER_S = 5000, 150, 50, 100
SOCKET_IDLE_S = 15.0


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class Cluster:
    settings: Settings
    base_url: str
    ws_url: str
    admin_url: str
    database: str
    servers: EmbeddedServers


def drop_test_state(admin_url: str, database: str, redis_url: str, prefix: str) -> None:
    """Drop a test's database and every Redis key under its prefix."""
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # Not under pytest's tmp root: any other pytest session resets that root to
    # mode 0700, and the embedded PostgreSQL runs as its own user (pgserver).
    data_dir = Path(tempfile.mkdtemp(prefix="podium-test-"))
    data_dir.chmod(0o755)
    servers = ensure_servers(os.environ.get("PODIUM_DATABASE_URL"), os.environ.get("PODIUM_REDIS_URL"), data_dir)
    assert servers.database_url and servers.redis_url
    tag = uuid.uuid4().hex[:10]
    database = f"podium_test_{tag}"
    asyncio.run(_admin(servers.database_url, f'CREATE DATABASE "{database}"'))
    settings = Settings(
        database_url=_with_database(servers.database_url, database), redis_url=servers.redis_url,
        redis_prefix=f"podium-test-{tag}:", data_dir=data_dir, player_shards=2,
        leaderboard_shards=2, checkpoint_interval_s=1.0, token_secret=f"test-secret-{tag}-{uuid.uuid4().hex}",
        ray_namespace=f"podium-test-{tag}", call_deadline_s=20.0, actor_call_timeout_s=5.0,
        api_key_cache_s=2.0, presence_resync_s=1.0, presence_ttl_s=3.0,
        max_sockets_per_replica=SOCKETS_PER_REPLICA, max_sockets_per_player=3, socket_send_timeout_s=2.0,
        metrics_port=free_port(), **own_ports(),
        # Limits no other test reaches; test_abuse.py passes them as clients of their own (a fresh key,
        # player or X-Forwarded-For address: one load balancer in front is trusted).
        rate_limit_unlocks=f"{UNLOCKS_PER_S}/second", rate_limit_reads=f"{READS_PER_S}/second",
        rate_limit_player_reads=f"{PLAYER_READS_PER_S}/second", rate_limit_handshakes=f"{HANDSHAKES_PER_S}/second",
        trusted_proxy_hops=1, socket_idle_s=SOCKET_IDLE_S,
        season_close_grace_s=2.0,  # test_stat_boards.py closes a season a few seconds into the test
    )
    asyncio.run(launch.prepare_database(settings, demo_catalog=False))
    asyncio.run(_import_catalog(settings.database_url or ""))
    launch.start_ray(settings, num_cpus=2, dashboard=False)
    launch.deploy(settings)
    try:
        yield Cluster(settings, f"http://127.0.0.1:{settings.port}", f"ws://127.0.0.1:{settings.port}",
                      servers.database_url, database, servers)
    finally:
        try:
            launch.stop_ray(settings)
        finally:
            drop_test_state(servers.database_url, database, servers.redis_url, settings.redis_prefix)
            servers.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


async def _import_catalog(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await catalog_store.import_catalog(conn, TEST_CATALOG)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def db(cluster: Cluster) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(cluster.settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def api_key(db: asyncpg.Pool) -> str:
    async with db.acquire() as conn:
        return await api_keys.create(conn, game_id=None, label="integration tests")


def an_address() -> str:
    """A client address of its own, as the one load balancer the test cluster trusts would append it."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture
async def http(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    """A client with an address of its own per test (its own per-address rate limits)."""
    async with httpx.AsyncClient(base_url=cluster.base_url, timeout=30.0,
                                 headers={"X-Forwarded-For": an_address()}) as client:
        yield client


@pytest.fixture
async def server(cluster: Cluster, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A game server's client: its API key on every request (private reads need it or the player's token)."""
    async with httpx.AsyncClient(base_url=cluster.base_url, timeout=30.0,
                                 headers={"X-API-Key": api_key, "X-Forwarded-For": an_address()}) as client:
        yield client


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Unique ids per test, so tests sharing one cluster never see each other's players."""
    tag = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{tag}"


async def eventually(check: Callable[[], Awaitable[Any] | Any], *, timeout: float = 20.0, every: float = 0.1) -> Any:
    """Poll `check` (plain or async) until it returns a truthy value (or stops raising) within the deadline."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
        except Exception as exc:
            last = exc
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last!r})")


async def get_ok(http: httpx.AsyncClient, path: str, *, timeout: float = 60.0, headers: dict[str, str] | None = None,
                 **params: Any) -> Any:
    """GET as a client should: a 503 is retried after its Retry-After, within the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(path, params=params, headers=headers)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 200, (path, response.status_code, response.text)
            return response.json()
        assert response.headers["retry-after"] == "1" and response.json()["code"] == "unavailable"
        await asyncio.sleep(float(response.headers["retry-after"]) / 5)  # a test need not wait the full second


async def wait_online(settings: Settings, player_id: str, online: bool = True) -> None:
    """Until every shard actor sees the player online (or offline): pushes are built only for players seen."""
    from podium.transport import directory

    handles = [directory.player_shard(settings, i) for i in range(settings.player_shards)]
    handles += [directory.leaderboard_shard(settings, i) for i in range(settings.leaderboard_shards)]

    async def seen() -> bool:
        return all([await h.online.remote([player_id]) == [online] for h in handles])

    await eventually(seen, timeout=30)
