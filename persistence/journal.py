"""The unlock journal (table `unlocks`): batched appends and replay reads.
Callers pass columns; one INSERT ... SELECT FROM unnest(...) per batch."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

_APPEND = """
INSERT INTO unlocks (player_id, game_id, achievement_id, points, region, unlocked_at, client_at, player_shard)
SELECT t.p, t.g, t.a, t.pts, t.r, $6::timestamptz, t.cat, $8
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $7::timestamptz[])
     AS t(p, g, a, pts, r, cat)
ON CONFLICT (player_id, game_id, achievement_id) DO NOTHING
RETURNING seq, player_id, game_id, achievement_id
"""

_UPSERT_REGIONS = """
INSERT INTO players (player_id, region)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (player_id) DO UPDATE SET region = EXCLUDED.region, updated_at = now()
WHERE players.region IS DISTINCT FROM EXCLUDED.region
"""

_REPLAY = """
SELECT u.seq, u.player_id, u.game_id, u.achievement_id, u.points, u.unlocked_at, p.region
FROM unlocks u LEFT JOIN players p USING (player_id)
WHERE u.player_shard = $1 AND u.seq > $2 AND ($3::text[] IS NULL OR u.game_id = ANY($3::text[]))
ORDER BY u.seq
"""


async def append(
    conn: asyncpg.Connection,
    *,
    shard: int,
    player_ids: Sequence[str],
    game_ids: Sequence[str],
    achievement_ids: Sequence[str],
    points: Sequence[int],
    regions: Sequence[str | None],
    unlocked_at: datetime,
    client_at: Sequence[datetime | None],
    region_updates: dict[str, str],
) -> list[asyncpg.Record]:
    """Insert a batch in one transaction, all unlocked at `unlocked_at` (server
    time of the group commit); returns (seq, player_id, game_id, achievement_id)
    of the rows that were new. Rows already journaled are skipped. A player's
    new region is recorded only with a new row of theirs, so every region change
    has a journal seq (it versions the move on the leaderboards)."""
    async with conn.transaction():
        rows = await conn.fetch(
            _APPEND,
            player_ids, game_ids, achievement_ids, points, regions, unlocked_at, client_at, shard,
        )
        moved = {r["player_id"] for r in rows} & region_updates.keys()
        if moved:
            await conn.execute(_UPSERT_REGIONS, list(moved), [region_updates[p] for p in moved])
        return rows


_PLAYER_UNLOCKS = """
SELECT game_id, achievement_id, points, unlocked_at FROM unlocks
WHERE player_id = $1 AND ($2::text IS NULL OR game_id = $2)
  AND (game_id, achievement_id) > ($3, $4)
ORDER BY game_id, achievement_id
LIMIT $5
"""


async def player_unlocks(
    conn: asyncpg.Connection, player_id: str, *, game_id: str | None, after: tuple[str, str], limit: int
) -> list[asyncpg.Record]:
    """A player's unlocks in (game, achievement) order after a keyset position;
    served by the journal's unique index (player_id, game_id, achievement_id)."""
    return await conn.fetch(_PLAYER_UNLOCKS, player_id, game_id, after[0], after[1], limit)


async def replay(
    conn: asyncpg.Connection, *, shard: int, after_seq: int, game_ids: Sequence[str] | None = None
) -> list[asyncpg.Record]:
    """Rows journaled by `shard` after `after_seq`, oldest first (optionally only some games)."""
    return await conn.fetch(_REPLAY, shard, after_seq, None if game_ids is None else list(game_ids))
