"""The systems under test, each started fresh on this machine with its own
database and Redis key prefix: Podium (in this process's Ray driver, as `podium
up` runs it) and the three peers (uvicorn, 2 workers, as their authors would
run them). Each knows how to preload players (not measured) and how its users
write and read."""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import redis
import redis.asyncio

from load.clients import HttpWriter, Items, ReadPaths, WsWriter
from load.peers.common import CATALOG_SCHEMA
from load.workload import catalog, points, stats_catalog

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


BENCH_LIMITS: dict[str, object] = {
    "rate_limit_unlocks": "100000000/second", "rate_limit_reads": "100000000/second",
    "rate_limit_player_reads": "100000000/second", "rate_limit_handshakes": "100000000/second",
    "trusted_proxy_hops": 1, "socket_idle_s": 3600.0,
}


@dataclass
class Infra:
    database_url: str  # the server's admin database
    redis_url: str
    data_dir: Path
    tag: str


@dataclass(frozen=True)
class Level:
    label: str
    connections: int
    in_flight: int
    batch: int


class System:
    name: str
    base: str
    paths: ReadPaths
    modes: dict[str, list[Level]]  # write mode -> closed-loop levels, lowest first

    def start(self, infra: Infra) -> None: ...
    def stop(self) -> None: ...
    async def preload(self, items: Items) -> None: ...

    @contextlib.asynccontextmanager
    async def writers(self, mode: str, session: aiohttp.ClientSession, n: int) -> AsyncIterator[list[Any]]:
        yield []


# ---- Podium -------------------------------------------------------------------

PER_REQUEST = (Level("8 clients, 1 unlock per POST", 8, 1, 1), Level("32 clients, 1 unlock per POST", 32, 1, 1))


class Podium(System):
    name = "podium"
    modes: ClassVar[dict[str, list[Level]]] = {  # type: ignore[misc]
        "ws": [Level("1 socket, 4 frames of 500 in flight", 1, 4, 500),
               Level("2 sockets, 4 frames of 500 in flight", 2, 4, 500)],
        "post": list(PER_REQUEST)}
    paths = ReadPaths(rank=lambda g, p: f"/v1/games/{g}/players/{p}/rank",
                      top=lambda g: f"/v1/games/{g}/leaderboard?limit=50",
                      around=lambda g, p: f"/v1/games/{g}/players/{p}/around?k=5")

    def __init__(self, name: str = "podium", env: dict[str, str] | None = None,
                 settings: dict[str, object] | None = None) -> None:
        self.name, self.env, self.overrides = name, env or {}, {**BENCH_LIMITS, **(settings or {})}

    def start(self, infra: Infra) -> None:
        from podium.cluster import launch
        from podium.persistence import api_keys, catalog_store
        from podium.settings import Settings

        for key in ("RAY_SERVE_THROUGHPUT_OPTIMIZED",):  # variants set it; the raylet inherits os.environ
            os.environ.pop(key, None)
        os.environ.update(self.env)
        self.database = f"bench_{self.name.replace('-', '_')}_{infra.tag}"
        self.infra = infra
        asyncio.run(admin(infra.database_url, f'CREATE DATABASE "{self.database}"'))
        port = free_port()
        self.settings = Settings(
            database_url=with_database(infra.database_url, self.database), redis_url=infra.redis_url,
            redis_prefix=f"bench-{self.name}-{infra.tag}:", data_dir=infra.data_dir, port=port,
            serve_fallback_port=free_port(),
            token_secret=f"bench-{uuid.uuid4().hex}", ray_namespace=f"bench-{self.name}-{infra.tag}",
            haproxy_stats_port=free_port(), haproxy_metrics_port=free_port(),
            # Every client here is one address and one key: the limits are set far above what the
            # bench offers, so each request still pays for its checks (Redis round trips) but none
            # is refused. Bench clients hold sockets without pinging: no idle closes.
            **self.overrides,  # type: ignore[arg-type]
        )
        self.base = f"http://127.0.0.1:{port}"

        async def prepare() -> str:
            await launch.prepare_database(self.settings, demo_catalog=False)
            conn = await asyncpg.connect(self.settings.database_url)
            try:
                # The stats game too (phase j); the peers import catalog() alone: they have no stats.
                await catalog_store.import_catalog(conn, catalog() + stats_catalog())
                return await api_keys.create(conn, game_id=None, label="bench")
            finally:
                await conn.close()

        self.api_key = asyncio.run(prepare())
        launch.start_ray(self.settings, num_cpus=os.cpu_count(), dashboard=False)
        launch.deploy(self.settings)

    def stop(self) -> None:
        from podium.cluster import launch

        try:
            launch.stop_ray(self.settings)
        finally:
            asyncio.run(admin(self.infra.database_url, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            _drop_prefix(self.infra.redis_url, self.settings.redis_prefix)

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1)

    def token(self, player_id: str) -> str:
        from podium.gateway.auth import mint_token

        return mint_token(self.settings.resolved_token_secret(), player_id, 3600)

    @contextlib.asynccontextmanager
    async def writers(self, mode: str, session: aiohttp.ClientSession, n: int) -> AsyncIterator[list[Any]]:
        if mode == "post":
            yield [HttpWriter(session, f"{self.base}/v1/unlocks", headers={"X-API-Key": self.api_key})]
            return
        async with contextlib.AsyncExitStack() as stack:
            yield [await stack.enter_async_context(WsWriter(f"{self.ws_url}/v1/ws/ingest", self.api_key))
                   for _ in range(n)]

    async def preload(self, items: Items) -> None:
        """Through the ingest socket, as fast as it goes (not measured)."""
        chunks = iter([items[i:i + 1000] for i in range(0, len(items), 1000)])
        async with self.writers("ws", None, 2) as writers:  # type: ignore[arg-type]
            await asyncio.gather(*(_drain(w, chunks) for w in writers for _ in range(4)))


async def _drain(writer: WsWriter, chunks: Iterator[Items]) -> None:
    for items in chunks:
        for _ in range(20):  # as a client would: resend what was shed (`overloaded`) while the shards warm up
            statuses = await writer.send(items)
            items = [item for item, status in zip(items, statuses, strict=True) if status == "rejected"]
            assert all(s in ("accepted", "rejected") for s in statuses), set(statuses)
            if not items:
                break
            await asyncio.sleep(0.2)
        assert not items, f"{len(items)} preload unlocks still refused after 20 tries"


def _drop_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
    for i in range(0, len(keys), 10_000):
        client.delete(*keys[i:i + 10_000])


# ---- the peers -------------------------------------------------------------------

class Peer(System):
    """A peer app in load/peers/, run by uvicorn with 2 workers."""

    peer_paths = ReadPaths(rank=lambda g, p: f"/games/{g}/players/{p}/rank", top=lambda g: f"/games/{g}/top?limit=50",
                           around=lambda g, p: f"/games/{g}/players/{p}/around?k=5")

    def __init__(self, name: str, module: str, one_path: str, batch_path: str | None = None) -> None:
        self.name, self.module, self.one_path, self.batch_path = name, module, one_path, batch_path
        self.paths = self.peer_paths
        self.modes = {"post": list(PER_REQUEST)}
        if batch_path:
            self.modes = {"batch": [Level("4 connections, 200 unlocks per POST", 4, 1, 200),
                                    Level("8 connections, 200 unlocks per POST", 8, 1, 200)], **self.modes}

    def start(self, infra: Infra) -> None:
        self.infra = infra
        self.database = f"bench_{self.name.replace('-', '_')}_{infra.tag}"
        self.url = with_database(infra.database_url, self.database)
        self.prefix = f"bench-{self.name}-{infra.tag}:"

        async def prepare() -> None:
            await admin(infra.database_url, f'CREATE DATABASE "{self.database}"')
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(CATALOG_SCHEMA)
                await conn.copy_records_to_table(
                    "achievements", records=[(g["game_id"], a["achievement_id"], a["points"])
                                             for g in catalog() for a in g["achievements"]])
            finally:
                await conn.close()

        asyncio.run(prepare())
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"load.peers.{self.module}:app", "--workers", "2", "--port", str(port),
             "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": self.url, "REDIS_URL": infra.redis_url,
                           "REDIS_PREFIX": self.prefix})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(1.0)  # both workers ran their lifespan
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        asyncio.run(admin(self.infra.database_url, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        _drop_prefix(self.infra.redis_url, self.prefix)

    @contextlib.asynccontextmanager
    async def writers(self, mode: str, session: aiohttp.ClientSession, n: int) -> AsyncIterator[list[Any]]:
        if mode == "batch":
            yield [HttpWriter(session, f"{self.base}{self.batch_path}")]
        else:
            yield [HttpWriter(session, f"{self.base}{self.one_path}", one_object=True)]

    async def preload(self, items: Items) -> None:
        """Bulk-loaded straight into the peer's storage (its write path would take hours for 1M)."""
        rows = [(x["player_id"], x["game_id"], x["achievement_id"], points(int(x["game_id"][1:]),
                                                                              int(x["achievement_id"][1:])))
                for x in items]
        conn = await asyncpg.connect(self.url)
        try:
            await conn.copy_records_to_table("unlocks", records=rows,
                                             columns=["player_id", "game_id", "achievement_id", "points"])
            if self.module in ("reviewed", "reference"):
                await conn.execute("CREATE TEMP TABLE new_rows (game_id text, player_id text, points bigint)")
                await conn.copy_records_to_table("new_rows", records=[(g, p, pts) for p, g, _, pts in rows])
                await conn.execute("INSERT INTO leaderboard (game_id, player_id, points, reached_at) "
                                   "SELECT game_id, player_id, points, clock_timestamp() FROM new_rows "
                                   "ON CONFLICT (game_id, player_id) DO UPDATE "
                                   "SET points = leaderboard.points + EXCLUDED.points")
            if self.module == "reviewed":
                from load.peers.reviewed import RECALCULATE

                for game in sorted({r[1] for r in rows}):
                    await conn.execute(RECALCULATE, game)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        if self.module == "zset":
            client = redis.asyncio.from_url(self.infra.redis_url)
            try:
                for i in range(0, len(items), 5000):
                    async with client.pipeline(transaction=False) as pipe:
                        for x, row in zip(items[i:i + 5000], rows[i:i + 5000], strict=True):
                            pipe.zincrby(f"{self.prefix}board:{x['game_id']}", row[3], x["player_id"])
                            pipe.zincrby(f"{self.prefix}board:{x['game_id']}:{x['region']}", row[3], x["player_id"])
                        await pipe.execute()
            finally:
                await client.aclose()


def peers() -> list[Peer]:
    return [Peer("zset", "zset", "/unlock", "/unlocks"), Peer("reference", "reference", "/submit"),
            Peer("reviewed", "reviewed", "/unlock")]




def run_alone(system: Podium, run: Callable[[Podium], Coroutine[Any, Any, T]], label: str) -> T:
    """`system` started on servers of its own (PODIUM_DATABASE_URL / PODIUM_REDIS_URL, or embedded ones
    under a temporary data dir), `run` against it, then everything stopped and removed."""
    import shutil
    import tempfile

    from podium.cluster.embedded import ensure_servers

    data_dir = Path(tempfile.mkdtemp(prefix=f"podium-{label}-"))
    data_dir.chmod(0o755)
    servers = ensure_servers(os.environ.get("PODIUM_DATABASE_URL"), os.environ.get("PODIUM_REDIS_URL"), data_dir)
    assert servers.database_url and servers.redis_url
    try:
        system.start(Infra(servers.database_url, servers.redis_url, data_dir, uuid.uuid4().hex[:8]))
        try:
            return asyncio.run(run(system))
        finally:
            system.stop()
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def keep_result(name: str, text: str) -> None:
    """Print a report and keep it as load/results/NAME.md."""
    print(text)
    out = ROOT / "load" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.md").write_text(text + "\n")
