"""Peer 3: the industry pattern. FastAPI + Redis sorted sets, the unlock
journaled in PostgreSQL first (unique key: a replay is a duplicate), then
ZINCRBY on the game's global and regional sorted sets. Offered per request
(POST /unlock) and as a batch (POST /unlocks: one unnest INSERT ... RETURNING,
then one pipelined round of ZINCRBY). Reads: ZREVRANK / ZREVRANGE.
Ties order by member name (a sorted set has no second key); a crash between
the commit and the ZINCRBY leaves the board short (no replay)."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from load.peers.common import UNLOCKS_SCHEMA, Peer, UnlockIn, lifespan

SCHEMA = UNLOCKS_SCHEMA
INSERT_MANY = """
INSERT INTO unlocks (player_id, game_id, achievement_id, points)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
ON CONFLICT DO NOTHING RETURNING player_id, game_id, achievement_id
"""
MAX_BATCH = 1000

peer = Peer()
app = FastAPI(lifespan=lifespan(peer, SCHEMA))


def board(game_id: str, region: str | None = None) -> str:
    return f"{peer.prefix}board:{game_id}" + (f":{region}" if region else "")


@app.post("/unlock")
async def unlock(u: UnlockIn) -> dict[str, object]:
    points = peer.points_of(u.game_id, u.achievement_id)
    new = await peer.pool.fetchval(
        "INSERT INTO unlocks (player_id, game_id, achievement_id, points) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true", u.player_id, u.game_id, u.achievement_id, points)
    if not new:
        return {"status": "duplicate"}
    async with peer.redis.pipeline(transaction=False) as pipe:
        pipe.zincrby(board(u.game_id), points, u.player_id)
        if u.region:
            pipe.zincrby(board(u.game_id, u.region), points, u.player_id)
        await pipe.execute()
    return {"status": "accepted"}


@app.post("/unlocks")
async def unlocks(batch: list[UnlockIn]) -> list[dict[str, object]]:
    if len(batch) > MAX_BATCH:
        raise HTTPException(413, f"at most {MAX_BATCH} unlocks per batch")
    points = [peer.points_of(u.game_id, u.achievement_id) for u in batch]
    rows = await peer.pool.fetch(INSERT_MANY, [u.player_id for u in batch], [u.game_id for u in batch],
                                 [u.achievement_id for u in batch], points)
    new = {(r["player_id"], r["game_id"], r["achievement_id"]) for r in rows}
    statuses: list[dict[str, object]] = []
    async with peer.redis.pipeline(transaction=False) as pipe:
        for u, pts in zip(batch, points, strict=True):
            key = (u.player_id, u.game_id, u.achievement_id)
            if key in new:
                new.discard(key)  # a repeat inside one batch counts once
                pipe.zincrby(board(u.game_id), pts, u.player_id)
                if u.region:
                    pipe.zincrby(board(u.game_id, u.region), pts, u.player_id)
                statuses.append({"status": "accepted"})
            else:
                statuses.append({"status": "duplicate"})
        await pipe.execute()
    return statuses


@app.get("/games/{game_id}/players/{player_id}/rank")
async def rank(game_id: str, player_id: str) -> dict[str, object]:
    async with peer.redis.pipeline(transaction=False) as pipe:
        pipe.zrevrank(board(game_id), player_id)
        pipe.zscore(board(game_id), player_id)
        pipe.zcard(board(game_id))
        at, score, total = await pipe.execute()
    return {"rank": None if at is None else at + 1, "points": score, "total": total}


@app.get("/games/{game_id}/top")
async def top(game_id: str, limit: int = 50) -> list[dict[str, object]]:
    rows: Any = await peer.redis.zrevrange(board(game_id), 0, limit - 1, withscores=True)
    return [{"rank": i + 1, "player_id": p.decode(), "points": int(s)} for i, (p, s) in enumerate(rows)]


@app.get("/games/{game_id}/players/{player_id}/around")
async def around(game_id: str, player_id: str, k: int = 5) -> list[dict[str, object]]:
    at: Any = await peer.redis.zrevrank(board(game_id), player_id)
    if at is None:
        return []
    rows: Any = await peer.redis.zrevrange(board(game_id), max(0, at - k), at + k, withscores=True)
    return [{"player_id": p.decode(), "points": int(s)} for p, s in rows]
