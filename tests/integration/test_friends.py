"""Friends on a real cluster: the graph (invites, server changes, caps,
blocks), friends boards, fan-out to exactly the online friends, the inbox,
and all of it surviving killed actors."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import orjson
import ray
import websockets

from podium.gateway.auth import mint_token
from podium.persistence import catalog_store
from podium.transport import directory
from tests.integration.conftest import eventually, get_ok, wait_online
from tests.integration.test_pushes import events_of


def bearer(cluster, player_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(cluster.settings.token_secret, player_id, 600)}"}


async def send(http, api_key: str, items: list[dict[str, Any]]) -> None:
    response = await http.post("/v1/unlocks", content=orjson.dumps(items), headers={"X-API-Key": api_key})
    assert response.status_code == 200, response.text
    assert [a["status"] for a in response.json()] == ["accepted"] * len(items), response.text


async def befriend(http, api_key: str, player_id: str, friends: list[str]) -> dict[str, Any]:
    response = await http.put(f"/v1/players/{player_id}/friends", json={"friends": friends},
                              headers={"X-API-Key": api_key})
    assert response.status_code == 200, response.text
    return response.json()


async def ranked(http, game: str, player_id: str, points: int) -> None:
    async def there() -> bool:
        response = await http.get(f"/v1/games/{game}/players/{player_id}/rank")
        return response.status_code == 200 and response.json()["points"] == points
    await eventually(there)


async def socket(cluster, player_id: str, query: str = "") -> Any:
    ws = await websockets.connect(f"{cluster.ws_url}/v1/ws/players/{player_id}?token="
                                  f"{mint_token(cluster.settings.token_secret, player_id, 600)}{query}")
    assert orjson.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def events_for(ws, seconds: float) -> list[dict[str, Any]]:
    """Every push the socket gets within `seconds`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            got += events_of(orjson.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
    return got


async def until_event(ws, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for event in events_of(orjson.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))):
            if event["type"] == kind:
                return event


async def test_invite_accept_list_and_credentials(cluster, http, api_key, uid) -> None:
    a, b, c = uid("ann"), uid("bob"), uid("cy")
    r = await http.put(f"/v1/players/{a}/friends/{b}", headers=bearer(cluster, a))
    assert (r.status_code, r.json()["outcome"]) == (200, "invited")
    listed = (await http.get(f"/v1/players/{b}/friends", headers=bearer(cluster, b))).json()
    assert listed["friends"] == [{"friend_id": a, "state": "invited_by"}]
    r = await http.put(f"/v1/players/{b}/friends/{a}", headers=bearer(cluster, b))  # accepting
    assert r.json()["outcome"] == "friends"
    for who, other in ((a, b), (b, a)):
        listed = (await http.get(f"/v1/players/{who}/friends", headers=bearer(cluster, who))).json()
        assert listed["friends"] == [{"friend_id": other, "state": "friend"}] and listed["count"] == 1
    # A player's edges need their own token or an API key.
    assert (await http.get(f"/v1/players/{a}/friends")).status_code == 401
    assert (await http.get(f"/v1/players/{a}/friends", headers=bearer(cluster, c))).status_code == 401
    assert (await http.get(f"/v1/players/{a}/friends", headers={"X-API-Key": api_key})).status_code == 200
    assert (await http.put(f"/v1/players/{a}/friends/{c}", headers=bearer(cluster, c))).status_code == 401
    assert (await http.get(f"/v1/players/{a}/inbox", headers=bearer(cluster, c))).status_code == 401
    # Only a game server replaces a whole list; nobody befriends themselves.
    r = await http.put(f"/v1/players/{a}/friends", json={"friends": [c]}, headers=bearer(cluster, a))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await http.put(f"/v1/players/{a}/friends/{a}", headers=bearer(cluster, a))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    r = await http.put(f"/v1/players/{a}/friends/bad%20id", headers=bearer(cluster, a))
    assert r.status_code == 422


async def test_cap_refuses_clearly_and_lists_page(cluster, http, api_key, uid) -> None:
    cap = cluster.settings.friends_max
    star, extra, fan = uid("star"), uid("extra"), uid("fan")
    crowd = [uid(f"c{i:04d}") for i in range(cap)]
    body = await befriend(http, api_key, star, crowd)
    assert len(body["changes"]) == cap and {c["outcome"] for c in body["changes"]} == {"friends"}
    r = await http.put(f"/v1/players/{star}/friends/{extra}", headers={"X-API-Key": api_key})
    assert (r.status_code, r.json()["code"]) == (409, "friend_limit") and star in r.json()["detail"]
    r = await http.put(f"/v1/players/{fan}/friends/{star}", headers=bearer(cluster, fan))  # the other side is full
    assert (r.status_code, r.json()["code"]) == (409, "friend_limit")
    seen, after = [], ""
    while after is not None:
        page = (await http.get(f"/v1/players/{star}/friends", params={"limit": 300, "after": after},
                               headers={"X-API-Key": api_key})).json()
        seen += [f["friend_id"] for f in page["friends"]]
        after = page["next_after"]
    assert seen == sorted(crowd)
    # Replacing the list frees room: half go, one new friend fits.
    body = await befriend(http, api_key, star, [*crowd[:cap // 2], extra])
    outcomes = [c["outcome"] for c in body["changes"]]
    assert outcomes.count("removed") == cap - cap // 2 and outcomes.count("friends") == 1
    friend_of_extra = (await http.get(f"/v1/players/{extra}/friends", headers=bearer(cluster, extra))).json()
    assert friend_of_extra["friends"] == [{"friend_id": star, "state": "friend"}]


async def test_fan_out_reaches_exactly_the_online_friends(cluster, http, api_key, uid) -> None:
    p, online_friend, offline_friend, stranger = uid("p"), uid("on"), uid("off"), uid("stranger")
    await befriend(http, api_key, p, [online_friend, offline_friend])
    await send(http, api_key, [{"player_id": online_friend, "game_id": "puzzle", "achievement_id": "p0"},
                               {"player_id": offline_friend, "game_id": "puzzle", "achievement_id": "p1"}])
    await ranked(http, "puzzle", online_friend, 7)
    await ranked(http, "puzzle", offline_friend, 14)
    friend_ws, stranger_ws = await socket(cluster, online_friend), await socket(cluster, stranger)
    try:
        await wait_online(cluster.settings, online_friend)
        await wait_online(cluster.settings, stranger)
        await send(http, api_key, [{"player_id": p, "game_id": "puzzle", "achievement_id": "p3"}])  # 28 points
        unlocked = await until_event(friend_ws, "friend.unlocked")
        assert (unlocked["friend_id"], unlocked["achievement_id"], unlocked["points"]) == (p, "p3", 28)
        passed = await until_event(friend_ws, "friend.passed_you")
        assert (passed["friend_id"], passed["points"], passed["your_points"]) == (p, 28, 7)
        assert passed["inbox_id"] > 0
        assert [e for e in await events_for(stranger_ws, 1.5) if e["type"].startswith("friend.")] == []
    finally:
        await friend_ws.close()
        await stranger_ws.close()
    # The friend who was away finds it in the inbox; the online one has it there too.
    # (Other tests' players can push these out of puzzle's top 10: only passes are asserted.)
    inbox = (await http.get(f"/v1/players/{offline_friend}/inbox", headers=bearer(cluster, offline_friend))).json()
    assert [(i["event"]["friend_id"], i["event"]["your_points"]) for i in inbox["items"]
            if i["kind"] == "friend.passed_you"] == [(p, 14)]
    stranger_inbox = (await http.get(f"/v1/players/{stranger}/inbox", headers=bearer(cluster, stranger))).json()
    assert stranger_inbox["items"] == []  # no score, no friends: nothing


async def test_removed_or_blocked_friends_hear_nothing_more(cluster, http, api_key, uid) -> None:
    p, removed, blocker = uid("p"), uid("removed"), uid("blocker")
    await befriend(http, api_key, p, [removed, blocker])
    sockets = {who: await socket(cluster, who) for who in (removed, blocker)}
    try:
        for who in sockets:
            await wait_online(cluster.settings, who)
        await send(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a0"}])
        for ws in sockets.values():
            assert (await until_event(ws, "friend.unlocked"))["friend_id"] == p
        r = await http.delete(f"/v1/players/{p}/friends/{removed}", headers=bearer(cluster, p))
        assert r.json()["outcome"] == "removed"
        r = await http.put(f"/v1/players/{blocker}/blocks/{p}", headers=bearer(cluster, blocker))
        assert r.json()["outcome"] == "blocked"
        await send(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a1"}])
        for ws in sockets.values():
            assert [e for e in await events_for(ws, 1.5) if e["type"].startswith("friend.")] == []
    finally:
        for ws in sockets.values():
            await ws.close()
    r = await http.put(f"/v1/players/{p}/friends/{blocker}", headers=bearer(cluster, p))
    assert (r.status_code, r.json()["code"]) == (403, "blocked")
    r = await http.put(f"/v1/players/{p}/friends/{blocker}", headers={"X-API-Key": api_key})
    assert (r.status_code, r.json()["code"]) == (403, "blocked")  # a game server cannot override a block
    mine = (await http.get(f"/v1/players/{p}/friends", headers=bearer(cluster, p))).json()
    assert mine["friends"] == []
    theirs = (await http.get(f"/v1/players/{blocker}/friends", headers=bearer(cluster, blocker))).json()
    assert theirs["friends"] == [{"friend_id": p, "state": "blocked"}]


async def test_friends_board_ranks_the_player_among_friends(cluster, http, api_key, uid) -> None:
    p = uid("me")
    mates = [uid(f"m{i}") for i in range(6)]
    await befriend(http, api_key, p, mates[:5])  # mates[5] is no friend: not on the board
    achievements = [["p0"], ["p1"], ["p0", "p2"], ["p3"], [], ["p0", "p1", "p2", "p3"]]  # 7, 14, 28, 28, -, 70
    await send(http, api_key, [{"player_id": m, "game_id": "puzzle", "achievement_id": a}
                               for m, got in zip(mates, achievements, strict=True) for a in got]
               + [{"player_id": p, "game_id": "puzzle", "achievement_id": "p2"}])  # 21
    for m, points in ((mates[0], 7), (mates[3], 28), (p, 21)):
        await ranked(http, "puzzle", m, points)
    board = (await http.get(f"/v1/players/{p}/friends/leaderboard", params={"game": "puzzle", "k": 1},
                            headers=bearer(cluster, p))).json()
    got = [(e["player_id"], e["points"]) for e in board["entries"]]
    assert [pts for _, pts in got] == [28, 28, 21, 14, 7]  # mates[4] has no score; mates[5] is no friend
    assert set(got[:2]) == {(mates[2], 28), (mates[3], 28)} and got[2:] == [(p, 21), (mates[1], 14), (mates[0], 7)]
    assert (board["rank"], board["total"], board["friends"]) == (3, 5, 5)
    assert [e["player_id"] for e in board["around"]] == [got[1][0], p, mates[1]]
    r = await http.get(f"/v1/players/{p}/friends/leaderboard", params={"game": "puzzle"})
    assert r.status_code == 401
    r = await http.get(f"/v1/players/{p}/friends/leaderboard", params={"game": "nope"}, headers=bearer(cluster, p))
    assert (r.status_code, r.json()["code"]) == (404, "unknown_game")


async def test_losing_a_top_place_lands_in_the_inbox(cluster, http, api_key, db, uid) -> None:
    game = uid("tops")
    async with db.acquire() as conn:
        await catalog_store.import_catalog(conn, [{"game_id": game, "name": "Tops", "achievements": [
            {"achievement_id": f"t{i}", "name": f"T{i}", "points": 10 * (i + 1)} for i in range(12)]}])
    top_n = cluster.settings.inbox_top_n
    players = [uid(f"x{i}") for i in range(top_n)]
    await send(http, api_key, [{"player_id": x, "game_id": game, "achievement_id": f"t{i}"}
                               for i, x in enumerate(players)])  # players[0] has the fewest points
    async def full() -> bool:
        return (await get_ok(http, f"/v1/games/{game}/leaderboard"))["total"] == top_n
    await eventually(full)
    newcomer = uid("newcomer")
    await send(http, api_key, [{"player_id": newcomer, "game_id": game, "achievement_id": "t11"}])

    async def lost() -> list[dict[str, Any]]:
        items = (await http.get(f"/v1/players/{players[0]}/inbox", headers=bearer(cluster, players[0]))).json()
        return items["items"]
    [item] = await eventually(lost)
    assert item["kind"] == "rank.lost_top"
    assert (item["event"]["game_id"], item["event"]["top"], item["event"]["rank"]) == (game, top_n, top_n + 1)
    others = (await http.get(f"/v1/players/{players[1]}/inbox", headers=bearer(cluster, players[1]))).json()
    assert others["items"] == []


async def test_inbox_and_edges_survive_killed_actors_and_arrive_on_connect(cluster, http, api_key, uid) -> None:
    p, away = uid("p"), uid("away")
    await befriend(http, api_key, p, [away])
    await send(http, api_key, [{"player_id": away, "game_id": "arena", "achievement_id": "a0"}])
    await ranked(http, "arena", away, 10)
    await send(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a3"}])

    async def inbox_items() -> list[dict[str, Any]]:
        response = await http.get(f"/v1/players/{away}/inbox", params={"since": 0}, headers=bearer(cluster, away))
        items = response.json()["items"] if response.status_code == 200 else []
        return [i for i in items if i["kind"] == "friend.passed_you"]
    before = await eventually(inbox_items)
    for shard in range(cluster.settings.player_shards):
        ray.kill(directory.player_shard(cluster.settings, shard), no_restart=False)
    after = await eventually(inbox_items, timeout=60)
    assert after == before
    # The inbox is read from PostgreSQL; the edges from the player shard, which may still be recovering (503).
    edges = await get_ok(http, f"/v1/players/{p}/friends", headers=bearer(cluster, p))
    assert edges["friends"] == [{"friend_id": away, "state": "friend"}]
    # Fan-out works again after the restart (the mirror was rebuilt from PostgreSQL).
    ws = await socket(cluster, away, "&inbox_since=0")
    try:
        frame = orjson.loads(await ws.recv())
        assert frame["type"] == "inbox" and {i["id"] for i in before} <= {i["id"] for i in frame["items"]}
        await wait_online(cluster.settings, away)
        await send(http, api_key, [{"player_id": p, "game_id": "arena", "achievement_id": "a1"}])
        assert (await until_event(ws, "friend.unlocked"))["friend_id"] == p
    finally:
        await ws.close()
    # Marking read moves the cursor; the unread view is then empty, and the cursor never goes back.
    newest = before[-1]["id"]
    r = await http.post(f"/v1/players/{away}/inbox/read", json={"upto": newest}, headers=bearer(cluster, away))
    assert r.json()["read_upto"] == newest
    r = await http.post(f"/v1/players/{away}/inbox/read", json={"upto": 0}, headers=bearer(cluster, away))
    assert r.json()["read_upto"] == newest
    unread = (await http.get(f"/v1/players/{away}/inbox", headers=bearer(cluster, away))).json()
    assert unread["read_upto"] == newest and all(i["id"] > newest for i in unread["items"])


def import_csv(cluster, path) -> subprocess.CompletedProcess[str]:
    s = cluster.settings
    env = {**os.environ, "PODIUM_DATABASE_URL": s.database_url, "PODIUM_REDIS_URL": s.redis_url,
           "PODIUM_REDIS_PREFIX": s.redis_prefix, "PODIUM_PLAYER_SHARDS": str(s.player_shards),
           "PODIUM_TOKEN_SECRET": s.token_secret, "PODIUM_DATA_DIR": str(s.data_dir)}
    return subprocess.run([sys.executable, "-m", "podium.cluster.cli", "friends", "import", str(path)], env=env,
                          capture_output=True, text=True, timeout=120)


async def test_bulk_import_makes_friends_skips_blocks_and_refuses_past_the_cap(cluster, http, uid, tmp_path) -> None:
    a, b, c, blocker = uid("a"), uid("b"), uid("c"), uid("blocker")
    await http.put(f"/v1/players/{blocker}/blocks/{a}", headers=bearer(cluster, blocker))
    await http.put(f"/v1/players/{c}/friends/{a}", headers=bearer(cluster, c))  # a pending invite becomes a friendship
    csv = tmp_path / "friends.csv"
    csv.write_text(f"player_id,friend_id\n{a},{b}\n{a},{c}\n{b},{a}\n{a},{blocker}\n")
    out = import_csv(cluster, csv)
    assert out.returncode == 0, out.stderr
    assert "1 pairs skipped" in out.stderr and "player shards told to reload" in out.stderr

    async def friends_of_a() -> bool:
        body = (await http.get(f"/v1/players/{a}/friends", headers=bearer(cluster, a))).json()
        return body["friends"] == sorted([{"friend_id": b, "state": "friend"}, {"friend_id": c, "state": "friend"}],
                                         key=lambda f: f["friend_id"])
    await eventually(friends_of_a)
    theirs = (await http.get(f"/v1/players/{blocker}/friends", headers=bearer(cluster, blocker))).json()
    assert theirs["friends"] == [{"friend_id": a, "state": "blocked"}]
    crowd = tmp_path / "crowd.csv"
    hub = uid("hub")
    crowd.write_text("".join(f"{hub},{uid(f'f{i}')}\n" for i in range(cluster.settings.friends_max + 1)))
    out = import_csv(cluster, crowd)
    assert out.returncode == 1 and f"{hub} ({cluster.settings.friends_max + 1})" in out.stderr
    assert (await http.get(f"/v1/players/{hub}/friends", headers=bearer(cluster, hub))).json()["friends"] == []
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{a}\n")
    out = import_csv(cluster, bad)
    assert out.returncode != 0 and "line 1" in out.stderr
