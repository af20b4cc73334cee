"""Stable shard routing: xxh64 of the key modulo the shard count. Never
Python's hash(), which is salted per process."""
from __future__ import annotations

import xxhash


def shard_of(key: str, shard_count: int) -> int:
    return xxhash.xxh64_intdigest(key.encode()) % shard_count


def player_shard_name(index: int) -> str:
    return f"player-shard-{index}"


def leaderboard_shard_name(index: int) -> str:
    return f"leaderboard-shard-{index}"
