"""Finds and starts Podium's named actors. Actors are named per shard in the
settings' Ray namespace, so the Ray dashboard lists them by role."""
from __future__ import annotations

from typing import Any

import ray

from actors.routing import leaderboard_shard_name, player_shard_name
from persistence.settings import Settings

_cache: dict[tuple[str, str], Any] = {}
_owned: list[Any] = []  # a non-detached actor dies once its owner drops every handle


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


def start_actors(settings: Settings, *, detached: bool = False) -> list[Any]:
    """Create every shard actor (or find the running ones) and wait until each
    has recovered. Non-detached by default: they die with the driver that made
    them, so Ctrl-C on `podium up` stops the cluster cleanly."""
    from actors.leaderboard_shard import LeaderboardShard
    from actors.player_shard import PlayerShard

    lifetime = "detached" if detached else None
    handles = [
        LeaderboardShard.options(  # type: ignore[attr-defined]
            name=leaderboard_shard_name(i), namespace=settings.ray_namespace, get_if_exists=True, lifetime=lifetime
        ).remote(i, settings)
        for i in range(settings.leaderboard_shards)
    ]
    ray.get([h.status.remote() for h in handles])
    players = [
        PlayerShard.options(  # type: ignore[attr-defined]
            name=player_shard_name(i), namespace=settings.ray_namespace, get_if_exists=True, lifetime=lifetime
        ).remote(i, settings)
        for i in range(settings.player_shards)
    ]
    ray.get([h.status.remote() for h in players])
    _owned.extend(handles + players)
    return handles + players
