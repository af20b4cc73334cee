"""The analyst views answer in the live boards' order."""
from __future__ import annotations

import orjson

from tests.integration.conftest import eventually


async def test_game_standings_and_rarity_agree_with_what_was_ingested(http, api_key, uid, db) -> None:
    a, b = uid("va"), uid("vb")
    items = [{"player_id": a, "game_id": "puzzle", "achievement_id": "p3"},
             {"player_id": b, "game_id": "puzzle", "achievement_id": "p0"},
             {"player_id": b, "game_id": "puzzle", "achievement_id": "p1"}]
    await http.post("/v1/unlocks", content=orjson.dumps(items), headers={"X-API-Key": api_key})

    async def standings() -> list:
        rows = await db.fetch("SELECT player_id, points, rank FROM game_standings WHERE game_id = 'puzzle' "
                              "AND player_id = ANY($1) ORDER BY rank", [a, b])
        return rows if len(rows) == 2 else []

    rows = await eventually(standings, timeout=10)
    assert [(r["player_id"], r["points"]) for r in rows] == [(a, 28), (b, 21)]

    async def same_rank_as_live() -> bool:  # equal once the checkpoint has caught up with every player
        live = (await http.get(f"/v1/games/puzzle/players/{a}/rank")).json()["rank"]
        return live == await db.fetchval(
            "SELECT rank FROM game_standings WHERE game_id = 'puzzle' AND player_id = $1", a)

    await eventually(same_rank_as_live, timeout=10)
    rarity = await db.fetchrow("SELECT holders FROM achievement_rarity WHERE game_id = 'puzzle' "
                               "AND achievement_id = 'p3'")
    assert rarity["holders"] >= 1
