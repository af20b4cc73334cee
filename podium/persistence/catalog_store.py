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


_RARITY = """
SELECT a.achievement_id, a.name, a.points, count(u.seq) AS holders,
       (SELECT count(DISTINCT player_id) FROM unlocks WHERE game_id = $1) AS players
FROM achievements a
LEFT JOIN unlocks u ON u.game_id = a.game_id AND u.achievement_id = a.achievement_id
WHERE a.game_id = $1
GROUP BY a.achievement_id, a.name, a.points
ORDER BY a.achievement_id
"""


async def read_rarity(conn: asyncpg.Connection, game_id: str) -> list[asyncpg.Record]:
    """Per achievement of a game: (achievement_id, name, points, holders, players),
    players being everyone with any unlock in the game. Counts the journal."""
    return await conn.fetch(_RARITY, game_id)


async def read_catalog(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every game with its achievements as (game_id, game_name, achievement_id, name, points)."""
    return await conn.fetch(
        """SELECT g.game_id, g.name AS game_name, a.achievement_id, a.name, a.points
           FROM games g LEFT JOIN achievements a USING (game_id)
           ORDER BY g.game_id, a.achievement_id"""
    )


async def catalog_version(conn: asyncpg.Connection) -> tuple[object, ...]:
    """Changes whenever a game or achievement is added or updated (cheap to poll)."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM games), (SELECT max(updated_at) FROM games),
                  (SELECT count(*) FROM achievements), (SELECT max(updated_at) FROM achievements)"""
    )
    return tuple(row)
