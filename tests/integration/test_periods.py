"""Daily and weekly boards, history rollups and catalog point changes, over the
real stack. Expected values are recomputed from the journal's own unlocked_at,
so the tests hold whatever the time of day."""
from __future__ import annotations

from datetime import datetime

import ray

from podium.core.routing import shard_of
from podium.transport import directory
from tests.integration.conftest import eventually, get_ok
from tests.integration.test_recovery import ingest


def in_period(row_at: datetime, board: dict) -> bool:
    return datetime.fromisoformat(board["period_start"]) <= row_at < datetime.fromisoformat(board["period_end"])


async def expected_points(db, players: list[str], board: dict) -> dict[str, int]:
    rows = await db.fetch("SELECT player_id, points, unlocked_at FROM unlocks WHERE player_id = ANY($1) "
                          "AND game_id = 'arena'", players)
    out: dict[str, int] = {}
    for r in rows:
        if in_period(r["unlocked_at"], board):
            out[r["player_id"]] = out.get(r["player_id"], 0) + r["points"]
    return out


async def mine(http, players: list[str], params: dict) -> tuple[dict, dict[str, int]]:
    """The whole board (first page is enough: fresh test players are few, so page through) - points of `players`."""
    entries, cursor, first = [], None, None
    while True:
        page = (await http.get("/v1/games/arena/leaderboard",
                               params={"limit": 200, **params, **({"cursor": cursor} if cursor else {})})).json()
        first = first or page
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return first, {e["player_id"]: e["points"] for e in entries if e["player_id"] in players}


async def test_daily_and_weekly_boards_hold_the_periods_points(http, api_key, uid, db) -> None:
    players = [uid(f"per{k}") for k in range(4)]
    items = [{"player_id": p, "game_id": "arena", "achievement_id": f"a{i}", "region": "eu"}
             for k, p in enumerate(players) for i in range(k + 1)]
    assert {a["status"] for a in await ingest(http, api_key, items)} == {"accepted"}
    for period in ("day", "week"):
        async def settled(period: str = period) -> tuple[dict, dict[str, int]] | None:
            board, got = await mine(http, players, {"period": period})
            return (board, got) if got == await expected_points(db, players, board) and got else None

        board, got = await eventually(settled)
        assert board["period"] == period and len(got) == 4
        regional, got_eu = await mine(http, players, {"period": period, "region": "eu"})
        assert got_eu == got and regional["region"] == "eu"
        rank = (await http.get(f"/v1/games/arena/players/{players[3]}/rank", params={"period": period})).json()
        assert rank["points"] == got[players[3]] and rank["period_start"] == board["period_start"]


async def test_previous_day_comes_back_from_the_journal_and_the_checkpoint(cluster, http, uid, db, server) -> None:
    """Unlocks journaled yesterday but never folded in (as after a crash between
    commit and checkpoint): the player shard replays them into yesterday's board,
    checkpoints it, and a restarted leaderboard shard reads it back."""
    players = [uid(f"yday{k}") for k in range(3)]
    for k, p in enumerate(players):
        await db.execute(
            "INSERT INTO unlocks (player_id, game_id, achievement_id, points, region, unlocked_at, player_shard) "
            "SELECT $1, 'arena', 'a' || i, (ARRAY[10, 20, 30, 40])[i + 1], 'na', now() - interval '1 day', $2 "
            "FROM generate_series(0, $3) AS i", p, shard_of(p, cluster.settings.player_shards), k)
    for shard in range(cluster.settings.player_shards):
        ray.kill(directory.player_shard(cluster.settings, shard), no_restart=False)

    seen: list[object] = []

    async def yesterday() -> tuple[dict, dict[str, int]] | None:
        board, got = await mine(http, players, {"period": "day", "previous": "true"})
        want = await expected_points(db, players, board)
        seen[:] = [board, got, want]
        return (board, got) if got and got == want else None

    try:
        _, got = await eventually(yesterday, timeout=60)
    except AssertionError:
        statuses = [await directory.player_shard(cluster.settings, i).status.remote()
                    for i in range(cluster.settings.player_shards)]
        raise AssertionError(f"{seen} {statuses}") from None
    assert got == {players[0]: 10, players[1]: 30, players[2]: 60}

    async def checkpointed() -> bool:
        n = await db.fetchval("SELECT count(*) FROM player_period_stats WHERE player_id = ANY($1) AND period = 'day'",
                              players)
        return n == 3

    await eventually(checkpointed)
    ray.kill(directory.leaderboard_shard(cluster.settings, shard_of("arena", cluster.settings.leaderboard_shards)),
             no_restart=False)

    async def back() -> bool:
        return (await mine(http, players, {"period": "day", "previous": "true"}))[1] == got

    await eventually(back, timeout=60)
    history = await get_ok(server, f"/v1/players/{players[2]}/history", game="arena")
    assert [d["points"] for d in history["days"][-2:]] == [60, 0]


async def test_history_is_a_zero_filled_window_that_survives_a_restart(cluster, http, api_key, uid, db, server) -> None:
    p = uid("hist")
    await ingest(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a1"},
                                 {"player_id": p, "game_id": "puzzle", "achievement_id": "p0"}])
    body = await get_ok(server, f"/v1/players/{p}/history", days=30)
    assert len(body["days"]) == 30
    today = body["days"][-1]
    assert (today["points"], today["unlocked"]) == (27, 2)
    assert {g["game_id"]: g["points"] for g in today["games"]} == {"arena": 20, "puzzle": 7}
    assert sum(d["points"] for d in body["days"][:-1]) == 0

    async def rolled_up() -> bool:
        return await db.fetchval("SELECT sum(points) FROM player_period_stats WHERE player_id = $1 AND period = 'day'",
                                 p) == 27

    await eventually(rolled_up)
    ray.kill(directory.player_shard(cluster.settings, shard_of(p, cluster.settings.player_shards)), no_restart=False)

    async def same() -> bool:
        return (await server.get(f"/v1/players/{p}/history", params={"days": 30})).json() == body

    await eventually(same, timeout=60)
    only_arena = await get_ok(server, f"/v1/players/{p}/history", game="arena", days=7)
    assert len(only_arena["days"]) == 7 and only_arena["days"][-1]["points"] == 20


async def test_period_and_history_problems(server, uid) -> None:
    cases = [
        (f"/v1/players/{uid('h')}/history?days=8", 422, "invalid_request"),
        (f"/v1/players/{uid('h')}/history?game=_all", 422, "invalid_request"),
        (f"/v1/players/{uid('h')}/history?game=nope", 404, "unknown_game"),
        ("/v1/games/_all/leaderboard?period=day", 422, "invalid_request"),
        ("/v1/games/arena/leaderboard?previous=true", 422, "invalid_request"),
        ("/v1/games/arena/leaderboard?period=month", 422, "invalid_request"),
    ]
    for path, status, code in cases:
        response = await server.get(path)
        assert (response.status_code, response.json()["code"]) == (status, code), path


async def test_changed_points_apply_to_later_unlocks_without_restart(http, api_key, uid, db, server) -> None:
    from podium.persistence import catalog_store

    game = {"game_id": "tuning", "name": "Tuning",
            "achievements": [{"achievement_id": "t0", "name": "T", "points": 10}]}
    async with db.acquire() as conn:
        await catalog_store.import_catalog(conn, [game])
    first = uid("tune-first")

    async def known() -> bool:
        acks = await ingest(http, api_key, [{"player_id": first, "game_id": "tuning", "achievement_id": "t0"}])
        return acks[0]["status"] in ("accepted", "duplicate")

    await eventually(known)
    game["achievements"][0]["points"] = 50  # type: ignore[index]
    async with db.acquire() as conn:
        await catalog_store.import_catalog(conn, [game])
    attempt = iter(range(1000))

    async def repriced() -> bool:
        p = uid(f"tune-{next(attempt)}")
        await ingest(http, api_key, [{"player_id": p, "game_id": "tuning", "achievement_id": "t0"}])
        return (await server.get(f"/v1/players/{p}/dashboard")).json()["total_points"] == 50

    await eventually(repriced, timeout=15, every=0.5)
    assert (await server.get(f"/v1/players/{first}/dashboard")).json()["total_points"] == 10  # the journal keeps 10
