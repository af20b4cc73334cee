"""A pool whose connections are all held fails a waiting caller at its deadline
instead of hanging it (podium/persistence/db.py DeadlinePool)."""
from __future__ import annotations

import asyncio
import time

import pytest

from podium.persistence.db import create_pool


async def test_acquire_without_a_timeout_waits_the_pools_deadline(cluster) -> None:
    assert cluster.settings.database_url
    pool = await create_pool(cluster.settings.database_url, max_size=1, timeout_s=0.5)
    try:
        async with pool.acquire():
            t0 = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                async with pool.acquire():
                    pass
            assert 0.4 < time.monotonic() - t0 < 3.0
        async with pool.acquire() as conn:  # the held one came back: the pool still serves
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
