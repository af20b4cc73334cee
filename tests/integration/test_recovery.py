"""A killed actor comes back (Ray restarts it) from checkpoint + journal and
answers exactly as before; checkpoints land in PostgreSQL."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import orjson
import ray

from podium.core.routing import shard_of
from podium.transport import directory
from tests.integration.conftest import eventually, get_ok


async def ingest(http, api_key, items) -> list[dict]:
    response = await http.post("/v1/unlocks", content=orjson.dumps(items), headers={"X-API-Key": api_key})
    assert response.status_code == 200
    return response.json()


def spread(uid, n: int) -> list[dict]:
    return [{"player_id": uid(f"rec{k}"), "game_id": "arena", "achievement_id": f"a{i}", "region": ["eu", "na"][k % 2]}
            for k in range(n) for i in range(k % 4 + 1)]


async def whole_board(http, region: str | None = None) -> list[dict]:
    entries, cursor = [], None
    while True:
        params = {"limit": 200, **({"region": region} if region else {}), **({"cursor": cursor} if cursor else {})}
        page = await get_ok(http, "/v1/games/arena/leaderboard", **params)
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


async def test_killed_leaderboard_shard_answers_exactly_as_before(cluster, http, api_key, uid) -> None:
    items = spread(uid, 30)
    assert {a["status"] for a in await ingest(http, api_key, items)} == {"accepted"}
    expected_players = {i["player_id"] for i in items}

    async def settled() -> list[dict] | None:
        board = await whole_board(http)
        return board if expected_players <= {e["player_id"] for e in board} else None

    before = await eventually(settled)
    before_eu = await whole_board(http, "eu")
    handle = directory.leaderboard_shard(cluster.settings, shard_of("arena", cluster.settings.leaderboard_shards))
    ray.kill(handle, no_restart=False)

    async def same_again() -> bool:
        return (await whole_board(http)) == before

    await eventually(same_again, timeout=60)
    assert await whole_board(http, "eu") == before_eu


async def test_killed_player_shard_keeps_every_acked_unlock(cluster, http, api_key, uid, db, server) -> None:
    items = spread(uid, 12)
    acks = await ingest(http, api_key, items)
    players = sorted({i["player_id"] for i in items})
    dashboards = [(await server.get(f"/v1/players/{p}/dashboard")).json() for p in players]
    # kill every player shard right after the acks, likely before their next checkpoint
    for shard in range(cluster.settings.player_shards):
        ray.kill(directory.player_shard(cluster.settings, shard), no_restart=False)

    async def dashboards_back() -> bool:
        return [(await server.get(f"/v1/players/{p}/dashboard")).json() for p in players] == dashboards

    await eventually(dashboards_back, timeout=60)
    again = await ingest(http, api_key, items)  # the journal still knows every one of them
    assert {a["status"] for a in acks} == {"accepted"} and {a["status"] for a in again} == {"duplicate"}
    count = await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = ANY($1)", players)
    assert count == len(items)


async def test_checkpoints_reach_postgresql(cluster, http, api_key, uid, db) -> None:
    p = uid("ckpt")
    await ingest(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a1"},
                                 {"player_id": p, "game_id": "arena", "achievement_id": "a2"}])

    async def checkpointed() -> object:
        return await db.fetchrow("SELECT points, unlocked_count FROM player_game_stats WHERE player_id = $1", p)

    row = await eventually(checkpointed, timeout=10)
    assert (row["points"], row["unlocked_count"]) == (50, 2)
    shard = shard_of(p, cluster.settings.player_shards)
    newest = await db.fetchval("SELECT max(seq) FROM unlocks WHERE player_id = $1", p)

    async def covered() -> bool:
        # The watermark covers only rows the leaderboards have taken: a checkpoint can
        # write the stats row before the delivery of its rows has finished.
        watermark = await db.fetchval("SELECT seq FROM shard_watermarks WHERE kind = 'player' AND shard = $1",
                                      shard)
        return watermark is not None and watermark >= newest

    assert await eventually(covered, timeout=10)


async def test_reads_answer_503_at_once_while_a_shard_recovers(cluster, http, api_key, uid) -> None:
    items = spread(uid, 6)
    assert {a["status"] for a in await ingest(http, api_key, items)} == {"accepted"}
    p = items[-1]["player_id"]
    rank_path = f"/v1/games/arena/players/{p}/rank"
    before = await eventually(lambda: get_ok(http, rank_path))
    # Hold recovery up for real: the leaderboard's checkpoint read waits on this lock.
    blocker = await asyncpg.connect(cluster.settings.database_url)
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE player_game_stats IN ACCESS EXCLUSIVE MODE")
    answers: list[tuple[int, float, str | None, str]] = []
    try:
        ray.kill(directory.leaderboard_shard(cluster.settings, shard_of("arena", cluster.settings.leaderboard_shards)),
                 no_restart=False)
        deadline = time.monotonic() + 20
        while sum("recovering" in a[3] for a in answers) < 5 and time.monotonic() < deadline:
            t0 = time.monotonic()
            response = await http.get(rank_path)
            answers.append((response.status_code, time.monotonic() - t0, response.headers.get("retry-after"),
                            response.json().get("detail", "")))
            await asyncio.sleep(0.1)
    finally:
        await tx.rollback()
        await blocker.close()
    # While Ray restarts the process, calls fail after a moment (503 "restarting"); once it
    # runs, its recovery is held up by the lock and every read is answered at once.
    recovering = [a for a in answers if "recovering" in a[3]]
    assert len(recovering) >= 5, answers
    down = next(i for i, a in enumerate(answers) if a[0] != 200)  # ray.kill takes effect a moment later
    assert all(a[0] == 503 and a[2] == "1" for a in answers[down:]), answers
    assert all(a[1] < 1.0 for a in recovering), answers
    # The player's own entry comes back as it was. The board's size (`total`, and with it `percentile`)
    # is not compared: "arena" is shared by the suite, and another test's unlock may land meanwhile
    # (seen once in CI: 5,126 -> 5,127 players, the entry itself unchanged).
    def entry(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in ("total", "percentile")}

    assert entry(await eventually(lambda: get_ok(http, rank_path))) == entry(before)
