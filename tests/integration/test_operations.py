"""What operators look at: Podium's series on Ray's metrics endpoint, and `podium status`."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import ray

from podium.transport import directory
from tests.integration.conftest import eventually

RANK_ROUTE = 'endpoint="GET /v1/games/{game_id}/players/{player_id}/rank"'


def series(text: str, name: str) -> dict[str, float]:
    """Every sample of one metric: its label text -> value."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{.*\}})? ([0-9.eE+-]+)$", line)  # a label value may hold braces
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


async def test_podium_series_reach_rays_metrics_endpoint(cluster, http, api_key, uid) -> None:
    p = uid("metered")
    response = await http.post("/v1/unlocks", headers={"X-API-Key": api_key}, content=orjson.dumps(
        [{"player_id": p, "game_id": "arena", "achievement_id": "a0"},
         {"player_id": p, "game_id": "arena", "achievement_id": "nope"}]))
    assert [a["status"] for a in response.json()] == ["accepted", "rejected"]
    async def ranked() -> bool:  # an ack means journaled; the board has it a delivery later
        return (await http.get(f"/v1/games/arena/players/{p}/rank")).status_code == 200

    await eventually(ranked)
    url = f"http://127.0.0.1:{cluster.settings.metrics_port}/metrics"

    missing: list[str] = []

    async def scraped() -> str | None:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(url)).text
        wanted = ["ray_podium_unlocks_total", "ray_podium_ack_seconds_bucket", "ray_podium_http_requests_total",
                  "ray_podium_journal_commit_seconds_bucket", "ray_podium_journal_batch_unlocks_bucket",
                  "ray_podium_delivery_lag_rows", "ray_podium_checkpoint_age_seconds", "ray_podium_board_entries",
                  "ray_podium_sockets_open", "ray_podium_players", "ray_podium_loop_lag_seconds"]
        rank_reads = [labels for labels in series(text, "ray_podium_http_requests_total")
                      if RANK_ROUTE in labels and 'status="2xx"' in labels]
        missing[:] = [name for name in wanted if not series(text, name)] + ([] if rank_reads else ["rank reads"])
        return None if missing else text

    try:
        text = await eventually(scraped, timeout=60, every=1.0)
    except AssertionError as exc:
        raise AssertionError(f"missing from {url}: {missing}") from exc
    unlocks = series(text, "ray_podium_unlocks_total")
    assert any('status="accepted"' in labels for labels in unlocks)
    assert any('status="rejected"' in labels and 'reason="unknown_achievement"' in labels for labels in unlocks)
    assert any(RANK_ROUTE in labels for labels in series(text, "ray_podium_http_seconds_bucket"))
    shards = series(text, "ray_podium_players")
    assert {re.search(r'shard="(\d+)"', k).group(1) for k in shards} == {"0", "1"}
    lags = await eventually(lambda: _loop_lag_names(url), timeout=60, every=1.0)
    assert {"player-shard-0", "player-shard-1", "leaderboard-shard-0", "leaderboard-shard-1"} <= lags
    assert any(len(name) == 32 for name in lags)  # the gateway replica, by its id


async def _loop_lag_names(url: str) -> set[str] | None:
    """The processes exporting a p99 loop lag, once every shard kind and the gateway do."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(url)).text
    labels = [k for k in series(text, "ray_podium_loop_lag_seconds") if 'quantile="p99"' in k]
    kinds = {re.search(r'process_kind="([^"]+)"', k).group(1) for k in labels}
    names = {re.search(r'name="([^"]+)"', k).group(1) for k in labels}
    return names if {"gateway", "player_shard", "leaderboard_shard"} <= kinds and len(names) >= 5 else None


def _a_loop_figure(loop: Any) -> bool:
    return isinstance(loop, dict) and loop["samples"] > 0 and 0 <= loop["p50_ms"] <= loop["p99_ms"] <= loop["max_ms"]


async def test_health_shows_the_loop_lag_of_the_replica_and_every_shard(cluster, http) -> None:
    body = (await http.get("/v1/health")).json()
    assert _a_loop_figure(body["replica"]["loop"]) and len(body["replica"]["id"]) == 32
    sockets = (await http.get("/v1/ws/health")).json()  # the same answer from a socket plane replica
    assert (body["replica"]["plane"], sockets["replica"]["plane"]) == ("http", "sockets")
    assert sockets["replica"]["pid"] != body["replica"]["pid"] and _a_loop_figure(sockets["replica"]["loop"])
    shards = {name: check for name, check in body["checks"].items() if "shard" in name}
    assert len(shards) == 4 and all(_a_loop_figure(check["loop"]) for check in shards.values())
    assert all(check["loop"]["interval_ms"] == 100.0 for check in shards.values())


def _hold_the_loop(shard: Any, seconds: float) -> str:
    """Run on the actor through Ray's own __ray_call__ (no test hook in Podium):
    puts a blocking call on the actor's event loop, as a handler that blocks would be."""
    def blocking_handler() -> None:
        time.sleep(seconds)

    if seconds:
        shard.loop_lag._loop.call_soon_threadsafe(blocking_handler)
    return shard.loop_lag.name


async def test_a_shard_loop_held_on_purpose_shows_as_a_stall(cluster) -> None:
    shard = directory.leaderboard_shard(cluster.settings, 1)
    # The first call imports this module in the actor, itself a stall of seconds: done before counting.
    assert await shard.__ray_call__.remote(_hold_the_loop, 0) == "leaderboard-shard-1"
    await asyncio.sleep(0.5)
    before = (await shard.status.remote())["loop"]["stalls_total"]
    await shard.__ray_call__.remote(_hold_the_loop, 0.5)

    async def stalled() -> dict[str, Any] | None:
        loop: dict[str, Any] = (await shard.status.remote())["loop"]
        return loop if loop["stalls_total"] > before else None

    loop = await eventually(stalled, timeout=10)
    assert loop["max_ms"] >= 350 and loop["last_stall"]["lag_ms"] >= 350
    assert any("test_operations.py" in line and "blocking_handler" in line
               for line in loop["last_stall"]["stack"] or []), loop["last_stall"]


def test_podium_status_prints_every_shard_and_replica(cluster) -> None:
    s = cluster.settings
    # This session's cluster by its address: `auto` finds the newest on the machine, maybe another session's.
    env = {**os.environ, "PODIUM_RAY_ADDRESS": ray.get_runtime_context().gcs_address,
           "PODIUM_RAY_NAMESPACE": s.ray_namespace,
           "PODIUM_REDIS_URL": s.redis_url, "PODIUM_REDIS_PREFIX": s.redis_prefix,
           "PODIUM_DATABASE_URL": s.database_url, "PODIUM_DATA_DIR": str(s.data_dir)}
    out = subprocess.run([sys.executable, "-m", "podium.cluster.cli", "status", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status = orjson.loads(out.stdout)
    assert [r["name"] for r in status["shards"]] == [
        "leaderboard-shard-0", "leaderboard-shard-1", "player-shard-0", "player-shard-1"]
    assert all(r["ok"] and r["node"] for r in status["shards"])
    planes = sorted(r["plane"] for r in status["replicas"])  # every replica of both planes
    assert planes == ["http"] * s.http_replicas + ["sockets"] * s.gateway_replicas, status["replicas"]
    assert all(r["heartbeat_age_s"] < 30 for r in status["replicas"])
    assert all(_a_loop_figure(r["loop"]) for r in status["shards"])
    assert all(_a_loop_figure(r["loop"]) for r in status["replicas"])  # written to Redis every 5 s by each replica
    table = subprocess.run([sys.executable, "-m", "podium.cluster.cli", "status"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert table.returncode == 0 and "player-shard-1" in table.stdout and "replica" in table.stdout
    assert table.stdout.count("loop lag p99/max ms") == 2
