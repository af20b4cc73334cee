"""Peer 2: the reference leaderboard in ../shared/seeds/reference-leaderboard-tree.md.
Per submit, one transaction: lock the player's leaderboard row (FOR UPDATE),
record the unlock (the game-session row; unique, so a replay is a duplicate),
add the points, compute the new rank with a COUNT query, commit; then
invalidate the cached top-N in Redis. Top pages are served from that cache
(5 min TTL) and rebuilt from an index scan on a miss; ranks by COUNT."""
from __future__ import annotations

import orjson
from fastapi import FastAPI

from load.peers.common import UNLOCKS_SCHEMA, Peer, UnlockIn, lifespan

SCHEMA = UNLOCKS_SCHEMA + """
CREATE TABLE IF NOT EXISTS leaderboard (
    game_id text NOT NULL, player_id text NOT NULL, points bigint NOT NULL, reached_at timestamptz NOT NULL,
    PRIMARY KEY (game_id, player_id)
);
CREATE INDEX IF NOT EXISTS leaderboard_order ON leaderboard (game_id, points DESC, reached_at, player_id);
"""

COUNT_ABOVE = """
SELECT count(*) + 1 FROM leaderboard
WHERE game_id = $1 AND (points > $2 OR (points = $2 AND (reached_at, player_id) < ($3, $4)))
"""
TOP_N = 100
CACHE_TTL_S = 300

peer = Peer()
app = FastAPI(lifespan=lifespan(peer, SCHEMA))


def _top_key(game_id: str) -> str:
    return f"{peer.prefix}top_leaderboard:{game_id}"


@app.post("/submit")
async def submit(u: UnlockIn) -> dict[str, object]:
    points = peer.points_of(u.game_id, u.achievement_id)
    async with peer.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO leaderboard (game_id, player_id, points, reached_at) "
                           "VALUES ($1, $2, 0, now()) ON CONFLICT DO NOTHING", u.game_id, u.player_id)
        await conn.fetchrow("SELECT points FROM leaderboard WHERE game_id = $1 AND player_id = $2 FOR UPDATE",
                            u.game_id, u.player_id)
        new = await conn.fetchval(
            "INSERT INTO unlocks (player_id, game_id, achievement_id, points) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING true", u.player_id, u.game_id, u.achievement_id, points)
        if not new:
            return {"status": "duplicate"}
        row = await conn.fetchrow(
            "UPDATE leaderboard SET points = points + $3, reached_at = now() WHERE game_id = $1 AND player_id = $2 "
            "RETURNING points, reached_at", u.game_id, u.player_id, points)
        rank = await conn.fetchval(COUNT_ABOVE, u.game_id, row["points"], row["reached_at"], u.player_id)
    await peer.redis.delete(_top_key(u.game_id))
    return {"status": "accepted", "rank": rank, "points": row["points"]}


@app.get("/games/{game_id}/players/{player_id}/rank")
async def rank(game_id: str, player_id: str) -> dict[str, object]:
    async with peer.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT points, reached_at FROM leaderboard WHERE game_id = $1 AND player_id = $2",
                                  game_id, player_id)
        if row is None:
            return {"rank": None}
        return {"rank": await conn.fetchval(COUNT_ABOVE, game_id, row["points"], row["reached_at"], player_id),
                "points": row["points"]}


@app.get("/games/{game_id}/top")
async def top(game_id: str, limit: int = 50) -> list[dict[str, object]]:
    cached = await peer.redis.get(_top_key(game_id))
    if cached is None:
        rows = await peer.pool.fetch("SELECT player_id, points FROM leaderboard WHERE game_id = $1 "
                                     "ORDER BY points DESC, reached_at, player_id LIMIT $2", game_id, TOP_N)
        cached = orjson.dumps([dict(r) for r in rows])
        await peer.redis.set(_top_key(game_id), cached, ex=CACHE_TTL_S)
    return orjson.loads(cached)[:limit]


@app.get("/games/{game_id}/players/{player_id}/around")
async def around(game_id: str, player_id: str, k: int = 5) -> list[dict[str, object]]:
    me = await rank(game_id, player_id)
    if me["rank"] is None:
        return []
    start = max(0, int(me["rank"]) - 1 - k)  # type: ignore[call-overload]
    rows = await peer.pool.fetch("SELECT player_id, points FROM leaderboard WHERE game_id = $1 "
                                 "ORDER BY points DESC, reached_at, player_id OFFSET $2 LIMIT $3",
                                 game_id, start, 2 * k + 1)
    return [dict(r) for r in rows]
