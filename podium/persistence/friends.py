"""Friend edges and the inbox in PostgreSQL (migrations/006_friends.sql).
A change runs in one transaction that locks the players it touches, so the
cap holds under concurrent changes; what to write is decided by the pure
planner (podium/core/friendship.py), passed in as `decide`."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import asyncpg

from podium.persistence import copy_text

T = TypeVar("T")
Edge = tuple[str, str, int]  # (player_id, friend_id, state)

_LOCK_PLAYERS = """
SELECT pg_advisory_xact_lock(h)
FROM (SELECT DISTINCT hashtextextended('podium-friends:' || p, 0) AS h FROM unnest($1::text[]) AS p ORDER BY h) x
"""
_EDGES_OF_PAIRS = """
SELECT e.player_id, e.friend_id, e.state FROM friend_edges e
JOIN unnest($1::text[], $2::text[]) AS t(p, f) ON e.player_id = t.p AND e.friend_id = t.f
"""
_COUNTS = """
SELECT player_id, count(*) AS n FROM friend_edges
WHERE player_id = ANY($1::text[]) AND state <> 3 GROUP BY player_id
"""
_UPSERT = """
INSERT INTO friend_edges (player_id, friend_id, state, player_shard)
SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::int[])
ON CONFLICT (player_id, friend_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
"""
_DELETE = """
DELETE FROM friend_edges e USING unnest($1::text[], $2::text[]) AS t(p, f)
WHERE e.player_id = t.p AND e.friend_id = t.f
"""
_FRIENDS_OF = "SELECT friend_id FROM friend_edges WHERE player_id = $1 AND state = 0"


async def change_pairs(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]],
                       decide: Callable[[dict[tuple[str, str], int], dict[str, int]], T],
                       writes_of: Callable[[T], dict[tuple[str, str], int | None]],
                       shard_of: Callable[[str], int]) -> T:
    """Lock the players of `pairs` ((player, friend) pairs), read the edges
    of each pair both ways and the players' counts, let `decide` plan, write
    what it planned (`writes_of` the plan), commit. Returns the plan."""
    players = sorted({p for pair in pairs for p in pair})
    async with conn.transaction():
        await conn.execute(_LOCK_PLAYERS, players)
        a = [x for p, f in pairs for x in (p, f)]
        b = [x for p, f in pairs for x in (f, p)]
        return await _decide_and_write(conn, players, a, b, decide, writes_of, shard_of)


async def _decide_and_write(conn: asyncpg.Connection, players: Sequence[str], a: list[str], b: list[str],
                            decide: Callable[[dict[tuple[str, str], int], dict[str, int]], T],
                            writes_of: Callable[[T], dict[tuple[str, str], int | None]],
                            shard_of: Callable[[str], int]) -> T:
    edges = {(r["player_id"], r["friend_id"]): r["state"] for r in await conn.fetch(_EDGES_OF_PAIRS, a, b)}
    counts = {r["player_id"]: r["n"] for r in await conn.fetch(_COUNTS, list(players))}
    planned = decide(edges, counts)
    writes = writes_of(planned)
    put = [(p, f, s) for (p, f), s in writes.items() if s is not None]
    gone = [(p, f) for (p, f), s in writes.items() if s is None]
    if put:
        await conn.execute(_UPSERT, [p for p, _, _ in put], [f for _, f, _ in put], [s for _, _, s in put],
                           [shard_of(p) for p, _, _ in put])
    if gone:
        await conn.execute(_DELETE, [p for p, _ in gone], [f for _, f in gone])
    return planned


async def friends_of(conn: asyncpg.Connection, player_id: str) -> list[str]:
    return [r["friend_id"] for r in await conn.fetch(_FRIENDS_OF, player_id)]


async def edges_between(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> list[Edge]:
    """The current state of each (player, friend) edge that exists."""
    rows = await conn.fetch(_EDGES_OF_PAIRS, [p for p, _ in pairs], [f for _, f in pairs])
    return [(r["player_id"], r["friend_id"], r["state"]) for r in rows]


async def stream_shard(conn: asyncpg.Connection, shard: int, sink: Callable[[list[Edge]], None]) -> int:
    """Every edge of the players a player shard owns, streamed (recovery)."""
    return await copy_text.stream(
        conn, "SELECT player_id, friend_id, state FROM friend_edges WHERE player_shard = $1", [shard],
        row=lambda f: (f[0] or "", f[1] or "", int(f[2] or 0)), sink=sink)


# ---- bulk import (podium friends import) ---------------------------------------
_IMPORT_TABLES = """
CREATE TEMP TABLE friend_pairs (a text NOT NULL, b text NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE friend_shards (player_id text PRIMARY KEY, player_shard int NOT NULL) ON COMMIT DROP;
"""
# Two plain equality joins (hash joins), not one join with an OR.
_IMPORT_BLOCKED = [
    "DELETE FROM friend_pairs p USING friend_edges e WHERE e.state = 3 AND e.player_id = p.a AND e.friend_id = p.b",
    "DELETE FROM friend_pairs p USING friend_edges e WHERE e.state = 3 AND e.player_id = p.b AND e.friend_id = p.a",
]
# New edges: a duplicate pair (either direction) only conflicts. In key order,
# so the primary key's btree is filled page after page, not at random.
_IMPORT_INSERT = """
INSERT INTO friend_edges (player_id, friend_id, state, player_shard)
SELECT d.p, d.f, 0, s.player_shard
FROM (SELECT a AS p, b AS f FROM friend_pairs UNION ALL SELECT b, a FROM friend_pairs) d
JOIN friend_shards s ON s.player_id = d.p
ORDER BY d.p, d.f
ON CONFLICT (player_id, friend_id) DO NOTHING
"""
_IMPORT_ACCEPT = """
UPDATE friend_edges e SET state = 0, updated_at = now()
FROM (SELECT a AS p, b AS f FROM friend_pairs UNION SELECT b, a FROM friend_pairs) d
WHERE e.player_id = d.p AND e.friend_id = d.f AND e.state IN (1, 2)
"""
_IMPORT_OVER_CAP = """
SELECT e.player_id, count(*) AS n FROM friend_edges e JOIN friend_shards s USING (player_id)
WHERE e.state <> 3 GROUP BY e.player_id HAVING count(*) > $1 ORDER BY n DESC LIMIT 5
"""


class OverCap(Exception):
    def __init__(self, players: list[tuple[str, int]], cap: int) -> None:
        listed = ", ".join(f"{p} ({n})" for p, n in players)
        super().__init__(f"the import would give players more than {cap} friends: {listed}; nothing was imported")
        self.players = players


async def import_pairs(conn: asyncpg.Connection, pairs: Iterable[tuple[str, str]], shard_of: Callable[[str], int],
                       cap: int) -> dict[str, int]:
    """Make every (a, b) pair friends (both directions) in one transaction:
    pairs where either side blocks the other are skipped; pending invites
    between them become friendships; if any player would pass `cap`, nothing
    is imported (OverCap). Returns counts."""
    players: set[str] = set()

    def distinct_players() -> Iterator[tuple[str, str]]:
        for a, b in pairs:
            if a != b:
                players.add(a)
                players.add(b)
                yield a, b

    async with conn.transaction():
        await conn.execute("SET LOCAL work_mem = '256MB'")  # the sort above, in memory
        await conn.execute(_IMPORT_TABLES)
        await conn.copy_records_to_table("friend_pairs", records=distinct_players())
        await conn.copy_records_to_table("friend_shards", records=((p, shard_of(p)) for p in players))
        await conn.execute("ANALYZE friend_pairs; ANALYZE friend_shards")
        blocked = sum([_count(await conn.execute(sql)) for sql in _IMPORT_BLOCKED])
        inserted = _count(await conn.execute(_IMPORT_INSERT))
        accepted = _count(await conn.execute(_IMPORT_ACCEPT))
        over = await conn.fetch(_IMPORT_OVER_CAP, cap)
        if over:
            raise OverCap([(r["player_id"], r["n"]) for r in over], cap)
        sent = int(await conn.fetchval("SELECT count(*) FROM friend_pairs")) + blocked
    return {"pairs": sent, "edges_written": inserted + accepted, "blocked_skipped": blocked}


def _count(status: str) -> int:
    """The row count of a command status ('INSERT 0 12', 'DELETE 3')."""
    return int(status.split()[-1])


# ---- the inbox ------------------------------------------------------------------
_INBOX_APPEND = """
INSERT INTO inbox (player_id, kind, body)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
RETURNING id, player_id, created_at
"""
# Keep the newest `keep` per player: one index probe per player touched.
_INBOX_TRIM = """
DELETE FROM inbox i USING (
    SELECT p, (SELECT x.id FROM inbox x WHERE x.player_id = p ORDER BY x.id DESC OFFSET $2 LIMIT 1) AS cut
    FROM unnest($1::text[]) AS p
) c
WHERE c.cut IS NOT NULL AND i.player_id = c.p AND i.id <= c.cut
"""
_INBOX_READ = """
SELECT id, kind, body, created_at FROM inbox
WHERE player_id = $1 AND id > $2 AND created_at > now() - make_interval(days => $3)
ORDER BY id LIMIT $4
"""
_INBOX_CURSOR = "SELECT read_upto FROM inbox_cursors WHERE player_id = $1"
_INBOX_MARK = """
INSERT INTO inbox_cursors (player_id, read_upto) VALUES ($1, $2)
ON CONFLICT (player_id) DO UPDATE SET read_upto = GREATEST(inbox_cursors.read_upto, EXCLUDED.read_upto),
                                      updated_at = now()
RETURNING read_upto
"""
_INBOX_EXPIRE = "DELETE FROM inbox WHERE created_at < now() - make_interval(days => $1)"


async def inbox_append(conn: asyncpg.Connection, items: Sequence[tuple[str, str, bytes]], keep: int) -> list[Any]:
    """Insert (player, kind, JSON body) items in one transaction and trim each
    player touched to their newest `keep`; returns (id, player_id, created_at)."""
    async with conn.transaction():
        rows = await conn.fetch(_INBOX_APPEND, [p for p, _, _ in items], [k for _, k, _ in items],
                                [b.decode() for _, _, b in items])
        await conn.execute(_INBOX_TRIM, sorted({p for p, _, _ in items}), keep)
    return rows


async def inbox_items(conn: asyncpg.Connection, player_id: str, after: int, limit: int, days: int) -> list[Any]:
    """Items after `after` (oldest first, within `days`)."""
    return await conn.fetch(_INBOX_READ, player_id, after, days, limit)


async def inbox_cursor(conn: asyncpg.Connection, player_id: str) -> int:
    """How far the player has marked their inbox read (0: nothing yet)."""
    return int(await conn.fetchval(_INBOX_CURSOR, player_id) or 0)


async def inbox_mark(conn: asyncpg.Connection, player_id: str, upto: int) -> int:
    """Move the read cursor forward (never back); returns it."""
    return int(await conn.fetchval(_INBOX_MARK, player_id, upto))


async def inbox_expire(conn: asyncpg.Connection, days: int) -> int:
    return _count(await conn.execute(_INBOX_EXPIRE, days))
