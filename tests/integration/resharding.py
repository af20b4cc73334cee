"""Resharding a running cluster while unlocks and stat updates stream over
HTTP: 2 -> 4 -> 1 player shards and 1 -> 3 leaderboard shards
(podium/cluster/launch.py `reshard`, what `podium scale` asks `podium up` to
do). A client resends what was not acked (as the protocol asks); afterwards
every acked unlock is in the journal once and the boards equal a
recomputation, every stat update counts once (the final values and the
values the shards of the last layout hold equal a model), and the stat's
threshold is unlocked once for each player who reached it. Prints one JSON
report; run by test_resharding.py in a process of its own (it reshapes its
cluster).

    python -m tests.integration.resharding ADMIN_DATABASE_URL REDIS_URL
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import asyncpg
import orjson

from podium.cluster import launch
from podium.settings import Settings
from tests.integration.conftest import TEST_CATALOG
from tests.integration.driver import run_driver
from tests.integration.resender import Resender, stream, whole_board

POINTS = {(g["game_id"], a["achievement_id"]): a["points"] for g in TEST_CATALOG for a in g["achievements"]}
PAIRS = sorted(POINTS)
STATS = {"game_id": "rs-stats", "name": "Stats", "stats": [{"stat_id": "wins", "name": "Wins", "op": "incr"}],
         "achievements": [{"achievement_id": "ten", "name": "Ten", "points": 10,
                           "threshold": {"stat_id": "wins", "at_least": 10}}]}


def unlock(n: int) -> dict[str, Any]:
    """Item n of the stream: every fifth a stat update (incr, so the model needs no order), else an unlock."""
    if n % 5 == 4:
        return {"kind": "stat", "player_id": f"rs-s{n % 13}", "game_id": "rs-stats", "stat_id": "wins",
                "op": "incr", "value": 1 + n % 3, "event_id": f"rs-e{n}"}
    game, achievement = PAIRS[n % len(PAIRS)]
    return {"player_id": f"rs-{n // len(PAIRS)}", "game_id": game, "achievement_id": achievement,
            "region": ("eu", "na")[n % 2]}


def scale_via_cli(settings: Settings, players: int) -> tuple[Settings, dict[str, Any]]:
    """Run `podium scale --player-shards N` while serving scale requests as `podium up` does."""
    env = {**os.environ, "PODIUM_REDIS_URL": settings.redis_url or "", "PODIUM_REDIS_PREFIX": settings.redis_prefix,
           "PODIUM_DATA_DIR": str(settings.data_dir)}
    cli = subprocess.Popen([sys.executable, "-m", "podium.cluster.cli", "scale", "--player-shards", str(players)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    now = settings
    deadline = time.monotonic() + 180
    while now is settings:
        if (cli.poll() is not None and cli.returncode != 0) or time.monotonic() > deadline:
            raise AssertionError(f"`podium scale` ended {cli.returncode} before its request was served: "
                                 f"{cli.communicate()[1][-2000:]}")
        time.sleep(0.2)
        now = launch.serve_scale_requests(settings, settings.redis_url or "")
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    return now, orjson.loads(out.strip().splitlines()[-1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(settings: Settings, key: str) -> dict[str, Any]:
    client = Resender(f"http://127.0.0.1:{settings.port}", key, unlock)
    tasks: list[asyncio.Task[None]] = []
    steps = []
    n = await stream(client, 4, 0, tasks)
    for players, boards, via_cli in ((4, 3, False), (1, None, True)):
        t0 = time.monotonic()
        if via_cli:  # the second step as an operator runs it: `podium scale`, answered by `podium up`'s loop
            scaling = asyncio.ensure_future(asyncio.to_thread(scale_via_cli, settings, players))
        else:
            scaling = asyncio.ensure_future(asyncio.to_thread(launch.reshard, settings, player_shards=players,
                                                              leaderboard_shards=boards))
        while not scaling.done():
            n = await stream(client, 0.5, n, tasks)
        settings, report = scaling.result()
        steps.append({**report, "wall_s": round(time.monotonic() - t0, 2)})
        print(f"scaled to {players} player shards in {steps[-1]['wall_s']} s", file=sys.stderr, flush=True)
        n = await stream(client, 4, n, tasks)
    await asyncio.gather(*tasks)
    stats = await stat_outcome(settings, client, [unlock(n) for n in sorted(client.acked)])
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT player_id, game_id, achievement_id FROM unlocks WHERE player_id LIKE 'rs-%' "
                                "AND game_id <> 'rs-stats'")
    finally:
        await conn.close()
    journaled = [(r["player_id"], r["game_id"], r["achievement_id"]) for r in rows]
    acked = {(u["player_id"], u["game_id"], u["achievement_id"]) for u in map(unlock, client.acked)
             if "kind" not in u}
    expected: dict[str, dict[str, int]] = {}
    for player, game, achievement in acked:
        expected.setdefault(game, {}).setdefault(player, 0)
        expected[game][player] += POINTS[(game, achievement)]
    boards_equal, got = False, {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not boards_equal:
        got = {game: await whole_board(client.http, game, prefix="rs-") for game in expected}
        boards_equal = got == expected
        await asyncio.sleep(0.5)
    latencies = list(client.latency.values())
    await client.http.aclose()
    return {"offered": n, "acked": len(client.acked), "journaled": len(journaled), **stats,
            "journaled_once": len(journaled) == len(set(journaled)), "acked_journaled": acked == set(journaled),
            "boards_equal": boards_equal, "resends": client.resends, "steps": steps,
            "ack_p50_s": percentile(latencies, 0.5), "ack_p99_s": percentile(latencies, 0.99),
            "ack_max_s": max(latencies), "final": [settings.player_shards, settings.leaderboard_shards]}


async def stat_outcome(settings: Settings, client: Resender, acked: list[dict[str, Any]]) -> dict[str, Any]:
    """The stat updates against a model of the acked ones (each acked once: the client resent until then)."""
    updates = [u for u in acked if "kind" in u]
    model: dict[str, int] = {}
    for u in updates:
        model[u["player_id"]] = model.get(u["player_id"], 0) + u["value"]
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT player_id, event_id, value_after FROM stat_updates ORDER BY seq")
        unlocked = [r["player_id"] for r in await conn.fetch(
            "SELECT player_id FROM unlocks WHERE game_id = 'rs-stats' AND achievement_id = 'ten'")]
    finally:
        await conn.close()
    final = {r["player_id"]: r["value_after"] for r in rows}
    # What the shards of the last layout hold: an update of 0 answers with the value it found (value_after)
    probes = [{"kind": "stat", "player_id": p, "game_id": "rs-stats", "stat_id": "wins", "op": "incr", "value": 0,
               "event_id": f"rs-probe-{p}"} for p in sorted(model)]
    response = await client.http.post("/v1/unlocks", content=orjson.dumps(probes))
    conn = await asyncpg.connect(settings.database_url)
    try:
        held = {r["player_id"]: r["value_after"] for r in await conn.fetch(
            "SELECT player_id, value_after FROM stat_updates WHERE event_id LIKE 'rs-probe-%'")}
    finally:
        await conn.close()
    return {"stat_updates": len(updates), "stat_events_once": sorted(r["event_id"] for r in rows) == sorted(
                u["event_id"] for u in updates),
            "stat_values_equal": final == model, "probe_status": response.status_code,
            "stat_values_held": held == model,
            "threshold_unlocks_once": sorted(unlocked) == sorted(p for p, v in model.items() if v >= 10)}


def main() -> None:
    run_driver("reshard", run, games=[STATS], player_shards=2, leaderboard_shards=1, actor_call_timeout_s=5.0)


if __name__ == "__main__":
    main()
