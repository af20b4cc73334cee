"""Credentials at the edge: player tokens (HS256 JWT, `sub` = player id) for
push sockets, and API keys (hashed in PostgreSQL, cached briefly) for ingest."""
from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
import jwt

from persistence import api_keys

ALL_GAMES = "*"


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


@dataclass(slots=True)
class KeyCache:
    """Verified keys for `ttl_s`, refused keys for `negative_ttl_s` (so a flood
    of bad keys does not become a flood of queries)."""

    pool: asyncpg.Pool
    ttl_s: float = 30.0
    negative_ttl_s: float = 5.0
    _seen: dict[str, tuple[float, str | None]] | None = None

    async def scope(self, key: str | None) -> str:
        """The game the key may write (ALL_GAMES for every game); Unauthorized otherwise."""
        if not key:
            raise Unauthorized("an API key is required (X-API-Key header or ?api_key=)")
        seen = self._seen if self._seen is not None else {}
        self._seen = seen
        now = time.monotonic()
        hit = seen.get(key)
        if hit is None or hit[0] < now:
            try:
                async with self.pool.acquire() as conn:
                    game = await api_keys.lookup(conn, key)
                hit = (now + self.ttl_s, game or ALL_GAMES)
            except api_keys.KeyNotFound:
                hit = (now + self.negative_ttl_s, None)
            seen[key] = hit
        if hit[1] is None:
            raise Unauthorized("unknown or revoked API key")
        return hit[1]
