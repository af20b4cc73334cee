"""Catalog tables (games, achievements): import and read."""
from __future__ import annotations

from typing import Any

import asyncpg

_UPSERT_GAMES = """
INSERT INTO games (game_id, name) SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (game_id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
"""
_UPSERT_ACHIEVEMENTS = """
INSERT INTO achievements (game_id, achievement_id, name, points)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
ON CONFLICT (game_id, achievement_id) DO UPDATE SET name = EXCLUDED.name, points = EXCLUDED.points,
                                                     updated_at = now()
"""


async def import_catalog(conn: asyncpg.Connection, games: list[dict[str, Any]]) -> tuple[int, int]:
    """Upsert games and their achievements from plain dicts; returns (games, achievements)."""
    ach = [(g["game_id"], a["achievement_id"], a["name"], a["points"]) for g in games for a in g["achievements"]]
    async with conn.transaction():
        await conn.execute(_UPSERT_GAMES, [g["game_id"] for g in games], [g["name"] for g in games])
        if ach:
            await conn.execute(_UPSERT_ACHIEVEMENTS, *(list(col) for col in zip(*ach, strict=True)))
    return len(games), len(ach)


async def read_catalog(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every game with its achievements as (game_id, game_name, achievement_id, name, points)."""
    return await conn.fetch(
        """SELECT g.game_id, g.name AS game_name, a.achievement_id, a.name, a.points
           FROM games g LEFT JOIN achievements a USING (game_id)
           ORDER BY g.game_id, a.achievement_id"""
    )
