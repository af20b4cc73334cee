"""Finds Podium's named actors (podium/cluster/launch.py starts them). Actors are
named per shard in the settings' Ray namespace, so the Ray dashboard lists
them by role."""
from __future__ import annotations

from typing import Any

import ray

from podium.core.routing import leaderboard_shard_name, player_shard_name
from podium.settings import Settings

_cache: dict[tuple[str, str], Any] = {}


def _get(settings: Settings, name: str) -> Any:
    key = (settings.ray_namespace, name)
    handle = _cache.get(key)
    if handle is None:
        handle = _cache[key] = ray.get_actor(name, namespace=settings.ray_namespace)
    return handle


def player_shard(settings: Settings, index: int) -> Any:
    return _get(settings, player_shard_name(index))


def leaderboard_shard(settings: Settings, index: int) -> Any:
    return _get(settings, leaderboard_shard_name(index))


def forget() -> None:
    """Drop every cached handle (the actors were replaced: resharding)."""
    _cache.clear()
