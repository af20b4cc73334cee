"""Memory per leaderboard entry and recovery time of leaderboard shards
holding N entries, on the real actor and real PostgreSQL (issues 3 and 8).

    .venv/bin/python load/board_probe.py --entries 1000000 \
        --database-url postgresql://postgres@127.0.0.1:5432/postgres

Creates a scratch database, fills the checkpoint tables with N players of one
game (3 regions), starts Ray and, one at a time, the two LeaderboardShards of a
two-shard layout (shard 1 owns the game's board: N entries, global + region
boards; shard 0 the all-games board: N totals), then the single shard of the
default one-shard layout, which owns both. Times each recovery, reads
each actor's RSS, then measures the pure Standings structure with tracemalloc."""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import ray

from podium.core.standings import Standings
from podium.persistence import catalog_store, migrations
from podium.settings import Settings
from podium.wire.messages import ScoreUpdates

FILL = """
INSERT INTO players (player_id, region)
SELECT 'p' || i, (ARRAY['eu','na','asia'])[1 + i % 3] FROM generate_series(1, $1) i;
"""
FILL_STATS = """
INSERT INTO player_game_stats (player_id, game_id, points, unlocked_count, first_unlock_at, last_unlock_at,
                               score_reached_at, last_seq, player_shard)
SELECT 'p' || i, 'probe', (i::bigint * 7919) % 5000, 1 + i % 40, now(), now(),
       now() - (i % 86400) * interval '1 second', i, 0
FROM generate_series(1, $1) i;
"""


async def prepare(admin_url: str, url: str, name: str, n: int) -> None:
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    conn = await asyncpg.connect(url)
    await migrations.apply(conn)
    await catalog_store.import_catalog(conn, [{"game_id": "probe", "name": "Probe", "achievements": [
        {"achievement_id": "a", "name": "A", "points": 1}]}])
    t = time.perf_counter()
    await conn.execute(FILL, n)
    await conn.execute(FILL_STATS, n)
    await conn.execute("INSERT INTO shard_watermarks VALUES ('player', 0, 1, $1, now())", n)
    await conn.execute("ANALYZE")
    print(f"filled {n:,} players in {time.perf_counter() - t:.1f}s")
    await conn.close()


def pure_memory(n: int) -> float:
    updates = ScoreUpdates()
    for i in range(1, n + 1):
        updates.add(f"p{i}", "probe", ("eu", "na", "asia")[i % 3], (i * 7919) % 5000, 1_795_000_000_000_000 + i, i)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    standings = Standings()
    standings.apply(updates, track=())
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(standings) == n
    return (after - before) / n


async def drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    name = f"podium_probe_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(a.database_url)._replace(path=f"/{name}"))
    asyncio.run(prepare(a.database_url, url, name, a.entries))
    try:
        from podium.actors.leaderboard_shard import LeaderboardShard

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        for shards, shard, what in ((2, 1, "game board"), (2, 0, "all-games board"),
                                    (1, 0, "both boards on one shard")):
            settings = Settings(database_url=url, redis_url=a.redis_url, redis_prefix=f"probe-{name}:",
                                player_shards=1, leaderboard_shards=shards, token_secret="probe-only-not-a-secret")
            times, sizes = [], []
            for run in range(a.runs):
                actor = LeaderboardShard.options(max_restarts=0).remote(shard, settings)  # type: ignore[attr-defined]
                t = time.perf_counter()
                status = ray.get(actor.status.remote())
                wall = time.perf_counter() - t
                pid = ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid()))
                rss = psutil.Process(pid).memory_info().rss / 2**20
                times.append(status["recovered_in_s"])
                sizes.append(rss)
                print(f"{what}, run {run + 1}: recovered {status['entries']:,} entries in "
                      f"{status['recovered_in_s']:.2f}s (first call {wall:.2f}s), actor RSS {rss:.0f} MiB")
                ray.kill(actor)
            print(f"{what}: recovery median of {a.runs}: {statistics.median(times):.2f}s, "
                  f"RSS median {statistics.median(sizes):.0f} MiB")
        ray.shutdown()
        per_entry = pure_memory(a.entries)
        print(f"Standings alone: {per_entry:.0f} bytes per entry (global + region board), "
              f"{per_entry * 1_000_000 / 2**20:.0f} MiB per 1,000,000 entries")
    finally:
        asyncio.run(drop(a.database_url, name))


if __name__ == "__main__":
    main()
