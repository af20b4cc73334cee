"""Checkpoint tables: player_game_stats, player_period_stats, player_stats
(stat values), player_stat_periods (stat boards' day, week and season values)
and shard_watermarks. A checkpoint's rows and watermark are written in one
transaction, so a reader that sees the watermark also sees every row it covers."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg

from podium.persistence import copy_text

# Times travel as microseconds since the epoch (bigint arrays encode far cheaper
# than timestamptz ones) and become timestamptz here, exactly (x < 2^53).
_US = "(to_timestamp(0) + {} * interval '1 microsecond')"

_UPSERT_STATS = f"""
INSERT INTO player_game_stats AS s (player_id, game_id, points, unlocked_count, first_unlock_at,
                                    last_unlock_at, score_reached_at, last_seq, player_shard, checkpointed_at)
SELECT t.p, t.g, t.pts, t.n, {_US.format("t.f")}, {_US.format("t.l")}, {_US.format("t.r")}, t.seq, $9::int, now()
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
     AS t(p, g, pts, n, f, l, r, seq)
ON CONFLICT (player_id, game_id) DO UPDATE SET
    points = EXCLUDED.points, unlocked_count = EXCLUDED.unlocked_count,
    first_unlock_at = EXCLUDED.first_unlock_at, last_unlock_at = EXCLUDED.last_unlock_at,
    score_reached_at = EXCLUDED.score_reached_at, last_seq = EXCLUDED.last_seq, checkpointed_at = now()
WHERE s.last_seq < EXCLUDED.last_seq
"""

_UPSERT_PERIODS = f"""
INSERT INTO player_period_stats AS s (player_id, game_id, period, period_start, points, unlocked_count,
                                      score_reached_at, last_seq, player_shard, checkpointed_at)
SELECT t.p, t.g, t.k, {_US.format("t.s")}, t.pts, t.n, {_US.format("t.r")}, t.seq, $9::int, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::int[], $7::bigint[], $8::bigint[])
     AS t(p, g, k, s, pts, n, r, seq)
ON CONFLICT (player_id, period, period_start, game_id) DO UPDATE SET
    points = EXCLUDED.points, unlocked_count = EXCLUDED.unlocked_count,
    score_reached_at = EXCLUDED.score_reached_at, last_seq = EXCLUDED.last_seq, checkpointed_at = now()
WHERE s.last_seq < EXCLUDED.last_seq
"""

_UPSERT_STAT_VALUES = f"""
INSERT INTO player_stats AS s (player_id, game_id, stat_id, value, updated_at, last_seq, player_shard,
                               checkpointed_at)
SELECT t.p, t.g, t.s, t.v, {_US.format("t.u")}, t.seq, $7::int, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) AS t(p, g, s, v, u, seq)
ON CONFLICT (player_id, game_id, stat_id) DO UPDATE SET
    value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, last_seq = EXCLUDED.last_seq, checkpointed_at = now()
WHERE s.last_seq < EXCLUDED.last_seq
"""

# No seq guard, unlike the tables above: a series rebuilt from the journal (its board's
# stat or a season's dates changed) may hold a value of a lower seq than its stale row.
_UPSERT_STAT_PERIODS = f"""
INSERT INTO player_stat_periods AS s (player_id, game_id, board, value, reached_at, last_seq, player_shard,
                                      checkpointed_at)
SELECT t.p, t.g, t.b, t.v, {_US.format("t.r")}, t.seq, $7::int, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) AS t(p, g, b, v, r, seq)
ON CONFLICT (player_id, game_id, board) DO UPDATE SET
    value = EXCLUDED.value, reached_at = EXCLUDED.reached_at, last_seq = EXCLUDED.last_seq, checkpointed_at = now()
"""

_DELETE_STAT_PERIODS = """
DELETE FROM player_stat_periods s USING unnest($1::text[], $2::text[], $3::text[]) AS t(p, g, b)
WHERE s.player_id = t.p AND s.game_id = t.g AND s.board = t.b
"""

_STAT_PERIODS_OF_SHARD = """
SELECT player_id, game_id, board, value, (extract(epoch FROM reached_at) * 1000000)::bigint, last_seq
FROM player_stat_periods WHERE player_shard = $1
"""

# With the player's region: a player may have stat values and no scores (no player_game_stats row to carry it).
_STAT_VALUES_OF_SHARD = """
SELECT s.player_id, s.game_id, s.stat_id, s.value, (extract(epoch FROM s.updated_at) * 1000000)::bigint AS updated_us,
       s.last_seq, p.region
FROM player_stats s LEFT JOIN players p USING (player_id) WHERE s.player_shard = $1
"""

_UPSERT_WATERMARK = """
INSERT INTO shard_watermarks (kind, shard, shard_count, seq, stat_series) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (kind, shard) DO UPDATE SET shard_count = EXCLUDED.shard_count, seq = EXCLUDED.seq,
                                        stat_series = EXCLUDED.stat_series, checkpointed_at = now()
"""
STAT_PERIODS_CHUNK = 20_000  # rows per statement: a first checkpoint after a rebuild writes them all

_SCORES_FOR_PLAYERS = """
SELECT s.player_id, s.game_id, p.region, s.points,
       (extract(epoch FROM s.score_reached_at) * 1000000)::bigint AS reached_us, s.last_seq
FROM player_game_stats s LEFT JOIN players p USING (player_id)
WHERE s.player_id = ANY($1::text[])
"""

# Recovery reads below sort in board order so that building a board is linear
# (the board sorts again, so the order is a speed-up, never relied on). Player
# ids sort bytewise (COLLATE "C", the order of Python's str): a locale-aware
# sort of a million rows took 1 s more.
_TOTALS = """
SELECT s.player_id, $1::text AS game_id, p.region, sum(s.points)::bigint AS points,
       (extract(epoch FROM COALESCE(max(s.score_reached_at) FILTER (WHERE s.points > 0), min(s.score_reached_at)))
        * 1000000)::bigint AS reached_us,
       max(s.last_seq) AS last_seq
FROM player_game_stats s LEFT JOIN players p USING (player_id)
GROUP BY s.player_id, p.region
ORDER BY 4 DESC, 5, s.player_id COLLATE "C"
"""

_STATS_FOR_PLAYERS_OF_SHARD = """
SELECT s.player_id, s.game_id, s.points, s.unlocked_count, s.first_unlock_at, s.last_unlock_at,
       s.score_reached_at, s.last_seq, p.region
FROM player_game_stats s LEFT JOIN players p USING (player_id)
WHERE s.player_shard = $1
"""

_SCORES_FOR_GAMES = """
SELECT s.player_id, s.game_id, p.region, s.points,
       (extract(epoch FROM s.score_reached_at) * 1000000)::bigint AS reached_us, s.last_seq
FROM player_game_stats s LEFT JOIN players p USING (player_id)
WHERE s.game_id = ANY($1::text[])
ORDER BY s.points DESC, s.score_reached_at, s.player_id COLLATE "C"
"""

_PERIOD_SCORES_FOR_GAMES = """
SELECT s.player_id, s.game_id, s.period, (extract(epoch FROM s.period_start) * 1000000)::bigint AS start_us,
       p.region, s.points, (extract(epoch FROM s.score_reached_at) * 1000000)::bigint AS reached_us, s.last_seq
FROM player_period_stats s LEFT JOIN players p USING (player_id)
WHERE s.game_id = ANY($1::text[])
  AND (s.period, s.period_start) IN (SELECT * FROM unnest($2::text[], $3::timestamptz[]))
ORDER BY s.points DESC, s.score_reached_at, s.player_id COLLATE "C"
"""

_PERIODS_OF_SHARD = """
SELECT s.player_id, s.game_id, s.period, (extract(epoch FROM s.period_start) * 1000000)::bigint AS start_us,
       s.points, s.unlocked_count, (extract(epoch FROM s.score_reached_at) * 1000000)::bigint AS reached_us,
       s.last_seq
FROM player_period_stats s
WHERE s.player_shard = $1 AND (s.period, s.period_start) IN (SELECT * FROM unnest($2::text[], $3::timestamptz[]))
"""

_DAYS_OF_PLAYER = """
SELECT game_id, (extract(epoch FROM period_start) * 1000000)::bigint AS start_us, points, unlocked_count
FROM player_period_stats
WHERE player_id = $1 AND period = 'day' AND period_start >= $2 AND ($3::text IS NULL OR game_id = $3)
"""

# player, game, stat, value, updated_us, last_seq
StatValueColumns = tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[int], Sequence[int], Sequence[int]]
PeriodColumns = tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[int], Sequence[int],
                      Sequence[int], Sequence[int], Sequence[int]]
# player, game, board id, value, reached_us, last_seq
StatPeriodColumns = tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[int], Sequence[int], Sequence[int]]
# (player, game, board id) of a value no longer held
StatPeriodKey = tuple[str, str, str]
# One checkpointed stat period value: player, game, board id, value, reached_us, last_seq
StatPeriodRow = tuple[str, str, str, int, int, int]


async def write_player_checkpoint(
    conn: asyncpg.Connection,
    *,
    shard: int,
    shard_count: int,
    watermark: int,
    columns: tuple[Sequence[str], Sequence[str], Sequence[int], Sequence[int], Sequence[int],
                   Sequence[int], Sequence[int], Sequence[int]],
    period_columns: PeriodColumns | None = None,
    stat_columns: StatValueColumns | None = None,
    stat_period_columns: StatPeriodColumns | None = None,
    stat_periods_gone: Sequence[StatPeriodKey] = (),
    stat_series: Sequence[str] | None = None,
) -> None:
    """Upsert changed stats, period rows, stat values and stat board period
    values (times in µs), delete stat period values no longer held, and
    advance the shard's watermark with the stat series its checkpoint holds
    whole (None: none), atomically."""
    async with conn.transaction():
        if columns[0]:
            await conn.execute(_UPSERT_STATS, *columns, shard)
        if period_columns and period_columns[0]:
            await conn.execute(_UPSERT_PERIODS, *period_columns, shard)
        if stat_columns and stat_columns[0]:
            await conn.execute(_UPSERT_STAT_VALUES, *stat_columns, shard)
        # Deleted before the upsert: a key is never in both (take_dirty), but a
        # stale row must never win over a value written in the same checkpoint.
        for at in range(0, len(stat_periods_gone), STAT_PERIODS_CHUNK):
            part = stat_periods_gone[at:at + STAT_PERIODS_CHUNK]
            await conn.execute(_DELETE_STAT_PERIODS, [k[0] for k in part], [k[1] for k in part],
                               [k[2] for k in part])
        if stat_period_columns:
            for at in range(0, len(stat_period_columns[0]), STAT_PERIODS_CHUNK):
                await conn.execute(_UPSERT_STAT_PERIODS,
                                   *[list(c[at:at + STAT_PERIODS_CHUNK]) for c in stat_period_columns], shard)
        await conn.execute(_UPSERT_WATERMARK, "player", shard, shard_count, watermark,
                           None if stat_series is None else list(stat_series))


async def read_player_scores(conn: asyncpg.Connection, player_ids: Sequence[str]) -> list[asyncpg.Record]:
    """ScoreRow-shaped records (board id = game id) for every game of these players."""
    return await conn.fetch(_SCORES_FOR_PLAYERS, list(player_ids))


async def read_watermarks(conn: asyncpg.Connection, kind: str, shard_count: int) -> dict[int, int]:
    """Watermark per shard, only for shards of the current layout (shard_count)."""
    rows = await conn.fetch(
        "SELECT shard, seq FROM shard_watermarks WHERE kind = $1 AND shard_count = $2", kind, shard_count
    )
    return {r["shard"]: r["seq"] for r in rows}


async def read_stat_series(conn: asyncpg.Connection, shard: int, shard_count: int) -> set[str]:
    """The stat series player shard `shard`'s checkpoint holds whole (none
    without a watermark of this layout, or one written before migration 009)."""
    series = await conn.fetchval("SELECT stat_series FROM shard_watermarks WHERE kind = 'player' AND shard = $1 "
                                 "AND shard_count = $2", shard, shard_count)
    return set(series or ())


def _stat_period_row(f: copy_text.Fields) -> StatPeriodRow:
    return str(f[0]), str(f[1]), str(f[2]), int(f[3] or 0), int(f[4] or 0), int(f[5] or 0)


async def stream_player_shard_stat_periods(conn: asyncpg.Connection, shard: int,
                                           sink: Callable[[list[StatPeriodRow]], object]) -> int:
    """Every checkpointed stat board period value of the players this shard
    owns (closed windows too: the caller skips them), a chunk at a time.
    Returns the row count."""
    return await copy_text.stream(conn, _STAT_PERIODS_OF_SHARD, [shard], row=_stat_period_row, sink=sink)


async def read_player_shard_stats(conn: asyncpg.Connection, shard: int) -> list[asyncpg.Record]:
    """Checkpointed stats of every player this shard owns."""
    return await conn.fetch(_STATS_FOR_PLAYERS_OF_SHARD, shard)


async def read_player_shard_stat_values(conn: asyncpg.Connection, shard: int) -> list[asyncpg.Record]:
    """Checkpointed stat values of every player this shard owns (updated_at in µs), with the player's region."""
    return await conn.fetch(_STAT_VALUES_OF_SHARD, shard)


def _period_args(periods: Sequence[tuple[str, datetime]]) -> tuple[list[str], list[datetime]]:
    return [kind for kind, _ in periods], [start for _, start in periods]


async def read_player_shard_periods(
    conn: asyncpg.Connection, shard: int, periods: Sequence[tuple[str, datetime]]
) -> list[asyncpg.Record]:
    """Checkpointed period rows of every player this shard owns, in these periods."""
    return await conn.fetch(_PERIODS_OF_SHARD, shard, *_period_args(periods))


async def read_player_days(
    conn: asyncpg.Connection, player_id: str, since: datetime, game_id: str | None
) -> list[asyncpg.Record]:
    """A player's daily rows (game_id, start_us, points, unlocked_count) from `since` on:
    a range read of the primary key, never more than the window."""
    return await conn.fetch(_DAYS_OF_PLAYER, player_id, since, game_id)


# Rows of a board: (player_id, board id, region, points, reached_us, last_seq).
ScoreRow = tuple[str, str, str | None, int, int, int]
# Rows of a period board: (player_id, game_id, period, start_us, region, points, reached_us, last_seq).
PeriodRow = tuple[str, str, str, int, str | None, int, int, int]


def _score_row(f: copy_text.Fields) -> ScoreRow:
    return f[0], f[1], f[2], int(f[3]), int(f[4]), int(f[5])  # type: ignore[arg-type,return-value]


def _period_row(f: copy_text.Fields) -> PeriodRow:
    return (f[0], f[1], f[2], int(f[3]), f[4], int(f[5]), int(f[6]), int(f[7]))  # type: ignore[arg-type,return-value]


async def stream_game_scores(conn: asyncpg.Connection, game_ids: Sequence[str],
                             sink: Callable[[list[ScoreRow]], None]) -> int:
    """Every player's score in these games, times in microseconds, in board
    order per game, handed to `sink` a chunk at a time. Returns the row count."""
    return await copy_text.stream(conn, _SCORES_FOR_GAMES, [list(game_ids)], row=_score_row, sink=sink)


async def stream_totals(conn: asyncpg.Connection, label: str, sink: Callable[[list[ScoreRow]], None]) -> int:
    """Each player's checkpointed total over every game (board id = label), in board order."""
    return await copy_text.stream(conn, _TOTALS, [label], row=_score_row, sink=sink)


async def stream_period_scores(conn: asyncpg.Connection, game_ids: Sequence[str],
                               periods: Sequence[tuple[str, datetime]],
                               sink: Callable[[list[PeriodRow]], None]) -> int:
    """Scores of these games in these periods ((kind, start) pairs), in board order."""
    return await copy_text.stream(conn, _PERIOD_SCORES_FOR_GAMES, [list(game_ids), *_period_args(periods)],
                                  row=_period_row, sink=sink)
