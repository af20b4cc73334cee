"""A leaderboard shard stopped (SIGSTOP) while unlocks of new players stream
in, in a cluster of its own with a small delivery backlog and chunk: the
player shard holds at most `delivery_backlog_max` pairs (plus one batch) for
it and answers the rest `overloaded` at once; after SIGCONT every accepted
unlock reaches the boards. A client resends what was not acked (as the
protocol asks). Prints one JSON report; run by test_delivery_backlog.py in a
process of its own.

    python -m tests.integration.backlog ADMIN_DATABASE_URL REDIS_URL
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import ray

from podium.core.routing import shard_of
from podium.settings import Settings
from podium.transport import directory
from podium.wire.messages import ALL_GAMES
from tests.integration.driver import run_driver
from tests.integration.resender import Resender, stream, whole_board

BACKLOG_MAX, CHUNK_PAIRS, BATCH_MAX = 400, 50, 200
STREAM_S = 4.0  # new unlocks are offered this long while the leaderboard is stopped
STOPPED_S = 8.0  # how long it stays stopped (the client keeps resending meanwhile)
POINTS = {"arena": ("a1", 20), "puzzle": ("p0", 7)}


def unlock(n: int) -> dict[str, str]:
    game = ("arena", "puzzle")[n % 2]
    return {"player_id": f"bl-{n}", "game_id": game, "achievement_id": POINTS[game][0]}


def pid_of(handle: Any) -> int:
    return int(ray.get(handle.__ray_call__.remote(lambda _actor: os.getpid()), timeout=30))


async def shard_status(settings: Settings) -> dict[str, Any]:
    status: dict[str, Any] = await directory.player_shard(settings, 0).status.remote()
    # `backlog` is what the shard holds for the leaderboards (today's figure, or its parts before it existed)
    status.setdefault("backlog", status["to_deliver"] + status["undelivered"])
    return status


async def run(settings: Settings, key: str) -> dict[str, Any]:
    client = Resender(f"http://127.0.0.1:{settings.port}", key, unlock, timeout_s=30.0)
    await asyncio.wait_for(shard_status(settings), 60)  # recovered
    # The shard that holds the all-games board: every delivery touches it.
    victim = directory.leaderboard_shard(settings, shard_of(ALL_GAMES, settings.leaderboard_shards))
    await victim.status.remote()
    pid = pid_of(victim)
    tasks: list[asyncio.Task[None]] = []
    backlogs: list[int] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        sampler = asyncio.ensure_future(sample(settings, backlogs))
        n = await stream(client, STREAM_S, 0, tasks, frames_per_s=10, size=50)
        await asyncio.sleep(max(0.0, STOPPED_S - (time.monotonic() - stopped)))
        during = client.between(stopped, time.monotonic())
        status_stopped = await shard_status(settings)
        sampler.cancel()
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)  # every unlock acked in the end
    acked_at = time.monotonic()

    expected = {game: {} for game in POINTS}
    for u in map(unlock, client.acked):
        expected[u["game_id"]][u["player_id"]] = POINTS[u["game_id"]][1]
    boards_equal, got = False, {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not boards_equal:
        got = {game: await whole_board(client.http, game) for game in POINTS}
        boards_equal = got == expected
        if not boards_equal:
            await asyncio.sleep(0.5)
    converged_s = round(time.monotonic() - resumed, 2)
    status_after = await shard_status(settings)
    await client.http.aclose()
    overloaded_latencies = sorted(took for sent, took, outcome in client.attempts
                                  if stopped <= sent < resumed and "rejected/overloaded" in outcome)
    return {
        "offered": n, "acked": len(client.acked), "boards_equal": boards_equal, "converged_s": converged_s,
        "acked_s": round(acked_at - resumed, 2), "outcomes_while_stopped": dict(during[0]),
        "overloaded_max_s": round(overloaded_latencies[-1], 3) if overloaded_latencies else None,
        "max_backlog": max([*backlogs, status_stopped["backlog"]]), "backlog_samples": len(backlogs),
        "stopped_status": status_stopped, "after_status": status_after,
        "board_sizes": {game: len(board) for game, board in got.items()},
        "limits": {"backlog_max": BACKLOG_MAX, "chunk_pairs": CHUNK_PAIRS, "batch_max": BATCH_MAX},
    }


async def sample(settings: Settings, backlogs: list[int]) -> None:
    while True:
        backlogs.append((await shard_status(settings))["backlog"])
        await asyncio.sleep(0.2)


def main() -> None:
    run_driver("backlog", run, player_shards=1, leaderboard_shards=1, actor_call_timeout_s=2.0,
               delivery_backlog_max=BACKLOG_MAX, max_batch_items=BATCH_MAX, delivery_chunk_pairs=CHUNK_PAIRS)


if __name__ == "__main__":
    main()
