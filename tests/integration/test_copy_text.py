"""COPY text streaming against the real PostgreSQL: the same rows as fetch,
including values with tabs, newlines, backslashes and NULLs, over many chunks."""
from __future__ import annotations

import asyncpg

from podium.persistence import copy_text

_ROWS = """
SELECT v.i, v.s FROM (
    SELECT i, CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN 'tab' || chr(9) || i WHEN 2 THEN 'nl' || chr(10) || i
                         WHEN 3 THEN 'back\\slash\\N' || i WHEN 4 THEN 'é→' || i ELSE repeat('x', i % 300) END
    FROM generate_series(1, $1::int) i) AS v(i, s)
ORDER BY v.i
"""


async def test_stream_returns_what_fetch_returns(db: asyncpg.Pool) -> None:
    chunks: list[int] = []
    got: list[tuple[int, str | None]] = []

    def sink(rows: list[tuple[int, str | None]]) -> None:
        chunks.append(len(rows))
        got.extend(rows)

    async with db.acquire() as conn:
        count = await copy_text.stream(conn, _ROWS, [20_000], row=lambda f: (int(f[0] or ""), f[1]), sink=sink)
        expected = [tuple(r) for r in await conn.fetch(_ROWS, 20_000)]
    assert count == 20_000 and got == expected
    assert len(chunks) > 1, "the rows should arrive in several chunks"
