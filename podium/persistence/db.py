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


@asynccontextmanager
async def same_snapshot(snapshot: str, database_url: str, *,
                        timeout_s: float) -> AsyncIterator[asyncpg.Connection]:
    """A second connection that reads exactly what another connection's open
    repeatable-read transaction reads (`snapshot`: its `export_snapshot`), so
    two recovery reads run in parallel and still see one consistent state."""
    async with connection(database_url, timeout_s=timeout_s) as twin, \
            twin.transaction(isolation="repeatable_read", readonly=True):
        await twin.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        await twin.execute("SET LOCAL work_mem = '256MB'")
        yield twin


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """The snapshot of `conn`'s open transaction, for `same_snapshot`."""
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))
