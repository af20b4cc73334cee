"""The journal: unlocks (table `unlocks`) and stat updates (`stat_updates`,
sharing the unlocks' seq), batched appends and replay reads. Callers pass
columns; one INSERT ... SELECT FROM unnest(...) per table per batch. Each
append (`writing`) holds its shard's writer lock until it ends, so `settle`
can tell when no append of a shard is still open (a COMMIT whose reply was
lost)."""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
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

# A transaction-scoped advisory lock per player shard, (class, shard): held by every append
# until it commits or aborts; `settle` takes it, so it returns only once none is open.
_WRITER_LOCK_CLASS = 0x706F6431  # "pod1"
_LOCK = "SELECT pg_advisory_xact_lock($1::int4, $2::int4)"
# Advisory locks are server-wide, keyed by (database, classid, objid, objsubid): without the database
# another Podium database on the same server (a test, staging) holds "the same" lock of its shard N.
_HOLDS = """
    l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2 AND l.granted
    AND l.pid <> pg_backend_pid()
"""
# Who holds the lock, and in which transaction: a backend (pid, backend_start) and its transaction's
# start. Read outside any transaction (pg_stat_activity is a per-transaction snapshot).
_HOLDERS = f"""
SELECT a.pid, a.backend_start, a.xact_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE {_HOLDS} AND a.xact_start IS NOT NULL
"""
# Terminates a holder only if, in this one statement, it still holds the lock in the very transaction
# seen before the wait: one that committed meanwhile, its connection reused by another transaction
# (a pooled connection's next append, or any other work), is left alone.
_TERMINATE_HOLDERS = f"""
SELECT count(pg_terminate_backend(a.pid))
FROM pg_stat_activity a
JOIN unnest($3::int4[], $4::timestamptz[], $5::timestamptz[]) AS seen(pid, backend_start, xact_start)
  ON a.pid = seen.pid AND a.backend_start = seen.backend_start AND a.xact_start = seen.xact_start
WHERE EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND {_HOLDS})
"""

_REPLAY = """
SELECT u.seq, u.player_id, u.game_id, u.achievement_id, u.points, u.unlocked_at, p.region
FROM unlocks u LEFT JOIN players p USING (player_id)
WHERE u.player_shard = $1 AND u.seq > $2 AND ($3::text[] IS NULL OR u.game_id = ANY($3::text[]))
ORDER BY u.seq
"""


@contextlib.asynccontextmanager
async def writing(conn: asyncpg.Connection, shard: int) -> AsyncIterator[None]:
    """One append's transaction, holding `shard`'s writer lock until it ends."""
    async with conn.transaction():
        await conn.execute(_LOCK, _WRITER_LOCK_CLASS, shard)  # uncontended: one writer per shard
        yield


async def insert_unlocks(conn: asyncpg.Connection, *, shard: int, player_ids: Sequence[str], game_ids: Sequence[str],
                         achievement_ids: Sequence[str], points: Sequence[int], regions: Sequence[str | None],
                         unlocked_at: datetime, client_at: Sequence[datetime | None]) -> list[asyncpg.Record]:
    """Inside `writing`: insert unlocks, skipping those journaled already; returns
    (seq, player_id, game_id, achievement_id) of the new rows."""
    if not player_ids:
        return []
    return await conn.fetch(_APPEND, player_ids, game_ids, achievement_ids, points, regions, unlocked_at,
                            client_at, shard)


async def record_regions(conn: asyncpg.Connection, region_updates: dict[str, str], players: set[str]) -> None:
    """Inside `writing`: the new regions of these players (each has a new row in this transaction)."""
    moved = players & region_updates.keys()
    if moved:
        await conn.execute(_UPSERT_REGIONS, list(moved), [region_updates[p] for p in moved])


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
    async with writing(conn, shard):
        rows = await insert_unlocks(conn, shard=shard, player_ids=player_ids, game_ids=game_ids,
                                    achievement_ids=achievement_ids, points=points, regions=regions,
                                    unlocked_at=unlocked_at, client_at=client_at)
        await record_regions(conn, region_updates, {r["player_id"] for r in rows})
        return rows


_EVENTS_JOURNALED = """
SELECT EXISTS (SELECT 1 FROM stat_updates s WHERE s.player_id = t.p AND s.game_id = t.g AND s.event_id = t.e)
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(p, g, e, n)
ORDER BY t.n
"""

# Seqs in batch order (ORDER BY the index: nextval runs after the sort), so replaying by seq
# walks a stat's updates in the order the plan applied them.
_APPEND_STATS = """
INSERT INTO stat_updates (player_id, game_id, stat_id, event_id, op, value, value_after, region, updated_at,
                          client_at, player_shard)
SELECT t.p, t.g, t.s, t.e, t.o, t.v, t.va, t.r, $9::timestamptz, t.cat, $11
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[],
            $10::timestamptz[]) WITH ORDINALITY AS t(p, g, s, e, o, v, va, r, cat, n)
ORDER BY t.n
RETURNING seq, player_id, game_id, event_id
"""


# The unique key of a stat update's event id (migrations/007_stats.sql).
_EVENT_KEY = "stat_updates_player_id_game_id_event_id_key"


class EventJournaled(Exception):
    """A stat update's event id is journaled already: the append's transaction is aborted."""


async def stat_events_journaled(conn: asyncpg.Connection, player_ids: Sequence[str], game_ids: Sequence[str],
                                event_ids: Sequence[str]) -> list[bool]:
    """Whether each (player, game, event id) is in the stat journal (its unique index answers each)."""
    if not player_ids:
        return []
    return [r[0] for r in await conn.fetch(_EVENTS_JOURNALED, player_ids, game_ids, event_ids)]


async def insert_stats(conn: asyncpg.Connection, *, shard: int, player_ids: Sequence[str], game_ids: Sequence[str],
                       stat_ids: Sequence[str], event_ids: Sequence[str], ops: Sequence[str], values: Sequence[int],
                       values_after: Sequence[int], regions: Sequence[str | None], updated_at: datetime,
                       client_at: Sequence[datetime | None]) -> list[int]:
    """Inside `writing`: insert stat updates; returns their seqs, index-aligned
    (increasing with the index). Raises EventJournaled, the transaction then
    aborted, if one of the event ids is journaled already: a unique violation
    fails the transaction rather than skip a row whose value chain assumed it."""
    if not player_ids:
        return []
    try:
        rows = await conn.fetch(_APPEND_STATS, player_ids, game_ids, stat_ids, event_ids, ops, values,
                                values_after, regions, updated_at, client_at, shard)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == _EVENT_KEY:
            raise EventJournaled(exc.detail) from exc
        raise
    seq_of = {(r["player_id"], r["game_id"], r["event_id"]): r["seq"] for r in rows}
    seqs = [seq_of[key] for key in zip(player_ids, game_ids, event_ids, strict=True)]
    if any(a >= b for a, b in itertools.pairwise(seqs)):  # replay would fold a stat's chain out of order
        raise RuntimeError("stat_updates seqs are not in batch order; the append is rolled back")
    return seqs


async def settle(conn: asyncpg.Connection, *, shard: int, timeout_s: float) -> None:
    """Return once no append of `shard` is open on any connection: each has
    committed or rolled back, and what it committed is visible to reads that
    start after this. An append whose reply was lost (a command_timeout during
    COMMIT, a dropped connection) may run on in its server process for a while;
    one that was open when the settle began and is still open, in that same
    transaction, after `timeout_s` is terminated (its client gave up on it; its
    outcome is then decided either way) and TimeoutError is raised, for the
    caller to settle again before it reads. Only this database's appends count.
    `conn` must not be inside a transaction."""
    seen = await conn.fetch(_HOLDERS, _WRITER_LOCK_CLASS, shard)
    try:
        async with conn.transaction():
            await conn.execute(_LOCK, _WRITER_LOCK_CLASS, shard, timeout=timeout_s)
    except TimeoutError:
        ended = await conn.fetchval(_TERMINATE_HOLDERS, _WRITER_LOCK_CLASS, shard, [r["pid"] for r in seen],
                                    [r["backend_start"] for r in seen], [r["xact_start"] for r in seen])
        raise TimeoutError(f"an append of player shard {shard} was still open after {timeout_s:g}s; "
                           f"{ended} terminated") from None


_JOURNALED = """
SELECT EXISTS (SELECT 1 FROM unlocks u WHERE u.player_id = t.p AND u.game_id = t.g AND u.achievement_id = t.a)
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(p, g, a, n)
ORDER BY t.n
"""


async def journaled(conn: asyncpg.Connection, player_ids: Sequence[str], game_ids: Sequence[str],
                    achievement_ids: Sequence[str]) -> list[bool]:
    """Whether each unlock is in the journal (its unique index answers each)."""
    return [r[0] for r in await conn.fetch(_JOURNALED, player_ids, game_ids, achievement_ids)]


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


# The player's region as _REPLAY reads it: a region change may come with a stat row only.
_REPLAY_STATS = """
SELECT s.seq, s.player_id, s.game_id, s.stat_id, s.op, s.value, s.value_after, s.updated_at, p.region
FROM stat_updates s LEFT JOIN players p USING (player_id)
WHERE s.player_shard = $1 AND s.seq > $2
ORDER BY s.seq
"""


async def replay_stats(conn: asyncpg.Connection, *, shard: int, after_seq: int) -> list[asyncpg.Record]:
    """Stat updates journaled by `shard` after `after_seq`, oldest first, with the player's region."""
    return await conn.fetch(_REPLAY_STATS, shard, after_seq)

