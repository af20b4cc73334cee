"""Credentials at the edge: player tokens (HS256 JWT: `sub` = player id,
`iss`/`aud` checked, `exp` enforced; two secrets accepted while one rotates)
and API keys (hashed in PostgreSQL, cached briefly) for game servers."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from cachetools import TTLCache

from podium.persistence import api_keys
from podium.settings import Settings
from podium.wire.errors import ShardUnavailable

ANY_GAME = "*"  # the scope of a key that may write every game (not a board id)
ISSUER = AUDIENCE = "podium"


class Unauthorized(Exception):
    code = "unauthorized"


def mint_token(secret: str, player_id: str, ttl_s: int, *, issuer: str = ISSUER, audience: str = AUDIENCE,
               auth_time: int | None = None) -> str:
    """A token for `player_id`; `auth_time` is when a game server last vouched
    for the player (a refresh by the player's own token carries it forward)."""
    now = int(time.time())
    return jwt.encode({"sub": player_id, "iat": now, "exp": now + ttl_s, "iss": issuer, "aud": audience,
                       "auth_time": now if auth_time is None else auth_time}, secret, algorithm="HS256")


def verify_token(secrets: str | Sequence[str], token: str | None, player_id: str, *, issuer: str = ISSUER,
                 audience: str = AUDIENCE) -> dict[str, Any]:
    """The token's claims if it is `player_id`'s, signed with one of `secrets`
    (the current one first), unexpired, of this issuer and audience."""
    if not token:
        raise Unauthorized("a player token is required (?token= or Authorization: Bearer)")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    for n, secret in enumerate(keys):
        try:
            claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], audience=audience,
                                                issuer=issuer, options={"require": ["sub", "exp", "iss", "aud"]})
            break
        except jwt.InvalidSignatureError as exc:
            if n == len(keys) - 1:
                raise Unauthorized(f"bad player token: {exc}") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"bad player token: {exc}") from None
    if claims["sub"] != player_id:
        raise Unauthorized("this token belongs to another player")
    return claims


@dataclass(frozen=True)
class TokenKeys:
    """What a replica signs and verifies player tokens with (from Settings.token_keys())."""
    secret: str
    previous: tuple[str, ...] = ()
    issuer: str = ISSUER
    audience: str = AUDIENCE
    ttl_s: int = 7 * 24 * 3600
    refresh_max_s: int = 30 * 24 * 3600

    def mint(self, player_id: str, *, auth_time: int | None = None) -> str:
        return mint_token(self.secret, player_id, self.ttl_s, issuer=self.issuer, audience=self.audience,
                          auth_time=auth_time)

    def verify(self, token: str | None, player_id: str) -> dict[str, Any]:
        return verify_token((self.secret, *self.previous), token, player_id, issuer=self.issuer,
                            audience=self.audience)

    def refresh(self, claims: dict[str, Any], now: float | None = None) -> str:
        """A fresh token for a verified token's player, while the game server's
        vouching (`auth_time`) is younger than refresh_max_s."""
        auth_time = int(claims.get("auth_time", claims.get("iat", 0)))
        if (time.time() if now is None else now) - auth_time > self.refresh_max_s:
            raise Unauthorized("this token is too old to refresh: ask the game server for a new one")
        return self.mint(claims["sub"], auth_time=auth_time)


def token_keys(settings: Settings) -> TokenKeys:
    previous = tuple(s.strip() for s in settings.token_previous_secrets.split(",") if s.strip())
    return TokenKeys(settings.resolved_token_secret(), previous, settings.token_issuer, settings.token_audience,
                     settings.token_ttl_s, settings.token_refresh_max_s)


class KeyCache:
    """Verified keys for `ttl_s`, refused keys for `negative_ttl_s` (so a flood
    of bad keys does not become a flood of queries); both bounded in size, so
    a flood of distinct bad keys cannot grow a replica's memory. While
    PostgreSQL cannot be asked, a key verified within `stale_s` keeps working
    (a revocation cannot be read then anyway); any other key is answered
    ShardUnavailable (503, retry) rather than refused."""

    def __init__(self, pool: asyncpg.Pool, *, ttl_s: float = 30.0, negative_ttl_s: float = 5.0,
                 max_keys: int = 10_000, stale_s: float = 3600.0) -> None:
        self.pool = pool
        self._good: TTLCache[str, str] = TTLCache(max_keys, ttl_s)
        self._bad: TTLCache[str, bool] = TTLCache(max_keys, negative_ttl_s)
        self._stale: TTLCache[str, str] = TTLCache(max_keys, stale_s)

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
                scope = self._good[key] = self._stale[key] = game or ANY_GAME
                return scope
            except api_keys.KeyNotFound:
                self._bad[key] = True
                self._stale.pop(key, None)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if (known := self._stale.get(key)) is not None:
                    return known
                raise ShardUnavailable("PostgreSQL did not answer the API key lookup; retry shortly") from exc
        raise Unauthorized("unknown or revoked API key")
