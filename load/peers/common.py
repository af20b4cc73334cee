"""What the three peers share: env configuration, the asyncpg pool and Redis
client opened in the app's lifespan, and the catalog (achievement points).
Each peer is a plain FastAPI app served by uvicorn with 2 workers, as its
authors would run it:

    DATABASE_URL=... REDIS_URL=... uvicorn load.peers.zset:app --workers 2
"""
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict

CATALOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS achievements (
    game_id text NOT NULL, achievement_id text NOT NULL, points integer NOT NULL,
    PRIMARY KEY (game_id, achievement_id)
);
"""


# Every peer journals unlocks here; the key makes a replayed unlock a duplicate.
UNLOCKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS unlocks (
    player_id text NOT NULL, game_id text NOT NULL, achievement_id text NOT NULL, points integer NOT NULL,
    unlocked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (player_id, game_id, achievement_id)
);
"""


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    player_id: str
    game_id: str
    achievement_id: str
    region: str | None = None


@dataclass
class Peer:
    pool: asyncpg.Pool = field(init=False)
    redis: aioredis.Redis = field(init=False)
    prefix: str = os.environ.get("REDIS_PREFIX", "peer:")
    points: dict[tuple[str, str], int] = field(default_factory=dict)

    def points_of(self, game_id: str, achievement_id: str) -> int:
        points = self.points.get((game_id, achievement_id))
        if points is None:
            raise HTTPException(404, f"unknown achievement {game_id}/{achievement_id}")
        return points


def lifespan(peer: Peer, schema: str):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def run(_: FastAPI) -> AsyncIterator[None]:
        peer.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2,
                                              max_size=int(os.environ.get("POOL_SIZE", "16")))
        peer.redis = aioredis.from_url(os.environ["REDIS_URL"])
        async with peer.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(42)")  # two workers start at once
            try:
                await conn.execute(CATALOG_SCHEMA + schema)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(42)")
            rows = await conn.fetch("SELECT game_id, achievement_id, points FROM achievements")
        peer.points = {(r["game_id"], r["achievement_id"]): r["points"] for r in rows}
        yield
        await peer.pool.close()
        await peer.redis.aclose()

    return run
