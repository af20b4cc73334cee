"""The body of a driver script: a test that reshapes or breaks its cluster runs in a
process of its own (python -m tests.integration.NAME ADMIN_DATABASE_URL REDIS_URL),
on a database, Redis prefix, data dir and node ports of its own, and prints one
JSON report that the test reads."""
from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from podium.cluster import launch
from podium.cluster.processes import own_ports
from podium.persistence import api_keys, catalog_store
from podium.settings import Settings
from tests.integration.conftest import TEST_CATALOG, _admin, _with_database, drop_test_state


def run_driver(name: str, run: Callable[[Settings, str], Awaitable[Any]], *, games: list[dict[str, Any]] | None = None,
               **overrides: Any) -> None:
    """Start a cluster with the test catalog (plus `games`) and an API key, print `run(settings, key)` as JSON,
    drop it all."""
    admin_url, redis_url = sys.argv[1], sys.argv[2]
    tag = uuid.uuid4().hex[:8]
    database = f"podium_{name}_{tag}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{database}"'))
    settings = Settings(database_url=_with_database(admin_url, database), redis_url=redis_url,
                        redis_prefix=f"podium-{name}-{tag}:", data_dir=Path(tempfile.mkdtemp(prefix=f"podium-{name}-")),
                        checkpoint_interval_s=1.0, token_secret=f"{name}-{uuid.uuid4().hex}",
                        ray_namespace=f"podium-{name}-{tag}", **own_ports(), **overrides)
    try:
        async def prepare() -> str:
            await launch.prepare_database(settings, demo_catalog=False)
            conn = await asyncpg.connect(settings.database_url)
            try:
                await catalog_store.import_catalog(conn, TEST_CATALOG + (games or []))
                return await api_keys.create(conn, game_id=None, label=name)
            finally:
                await conn.close()

        key = asyncio.run(prepare())
        launch.start_ray(settings, num_cpus=2, dashboard=False)
        launch.deploy(settings)
        print(orjson.dumps(asyncio.run(run(settings, key)), default=str).decode())
    finally:
        launch.stop_ray(settings)
        drop_test_state(admin_url, database, redis_url, settings.redis_prefix)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
