"""What `podium status` reports: every shard actor's status (found by name
in the cluster's namespace) and every gateway replica that heartbeats into
Redis (presence, podium/transport/presence.py). A driver of its own joins the running
cluster for this; nothing here runs inside the cluster."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import ray

from podium.core.routing import leaderboard_shard_name, player_shard_name
from podium.gateway.push_hub import loop_key
from podium.settings import Settings
from podium.transport import presence

STATUS_TIMEOUT_S = 5.0


def cluster_status(settings: Settings, redis_url: str | None) -> dict[str, Any]:
    ray.init(address=settings.ray_address or "auto", namespace=settings.ray_namespace, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        return {"shards": _shards(settings), "replicas": _replicas(settings, redis_url) if redis_url else []}
    finally:
        ray.shutdown()


def _shards(settings: Settings) -> list[dict[str, Any]]:
    """Every shard actor there is (the names run 0, 1, ...: the count is the cluster's, not these settings')."""
    out: list[dict[str, Any]] = []
    for name_of in (leaderboard_shard_name, player_shard_name):
        index = 0
        while True:
            name = name_of(index)
            try:
                handle = ray.get_actor(name, namespace=settings.ray_namespace)
            except ValueError:
                break
            try:
                shard: dict[str, Any] = ray.get(handle.status.remote(), timeout=STATUS_TIMEOUT_S)  # type: ignore[assignment]
                out.append({"name": name, "ok": True, **shard})
            except Exception as exc:  # a shard recovering or gone: reported, not raised
                out.append({"name": name, "ok": False, "error": repr(exc)[:200]})
            index += 1
    return out


def _replicas(settings: Settings, redis_url: str) -> list[dict[str, Any]]:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=settings.redis_timeout_s)
    try:
        now = time.time()
        beats: list[tuple[bytes, float]] = client.zrange(  # type: ignore[assignment]
            presence.replicas_key(settings.redis_prefix), 0, -1, withscores=True)
        loops: dict[bytes, bytes] = client.hgetall(loop_key(settings.redis_prefix))  # type: ignore[assignment]
        out = []
        for raw, at in beats:
            replica = raw.decode() if isinstance(raw, bytes) else str(raw)
            raw_loop = loops.get(replica.encode())
            loop = json.loads(raw_loop) if raw_loop else None
            out.append({"replica": replica, "plane": loop.pop("plane", None) if loop else None,
                        "heartbeat_age_s": round(now - float(at), 1),
                        "player_sockets": int(client.scard(presence.replica_key(settings.redis_prefix, replica))),  # type: ignore[arg-type]
                        "loop": loop})
        return out
    finally:
        client.close()
