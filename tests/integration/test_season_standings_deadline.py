"""The season standings read waits for a pooled connection no longer than the
settings' deadline: with every connection of the pool busy it fails in about
db_timeout_s instead of hanging the request. A real pool on the server
PODIUM_DATABASE_URL names (else the session cluster's); no table is read."""
from __future__ import annotations

import asyncio
import os
import time
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from podium.core.catalog import Catalog, StatBoard
from podium.gateway import queries


class Runtime:
    """What season_standings uses of the gateway runtime, around a real pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.settings = SimpleNamespace(db_timeout_s=0.3, page_limit_max=100)
        self._catalog = Catalog({"g": {}}, boards={"g": {
            "b": StatBoard("b", "B", "s", "desc", ("all",), (("s1", 0, 1_000_000),))}})

    async def require_game(self, game_id: str) -> None:
        return None

    async def catalog(self) -> tuple[Catalog, list[Any]]:
        return self._catalog, []


async def test_a_season_standings_read_gives_up_on_a_busy_pool_at_the_deadline(
        request: pytest.FixtureRequest) -> None:
    url = os.environ.get("PODIUM_DATABASE_URL") or request.getfixturevalue("cluster").admin_url
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    assert pool is not None
    try:
        async with pool.acquire():  # the only connection is busy
            started = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(queries.season_standings(Runtime(pool), "g", "b", "s1"), 5)  # type: ignore[arg-type]
            assert time.monotonic() - started < 2, "gave up at the test's guard, not the settings' deadline"
    finally:
        await pool.close()
