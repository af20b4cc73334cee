"""One asyncpg pool per process: created at start, closed at stop. Every
statement has a deadline (asyncpg's command_timeout raises TimeoutError)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


async def create_pool(database_url: str, *, max_size: int = 4, timeout_s: float = 10.0) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size, command_timeout=timeout_s)
    assert pool is not None
    return pool


@asynccontextmanager
async def connection(database_url: str, *, timeout_s: float) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own with another deadline (recovery reads millions of rows)."""
    conn = await asyncpg.connect(database_url, command_timeout=timeout_s, timeout=min(timeout_s, 60.0))
    try:
        yield conn
    finally:
        await conn.close()
