"""Kill every kind of shard actor while unlocks stream in; afterwards every
acked unlock is journaled exactly once and the boards equal a from-scratch
recomputation over the journal."""
from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

import orjson
import ray
import websockets

from podium.core.player_state import to_us
from podium.transport import directory
from podium.wire.messages import ALL_GAMES
from tests.integration.conftest import eventually

GAMES = {"arena": [f"a{i}" for i in range(6)], "puzzle": [f"p{i}" for i in range(4)]}


async def stream(cluster, api_key: str, tag: str, stop: asyncio.Event,
                 seen: dict[str, tuple[dict, dict]]) -> int:
    """Send frames of 40 unlocks until stopped, as a careful client does: when
    the socket drops, reconnect and resend the frame that got no reply. Fills
    `seen` (item id -> (item, ack)) as acks arrive; returns the reconnects."""
    counter = itertools.count()
    reconnects = 0
    frame: list[dict] = []
    while not stop.is_set() or frame:
        try:
            async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                          additional_headers={"X-API-Key": api_key}) as ws:
                while not stop.is_set() or frame:
                    if not frame:
                        for _ in range(40):
                            n = next(counter)
                            game = "arena" if n % 3 else "puzzle"
                            frame.append({"id": f"{tag}-{n}", "player_id": f"{tag}-pl{n % 97}", "game_id": game,
                                          "achievement_id": GAMES[game][n % len(GAMES[game])],
                                          "region": ("eu", "na")[n % 2]})
                    await ws.send(orjson.dumps(frame).decode())
                    for item, ack in zip(frame, orjson.loads(await ws.recv()), strict=True):
                        seen[item["id"]] = (item, ack)
                    frame = []
        except (OSError, websockets.ConnectionClosed, websockets.InvalidStatus):
            reconnects += 1
            await asyncio.sleep(0.5)  # a client's back-off before reconnecting
    return reconnects


def gateway_replicas() -> list:
    """Handles of the gateway's Serve replicas, both planes (SERVE_REPLICA::podium-sockets#sockets#...,
    SERVE_REPLICA::podium#http#...)."""
    return [ray.get_actor(a["name"], namespace=a["namespace"])
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(("SERVE_REPLICA::podium-sockets#sockets#", "SERVE_REPLICA::podium#http#"))]


def recompute(rows) -> list[tuple[str, int, int]]:
    """The board order from journal rows alone: points desc, reached asc, player asc."""
    return sorted(((r["player_id"], r["points"], to_us(r["reached"])) for r in rows),
                  key=lambda e: (-e[1], e[2], e[0]))


async def whole_board(http, game: str) -> list[tuple[str, int, int]]:
    out, cursor = [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(f"/v1/games/{game}/leaderboard", params=params)).json()
        out += [(e["player_id"], e["points"], to_us(datetime.fromisoformat(e["reached_at"])))
                for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


async def test_no_acked_unlock_is_lost_and_boards_match_the_journal(cluster, http, api_key, db, uid) -> None:
    tag = uid("load")
    stop = asyncio.Event()
    seen: dict[str, tuple[dict, dict]] = {}
    streamer = asyncio.ensure_future(stream(cluster, api_key, tag, stop, seen))

    async def acked_more(n: int = 80) -> None:  # the stream has moved on: more acks since now
        target = len(seen) + n
        await eventually(lambda: len(seen) >= target, timeout=90, every=0.05)

    s = cluster.settings
    victims = [directory.player_shard(s, 0), directory.leaderboard_shard(s, 0)]
    victims += [directory.player_shard(s, i) for i in range(1, s.player_shards)]
    victims += [directory.leaderboard_shard(s, i) for i in range(1, s.leaderboard_shards)]
    for victim in victims:
        await acked_more()
        ray.kill(victim, no_restart=False)
    await acked_more()
    replicas = gateway_replicas()
    assert replicas
    for replica in replicas:  # the gateway too: Serve starts a new replica
        ray.kill(replica, no_restart=True)

    async def gateway_healthy() -> bool:  # the new replica answers, every shard with it
        return (await http.get("/v1/health")).status_code == 200

    await eventually(gateway_healthy, timeout=90)
    await acked_more()  # the stream goes on through the new replica
    stop.set()
    reconnects = await asyncio.wait_for(streamer, 120)
    assert reconnects >= 1, "the gateway restart should have dropped the socket"
    sent = {f"{tag}-{n}" for n in range(len(seen))}
    assert set(seen) == sent, "every unlock sent got an ack in the end"

    statuses = [ack["status"] for _, ack in seen.values()]
    assert statuses.count("accepted") > 100
    accepted = {(i["player_id"], i["game_id"], i["achievement_id"]) for i, a in seen.values()
                if a["status"] == "accepted"}
    rows = await db.fetch("SELECT player_id, game_id, achievement_id FROM unlocks WHERE player_id LIKE $1",
                          f"{tag}-%")
    journaled = [(r["player_id"], r["game_id"], r["achievement_id"]) for r in rows]
    assert accepted <= set(journaled), "an accepted ack whose unlock is not in the journal"
    duplicates = {(i["player_id"], i["game_id"], i["achievement_id"]) for i, a in seen.values()
                  if a["status"] == "duplicate"}
    assert duplicates <= set(journaled), "a duplicate ack for an unlock the journal does not hold"
    assert len(journaled) == len(set(journaled))
    # a retry that had committed before a kill comes back duplicate; only a shard that stayed
    # down past the deadline may reject, and then as "unavailable" (the client retries)
    other = {(a["status"], a.get("reason")) for _, a in seen.values() if a["status"] != "accepted"}
    assert other <= {("duplicate", None), ("rejected", "unavailable")}, other

    for game in [*GAMES, ALL_GAMES]:  # ALL_GAMES: each player's total over every game
        truth_rows = await db.fetch(
            """SELECT player_id, sum(points)::bigint AS points,
                      COALESCE(max(unlocked_at) FILTER (WHERE points > 0), min(unlocked_at)) AS reached
               FROM unlocks WHERE $1 = '_all' OR game_id = $1 GROUP BY player_id""", game)
        truth = recompute(truth_rows)

        async def board_matches(game: str = game, truth: list = truth) -> bool:
            board = await whole_board(http, game)
            return board == truth

        await eventually(board_matches, timeout=60)
