"""One asyncpg pool per process: created at start, closed at stop."""
from __future__ import annotations

import asyncpg


async def create_pool(database_url: str, *, max_size: int = 4) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size)
    assert pool is not None
    return pool
