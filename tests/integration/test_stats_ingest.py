"""Stat updates on the ingest paths (socket frames and POST /v1/unlocks), over a
real gateway, player shards and PostgreSQL: per-item answers, duplicates by
event id, the value chain in order, threshold unlocks in the same commit, and
values that survive a player shard's restart."""
from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
import orjson
import ray
import websockets

from podium.core.routing import shard_of
from podium.gateway.auth import mint_token
from podium.persistence import catalog_store, journal
from podium.transport import directory
from tests.integration.conftest import eventually, wait_online
from tests.integration.test_pushes import collect


def stats_game(game: str) -> dict[str, Any]:
    return {"game_id": game, "name": "Stats", "stats": [
        {"stat_id": "wins", "name": "Wins", "op": "incr", "min": 0, "max": 1000},
        {"stat_id": "lap", "name": "Best lap", "op": "min", "min": 1, "max": 3600000},
        {"stat_id": "speed", "name": "Top speed", "op": "max"},
        {"stat_id": "level", "name": "Level", "op": "set", "min": 1, "max": 100},
    ], "achievements": [
        {"achievement_id": "plain", "name": "Plain", "points": 5},
        {"achievement_id": "three-wins", "name": "Three wins", "points": 15,
         "threshold": {"stat_id": "wins", "at_least": 3}},
        {"achievement_id": "fast-lap", "name": "Fast lap", "points": 30,
         "threshold": {"stat_id": "lap", "at_most": 59999}},
        {"achievement_id": "level-50", "name": "Level 50", "points": 50,
         "threshold": {"stat_id": "level", "at_least": 50}},
    ]}


async def add_game(db: asyncpg.Pool, game: str, cluster: Any, api_key: str,
                   entry: dict[str, Any] | None = None) -> None:
    """Import the game and wait until every player shard knows it (each reloads its
    catalog on an unknown id at most once a second)."""
    entry = entry or stats_game(game)
    async with db.acquire() as conn:
        await catalog_store.import_catalog(conn, [entry])
    shards = cluster.settings.player_shards
    probes: dict[int, str] = {}
    for n in itertools.count():  # a player on every shard
        probes.setdefault(shard_of(f"probe-{n}", shards), f"probe-{n}")
        if len(probes) == shards:
            break
    first = entry["stats"][0]
    wrong = "max" if first["op"] != "max" else "min"
    frame = [stat(p, game, first["stat_id"], wrong, 1, "probe") for p in probes.values()]

    async def known() -> bool:  # `wrong_operator` (nothing recorded) once the shard knows the stat
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ws:
            return {a.get("reason") for a in await send(ws, frame)} == {"wrong_operator"}

    await eventually(known, timeout=30, every=0.3)


def stat(player: str, game: str, stat_id: str, op: str, value: Any, event: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "stat", "player_id": player, "game_id": game, "stat_id": stat_id, "op": op, "value": value,
            "event_id": event, **extra}


async def send(ws: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    await ws.send(orjson.dumps(items).decode())
    return orjson.loads(await ws.recv())


async def journal_of(db: asyncpg.Pool, player: str) -> list[tuple[str, str, int, int]]:
    rows = await db.fetch("SELECT stat_id, event_id, value, value_after FROM stat_updates WHERE player_id = $1 "
                          "ORDER BY seq", player)
    return [(r["stat_id"], r["event_id"], r["value"], r["value_after"]) for r in rows]


async def test_each_stat_update_gets_its_answer_and_accepted_means_journaled(cluster, db, api_key, uid) -> None:
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    frame = [
        {"id": 1, **stat(p, game, "wins", "incr", 2, "e1", region="eu", at="2026-12-07T10:00:00Z")},
        {"id": 2, **stat(p, game, "wins", "incr", 5, "e1")},  # the same event id again: whatever it carries
        {"id": 3, **stat(p, game, "wins", "max", 1, "e2")},
        {"id": 4, **stat(p, game, "wins", "incr", -3, "e3")},  # 2 - 3 < min 0
        {"id": 5, **stat(p, game, "level", "set", 101, "e4")},
        {"id": 6, **stat(p, game, "nope", "incr", 1, "e5")},
        {"id": 7, **stat(p, "no-such-game", "wins", "incr", 1, "e6")},
        {"id": 8, **stat(p, game, "wins", "incr", 1.0, "e7")},
        {"id": 9, **stat(p, game, "speed", "max", 120, "e8")},
        {"id": 10, "player_id": p, "game_id": game, "achievement_id": "plain"},
    ]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        acks = await send(ws, frame)
        journaled = await journal_of(db, p)  # read right after the ack: committed
        again = await send(ws, [{"id": 11, **stat(p, game, "wins", "incr", 2, "e1")}])
    assert [(a["id"], a["status"], a.get("reason")) for a in acks] == [
        (1, "accepted", None), (2, "duplicate", None), (3, "rejected", "wrong_operator"),
        (4, "rejected", "out_of_bounds"), (5, "rejected", "out_of_bounds"), (6, "rejected", "unknown_stat"),
        (7, "rejected", "unknown_game"), (8, "rejected", acks[7]["reason"]), (9, "accepted", None),
        (10, "accepted", None)]
    assert acks[7]["reason"].startswith("invalid: value")
    assert journaled == [("wins", "e1", 2, 2), ("speed", "e8", 120, 120)]
    assert again == [{"id": 11, "status": "duplicate"}]
    row = await db.fetchrow("SELECT region, client_at, op FROM stat_updates WHERE player_id = $1 AND event_id = 'e1'",
                            p)
    assert row["region"] == "eu" and row["client_at"].isoformat().startswith("2026-12-07T10:00") and row["op"] == "incr"
    assert await journal_of(db, p) == journaled  # the resend recorded nothing


async def test_a_journaled_event_resent_among_new_ones_is_a_duplicate_and_the_rest_apply_once(cluster, db,
                                                                                                 api_key, uid) -> None:
    """A round is planned once, assuming no event id of it is journaled; a resent
    one the journal holds rolls that attempt back and the round is planned again.
    The retry must leave the resend out of the value chain, journal every new
    update once, and cross the threshold once."""
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    s = cluster.settings
    shard = directory.player_shard(s, shard_of(p, s.player_shards))
    replans = (await shard.status.remote())["event_replans"]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        first = await send(ws, [stat(p, game, "wins", "incr", 2, "a")])
        mixed = await send(ws, [stat(p, game, "wins", "incr", 7, "a"),  # journaled: a duplicate, counts nothing
                                stat(p, game, "wins", "incr", 1, "b"), stat(p, game, "wins", "incr", 1, "c")])
        again = await send(ws, [stat(p, game, "wins", "incr", 1, "c"), stat(p, game, "wins", "incr", 1, "d")])
    assert [a["status"] for a in first + mixed + again] == ["accepted", "duplicate", "accepted", "accepted",
                                                            "duplicate", "accepted"]
    assert await journal_of(db, p) == [("wins", "a", 2, 2), ("wins", "b", 1, 3), ("wins", "c", 1, 4),
                                       ("wins", "d", 1, 5)]
    assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = $1 AND achievement_id = 'three-wins'",
                             p) == 1
    assert (await shard.status.remote())["event_replans"] == replans + 2


async def test_updates_of_one_stat_in_one_frame_apply_in_order(cluster, db, api_key, uid) -> None:
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    frame = [stat(p, game, "wins", "incr", 400, "a"), stat(p, game, "wins", "incr", 500, "b"),
             stat(p, game, "wins", "incr", 200, "c"),  # 1100 > max 1000: refused, the value stays 900
             stat(p, game, "wins", "incr", 100, "d"), stat(p, game, "lap", "min", 70000, "l1"),
             stat(p, game, "lap", "min", 80000, "l2"), stat(p, game, "level", "set", 7, "v1"),
             stat(p, game, "level", "set", 3, "v2")]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        acks = await send(ws, frame)
    assert [a["status"] for a in acks] == ["accepted"] * 2 + ["rejected"] + ["accepted"] * 5
    assert await journal_of(db, p) == [("wins", "a", 400, 400), ("wins", "b", 500, 900), ("wins", "d", 100, 1000),
                                       ("lap", "l1", 70000, 70000), ("lap", "l2", 80000, 70000),
                                       ("level", "v1", 7, 7), ("level", "v2", 3, 3)]


async def test_a_threshold_crossing_unlocks_once_in_the_same_commit_and_is_pushed(cluster, db, http, api_key,
                                                                                 uid) -> None:
    game, p = uid("stats"), uid("crosser")
    await add_game(db, game, cluster, api_key)
    token = mint_token(cluster.settings.token_secret, p, 60)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}",
                                  additional_headers={"Authorization": f"Bearer {token}"}) as player:
        assert orjson.loads(await player.recv())["type"] == "subscribed"
        await wait_online(cluster.settings, p)
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ws:
            assert [a["status"] for a in await send(ws, [stat(p, game, "wins", "incr", 2, "w1")])] == ["accepted"]
            assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = $1", p) == 0
            acks = await send(ws, [stat(p, game, "wins", "incr", 1, "w2"), stat(p, game, "wins", "incr", 1, "w3"),
                                   stat(p, game, "level", "set", 60, "v1"), stat(p, game, "level", "set", 10, "v2"),
                                   stat(p, game, "level", "set", 70, "v3")])
            assert [a["status"] for a in acks] == ["accepted"] * 5
            # in the same commit as the update that crossed: there as soon as the ack is
            unlocks = await db.fetch("SELECT achievement_id, points, seq FROM unlocks WHERE player_id = $1 "
                                     "ORDER BY seq", p)
            got = await collect(player, {("unlock.accepted", game)}, timeout=5.0)
            # a resend of the crossing update, and the level falling and crossing again: nothing more
            assert [a["status"] for a in await send(ws, [stat(p, game, "wins", "incr", 1, "w2")])] == ["duplicate"]
            await send(ws, [stat(p, game, "level", "set", 20, "v4")])
            await send(ws, [stat(p, game, "level", "set", 90, "v5")])
    assert [(r["achievement_id"], r["points"]) for r in unlocks] == [("three-wins", 15), ("level-50", 50)]
    same_commit = await db.fetch(  # each unlock was inserted by the transaction of the update that crossed
        "SELECT u.achievement_id, s.event_id FROM unlocks u JOIN stat_updates s ON s.xmin = u.xmin "
        "AND s.player_id = u.player_id WHERE u.player_id = $1 ORDER BY u.seq, s.seq", p)
    assert {(r["achievement_id"], r["event_id"]) for r in same_commit} >= {("three-wins", "w2"), ("level-50", "v1")}
    assert {r["event_id"] for r in same_commit} == {"w2", "w3", "v1", "v2", "v3"}  # one frame, one commit
    assert got[("unlock.accepted", game)]["achievement_id"] in {"three-wins", "level-50"}
    assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = $1", p) == 2
    # the unlock counts on the boards like any other

    async def ranked() -> bool:
        response = await http.get(f"/v1/games/{game}/players/{p}/rank")
        return response.status_code == 200 and response.json()["points"] == 65

    await eventually(ranked, timeout=20)


async def test_post_takes_stat_updates_beside_unlocks(cluster, db, server, api_key, uid) -> None:
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    body = [{"id": "u", "player_id": p, "game_id": game, "achievement_id": "plain"},
            {"id": "s", **stat(p, game, "lap", "min", 50000, "l1")}]
    response = await server.post("/v1/unlocks", content=orjson.dumps(body))
    assert response.status_code == 200
    assert response.json() == [{"id": "u", "status": "accepted"}, {"id": "s", "status": "accepted"}]
    rows = await db.fetch("SELECT achievement_id FROM unlocks WHERE player_id = $1 ORDER BY achievement_id", p)
    assert [r["achievement_id"] for r in rows] == ["fast-lap", "plain"]


async def test_stat_values_survive_a_player_shard_restart(cluster, db, api_key, uid) -> None:
    """The shard's values come back from the checkpoint and the journal tail: the
    chain goes on from them (value_after), the bounds see them, and a crossing
    already made is not made again."""
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    s = cluster.settings
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await send(ws, [stat(p, game, "wins", "incr", 996, "a"), stat(p, game, "lap", "min", 40000, "l1")])
        await eventually(lambda: db.fetchval("SELECT value FROM player_stats WHERE player_id = $1 AND stat_id = 'wins'",
                                             p), timeout=20)  # checkpointed
        await send(ws, [stat(p, game, "wins", "incr", 2, "b")])  # in the journal tail only (maybe)
    victim = directory.player_shard(s, shard_of(p, s.player_shards))
    ray.kill(victim, no_restart=False)
    await asyncio.sleep(0.5)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        acks = await send(ws, [stat(p, game, "wins", "incr", 3, "c"),  # 998 + 3 > 1000
                               stat(p, game, "wins", "incr", 2, "d"), stat(p, game, "wins", "incr", 2, "b"),
                               stat(p, game, "lap", "min", 30000, "l2")])
    assert [(a["status"], a.get("reason")) for a in acks] == [
        ("rejected", "out_of_bounds"), ("accepted", None), ("duplicate", None), ("accepted", None)]
    assert (await journal_of(db, p))[-2:] == [("wins", "d", 2, 1000), ("lap", "l2", 30000, 30000)]
    assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = $1 AND achievement_id = 'fast-lap'",
                             p) == 1


async def test_progress_is_read_over_http_and_a_socket_and_pushed_once_per_achievement(cluster, db, http, server,
                                                                                     api_key, uid) -> None:
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    token = mint_token(cluster.settings.token_secret, p, 60)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}",
                                  additional_headers={"Authorization": f"Bearer {token}"}) as player:
        assert orjson.loads(await player.recv())["type"] == "subscribed"
        await wait_online(cluster.settings, p)
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ws:
            # three updates of one stat in one frame: one progress event for its achievement, the newest
            acks = await send(ws, [stat(p, game, "level", "set", 10, "v1"), stat(p, game, "level", "set", 20, "v2"),
                                   stat(p, game, "level", "set", 30, "v3"), stat(p, game, "lap", "min", 90000, "l1")])
            assert {a["status"] for a in acks} == {"accepted"}
            frame = orjson.loads(await asyncio.wait_for(player.recv(), 5))
            await ws.send(orjson.dumps({"q": "progress", "id": "q1", "player_id": p, "game_id": game}).decode())
            by_socket = orjson.loads(await ws.recv())
    events = [e for e in frame["events"] if e["type"] == "progress"]
    assert [(e["achievement_id"], e["value"], e["percent"]) for e in events if e["achievement_id"] == "level-50"] == [
        ("level-50", 30, 60)]
    assert {e["achievement_id"] for e in events} == {"level-50", "fast-lap"}
    response = await server.get(f"/v1/players/{p}/progress", params={"game": game})
    assert response.status_code == 200
    body = response.json()
    assert body["stats"] == {"lap": 90000, "level": 30, "speed": None, "wins": None}
    assert body["achievements"] == [
        {"achievement_id": "fast-lap", "stat_id": "lap", "value": 90000, "target": 59999, "percent": 0, "done": False},
        {"achievement_id": "level-50", "stat_id": "level", "value": 30, "target": 50, "percent": 60, "done": False},
        {"achievement_id": "three-wins", "stat_id": "wins", "value": None, "target": 3, "percent": 0, "done": False}]
    assert by_socket == {"type": "result", "id": "q1", "q": "progress", "body": body}
    assert (await http.get(f"/v1/players/{p}/progress", params={"game": game})).status_code == 401
    assert (await server.get(f"/v1/players/{p}/progress", params={"game": "no-such-game"})).status_code == 404


async def test_a_threshold_added_while_already_met_unlocks_with_the_next_update(cluster, db, server, api_key,
                                                                               uid) -> None:
    """A threshold that is met when it reaches the shard (added, or lowered, below the player's value) unlocks
    with the player's next update of the stat, in that update's commit, and once only."""
    game, p = uid("stats"), uid("p")
    entry = stats_game(game)
    await add_game(db, game, cluster, api_key, entry)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        assert [a["status"] for a in await send(ws, [stat(p, game, "wins", "incr", 5, "w1")])] == ["accepted"]
        entry["achievements"].append({"achievement_id": "five-wins", "name": "Five wins", "points": 20,
                                      "threshold": {"stat_id": "wins", "at_least": 5}})
        async with db.acquire() as conn:
            await catalog_store.import_catalog(conn, [entry])

        async def known() -> bool:  # the player's shard has the new catalog (its poll)
            response = await server.get(f"/v1/players/{p}/progress", params={"game": game})
            return "five-wins" in {a["achievement_id"] for a in response.json()["achievements"]}

        await eventually(known, timeout=20)
        assert await db.fetchval("SELECT count(*) FROM unlocks WHERE player_id = $1 AND achievement_id = 'five-wins'",
                                 p) == 0  # nothing until the next update
        assert [a["status"] for a in await send(ws, [stat(p, game, "wins", "incr", 1, "w2")])] == ["accepted"]
        for n in range(3, 6):  # later updates: met, unlocked already
            await send(ws, [stat(p, game, "wins", "incr", 1, f"w{n}")])
    rows = await db.fetch("SELECT u.achievement_id, s.event_id FROM unlocks u LEFT JOIN stat_updates s "
                          "ON s.xmin = u.xmin AND s.player_id = u.player_id WHERE u.player_id = $1 ORDER BY u.seq", p)
    assert [(r["achievement_id"], r["event_id"]) for r in rows] == [("three-wins", "w1"), ("five-wins", "w2")]


async def test_stat_rows_replay_with_the_players_region(cluster, db, api_key, uid) -> None:
    """Reconcile and recovery read the region of stat rows as of unlock rows: a region change may come with a
    stat update only."""
    game, p = uid("stats"), uid("p")
    await add_game(db, game, cluster, api_key)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await send(ws, [stat(p, game, "wins", "incr", 1, "w1", region="eu")])
    async with db.acquire() as conn:
        rows = await journal.replay_stats(conn, shard=shard_of(p, cluster.settings.player_shards), after_seq=0)
    assert [(r["stat_id"], r["region"]) for r in rows if r["player_id"] == p] == [("wins", "eu")]


async def test_a_region_sent_with_stat_updates_only_survives_a_restart(cluster, db, api_key, uid) -> None:
    """A player whose region came with stat updates only keeps it across a player shard restart, whether the
    updates are checkpointed or in the journal tail: their next unlock without a region is journaled with it."""
    game, p = uid("stats"), uid("p")
    s = cluster.settings
    shard = shard_of(p, s.player_shards)
    q = next(q for n in itertools.count() if shard_of(q := f"{p}-q{n}", s.player_shards) == shard)
    await add_game(db, game, cluster, api_key)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        await send(ws, [stat(p, game, "wins", "incr", 1, "w1", region="eu")])
        await eventually(lambda: db.fetchval("SELECT value FROM player_stats WHERE player_id = $1", p),
                         timeout=20)  # checkpointed
        await send(ws, [stat(q, game, "wins", "incr", 1, "w1", region="us")])  # maybe only in the tail
    ray.kill(directory.player_shard(s, shard), no_restart=False)

    async def back() -> bool:  # the shard answers again (a wrong operator records nothing)
        async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                      additional_headers={"X-API-Key": api_key}) as ws:
            acks = await asyncio.wait_for(send(ws, [stat(p, game, "wins", "max", 1, "probe")]), 10)
            return acks[0].get("reason") == "wrong_operator"

    await eventually(back, timeout=90, every=0.5)
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        acks = await send(ws, [{"player_id": p, "game_id": game, "achievement_id": "plain"},
                               {"player_id": q, "game_id": game, "achievement_id": "plain"}])
    assert [a["status"] for a in acks] == ["accepted", "accepted"]
    rows = await db.fetch("SELECT player_id, region FROM unlocks WHERE player_id = ANY($1::text[])", [p, q])
    assert {r["player_id"]: r["region"] for r in rows} == {p: "eu", q: "us"}
