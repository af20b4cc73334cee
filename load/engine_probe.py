"""Issue-8 probe: the cost of a score move on one leaderboard of N players,
three ways in one run, same moves, same machine:
  - podium: Podium's Board (podium/core/ranking.py: a bucket per score and a radix
    tree of counts per score, podium/core/score_counts.py),
  - sorted: one SortedList of packed keys (Podium's board until 2026-12-01),
  - redis: a Redis sorted set, ZINCRBY and ZREVRANK pipelined through redis-py.
A move is what a player shard's update does to one board: the old key out,
the new key in (Board.move; discard + add on the SortedList). Every
`--read-every` moves one rank look-up of a random moved player is made (0: none). Then pure rank look-ups are timed.

    .venv/bin/python load/engine_probe.py --players 1000000 --moves 200000
"""
from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
from sortedcontainers import SortedList

from podium.core.ranking import Board, SortKey, sort_key

BASE_US = 1_795_000_000_000_000


def initial(n: int) -> list[SortKey]:
    return [sort_key(f"p{i}", (i * 7919) % 5000, BASE_US + i) for i in range(n)]


def workload(n: int, moves: int, seed: int) -> list[tuple[int, int]]:
    """(player, points gained) per move; activity skewed like the bench's (Zipf-ish)."""
    rng = random.Random(seed)
    return [(min(n - 1, int(rng.paretovariate(1.0)) - 1 + rng.randrange(0, 50) * (n // 50)), rng.randrange(5, 100))
            for _ in range(moves)]


def run_local(name: str, move: Callable[[SortKey, SortKey], None], rank: Callable[[SortKey], int],
              keys: list[SortKey], plan: list[tuple[int, int]], read_every: int) -> tuple[float, float]:
    current = list(keys)
    rng = random.Random(1)
    t = time.perf_counter()
    for step, (player, gain) in enumerate(plan, 1):
        old = current[player]
        packed, pid = old
        new = sort_key(pid, -(packed >> 53) + gain, BASE_US + 10_000_000 + step)
        move(old, new)
        current[player] = new
        if read_every and step % read_every == 0:
            rank(current[plan[rng.randrange(step)][0]])
    moves_s = len(plan) / (time.perf_counter() - t)
    probes = [current[rng.randrange(len(current))] for _ in range(100_000)]
    t = time.perf_counter()
    for key in probes:
        rank(key)
    ranks_s = len(probes) / (time.perf_counter() - t)
    print(f"{name:>6}: {moves_s:>10,.0f} moves/s   {ranks_s:>10,.0f} rank look-ups/s")
    return moves_s, ranks_s


def run_sorted(keys: list[SortKey], plan: list[tuple[int, int]], read_every: int) -> tuple[float, float]:
    plain = SortedList(keys)

    def move(old: SortKey, new: SortKey) -> None:
        plain.discard(old)
        plain.add(new)

    return run_local("sorted", move, lambda key: int(plain.index(key)) + 1, keys, plan, read_every)


async def run_redis(url: str, keys: list[SortKey], plan: list[tuple[int, int]], read_every: int,
                    batch: int) -> tuple[float, float]:
    client = aioredis.from_url(url)
    board = f"engine-probe:{uuid.uuid4().hex[:8]}"
    try:
        for i in range(0, len(keys), 10_000):
            await client.zadd(board, {k[1]: -(k[0] >> 53) for k in keys[i:i + 10_000]})
        rng = random.Random(1)
        t = time.perf_counter()
        for start in range(0, len(plan), batch):
            async with client.pipeline(transaction=False) as pipe:
                for step, (player, gain) in enumerate(plan[start:start + batch], start + 1):
                    pipe.zincrby(board, gain, f"p{player}")
                    if read_every and step % read_every == 0:
                        pipe.zrevrank(board, f"p{plan[rng.randrange(step)][0]}")
                await pipe.execute()
        moves_s = len(plan) / (time.perf_counter() - t)
        probes = [f"p{rng.randrange(len(keys))}" for _ in range(100_000)]
        t = time.perf_counter()
        for start in range(0, len(probes), batch):
            async with client.pipeline(transaction=False) as pipe:
                for member in probes[start:start + batch]:
                    pipe.zrevrank(board, member)
                await pipe.execute()
        ranks_s = len(probes) / (time.perf_counter() - t)
        print(f" redis: {moves_s:>10,.0f} moves/s   {ranks_s:>10,.0f} rank look-ups/s   (pipelines of {batch})")
        return moves_s, ranks_s
    finally:
        await client.delete(board)
        await client.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, default=1_000_000)
    ap.add_argument("--moves", type=int, default=200_000)
    ap.add_argument("--read-every", type=int, default=10, help="one rank look-up per this many moves (0: none)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--batch", type=int, default=500, help="Redis commands per pipeline")
    a = ap.parse_args()
    keys = initial(a.players)
    plan = workload(a.players, a.moves, seed=7)
    print(f"{a.players:,} players, {a.moves:,} moves, a rank look-up every {a.read_every or 'never'} moves")
    board = Board(keys)
    run_local("podium", board.move, board.rank_of, keys, plan, a.read_every)
    del board  # one structure in memory at a time
    run_sorted(keys, plan, a.read_every)
    asyncio.run(run_redis(a.redis_url, keys, plan, a.read_every, a.batch))


if __name__ == "__main__":
    main()
