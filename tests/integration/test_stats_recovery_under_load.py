"""SIGKILL every shard process while stat updates stream in. A careful client
resends every update not acked `accepted`/`duplicate` (a dropped socket, or
`unavailable`/`overloaded`). Afterwards every update counts exactly once
(final values equal a model computed from the updates; each event id is in
the journal once), the shards hold those values (a probe update of each stat
answers with them), every threshold crossed is unlocked exactly once in the
commit of the update that crossed it, and none is unlocked that was not."""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections import defaultdict
from typing import Any

import orjson
import websockets

from podium.transport import directory
from tests.integration.conftest import eventually
from tests.integration.test_stats_ingest import add_game, stat

PLAYERS = 23
RETRY = {"unavailable", "overloaded"}
# achievement -> (stat, "at_least" | "at_most", target, points): crossed early, late and by few players
THRESHOLDS = {"w10": ("wins", "at_least", 10, 10), "w40": ("wins", "at_least", 40, 40),
              "w80": ("wins", "at_least", 80, 80), "lap60": ("lap", "at_most", 60000, 6),
              "lap41": ("lap", "at_most", 41000, 41), "speed4000": ("speed", "at_least", 4000, 4),
              "speed4990": ("speed", "at_least", 4990, 49)}


def game_entry(game: str) -> dict[str, Any]:
    return {"game_id": game, "name": "Stats under load", "stats": [
        {"stat_id": "wins", "name": "Wins", "op": "incr", "min": 0},
        {"stat_id": "lap", "name": "Best lap", "op": "min", "min": 1, "max": 3600000},
        {"stat_id": "speed", "name": "Top speed", "op": "max"},
    ], "achievements": [{"achievement_id": a, "name": a, "points": pts, "threshold": {"stat_id": s, kind: at}}
                        for a, (s, kind, at, pts) in THRESHOLDS.items()]}


def met(achievement: str, value: int | None) -> bool:
    _, kind, at, _ = THRESHOLDS[achievement]
    return value is not None and (value >= at if kind == "at_least" else value <= at)


def update(tag: str, game: str, n: int) -> dict[str, Any]:
    """Update n of the stream: commutative operators (incr, min, max), so the model needs no order."""
    player = f"{tag}-pl{n % PLAYERS}"
    if n % 3 == 0:
        return stat(player, game, "lap", "min", 40000 + n * 7919 % 100000, f"{tag}-{n}")
    if n % 3 == 1:
        return stat(player, game, "speed", "max", n * 6007 % 5000, f"{tag}-{n}")
    return stat(player, game, "wins", "incr", 1 + n % 2, f"{tag}-{n}")


async def stream(cluster: Any, api_key: str, tag: str, game: str, stop: asyncio.Event,
                 acked: dict[int, str]) -> tuple[int, int]:
    """Frames of 30 updates until stopped and nothing is left to resend; returns (reconnects, retried items)."""
    counter = itertools.count()
    todo: list[int] = []  # rejected unavailable/overloaded: resent in the next frame
    reconnects = retried = 0
    frame: list[int] = []
    while not stop.is_set() or frame or todo:
        try:
            async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest",
                                          additional_headers={"X-API-Key": api_key}) as ws:
                while not stop.is_set() or frame or todo:
                    if not frame:
                        frame, todo = todo[:30], todo[30:]
                        while len(frame) < 30 and not stop.is_set():
                            frame.append(next(counter))
                    await ws.send(orjson.dumps([update(tag, game, n) for n in frame]).decode())
                    acks = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                    for n, ack in zip(frame, acks, strict=True):
                        if ack["status"] in ("accepted", "duplicate"):
                            acked[n] = ack["status"]
                        elif ack.get("reason") in RETRY:
                            todo.append(n)
                            retried += 1
                        else:
                            raise AssertionError(f"unexpected ack {ack} for {update(tag, game, n)}")
                    frame = []
                    if todo:
                        await asyncio.sleep(0.2)  # a client's back-off before resending
        except (OSError, TimeoutError, websockets.ConnectionClosed, websockets.InvalidStatus):
            reconnects += 1
            await asyncio.sleep(0.5)  # and then the frame that got no reply goes again
    return reconnects, retried


def model(tag: str, game: str, sent: int) -> dict[tuple[str, str], int]:
    values: dict[tuple[str, str], int] = {}
    for n in range(sent):
        u = update(tag, game, n)
        key = (u["player_id"], u["stat_id"])
        if u["op"] == "incr":
            values[key] = values.get(key, 0) + u["value"]
        elif u["op"] == "max":
            values[key] = max(values.get(key, u["value"]), u["value"])
        else:
            values[key] = min(values.get(key, u["value"]), u["value"])
    return values


async def sigkill(handle: Any) -> int:
    pid = await handle.pid.remote()
    os.kill(pid, signal.SIGKILL)
    return pid


async def test_every_acked_stat_update_counts_once_and_every_crossing_unlocks_once(cluster, db, api_key,
                                                                                    uid) -> None:
    tag, game = uid("sload"), uid("sgame")
    await add_game(db, game, cluster, api_key, game_entry(game))
    stop = asyncio.Event()
    tags = [f"{tag}a", f"{tag}b"]  # two clients, each its own socket and players: rounds of both in flight
    acked: dict[str, dict[int, str]] = {t: {} for t in tags}
    streamers = [asyncio.ensure_future(stream(cluster, api_key, t, game, stop, acked[t])) for t in tags]

    def total() -> int:
        return sum(map(len, acked.values()))

    async def acked_more(n: int = 90) -> None:
        target = total() + n
        await eventually(lambda: total() >= target, timeout=90, every=0.05)

    s = cluster.settings
    shards = [directory.player_shard(s, i) for i in range(s.player_shards)]
    victims = [shards[0], directory.leaderboard_shard(s, 0), *shards[1:],
               *[directory.leaderboard_shard(s, i) for i in range(1, s.leaderboard_shards)], *shards]
    killed = []
    for victim in victims:  # every shard process, the player shards twice
        await acked_more()
        killed.append((victim, await sigkill(victim)))
    await acked_more()

    async def restarted(victim: Any, pid: int) -> bool:  # Ray started the shard again, in a new process
        return await victim.pid.remote() != pid

    for victim, pid in killed:
        await eventually(lambda v=victim, p=pid: restarted(v, p), timeout=60)
    stop.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*streamers), 180)
    reconnects, retried = sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)
    sent = {t: len(acked[t]) for t in tags}
    for t in tags:
        assert set(acked[t]) == set(range(sent[t])), "every update sent was acked in the end"
    statuses = [status for t in tags for status in acked[t].values()]
    assert statuses.count("accepted") > 300

    # Each event once in the journal, and only events that were sent
    rows = await db.fetch("SELECT seq, player_id, stat_id, event_id, value_after, xmin::text::bigint AS tx "
                          "FROM stat_updates WHERE game_id = $1 ORDER BY seq", game)
    events = [r["event_id"] for r in rows]
    assert len(events) == len(set(events)) == sum(sent.values()), (len(events), len(set(events)), sent)
    assert set(events) == {f"{t}-{n}" for t in tags for n in range(sent[t])}

    # The final value of each stat (its newest row) is the model's
    truth = {key: value for t in tags for key, value in model(t, game, sent[t]).items()}
    newest: dict[tuple[str, str], int] = {}
    chains: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in rows:
        newest[(r["player_id"], r["stat_id"])] = r["value_after"]
        chains[(r["player_id"], r["stat_id"])].append(r)
    assert newest == truth

    # The shards hold those values: a probe that changes nothing answers with the held value
    probes = [stat(p, game, st, op, v, f"{tag}-probe-{p}-{st}") for (p, st), value in sorted(truth.items())
              for op, v in [{"wins": ("incr", 0), "speed": ("max", 0), "lap": ("min", 3600000)}[st]]]
    async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest", additional_headers={"X-API-Key": api_key}) as ws:
        async def probed() -> bool:
            await ws.send(orjson.dumps(probes).decode())
            return {a["status"] for a in orjson.loads(await ws.recv())} <= {"accepted", "duplicate"}
        await eventually(probed, timeout=60)
    held = {(r["player_id"], r["stat_id"]): r["value_after"] for r in await db.fetch(
        "SELECT player_id, stat_id, value_after FROM stat_updates WHERE game_id = $1 AND event_id LIKE $2",
        game, f"{tag}-probe-%")}
    assert held == truth

    # Thresholds: unlocked exactly when the model's value meets them, once, in the crossing update's commit
    unlocks = await db.fetch("SELECT player_id, achievement_id, xmin::text::bigint AS tx FROM unlocks "
                             "WHERE game_id = $1", game)
    got = {(u["player_id"], u["achievement_id"]) for u in unlocks}
    assert len(got) == len(unlocks)
    want = {(p, a) for (p, st), v in truth.items() for a, (s_, _, _, _) in THRESHOLDS.items() if s_ == st and met(a, v)}
    assert got == want
    assert {a for _, a in want} >= {"w10", "lap60", "speed4000"}, "the stream should cross thresholds"
    for u in unlocks:
        chain = chains[(u["player_id"], THRESHOLDS[u["achievement_id"]][0])]
        crossing = [b for a, b in zip([None, *chain], chain, strict=False)
                    if not met(u["achievement_id"], None if a is None else a["value_after"])
                    and met(u["achievement_id"], b["value_after"])]
        assert len(crossing) == 1 and crossing[0]["tx"] == u["tx"], (u, crossing)

    # Those unlocks reached the boards, and the checkpoints caught up with the values
    async def boards_and_checkpoints_match() -> bool:
        points = {r["player_id"]: r["points"] for r in await db.fetch(
            "SELECT player_id, points FROM player_game_stats WHERE game_id = $1", game)}
        stored = {(r["player_id"], r["stat_id"]): r["value"] for r in await db.fetch(
            "SELECT player_id, stat_id, value FROM player_stats WHERE game_id = $1", game)}
        expected: dict[str, int] = defaultdict(int)
        for p, a in want:
            expected[p] += THRESHOLDS[a][3]
        return points == dict(expected) and stored == truth

    await eventually(boards_and_checkpoints_match, timeout=60)
    print(f"stat kill test: {sum(sent.values())} updates ({statuses.count('duplicate')} acked duplicate: a retry of a "
          f"commit whose answer was lost), {reconnects} reconnects, {retried} resent after unavailable/overloaded, "
          f"{len(unlocks)} threshold unlocks")
