"""Friend fan-out under load (docs/benchmarks.md "Friends"): `players`
players with ~`friends` friends each (a ring: player i is friends with the
`friends`/2 players after it and before it), every `online_every`-th player
online on a socket, `rate` unlocks/s of random players over two ingest
sockets. A sample is one friend push: from when its unlock was due to the
`friend.unlocked` at the friend's socket. Two phases of `seconds` each, the
same load: first alone, then beside a celebrity (`celebrity_friends`
friends) unlocking `celebrity_rate` times a second; the ratio of the other
players' p99s is the celebrity's cost to everyone else.

    .venv/bin/python -m load.friends_bench [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from typing import Any

import asyncpg
import orjson
import redis
import websockets

from load.clients import CpuMeter, Outcome, closed_reads, http_session, paced, percentiles, timed_send
from load.systems import Podium, keep_result, run_alone
from load.workload import Workload, first_game, player_id


def ring_pairs(players: int, friends: int) -> list[tuple[str, str]]:
    return [(player_id(i), player_id((i + d) % players)) for i in range(players) for d in range(1, friends // 2 + 1)]


async def import_friends(system: Podium, pairs: list[tuple[str, str]]) -> float:
    from podium.core.routing import shard_of
    from podium.persistence import friends

    t0 = time.perf_counter()
    conn = await asyncpg.connect(system.settings.database_url)
    try:
        await friends.import_pairs(conn, pairs, lambda p: shard_of(p, system.settings.player_shards),
                                   system.settings.friends_max)
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def reload_and_wait(system: Podium, edges: int) -> float:
    """Tell the shards to reload (as `podium friends import` does) and wait until they hold `edges`."""
    from podium.actors.social import reload_channel
    from podium.transport import directory

    t0 = time.perf_counter()
    assert system.settings.redis_url
    redis.Redis.from_url(system.settings.redis_url).publish(reload_channel(system.settings.redis_prefix), b"bench")
    while True:
        held = 0
        for i in range(system.settings.player_shards):
            held += (await directory.player_shard(system.settings, i).status.remote())["friend_edges"]
        if held >= edges:
            return time.perf_counter() - t0
        await asyncio.sleep(0.5)


class Listener:
    """Every socket's pushes: friend.unlocked matched to the due time of its unlock."""

    def __init__(self) -> None:
        self.due: dict[tuple[str, str, str], float] = {}
        self.samples: dict[str, list[float]] = {"others": [], "celebrity": []}
        self.kinds: Counter[str] = Counter()
        self.celebrity = ""
        self.dropped = 0

    async def listen(self, ws: Any) -> None:
        try:
            async for message in ws:
                now = time.perf_counter()
                for event in orjson.loads(message).get("events", ()):
                    self.kinds[event["type"]] += 1
                    if event["type"] == "friend.unlocked":
                        at = self.due.get((event["friend_id"], event["game_id"], event["achievement_id"]))
                        if at is not None:
                            who = "celebrity" if event["friend_id"] == self.celebrity else "others"
                            self.samples[who].append((now - at) * 1000)
        except websockets.ConnectionClosed:
            self.dropped += 1


async def phase(system: Podium, work: Workload, writers: list[Any], listener: Listener, rate: float,
                seconds: float, celebrity: int | None, celebrity_rate: float) -> dict[str, Any]:
    listener.samples = {"others": [], "celebrity": []}
    listener.kinds = Counter()
    acks = Outcome()
    turn = iter(range(1 << 62))

    async def one() -> None:
        items = [item for item in (work.next_for(work.any_player()) for _ in range(10)) if item]
        at = time.perf_counter()  # started when due (paced)
        for item in items:
            listener.due[(item["player_id"], item["game_id"], item["achievement_id"])] = at
        await timed_send(writers[next(turn) % len(writers)], items, acks, None)

    async def celebrity_one() -> None:
        item = work.next_for(celebrity) if celebrity is not None else None
        if item:
            listener.due[(item["player_id"], item["game_id"], item["achievement_id"])] = time.perf_counter()
            await timed_send(writers[0], [item], acks, None)

    with CpuMeter() as cpu:
        began = time.perf_counter()
        jobs = [paced(rate / 10, seconds, one, cap=64)]
        if celebrity is not None:
            jobs.append(paced(celebrity_rate, seconds, celebrity_one, cap=8))
        await asyncio.gather(*jobs)
        acks.seconds = time.perf_counter() - began
        await asyncio.sleep(2.0)  # the last pushes
    return {"accepted_per_s": acks.rate, "other_acks": dict(acks.other), "machine_cpu_pct": cpu.machine_pct,
            "kinds": dict(listener.kinds), "others": percentiles(listener.samples["others"]),
            "others_n": len(listener.samples["others"]), "celebrity": percentiles(listener.samples["celebrity"]),
            "celebrity_n": len(listener.samples["celebrity"]), "seconds": acks.seconds,
            "ack": percentiles(acks.latencies_ms)}


async def run(system: Podium, a: argparse.Namespace) -> dict[str, Any]:
    work = Workload(seed=11)
    celebrity = a.players  # one more player, befriended by celebrity_friends others
    t0 = time.perf_counter()
    await system.preload(work.grow(a.players + 1))  # everyone has a score before friends exist
    preload_s = time.perf_counter() - t0
    rng = random.Random(5)
    fans = rng.sample(range(a.players), a.celebrity_friends)
    pairs = ring_pairs(a.players, a.friends) + [(player_id(celebrity), player_id(f)) for f in fans]
    import_s = await import_friends(system, pairs)
    reload_s = await reload_and_wait(system, 2 * len(pairs))
    print(f"preload {preload_s:.1f}s, import of {len(pairs):,} pairs {import_s:.1f}s, shards reloaded in "
          f"{reload_s:.1f}s", flush=True)
    listener = Listener()
    listener.celebrity = player_id(celebrity)
    watched = [i for i in range(a.players) if i % a.online_every == 0]
    online_fans = sum(1 for f in fans if f % a.online_every == 0)
    from load.clients import WsWriter

    async with WsWriter(f"{system.ws_url}/v1/ws/ingest", system.api_key) as w1, \
            WsWriter(f"{system.ws_url}/v1/ws/ingest", system.api_key) as w2:
        sockets = []
        for start in range(0, len(watched), 200):
            sockets += await asyncio.gather(*(websockets.connect(
                f"{system.ws_url}/v1/ws/players/{player_id(i)}?token={system.token(player_id(i))}", open_timeout=60)
                for i in watched[start:start + 200]))
        for ws in sockets:
            await ws.recv()  # subscribed
        print(f"{len(sockets):,} friend sockets open ({online_fans} of them the celebrity's friends)", flush=True)
        await asyncio.sleep(3.0)  # presence reaches every actor
        tasks = [asyncio.ensure_future(listener.listen(ws)) for ws in sockets]
        try:
            alone = await phase(system, work, [w1, w2], listener, a.rate, a.seconds, None, 0)
            print("alone", alone, flush=True)
            beside = await phase(system, work, [w1, w2], listener, a.rate, a.seconds, celebrity, a.celebrity_rate)
            print("beside the celebrity", beside, flush=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    reads = await read_phase(system, work, a.read_seconds)
    print("reads", reads, flush=True)
    return {"reads": reads, "players": a.players, "friends_each": a.friends, "online": len(sockets), "rate": a.rate,
            "celebrity_friends": a.celebrity_friends, "celebrity_online_friends": online_fans,
            "celebrity_rate": a.celebrity_rate, "import_s": import_s, "reload_s": reload_s, "alone": alone,
            "beside": beside, "dropped_sockets": listener.dropped}


async def read_phase(system: Podium, work: Workload, seconds: float) -> dict[str, Any]:
    """Closed-loop HTTP reads, no writes: a friends board (~100 friends) vs a
    plain rank read, 32 clients each, one after the other in this run."""
    from podium.gateway.auth import mint_token

    secret = system.settings.resolved_token_secret()
    tokens: dict[int, str] = {}

    def auth(i: int) -> dict[str, str]:
        if i not in tokens:
            tokens[i] = mint_token(secret, player_id(i), 3600)
        return {"Authorization": f"Bearer {tokens[i]}"}

    out: dict[str, Any] = {}
    async with http_session() as session:
        async def friends(i: int) -> bool:
            async with session.get(f"{system.base}/v1/players/{player_id(i)}/friends/leaderboard",
                                   params={"game": first_game(i)}, headers=auth(i)) as r:
                return r.status == 200 and len((await r.json())["entries"]) > 1

        async def rank(i: int) -> bool:
            async with session.get(f"{system.base}/v1/games/{first_game(i)}/players/{player_id(i)}/rank") as r:
                return r.status == 200

        for name, read in (("friends board", friends), ("rank", rank)):
            with CpuMeter() as cpu:
                got = await closed_reads(read, 32, seconds, work)
            out[name] = {"per_s": got.rate, "latency": percentiles(got.latencies_ms), "errors": got.other,
                         "machine_cpu_pct": cpu.machine_pct}
    return out


def report(r: dict[str, Any]) -> str:
    def ms(t: tuple[float, float, float]) -> str:
        return f"{t[0]:.1f} / {t[1]:.1f} / {t[2]:.1f}"

    lines = [f"Friends bench: {r['players']:,} players x {r['friends_each']} friends, {r['online']:,} online, "
             f"{r['rate']:,.0f} unlocks/s offered; celebrity: {r['celebrity_friends']:,} friends "
             f"({r['celebrity_online_friends']} online), {r['celebrity_rate']:g} unlocks/s",
             f"import {r['import_s']:.1f} s, shards reloaded {r['reload_s']:.1f} s", "",
             "| phase | unlocks/s acked | ack p50 / p99 ms | friend pushes/s | passes/s "
             "| send -> friend push p50 / p95 / p99 ms | celebrity's pushes p50 / p95 / p99 ms | machine CPU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("alone", "beside"):
        p = r[name]
        kinds = p["kinds"]
        lines.append(f"| {name} | {p['accepted_per_s']:,.0f} | {p['ack'][0]:.1f} / {p['ack'][2]:.1f} "
                     f"| {kinds.get('friend.unlocked', 0) / p['seconds']:,.0f} "
                     f"| {kinds.get('friend.passed_you', 0) / p['seconds']:,.0f} | {ms(p['others'])} "
                     f"(n={p['others_n']:,}) | {ms(p['celebrity']) if p['celebrity_n'] else '-'} "
                     f"(n={p['celebrity_n']:,}) | {p['machine_cpu_pct']:.0f} % |")
    ratio = r["beside"]["others"][2] / r["alone"]["others"][2]
    lines += ["", f"others' p99 beside the celebrity / alone: {ratio:.2f}x; sockets dropped: {r['dropped_sockets']}",
              "", "| HTTP reads, 32 clients, no writes | reads/s | p50 / p95 / p99 ms | machine CPU |",
              "| --- | --- | --- | --- |"]
    for name, read in r["reads"].items():
        lines.append(f"| {name} | {read['per_s']:,.0f} | {ms(read['latency'])} | {read['machine_cpu_pct']:.0f} % |")
    fb, rk = r["reads"]["friends board"]["per_s"], r["reads"]["rank"]["per_s"]
    lines.append(f"\nfriends board / rank reads: {fb / rk:.2f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10,000 players, 10 s phases")
    ap.add_argument("--players", type=int, default=100_000)
    ap.add_argument("--friends", type=int, default=100)
    ap.add_argument("--online-every", type=int, default=50, help="every n-th player has a socket open")
    ap.add_argument("--rate", type=float, default=1_000.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--celebrity-friends", type=int, default=10_000)
    ap.add_argument("--celebrity-rate", type=float, default=5.0)
    ap.add_argument("--read-seconds", type=float, default=8.0)
    a = ap.parse_args()
    if a.quick:
        a.players, a.seconds, a.celebrity_friends, a.read_seconds = 10_000, 10.0, 5_000, 4.0
    system = Podium("podium-friends", {"PODIUM_FRIENDS_MAX": str(max(1_000, a.celebrity_friends))})
    result = run_alone(system, lambda started: run(started, a), "friends-bench")
    keep_result(f"friends{'-quick' if a.quick else ''}", report(result))


if __name__ == "__main__":
    main()
