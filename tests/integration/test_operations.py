"""What operators look at: Podium's series on Ray's metrics endpoint, and `podium status`."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import orjson

from tests.integration.conftest import eventually, get_ok

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
    await get_ok(http, f"/v1/games/arena/players/{p}/rank")
    url = f"http://127.0.0.1:{cluster.settings.metrics_port}/metrics"

    async def scraped() -> str | None:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(url)).text
        wanted = ["ray_podium_unlocks_total", "ray_podium_ack_seconds_bucket", "ray_podium_http_requests_total",
                  "ray_podium_journal_commit_seconds_bucket", "ray_podium_journal_batch_unlocks_bucket",
                  "ray_podium_delivery_lag_rows", "ray_podium_checkpoint_age_seconds", "ray_podium_board_entries",
                  "ray_podium_sockets_open", "ray_podium_players"]
        rank_reads = [labels for labels in series(text, "ray_podium_http_requests_total")
                      if RANK_ROUTE in labels and 'status="2xx"' in labels]
        return text if rank_reads and all(series(text, name) for name in wanted) else None

    text = await eventually(scraped, timeout=60, every=1.0)
    unlocks = series(text, "ray_podium_unlocks_total")
    assert any('status="accepted"' in labels for labels in unlocks)
    assert any('status="rejected"' in labels and 'reason="unknown_achievement"' in labels for labels in unlocks)
    assert any(RANK_ROUTE in labels for labels in series(text, "ray_podium_http_seconds_bucket"))
    shards = series(text, "ray_podium_players")
    assert {re.search(r'shard="(\d+)"', k).group(1) for k in shards} == {"0", "1"}


def test_podium_status_prints_every_shard_and_replica(cluster) -> None:
    s = cluster.settings
    env = {**os.environ, "PODIUM_RAY_ADDRESS": "auto", "PODIUM_RAY_NAMESPACE": s.ray_namespace,
           "PODIUM_REDIS_URL": s.redis_url, "PODIUM_REDIS_PREFIX": s.redis_prefix,
           "PODIUM_DATABASE_URL": s.database_url, "PODIUM_DATA_DIR": str(s.data_dir)}
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "status", "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status = orjson.loads(out.stdout)
    assert [r["name"] for r in status["shards"]] == [
        "leaderboard-shard-0", "leaderboard-shard-1", "player-shard-0", "player-shard-1"]
    assert all(r["ok"] and r["node"] for r in status["shards"])
    assert len(status["replicas"]) == s.gateway_replicas and status["replicas"][0]["heartbeat_age_s"] < 30
    table = subprocess.run([sys.executable, "-m", "gateway.cli", "status"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert table.returncode == 0 and "player-shard-1" in table.stdout and "replica" in table.stdout
