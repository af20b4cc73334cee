"""Peer 1: the design in ../shared/seeds/performance-review-*.md. A synchronous
unlock that journals the unlock, adds the points to the player's row, then
recalculates the game's whole leaderboard in PostgreSQL (a window sort of every
player of the game) before it answers. Recalculations of one game are
serialised with an advisory lock, which a correct version of it needs (two
concurrent full re-rankings of one game deadlock on each other's rows).
The rank is read back from the recalculated row and returned."""
from __future__ import annotations

from fastapi import FastAPI

from load.peers.common import UNLOCKS_SCHEMA, Peer, UnlockIn, lifespan

SCHEMA = UNLOCKS_SCHEMA + """
CREATE TABLE IF NOT EXISTS leaderboard (
    game_id text NOT NULL, player_id text NOT NULL, points bigint NOT NULL, reached_at timestamptz NOT NULL,
    rank integer, PRIMARY KEY (game_id, player_id)
);
CREATE INDEX IF NOT EXISTS leaderboard_rank ON leaderboard (game_id, rank);
"""

RECALCULATE = """
UPDATE leaderboard l SET rank = r.rank
FROM (SELECT player_id, row_number() OVER (ORDER BY points DESC, reached_at, player_id) AS rank
      FROM leaderboard WHERE game_id = $1) r
WHERE l.game_id = $1 AND l.player_id = r.player_id AND l.rank IS DISTINCT FROM r.rank
"""

peer = Peer()
app = FastAPI(lifespan=lifespan(peer, SCHEMA))


@app.post("/unlock")
async def unlock(u: UnlockIn) -> dict[str, object]:
    points = peer.points_of(u.game_id, u.achievement_id)
    async with peer.pool.acquire() as conn, conn.transaction():
        # One unlock of a game at a time: a full re-ranking rewrites rows another one would lock.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", u.game_id)
        new = await conn.fetchval(
            "INSERT INTO unlocks (player_id, game_id, achievement_id, points) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING true", u.player_id, u.game_id, u.achievement_id, points)
        if not new:
            return {"status": "duplicate"}
        await conn.execute(
            "INSERT INTO leaderboard (game_id, player_id, points, reached_at) VALUES ($1, $2, $3, now()) "
            "ON CONFLICT (game_id, player_id) DO UPDATE SET points = leaderboard.points + EXCLUDED.points, "
            "reached_at = now()", u.game_id, u.player_id, points)
        await conn.execute(RECALCULATE, u.game_id)
        rank = await conn.fetchval("SELECT rank FROM leaderboard WHERE game_id = $1 AND player_id = $2",
                                   u.game_id, u.player_id)
    return {"status": "accepted", "rank": rank}


@app.get("/games/{game_id}/players/{player_id}/rank")
async def rank(game_id: str, player_id: str) -> dict[str, object]:
    row = await peer.pool.fetchrow("SELECT rank, points FROM leaderboard WHERE game_id = $1 AND player_id = $2",
                                   game_id, player_id)
    return {"rank": row["rank"], "points": row["points"]} if row else {"rank": None}


@app.get("/games/{game_id}/top")
async def top(game_id: str, limit: int = 50) -> list[dict[str, object]]:
    rows = await peer.pool.fetch("SELECT player_id, points, rank FROM leaderboard WHERE game_id = $1 "
                                 "ORDER BY rank LIMIT $2", game_id, limit)
    return [dict(r) for r in rows]


@app.get("/games/{game_id}/players/{player_id}/around")
async def around(game_id: str, player_id: str, k: int = 5) -> list[dict[str, object]]:
    rows = await peer.pool.fetch(
        "SELECT player_id, points, rank FROM leaderboard WHERE game_id = $1 AND rank BETWEEN "
        "(SELECT rank FROM leaderboard WHERE game_id = $1 AND player_id = $2) - $3 AND "
        "(SELECT rank FROM leaderboard WHERE game_id = $1 AND player_id = $2) + $3 ORDER BY rank",
        game_id, player_id, k)
    return [dict(r) for r in rows]
