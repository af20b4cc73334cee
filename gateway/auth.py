"""Credentials at the edge: player tokens (HS256 JWT, `sub` = player id) for
push sockets, and API keys (hashed in PostgreSQL, cached briefly) for ingest."""
from __future__ import annotations

import time

import asyncpg
import jwt
from cachetools import TTLCache

from persistence import api_keys

ANY_GAME = "*"  # the scope of a key that may write every game (not a board id)


class Unauthorized(Exception):
    code = "unauthorized"


def mint_token(secret: str, player_id: str, ttl_s: int) -> str:
    now = int(time.time())
    return jwt.encode({"sub": player_id, "iat": now, "exp": now + ttl_s}, secret, algorithm="HS256")


def verify_token(secret: str, token: str | None, player_id: str) -> None:
    if not token:
        raise Unauthorized("a player token is required (?token= or Authorization: Bearer)")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"bad player token: {exc}") from exc
    if claims["sub"] != player_id:
        raise Unauthorized("this token belongs to another player")


class KeyCache:
    """Verified keys for `ttl_s`, refused keys for `negative_ttl_s` (so a flood
    of bad keys does not become a flood of queries); both bounded in size, so
    a flood of distinct bad keys cannot grow a replica's memory."""

    def __init__(self, pool: asyncpg.Pool, *, ttl_s: float = 30.0, negative_ttl_s: float = 5.0,
                 max_keys: int = 10_000) -> None:
        self.pool = pool
        self._good: TTLCache[str, str] = TTLCache(max_keys, ttl_s)
        self._bad: TTLCache[str, bool] = TTLCache(max_keys, negative_ttl_s)

    async def scope(self, key: str | None) -> str:
        """The game the key may write (ANY_GAME for every game); Unauthorized otherwise."""
        if not key:
            raise Unauthorized("an API key is required (X-API-Key header or ?api_key=)")
        scope = self._good.get(key)
        if scope is not None:
            return scope
        if key not in self._bad:
            try:
                async with self.pool.acquire() as conn:
                    game = await api_keys.lookup(conn, key)
                scope = self._good[key] = game or ANY_GAME
                return scope
            except api_keys.KeyNotFound:
                self._bad[key] = True
        raise Unauthorized("unknown or revoked API key")
