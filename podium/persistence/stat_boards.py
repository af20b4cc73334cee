"""PostgreSQL reads and writes of the stat boards (issue 25): the stat journal
rows a rebuild folds (player shard and leaderboard recovery, a season's close),
the checkpointed stat values a leaderboard loads, and the closed seasons'
standings (migrations/008_season_standings.sql)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import asyncpg

from podium.core.stat_boards import StatRow
from podium.persistence import copy_text

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)  # an upper bound past every update (a µs count past it overflows)

# The rows a rebuild folds, times in µs (a COPY of text: no datetime is built per row),
# only of the (game, stat) pairs some board ranks ($4, $5 side by side).
_ROW = "u.seq, u.player_id, u.game_id, u.stat_id, u.op, u.value, (extract(epoch FROM u.updated_at) * 1000000)::bigint"
_RANKED = "(u.game_id, u.stat_id) IN (SELECT g, s FROM unnest($4::text[], $5::text[]) AS b(g, s))"

# The shard's players, by who it owns NOW: stat_updates.player_shard is the shard
# that journaled a row, and a reshard (podium/persistence/layout.py) moves the
# checkpoint rows, not the journal. So: every row of the players whose
# checkpointed stat values are on this shard, plus this shard's rows after its
# watermark (players it journaled for since its last checkpoint, none of them
# checkpointed yet). Each half on its index; the second leaves out the first's.
_SHARD_ROWS_SINCE = f"""
SELECT {_ROW}
FROM stat_updates u
JOIN (SELECT DISTINCT player_id FROM player_stats WHERE player_shard = $1) p ON p.player_id = u.player_id
WHERE u.updated_at >= $2 AND {_RANKED}
UNION ALL
SELECT {_ROW}
FROM stat_updates u
WHERE u.player_shard = $1 AND u.seq > $3 AND u.updated_at >= $2 AND {_RANKED}
  AND NOT EXISTS (SELECT 1 FROM player_stats s WHERE s.player_id = u.player_id AND s.player_shard = $1)
ORDER BY 1
"""

# $1 the games (an index prefix), [$2, $3) the time, $4 and $5 the pairs as above.
_GAME_ROWS_BETWEEN = f"""
SELECT {_ROW}
FROM stat_updates u
WHERE u.game_id = ANY($1::text[]) AND u.updated_at >= $2 AND u.updated_at < $3 AND {_RANKED}
ORDER BY u.seq
"""

_VALUES = """
SELECT s.player_id, s.game_id, s.stat_id, s.value,
       (extract(epoch FROM s.updated_at) * 1000000)::bigint AS updated_us, s.last_seq
FROM player_stats s
WHERE s.game_id = ANY($1::text[])
"""

_TAIL = """
SELECT seq, player_id, game_id, stat_id, op, value, value_after, updated_at
FROM stat_updates
WHERE player_shard = $1 AND seq > $2 AND game_id = ANY($3::text[])
ORDER BY seq
"""


def _stat_row(f: copy_text.Fields) -> StatRow:
    return int(f[0] or 0), str(f[1]), str(f[2]), str(f[3]), str(f[4]), int(f[5] or 0), int(f[6] or 0)


def _pairs(ranked: Sequence[tuple[str, str]]) -> list[list[str]]:
    return [[g for g, _ in ranked], [s for _, s in ranked]]


async def stream_shard_rows_since(conn: asyncpg.Connection, shard: int, since: datetime, after_seq: int,
                                  ranked: Sequence[tuple[str, str]], sink: Callable[[list[StatRow]], object],
                                  timeout: float | None = None) -> int:
    """The stat rows made at or after `since` of the players player shard
    `shard` owns now (its checkpointed players, and those it journaled for
    after its watermark `after_seq`), only of the (game, stat) pairs in
    `ranked`, oldest first, streamed to `sink` a chunk at a time: its period
    values' rebuild. Returns the row count."""
    return await copy_text.stream(conn, _SHARD_ROWS_SINCE, [shard, since, after_seq, *_pairs(ranked)],
                                  row=_stat_row, sink=sink, timeout=timeout)


async def stream_game_rows_between(conn: asyncpg.Connection, ranked: Sequence[tuple[str, str]], since: datetime,
                                   until: datetime, sink: Callable[[list[StatRow]], object],
                                   timeout: float | None = None) -> int:
    """Every stat row of the (game, stat) pairs in `ranked` made in [since,
    until), oldest first, streamed to `sink` a chunk at a time. `timeout`
    overrides the connection's statement deadline (a season's rows are a large
    read). Returns the row count."""
    games = sorted({g for g, _ in ranked})
    return await copy_text.stream(conn, _GAME_ROWS_BETWEEN, [games, since, until, *_pairs(ranked)],
                                  row=_stat_row, sink=sink, timeout=timeout)


async def checkpointed_values(conn: asyncpg.Connection, game_ids: Sequence[str]) -> list[asyncpg.Record]:
    """The player shards' checkpointed stat values of these games."""
    return await conn.fetch(_VALUES, list(game_ids))


async def tail(conn: asyncpg.Connection, shard: int, after_seq: int, game_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Player shard `shard`'s stat rows of these games after its watermark, oldest first."""
    return await conn.fetch(_TAIL, shard, after_seq, list(game_ids))


async def regions(conn: asyncpg.Connection, player_ids: Sequence[str]) -> dict[str, str | None]:
    rows = await conn.fetch("SELECT player_id, region FROM players WHERE player_id = ANY($1::text[])",
                            list(player_ids))
    return {r["player_id"]: r["region"] for r in rows}


async def closed_seasons(conn: asyncpg.Connection, game_ids: Sequence[str]) -> set[tuple[str, str, str]]:
    """(game, board, season) of every closed season of these games."""
    rows = await conn.fetch("SELECT game_id, board_id, season_id FROM season_closes WHERE game_id = ANY($1::text[])",
                            list(game_ids))
    return {(r["game_id"], r["board_id"], r["season_id"]) for r in rows}


# (region, rank, player, value, reached_at)
StandingRow = tuple[str, int, str, int, datetime]


async def close_season(conn: asyncpg.Connection, game_id: str, board_id: str, season_id: str, ends_at: datetime,
                       rows: Iterable[StandingRow]) -> bool:
    """Keep a closed season's final standings, once: one transaction writes the
    rows and the season's close; a second close (after a crash, or twice)
    writes nothing. True if this call closed it."""
    rows = list(rows)
    async with conn.transaction():
        closed = await conn.fetchval(
            "INSERT INTO season_closes (game_id, board_id, season_id, ends_at, entries) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING RETURNING true", game_id, board_id, season_id, ends_at,
            sum(1 for r in rows if r[0] == ""))
        if not closed:
            return False
        await conn.executemany(
            "INSERT INTO season_standings (game_id, board_id, season_id, region, rank, player_id, value, reached_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            [(game_id, board_id, season_id, *r) for r in rows])
    return True


async def season_standings(conn: asyncpg.Connection, game_id: str, board_id: str, season_id: str, region: str,
                           after_rank: int, limit: int) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
    """(the season's close row or None while it is open, one page of its standings after `after_rank`)."""
    close = await conn.fetchrow("SELECT ends_at, entries, closed_at FROM season_closes "
                                "WHERE game_id = $1 AND board_id = $2 AND season_id = $3", game_id, board_id, season_id)
    if close is None:
        return None, []
    rows = await conn.fetch(
        "SELECT rank, player_id, value, reached_at FROM season_standings WHERE game_id = $1 AND board_id = $2 "
        "AND season_id = $3 AND region = $4 AND rank > $5 ORDER BY rank LIMIT $6",
        game_id, board_id, season_id, region, after_rank, limit)
    return close, rows
