"""Podium on three raylets on one box (ray.cluster_utils.Cluster): shards
spread over the nodes, unlocks streamed through the gateway's own batcher and
channels, a worker node removed mid-stream. Prints one JSON report; run by
test_multinode.py in a process of its own (a process holds one Ray).

    python -m tests.integration.multinode ADMIN_DATABASE_URL REDIS_URL
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
import orjson
import ray
from ray.cluster_utils import Cluster

from podium.cluster import launch
from podium.cluster.processes import own_ports
from podium.core.routing import shard_of
from podium.gateway.runtime import Runtime
from podium.persistence import catalog_store
from podium.settings import Settings
from podium.transport import directory
from podium.wire.messages import AckStatus, Unlock
from tests.integration.conftest import TEST_CATALOG, _admin, _with_database, drop_test_state

RATE = 400  # unlocks/s, in frames of 20
POINTS = {(g["game_id"], a["achievement_id"]): a["points"] for g in TEST_CATALOG for a in g["achievements"]}


def unlock(n: int) -> Unlock:
    """The n-th unlock of the stream: new every time (player n // 10, one of 10 (game, achievement) pairs)."""
    game, achievement = sorted(POINTS)[n % 10]
    return Unlock(f"mn-{n // 10}", game, achievement, ("eu", "na")[n % 2])


def placement(settings: Settings) -> dict[str, str]:
    names = [f"player-shard-{i}" for i in range(settings.player_shards)]
    names += [f"leaderboard-shard-{i}" for i in range(settings.leaderboard_shards)]
    handles = [directory.player_shard(settings, i) for i in range(settings.player_shards)]
    handles += [directory.leaderboard_shard(settings, i) for i in range(settings.leaderboard_shards)]
    return {name: _node_of(h) for name, h in zip(names, handles, strict=True)}


def _node_of(handle: Any) -> str:
    """The node an actor runs on, asking again while it restarts (elsewhere)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return str(ray.get(handle.status.remote(), timeout=30)["node_id"])
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def stream(rt: Runtime, seconds: float, start: int, acked: dict[int, str], latencies: list[float]) -> int:
    """Offer RATE unlocks/s for `seconds`; record each ack; returns the next unlock number."""
    tasks = []
    n = start
    began = time.monotonic()

    async def frame(first: int) -> None:
        items = [unlock(k) for k in range(first, first + 20)]
        by_shard: dict[int, list[tuple[int, Unlock]]] = {}
        for k, item in zip(range(first, first + 20), items, strict=True):
            by_shard.setdefault(shard_of(item.player_id, rt.settings.player_shards), []).append((k, item))
        t0 = time.monotonic()
        results = await asyncio.gather(*(rt.batcher.submit(s, [u for _, u in work]) for s, work in by_shard.items()))
        latencies.append(time.monotonic() - t0)
        for work, acks in zip(by_shard.values(), results, strict=True):
            for (k, _), (status, _reason) in zip(work, acks, strict=True):
                acked[k] = status.value

    while time.monotonic() - began < seconds:
        tasks.append(asyncio.ensure_future(frame(n)))
        n += 20
        await asyncio.sleep(20 / RATE)
    await asyncio.gather(*tasks)
    return n


async def board(rt: Runtime, game: str) -> dict[str, int]:
    entries: dict[str, int] = {}
    cursor = None
    while True:
        page = orjson.loads(orjson.dumps(await rt.board_read(game, "page", game, None, 200, cursor)))
        entries.update({e["player_id"]: e["points"] for e in page["entries"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


async def run(settings: Settings, cluster: Cluster) -> dict[str, Any]:
    rt = await Runtime(settings).ready()
    acked: dict[int, str] = {}
    latencies: list[float] = []
    before = placement(settings)
    n = await stream(rt, 8, 0, acked, latencies)
    head = cluster.head_node.node_id
    hosts = Counter(node for node in before.values() if node != head)
    victim_id = hosts.most_common(1)[0][0]
    victim = next(node for node in cluster.list_all_nodes() if node.node_id == victim_id)
    moved = sorted(name for name, node in before.items() if node == victim_id)
    removal = asyncio.get_running_loop().run_in_executor(None, cluster.remove_node, victim, False)
    n = await stream(rt, 15, n, acked, latencies)  # streaming on while the node goes
    await removal
    after = placement(settings)
    n = await stream(rt, 5, n, acked, latencies)
    # Every unlock of the stream is new, so `duplicate` means an earlier attempt of
    # ours committed (its ack was lost with the node): it counts like `accepted`.
    accepted = {k for k, status in acked.items() if status in (AckStatus.ACCEPTED.value, AckStatus.DUPLICATE.value)}
    conn = await asyncpg.connect(settings.database_url)
    try:
        journaled = {(r["player_id"], r["game_id"], r["achievement_id"])
                     for r in await conn.fetch("SELECT player_id, game_id, achievement_id FROM unlocks")}
    finally:
        await conn.close()
    lost = [k for k in accepted if (unlock(k).player_id, unlock(k).game_id, unlock(k).achievement_id) not in journaled]
    expected: dict[str, dict[str, int]] = {}
    for k in accepted:
        u = unlock(k)
        expected.setdefault(u.game_id, {}).setdefault(u.player_id, 0)
        expected[u.game_id][u.player_id] += POINTS[(u.game_id, u.achievement_id)]
    boards_equal = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not boards_equal:
        try:
            got = {game: {p: pts for p, pts in (await board(rt, game)).items() if p.startswith("mn-")}
                   for game in expected}
            boards_equal = got == expected
        except Exception:
            pass
        await asyncio.sleep(1.0)
    latencies.sort()
    await rt.stop()
    return {"nodes": len({*before.values()}), "before": before, "after": after, "victim": victim_id,
            "moved": moved, "offered": n, "statuses": dict(Counter(acked.values())), "lost": len(lost),
            "boards_equal": boards_equal, "ack_p50_s": latencies[len(latencies) // 2],
            "ack_p99_s": latencies[int(len(latencies) * 0.99)], "ack_max_s": latencies[-1]}


def main() -> None:
    admin_url, redis_url = sys.argv[1], sys.argv[2]
    tag = uuid.uuid4().hex[:8]
    database = f"podium_multinode_{tag}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{database}"'))
    data_dir = Path(tempfile.mkdtemp(prefix="podium-multinode-"))
    settings = Settings(database_url=_with_database(admin_url, database), redis_url=redis_url,
                        redis_prefix=f"podium-mn-{tag}:", data_dir=data_dir, player_shards=3, leaderboard_shards=2,
                        checkpoint_interval_s=1.0, token_secret=f"mn-{uuid.uuid4().hex}",
                        ray_namespace=f"podium-mn-{tag}", call_deadline_s=30.0, actor_call_timeout_s=5.0,
                        presence_resync_s=1.0, **own_ports())
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        async def prepare() -> None:
            await launch.prepare_database(settings, demo_catalog=False)
            conn = await asyncpg.connect(settings.database_url)
            try:
                await catalog_store.import_catalog(conn, TEST_CATALOG)
            finally:
                await conn.close()

        asyncio.run(prepare())
        ray.init(address=cluster.address, namespace=settings.ray_namespace, log_to_driver=False)
        launch.start_actors(settings)
        report = asyncio.run(run(settings, cluster))
        print(orjson.dumps(report).decode())
    finally:
        ray.shutdown()
        cluster.shutdown()
        drop_test_state(admin_url, database, redis_url, settings.redis_prefix)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
