"""Reads over real HTTP: catalog, leaderboard pages with cursors, rank,
dashboard, health, and their problem bodies."""
from __future__ import annotations

import orjson

from tests.integration.conftest import eventually


async def post(http, api_key, items) -> list[dict]:
    response = await http.post("/v1/unlocks", content=orjson.dumps(items), headers={"X-API-Key": api_key})
    assert response.status_code == 200, response.text
    return response.json()


async def test_catalog_lists_games_with_points(http) -> None:
    games = {g["game_id"]: g for g in (await http.get("/v1/games")).json()["games"]}
    assert {"arena", "puzzle"} <= set(games)
    assert {a["achievement_id"]: a["points"] for a in games["arena"]["achievements"]}["a3"] == 40


async def test_leaderboard_pages_rank_and_percentile(http, api_key, uid) -> None:
    # puzzle points: p0=7 p1=14 p2=21 p3=28; player k unlocks p0..p(k-1)
    region = uid("r")[-8:]
    players = [uid(f"lb{k}") for k in range(1, 5)]
    await post(http, api_key, [{"player_id": p, "game_id": "puzzle", "achievement_id": f"p{i}", "region": region}
                               for k, p in enumerate(players, 1) for i in range(k)])

    async def page_of_region(cursor: str | None = None, limit: int = 3) -> dict:
        params = {"region": region, "limit": limit, **({"cursor": cursor} if cursor else {})}
        return (await http.get("/v1/games/puzzle/leaderboard", params=params)).json()

    first = await eventually(lambda: _full(page_of_region(), 4))
    assert [e["player_id"] for e in first["entries"]] == players[::-1][:3]
    assert [e["points"] for e in first["entries"]] == [70, 42, 21]
    second = await page_of_region(first["next_cursor"])
    assert [e["player_id"] for e in second["entries"]] == [players[0]] and second["entries"][0]["rank"] == 4
    assert second["next_cursor"] is None
    back = await page_of_region(second["prev_cursor"])
    assert back["entries"] == first["entries"]

    rank = (await http.get(f"/v1/games/puzzle/players/{players[1]}/rank", params={"region": region})).json()
    assert (rank["rank"], rank["points"], rank["total"], rank["percentile"]) == (3, 21, 4, 50.0)
    global_rank = (await http.get(f"/v1/games/puzzle/players/{players[3]}/rank")).json()
    assert global_rank["rank"] >= 1 and global_rank["total"] >= 4


async def _full(page_coro, total: int) -> dict | None:
    page = await page_coro
    return page if page["total"] == total else None


async def test_page_size_is_capped(http, cluster, api_key, uid) -> None:
    cap = cluster.settings.page_limit_max
    region = uid("cap")[-8:]
    players = [uid(f"cap{i}") for i in range(cap + 5)]
    await post(http, api_key, [{"player_id": p, "game_id": "puzzle", "achievement_id": "p0", "region": region}
                               for p in players])
    params = {"region": region, "limit": 10_000}
    page = await eventually(lambda: _full(_get(http, "/v1/games/puzzle/leaderboard", params), cap + 5))
    assert len(page["entries"]) == cap and page["next_cursor"] is not None
    rest = await _get(http, "/v1/games/puzzle/leaderboard", {**params, "cursor": page["next_cursor"]})
    assert len(rest["entries"]) == 5 and rest["next_cursor"] is None


async def _get(http, path: str, params: dict) -> dict:
    return (await http.get(path, params=params)).json()


async def test_dashboard_has_every_game_in_one_call(http, api_key, uid, server) -> None:
    p = uid("dash")
    await post(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a0", "region": "na"},
                               {"player_id": p, "game_id": "puzzle", "achievement_id": "p3"}])
    board = (await server.get(f"/v1/players/{p}/dashboard")).json()
    assert board["total_points"] == 10 + 28 and board["region"] == "na"
    assert {g["game_id"]: (g["points"], g["unlocked"]) for g in board["games"]} == {"arena": (10, 1),
                                                                                      "puzzle": (28, 1)}


async def test_problems_for_unknown_things_and_bad_params(http, uid) -> None:
    cases = [
        ("/v1/games/no-such-game/leaderboard", 404, "unknown_game"),
        (f"/v1/games/arena/players/{uid('nobody')}/rank", 404, "unknown_player"),
        ("/v1/games/arena/leaderboard?cursor=forged", 400, "bad_cursor"),
        ("/v1/games/arena/leaderboard?limit=0", 422, "invalid_request"),
        ("/v1/games/arena/leaderboard?region=NOT%20A%20REGION", 422, "invalid_request"),
    ]
    for path, status, code in cases:
        response = await http.get(path)
        assert (response.status_code, response.json()["code"]) == (status, code), path
        assert response.headers["content-type"] == "application/problem+json"


async def test_health_reports_every_part(http, cluster) -> None:
    body = (await http.get("/v1/health")).json()
    s = cluster.settings
    assert body["status"] == "ok"
    assert len(body["checks"]) == 2 + s.player_shards + s.leaderboard_shards
    assert all(check["ok"] for check in body["checks"].values())


async def test_around_me_and_players_ranked_together(http, api_key, uid) -> None:
    region = uid("r")[-8:]
    players = [uid(f"ar{k}") for k in range(1, 5)]  # player k has p0..p(k-1): 7, 21, 42, 70 points
    await post(http, api_key, [{"player_id": p, "game_id": "puzzle", "achievement_id": f"p{i}", "region": region}
                               for k, p in enumerate(players, 1) for i in range(k)])

    async def around_top() -> dict | None:
        body = (await http.get(f"/v1/games/puzzle/players/{players[3]}/around",
                               params={"region": region, "k": 1})).json()
        return body if len(body.get("entries", [])) == 2 else None

    top = await eventually(around_top)
    assert [(e["rank"], e["player_id"]) for e in top["entries"]] == [(1, players[3]), (2, players[2])]
    middle = (await http.get(f"/v1/games/puzzle/players/{players[1]}/around",
                             params={"region": region, "k": 1})).json()
    assert [e["player_id"] for e in middle["entries"]] == [players[2], players[1], players[0]]
    among = (await http.get("/v1/games/puzzle/leaderboard/among",
                            params=[("players", players[0]), ("players", players[2]), ("players", uid("x"))])).json()
    assert [(e["rank"], e["player_id"], e["points"]) for e in among["entries"]] == [(1, players[2], 42),
                                                                                     (2, players[0], 7)]
    missing = await http.get(f"/v1/games/puzzle/players/{uid('nobody')}/around")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_player"


async def test_achievements_come_with_rarity(http, api_key, uid) -> None:
    before = (await http.get("/v1/games/arena/achievements")).json()
    p, q = uid("rar1"), uid("rar2")
    await post(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a5"},
                               {"player_id": q, "game_id": "arena", "achievement_id": "a5"},
                               {"player_id": q, "game_id": "arena", "achievement_id": "a2"}])

    async def recounted() -> dict | None:  # the gateway recounts at most every 10 s
        body = (await http.get("/v1/games/arena/achievements")).json()
        return body if body["players"] >= before["players"] + 2 else None

    body = await eventually(recounted, timeout=30, every=1.0)
    by_id = {a["achievement_id"]: a for a in body["achievements"]}
    assert set(by_id) == {f"a{i}" for i in range(6)}
    assert by_id["a5"]["holders"] >= 2 and by_id["a5"]["points"] == 5
    assert by_id["a5"]["percent"] == round(100.0 * by_id["a5"]["holders"] / body["players"], 2)
    assert (await http.get("/v1/games/nope/achievements")).status_code == 404


async def test_a_players_achievements_are_paged(http, api_key, uid, server) -> None:
    p = uid("pager")
    await post(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": f"a{i}"} for i in range(6)]
               + [{"player_id": p, "game_id": "puzzle", "achievement_id": "p2"}])
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await server.get(f"/v1/players/{p}/achievements", params=params)).json()
        seen += [(a["game_id"], a["achievement_id"]) for a in body["achievements"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [("arena", f"a{i}") for i in range(6)] + [("puzzle", "p2")]
    only = (await server.get(f"/v1/players/{p}/achievements", params={"game": "puzzle"})).json()
    assert [(a["achievement_id"], a["points"]) for a in only["achievements"]] == [("p2", 21)]
    forged = await server.get(f"/v1/players/{p}/achievements", params={"cursor": "forged"})
    assert forged.status_code == 400 and forged.json()["code"] == "bad_cursor"


async def test_public_reads_carry_cache_headers_and_answer_a_repeat_with_304(http, api_key, uid, server) -> None:
    region = uid("c")[-8:]
    player = uid("cache")
    await post(http, api_key, [{"player_id": player, "game_id": "puzzle", "achievement_id": "p0", "region": region}])

    async def page() -> object:
        response = await http.get("/v1/games/puzzle/leaderboard", params={"region": region})
        return response if response.status_code == 200 and response.json()["total"] == 1 else None

    first = await eventually(page)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=1" and etag.startswith('"')
    again = await http.get("/v1/games/puzzle/leaderboard", params={"region": region},
                           headers={"If-None-Match": f'W/"other", {etag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    await post(http, api_key, [{"player_id": player, "game_id": "puzzle", "achievement_id": "p1"}])

    async def moved() -> object:
        response = await http.get("/v1/games/puzzle/leaderboard", params={"region": region},
                                  headers={"If-None-Match": etag})
        return response if response.status_code == 200 else None

    changed = await eventually(moved)  # the page changed: a full answer with a new tag
    assert changed.headers["etag"] != etag and changed.json()["entries"][0]["points"] == 21
    rank = await http.get(f"/v1/games/puzzle/players/{player}/rank", params={"region": region})
    assert rank.status_code == 200 and "etag" in rank.headers
    private = await server.get(f"/v1/players/{player}/dashboard")
    assert "etag" not in private.headers and "cache-control" not in private.headers
