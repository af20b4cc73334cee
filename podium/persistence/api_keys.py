"""API keys for game servers and clients: created once, stored as sha256 only."""
from __future__ import annotations

import hashlib
import secrets

import asyncpg

KEY_PREFIX = "pk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create(conn: asyncpg.Connection, *, game_id: str | None, label: str | None = None) -> str:
    """Create a key (scoped to one game, or every game when game_id is None); returns it once."""
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
    await conn.execute(
        "INSERT INTO api_keys (key_id, key_hash, game_id, label) VALUES ($1, $2, $3, $4)",
        key_id, hash_key(key), game_id, label,
    )
    return key


class KeyNotFound(LookupError):
    pass


async def lookup(conn: asyncpg.Connection, key: str) -> str | None:
    """The game a live key is scoped to (None: every game); KeyNotFound if unknown or revoked."""
    row = await conn.fetchrow(
        "SELECT game_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key)
    )
    if row is None:
        raise KeyNotFound(key[:12])
    return row["game_id"]


async def revoke(conn: asyncpg.Connection, key: str) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key)
    )
    return status.endswith(" 1")
