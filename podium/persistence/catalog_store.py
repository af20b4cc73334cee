"""Catalog tables (games, achievements, and since issue 25 stats, thresholds, stat boards and seasons): import
and read. An import checks the whole file first (podium/core/catalog_file.py) and writes in one transaction."""
from __future__ import annotations

from typing import Any, NamedTuple

import asyncpg

from podium.core.catalog import Catalog
from podium.core.catalog_file import CatalogFileError, parse_games

_UPSERT_GAMES = """
INSERT INTO games (game_id, name) SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (game_id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
"""
_UPSERT_STATS = """
INSERT INTO stats (game_id, stat_id, name, op, min_value, max_value)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
ON CONFLICT (game_id, stat_id) DO UPDATE SET name = EXCLUDED.name, op = EXCLUDED.op, min_value = EXCLUDED.min_value,
                                             max_value = EXCLUDED.max_value, updated_at = now()
"""
# A listed achievement without a threshold gets NULLs: the file is the truth for the achievements it lists.
_UPSERT_ACHIEVEMENTS = """
INSERT INTO achievements (game_id, achievement_id, name, points, threshold_stat, threshold_at_least, threshold_at_most)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::bigint[])
ON CONFLICT (game_id, achievement_id) DO UPDATE SET name = EXCLUDED.name, points = EXCLUDED.points,
    threshold_stat = EXCLUDED.threshold_stat, threshold_at_least = EXCLUDED.threshold_at_least,
    threshold_at_most = EXCLUDED.threshold_at_most, updated_at = now()
"""
_UPSERT_BOARDS = """
INSERT INTO stat_boards (game_id, board_id, name, stat_id, sort_order, periods)
SELECT k.g, k.b, k.n, k.s, k.o, string_to_array(k.p, ',')
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS k(g, b, n, s, o, p)
ON CONFLICT (game_id, board_id) DO UPDATE SET name = EXCLUDED.name, stat_id = EXCLUDED.stat_id,
    sort_order = EXCLUDED.sort_order, periods = EXCLUDED.periods, updated_at = now()
"""
_UPSERT_SEASONS = """
INSERT INTO seasons (game_id, board_id, season_id, starts_at, ends_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
ON CONFLICT (game_id, board_id, season_id) DO UPDATE SET starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at
"""
# What an imported game no longer lists goes: $1 the imported games, then the listed keys as columns.
_DELETE_SEASONS = """
DELETE FROM seasons x WHERE x.game_id = ANY($1::text[]) AND NOT EXISTS (
    SELECT 1 FROM unnest($2::text[], $3::text[], $4::text[]) AS k(g, b, s)
    WHERE k.g = x.game_id AND k.b = x.board_id AND k.s = x.season_id)
"""
_DELETE_BOARDS = """
DELETE FROM stat_boards x WHERE x.game_id = ANY($1::text[]) AND NOT EXISTS (
    SELECT 1 FROM unnest($2::text[], $3::text[]) AS k(g, b) WHERE k.g = x.game_id AND k.b = x.board_id)
"""
_UNLISTED_STATS = """
SELECT x.game_id, x.stat_id FROM stats x WHERE x.game_id = ANY($1::text[]) AND NOT EXISTS (
    SELECT 1 FROM unnest($2::text[], $3::text[]) AS k(g, s) WHERE k.g = x.game_id AND k.s = x.stat_id)
"""
# An achievement the file does not list keeps its row (imports never delete achievements), and with it its
# threshold: deleting the stat it names would break the foreign key.
_STILL_NEEDED = """
SELECT a.game_id, a.achievement_id, a.threshold_stat FROM achievements a
JOIN unnest($1::text[], $2::text[]) AS k(g, s) ON k.g = a.game_id AND k.s = a.threshold_stat
ORDER BY a.game_id, a.threshold_stat, a.achievement_id
"""
_DELETE_STATS = """
DELETE FROM stats x USING unnest($1::text[], $2::text[]) AS k(g, s) WHERE x.game_id = k.g AND x.stat_id = k.s
"""


class Imported(NamedTuple):
    games: int
    achievements: int
    stats: int
    boards: int
    seasons: int


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def import_catalog(conn: asyncpg.Connection, games: list[dict[str, Any]]) -> Imported:
    """Upsert games, their stats, achievements (with thresholds), stat boards and seasons from plain dicts (a
    catalog file's games). Each imported game's stats, boards and seasons become exactly the ones listed; its
    achievements are upserted and never deleted. Raises CatalogFileError, having written nothing, when the file
    breaks a rule or would delete a stat that an achievement it does not list still has a threshold on."""
    games = parse_games(games)
    ids = [g["game_id"] for g in games]
    stats = [(g["game_id"], s["stat_id"], s["name"], s["op"], s["min"], s["max"]) for g in games for s in g["stats"]]
    ach = [(g["game_id"], a["achievement_id"], a["name"], a["points"],
            *((t["stat_id"], t["at_least"], t["at_most"]) if (t := a["threshold"]) else (None, None, None)))
           for g in games for a in g["achievements"]]
    boards = [(g["game_id"], b["board_id"], b["name"], b["stat_id"], b["order"], ",".join(b["periods"]))
              for g in games for b in g["boards"]]
    seasons = [(g["game_id"], b["board_id"], s["season_id"], s["start"], s["end"])
               for g in games for b in g["boards"] for s in b["seasons"]]
    async with conn.transaction():
        await conn.execute(_UPSERT_GAMES, ids, [g["name"] for g in games])
        await conn.execute(_UPSERT_STATS, *_columns(stats, 6))
        await conn.execute(_UPSERT_ACHIEVEMENTS, *_columns(ach, 7))
        await conn.execute(_UPSERT_BOARDS, *_columns(boards, 6))
        await conn.execute(_UPSERT_SEASONS, *_columns(seasons, 5))
        season_keys = _columns([row[:3] for row in seasons], 3)
        await conn.execute(_DELETE_SEASONS, ids, *season_keys)
        await conn.execute(_DELETE_BOARDS, ids, *_columns([row[:2] for row in boards], 2))
        unlisted = await conn.fetch(_UNLISTED_STATS, ids, *_columns([row[:2] for row in stats], 2))
        if unlisted:
            gone = _columns([(r["game_id"], r["stat_id"]) for r in unlisted], 2)
            needed = await conn.fetch(_STILL_NEEDED, *gone)
            if needed:
                first = needed[0]
                raise CatalogFileError(
                    f"game {first['game_id']}: stats: {first['threshold_stat']} is no longer listed, but achievement "
                    f"{first['achievement_id']} (not in the file) has a threshold on it; list the stat again, or "
                    f"list the achievement with another threshold or none")
            try:
                await conn.execute(_DELETE_STATS, *gone)
            except asyncpg.ForeignKeyViolationError as exc:  # an import that ran at the same time
                raise CatalogFileError(f"stats: cannot delete {gone[1]}: {exc.detail or exc}") from exc
    return Imported(len(games), len(ach), len(stats), len(boards), len(seasons))


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
    """Every game with its achievements as (game_id, game_name, achievement_id, name, points, threshold_stat,
    threshold_at_least, threshold_at_most)."""
    return await conn.fetch(
        """SELECT g.game_id, g.name AS game_name, a.achievement_id, a.name, a.points,
                  a.threshold_stat, a.threshold_at_least, a.threshold_at_most
           FROM games g LEFT JOIN achievements a USING (game_id)
           ORDER BY g.game_id, a.achievement_id"""
    )


async def read_stats(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every stat as (game_id, stat_id, name, op, min_value, max_value)."""
    return await conn.fetch("SELECT game_id, stat_id, name, op, min_value, max_value FROM stats "
                            "ORDER BY game_id, stat_id")


async def read_stat_boards(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every stat board as (game_id, board_id, name, stat_id, sort_order, periods)."""
    return await conn.fetch("SELECT game_id, board_id, name, stat_id, sort_order, periods FROM stat_boards "
                            "ORDER BY game_id, board_id")


async def read_seasons(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every season as (game_id, board_id, season_id, start_us, end_us), times in microseconds since the epoch."""
    return await conn.fetch(
        """SELECT game_id, board_id, season_id, (extract(epoch FROM starts_at) * 1000000)::bigint AS start_us,
                  (extract(epoch FROM ends_at) * 1000000)::bigint AS end_us
           FROM seasons ORDER BY game_id, board_id, starts_at""")


async def load_catalog(conn: asyncpg.Connection) -> Catalog:
    """The whole catalog (achievements, stats, thresholds, boards, seasons) from one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return Catalog.from_rows(await read_catalog(conn), await read_stats(conn), await read_stat_boards(conn),
                                 await read_seasons(conn))


async def catalog_version(conn: asyncpg.Connection) -> tuple[object, ...]:
    """Changes whenever a game, achievement, stat, stat board or season is added, updated or removed (cheap to
    poll). Seasons have no updated_at: a season changes only within its board's entry, and an import upserts
    every board it lists (bumping stat_boards.updated_at); a removed row lowers its table's count."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM games), (SELECT max(updated_at) FROM games),
                  (SELECT count(*) FROM achievements), (SELECT max(updated_at) FROM achievements),
                  (SELECT count(*) FROM stats), (SELECT max(updated_at) FROM stats),
                  (SELECT count(*) FROM stat_boards), (SELECT max(updated_at) FROM stat_boards),
                  (SELECT count(*) FROM seasons)"""
    )
    return tuple(row)
