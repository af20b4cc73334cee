"""Stat boards end to end (issue 25): stat updates over the ingest socket, ranked
on the catalog's asc and desc boards and read over HTTP (pages with cursors
both ways, rank, around-me, periods, seasons); a season that closes a few
seconds into the test keeps its final standings once, and updates after its
end are not in them; and both leaderboard shards SIGKILLed while stat updates
stream leave every board equal to a model of what was acked; a player shard
SIGKILLed then restarts from its checkpointed period values, reading no stat
journal row before its watermark."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import websockets

from podium.core.periods import parse
from podium.gateway.auth import mint_token
from podium.transport import directory
from tests.integration.conftest import eventually
from tests.integration.test_stats_ingest import add_game, send, stat
from tests.integration.test_stats_recovery_under_load import PLAYERS, model, sigkill, stream

STATS = [{"stat_id": "wins", "name": "Wins", "op": "incr", "min": 0},
         {"stat_id": "lap", "name": "Best lap", "op": "min", "min": 1, "max": 3600000},
         {"stat_id": "speed", "name": "Top speed", "op": "max"}]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def game_entry(game: str, seasons: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"game_id": game, "name": "Kart", "stats": STATS, "achievements": [], "boards": [
        {"board_id": "fastest-lap", "name": "Fastest lap", "stat_id": "lap", "order": "asc",
         "periods": ["all", "day", "week"], "seasons": seasons or []},
        {"board_id": "most-wins", "name": "Most wins", "stat_id": "wins", "order": "desc",
         "periods": ["all", "week"]},
        {"board_id": "top-speed", "name": "Top speed", "stat_id": "speed", "periods": ["all", "day"]},
    ]}


async def ingest(cluster: Any, api_key: str, items: list[dict[str, Any]]) -> None:
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        acks = await send(ws, items)
    assert [a["status"] for a in acks] == ["accepted"] * len(items), acks


async def board(http: Any, game: str, **params: Any) -> dict[str, Any]:
    r = await http.get(f"/v1/games/{game}/leaderboard", params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    return r.json()


def values(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(e["player_id"], e["value"]) for e in page["entries"]]


async def test_asc_and_desc_stat_boards_through_the_http_reads(cluster, db, http, api_key, uid) -> None:
    game = uid("kart")
    await add_game(db, game, cluster, api_key, game_entry(game))
    laps = {uid("ann"): 61000, uid("bob"): 59000, uid("cy"): 75000, uid("dee"): 59000, uid("eve"): 90000}
    items = [stat(p, game, "lap", "min", lap + 500, f"{p}-1", region="eu") for p, lap in laps.items()]
    items += [stat(p, game, "lap", "min", lap, f"{p}-2") for p, lap in laps.items()]
    items += [stat(p, game, "wins", "incr", n + 1, f"{p}-w", region="eu") for n, p in enumerate(laps)]
    await ingest(cluster, api_key, items)
    best_first = sorted(laps.items(), key=lambda kv: kv[1])

    async def ranked() -> bool:
        page = await board(http, game, board="fastest-lap")
        return len(page["entries"]) == len(laps) and all(v == laps[p] for p, v in values(page))

    await eventually(ranked, timeout=30)
    page = await board(http, game, board="fastest-lap")
    assert page["order"] == "asc" and page["board_id"] == "fastest-lap" and page["total"] == len(laps)
    assert [v for _, v in values(page)] == sorted(laps.values())
    # bob and dee tie at 59000: who reached it first ranks first (same round: same time, then player id)
    assert {p for p, _ in values(page)[:2]} == {p for p, v in best_first[:2]}
    wins = await board(http, game, board="most-wins")
    assert wins["order"] == "desc" and [v for _, v in values(wins)] == [5, 4, 3, 2, 1]
    assert (await board(http, game))["entries"] == []  # the points board holds no stat

    # Cursors both ways, in the asc order
    first = await board(http, game, board="fastest-lap", limit=2)
    second = await board(http, game, board="fastest-lap", limit=2, cursor=first["next_cursor"])
    assert values(first) + values(second) == values(page)[:4]
    back = await board(http, game, board="fastest-lap", limit=2, cursor=second["prev_cursor"])
    assert values(back) == values(first)

    # Rank and around-me give the value and the order; the periods and a region too
    worst = best_first[-1][0]
    r = await http.get(f"/v1/games/{game}/players/{worst}/rank", params={"board": "fastest-lap"})
    assert r.status_code == 200 and r.json()["rank"] == 5 and r.json()["value"] == 90000
    assert r.json()["order"] == "asc"
    r = await http.get(f"/v1/games/{game}/players/{worst}/around", params={"board": "fastest-lap", "k": 1})
    assert [e["value"] for e in r.json()["entries"]] == [75000, 90000]
    day = await board(http, game, board="fastest-lap", period="day")
    assert values(day) == values(page)
    eu = await board(http, game, board="fastest-lap", region="eu")
    assert values(eu) == values(page)  # every player's region is eu (set by their first update)
    week = await board(http, game, board="most-wins", period="week")
    assert values(week) == values(wins)

    # Among (a friends board's read) and a query frame on the ingest socket take the board too
    pair = [best_first[0][0], worst]
    r = await http.get(f"/v1/games/{game}/leaderboard/among", params={"players": pair, "board": "fastest-lap"})
    assert [(e["rank"], e["player_id"], e["value"]) for e in r.json()["entries"]] == [
        (1, best_first[0][0], best_first[0][1]), (2, worst, 90000)]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await ws.send(orjson.dumps({"q": "rank", "id": 7, "game_id": game, "player_id": worst,
                                    "board": "most-wins"}).decode())
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply["type"] == "result" and reply["body"]["order"] == "desc", reply
    assert reply["body"]["value"] == list(laps).index(worst) + 1

    # Unknown board, a period it does not keep, a season it does not have: 404 problems
    for params, code in [({"board": "nope"}, "unknown_board"), ({"board": "most-wins", "period": "day"},
                                                                 "unknown_board"),
                         ({"board": "fastest-lap", "period": "season"}, "unknown_season"),
                         ({"board": "fastest-lap", "period": "season", "season": "s9"}, "unknown_season")]:
        r = await http.get(f"/v1/games/{game}/leaderboard", params=params)
        assert r.status_code == 404 and r.json()["code"] == code, (params, r.text)
    r = await http.get(f"/v1/games/{game}/leaderboard", params={"period": "season"})
    assert r.status_code == 422

    # The live board socket takes the board too: its first frame is the top N, in the board's order
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/boards/{game}?board=fastest-lap&top=3",
                                  additional_headers={"X-Forwarded-For": "10.9.8.7"}) as ws:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert frame["board_id"] == "fastest-lap" and frame["order"] == "asc"
    assert [(e["player_id"], e["value"]) for e in frame["entries"]] == values(page)[:3]


async def test_a_player_whose_set_value_falls_out_of_the_top_gets_rank_lost_top(cluster, db, http, api_key,
                                                                                 uid) -> None:
    """On a `set` board a score can fall. The top-N watch must look when a
    member of the top moves, even though no update reached the N-th's score."""
    game = uid("levels")
    entry = {"game_id": game, "name": "Levels", "achievements": [],
             "stats": [{"stat_id": "level", "name": "Level", "op": "set", "min": 0, "max": 1000}],
             "boards": [{"board_id": "level", "name": "Level", "stat_id": "level", "periods": ["all"]}]}
    await add_game(db, game, cluster, api_key, entry)
    top_n = cluster.settings.inbox_top_n
    players = [uid(f"l{i}") for i in range(top_n)]
    runner_up = uid("runner-up")
    await ingest(cluster, api_key, [stat(p, game, "level", "set", 10 * (i + 1), f"{p}-1")
                                    for i, p in enumerate(players)] + [stat(runner_up, game, "level", "set", 5, "r")])

    async def full() -> bool:
        return (await board(http, game, board="level"))["total"] == top_n + 1
    await eventually(full, timeout=30)
    await asyncio.sleep(1.5)  # the watch has looked at the full top N (every 0.5 s)
    fallen = players[-1]  # the best falls to the bottom: the runner-up moves into the top N
    await ingest(cluster, api_key, [stat(fallen, game, "level", "set", 1, f"{fallen}-2")])

    async def lost() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {mint_token(cluster.settings.token_secret, fallen, 600)}"}
        return (await http.get(f"/v1/players/{fallen}/inbox", headers=headers)).json()["items"]
    [item] = await eventually(lost, timeout=20)
    assert item["kind"] == "rank.lost_top"
    assert (item["event"]["top"], item["event"]["rank"], item["event"]["points"]) == (top_n, top_n + 1, 1)


async def test_a_first_region_sent_with_a_stat_update_moves_the_players_total_to_that_region(
        cluster, db, http, api_key, uid) -> None:
    """A player with points and no region yet sends a stat update with a region:
    the journal records it, and their cross-game total must reach that region's
    totals board, though the stat row moved no points."""
    game, p = uid("kart"), uid("p")
    await add_game(db, game, cluster, api_key, game_entry(game))
    r = await http.post("/v1/unlocks", content=orjson.dumps([{"player_id": p, "game_id": "arena",
                                                              "achievement_id": "a0"}]),
                        headers={"X-API-Key": api_key})
    assert r.status_code == 200 and r.json()[0]["status"] == "accepted", r.text

    async def ranked(**params: Any) -> bool:
        got = await http.get(f"/v1/games/_all/players/{p}/rank", params=params)
        return got.status_code == 200 and got.json().get("rank") is not None
    await eventually(ranked, timeout=20)
    await ingest(cluster, api_key, [stat(p, game, "wins", "incr", 1, "w1", region="eu")])
    await eventually(lambda: ranked(region="eu"), timeout=20)


async def test_a_season_closes_on_time_and_keeps_its_final_standings_once(cluster, db, http, api_key, uid) -> None:
    game = uid("season")
    now = datetime.now(UTC)
    end = now + timedelta(seconds=25)
    seasons = [{"season_id": "s1", "start": iso(now - timedelta(hours=1)), "end": iso(end)},
               {"season_id": "s2", "start": iso(end), "end": iso(end + timedelta(hours=1))}]
    await add_game(db, game, cluster, api_key, game_entry(game, seasons))
    players = [uid(f"r{n}") for n in range(4)]
    before = {p: 60000 + 1000 * n for n, p in enumerate(players)}
    assert datetime.now(UTC) < end - timedelta(seconds=5), "the game took too long to import; the season is over"
    await ingest(cluster, api_key, [stat(p, game, "lap", "min", lap, f"{p}-a", region="eu" if n % 2 else "na")
                                    for n, (p, lap) in enumerate(before.items())])

    async def in_season() -> bool:
        page = await board(http, game, board="fastest-lap", period="season")
        return page.get("season_id") == "s1" and dict(values(page)) == before

    await eventually(in_season, timeout=15)
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.2)
    # After the end: a better lap from the last player goes to s2, not s1
    last = players[-1]
    await ingest(cluster, api_key, [stat(last, game, "lap", "min", 50000, f"{last}-b")])

    async def closed() -> dict[str, Any] | None:
        r = await http.get(f"/v1/games/{game}/boards/fastest-lap/seasons/s1/standings")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["closed"] else None

    kept = await eventually(closed, timeout=30)
    assert [(e["rank"], e["player_id"], e["value"]) for e in kept["entries"]] == [
        (n + 1, p, lap) for n, (p, lap) in enumerate(before.items())]
    assert kept["total"] == len(players) and kept["order"] == "asc"
    eu = (await http.get(f"/v1/games/{game}/boards/fastest-lap/seasons/s1/standings", params={"region": "eu"})).json()
    assert [(e["rank"], e["player_id"]) for e in eu["entries"]] == [(1, players[1]), (2, players[3])]
    s2 = await board(http, game, board="fastest-lap", period="season", season="s2")
    assert values(s2) == [(last, 50000)]
    allt = await board(http, game, board="fastest-lap")
    assert values(allt)[0] == (last, 50000)  # all-time takes it
    # Once: one close row, one standing per player and scope, whatever closes again
    rows = await db.fetch("SELECT region, count(*) AS n FROM season_standings WHERE game_id = $1 AND season_id = 's1' "
                          "GROUP BY region ORDER BY region", game)
    assert [(r["region"], r["n"]) for r in rows] == [("", 4), ("eu", 2), ("na", 2)]
    assert await db.fetchval("SELECT count(*) FROM season_closes WHERE game_id = $1", game) == 1
    r = await http.get(f"/v1/games/{game}/boards/fastest-lap/seasons/nope/standings")
    assert r.status_code == 404 and r.json()["code"] == "unknown_season"
    s2_open = (await http.get(f"/v1/games/{game}/boards/fastest-lap/seasons/s2/standings")).json()
    assert s2_open["closed"] is False and s2_open["entries"] == []


def kill_entry(game: str) -> dict[str, Any]:
    return {"game_id": game, "name": "Stat boards under kills", "stats": STATS, "achievements": [], "boards": [
        {"board_id": "lap", "name": "Lap", "stat_id": "lap", "order": "asc", "periods": ["all", "day"]},
        {"board_id": "wins", "name": "Wins", "stat_id": "wins", "order": "desc", "periods": ["all", "week"]},
        {"board_id": "speed", "name": "Speed", "stat_id": "speed", "order": "desc", "periods": ["all"]}]}


async def test_stat_boards_equal_a_model_after_the_leaderboard_shards_are_killed_mid_stream(
        cluster, db, http, api_key, uid) -> None:
    tag, game = uid("kb"), uid("kgame")
    await add_game(db, game, cluster, api_key, kill_entry(game))
    stop = asyncio.Event()
    acked: dict[int, str] = {}
    streamer = asyncio.ensure_future(stream(cluster, api_key, tag, game, stop, acked))

    async def acked_more(n: int = 120) -> None:
        target = len(acked) + n
        await eventually(lambda: len(acked) >= target, timeout=90, every=0.05)

    s = cluster.settings
    killed = []
    # Both leaderboard shards, then a player shard (its period values are rebuilt from the stat journal)
    victims = [*[directory.leaderboard_shard(s, i) for i in range(s.leaderboard_shards)],
               directory.player_shard(s, 0)]
    for victim in victims:
        await acked_more()
        killed.append((victim, await sigkill(victim)))
    await acked_more()
    for victim, pid in killed:
        async def restarted(v: Any = victim, p: int = pid) -> bool:
            return await v.pid.remote() != p
        await eventually(restarted, timeout=60)
    stop.set()
    await asyncio.wait_for(streamer, 180)
    sent = len(acked)
    assert set(acked) == set(range(sent))
    truth = model(tag, game, sent)  # (player, stat) -> value
    expected = {b: {p: v for (p, st), v in truth.items() if st == b} for b in ("lap", "wins", "speed")}
    assert len(expected["lap"]) == PLAYERS

    async def equal() -> bool:
        for b, want in expected.items():
            for period in (("all", "day") if b == "lap" else ("all", "week") if b == "wins" else ("all",)):
                page = await board(http, game, board=b, period=period)
                got = values(page)
                if dict(got) != want or len(got) != len(want):
                    return False
                order = [v for _, v in got]
                assert order == (sorted(order) if b == "lap" else sorted(order, reverse=True))
        return True

    t0 = time.monotonic()
    await eventually(equal, timeout=60, every=0.5)
    print(f"{sent} stat updates, both leaderboard shards and a player shard SIGKILLed; boards equal the model "
          f"{time.monotonic() - t0:.1f} s after the stream stopped")
    # And once more after both come back from a second kill with nothing streaming: recovery alone rebuilds them
    for i in range(s.leaderboard_shards):
        await sigkill(directory.leaderboard_shard(s, i))
    await asyncio.sleep(1.0)
    await eventually(equal, timeout=60, every=0.5)
    assert orjson.dumps(expected)  # the model is plain data (printed on failure by pytest)

    # The player shards' checkpoints hold the model's period values (lap's day, wins' week) ...
    shard = directory.player_shard(s, 0)
    newest = await db.fetchval("SELECT greatest((SELECT max(seq) FROM stat_updates WHERE player_shard = 0), "
                               "(SELECT max(seq) FROM unlocks WHERE player_shard = 0))")

    async def checkpointed() -> bool:
        status = await shard.status.remote()
        return status["checkpointed_seq"] >= newest and status["stat_periods_dirty"] == 0

    await eventually(checkpointed, timeout=30)
    held = {(r["player_id"], parse(r["board"]).stat_board, parse(r["board"]).kind): r["value"] for r in await db.fetch(
        "SELECT player_id, board, value FROM player_stat_periods WHERE game_id = $1", game)}
    assert held == {(p, b, "day" if b == "lap" else "week"): v for b in ("lap", "wins") for p, v in expected[b].items()}
    # ... and a player shard SIGKILLed now loads them and reads no stat journal row at or before its watermark
    pid = await sigkill(shard)

    async def recovered() -> bool:  # in a new process, and recovered (status waits for it)
        return await shard.pid.remote() != pid and bool(await shard.status.remote())

    await eventually(recovered, timeout=60)
    recovery = (await shard.status.remote())["stat_recovery"]
    assert recovery["streamed_rows"] == 0 and recovery["rows_after_watermark"] == 0, recovery
    mine = await db.fetchval("SELECT count(*) FROM player_stat_periods WHERE player_shard = 0 AND game_id = $1", game)
    assert mine > 0 and recovery["checkpoint_rows"] >= mine, (mine, recovery)
    # The values it loaded are the model's: one more win each lands on the week boards as the model + 1
    await ingest(cluster, api_key, [stat(p, game, "wins", "incr", 1, f"{tag}-after-{p}") for p in expected["wins"]])
    expected["wins"] = {p: v + 1 for p, v in expected["wins"].items()}
    await eventually(equal, timeout=60, every=0.5)
    print(f"player shard 0 restarted from its checkpoint: {recovery}")
