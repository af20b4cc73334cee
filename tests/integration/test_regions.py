"""A player who changes region moves on every board they are on (each game,
the all-games board), and a restarted leaderboard answers the same."""
from __future__ import annotations

import orjson
import ray

from podium.transport import directory
from podium.wire.messages import ALL_GAMES
from tests.integration.conftest import eventually


async def post(http, api_key, items) -> None:
    response = await http.post("/v1/unlocks", content=orjson.dumps(items), headers={"X-API-Key": api_key})
    assert {a["status"] for a in response.json()} == {"accepted"}, response.text


async def placements(http, player: str, regions: list[str]) -> dict[tuple[str, str], int]:
    """(board, region) -> HTTP status of the player's rank there; 503s are retried by the caller's poll."""
    out = {}
    for game in ("arena", "puzzle", ALL_GAMES):
        for region in regions:
            response = await http.get(f"/v1/games/{game}/players/{player}/rank", params={"region": region})
            assert response.status_code != 503, response.json()["detail"]
            out[(game, region)] = response.status_code
    return out


async def test_a_region_move_moves_every_board_and_survives_a_restart(cluster, http, api_key, uid, server) -> None:
    p, old, new = uid("mover"), uid("ro"), uid("rn")  # "ro-<tag>": a valid region, distinct per test
    await post(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a0", "region": old},
                               {"player_id": p, "game_id": "puzzle", "achievement_id": "p0", "region": old}])
    before = {(g, r): 200 if r == old else 404 for g in ("arena", "puzzle", ALL_GAMES) for r in (old, new)}
    await eventually(lambda: _equal(placements(http, p, [old, new]), before))
    # one unlock, in arena only, carries the new region
    await post(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a1", "region": new}])
    after = {(g, r): 200 if r == new else 404 for g in ("arena", "puzzle", ALL_GAMES) for r in (old, new)}
    await eventually(lambda: _equal(placements(http, p, [old, new]), after))
    for shard in range(cluster.settings.leaderboard_shards):
        ray.kill(directory.leaderboard_shard(cluster.settings, shard), no_restart=False)
    await eventually(lambda: _equal(placements(http, p, [old, new]), after), timeout=60)
    dashboard = (await server.get(f"/v1/players/{p}/dashboard")).json()
    assert dashboard["region"] == new


async def _equal(got_coro, expected: dict) -> bool:
    return await got_coro == expected
