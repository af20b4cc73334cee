"""Issue-25 probe: does an asc stat board read cost what a desc one does?
One Standings holds three boards of N entries each, built from the same
values: a stat board ranked desc, the same stat ranked asc (fastest lap),
and, for reference, an achievement-points board. In interleaved rounds (the
boards' turn order rotates each round, so a noisy neighbour hits all alike)
it times, per board, through the leaderboard shard's pure read functions
(podium/core/board_reads.py, bodies built, not serialized):
  - top:    the top page (50 entries),
  - cursor: the page after a cursor at a random place,
  - around: around-me (10 either side) of a random player,
  - rank:   a random player's rank,
  - update: a player's better value, applied as the shard applies a
            ScoreUpdates slice of 128 (a move on the board; no rank look-up).
Prints the median per-operation time of each board and the asc/desc ratio.

    PYTHONPATH=. .venv/bin/python load/order_probe.py --entries 1000000
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable

from podium.core import board_reads
from podium.core.board_order import ASC, DESC
from podium.core.periods import stat_board_id
from podium.core.ranking import encode_cursor
from podium.core.standings import Standings
from podium.wire.messages import ScoreUpdates

BASE_US = 1_796_000_000_000_000
POINTS_BOARD = "probe"
DESC_BOARD = stat_board_id("probe", "top-speed")
ASC_BOARD = stat_board_id("probe", "best-lap")
BOARDS = {"desc": DESC_BOARD, "asc": ASC_BOARD, "points": POINTS_BOARD}
OPS = ("top", "cursor", "around", "rank", "update")
SLICE = 128  # podium/actors/leaderboard_shard.APPLY_SLICE


def value_of(i: int) -> int:
    """Lap-like values: 40,000 distinct ones, about 25 players each at 1M entries."""
    return 50_000 + (i * 7919) % 40_000


def build(n: int) -> Standings:
    s = Standings()
    s.set_order(DESC_BOARD, DESC)
    s.set_order(ASC_BOARD, ASC)
    t = time.perf_counter()
    s.bulk_load((f"p{i}", board, None, value_of(i), BASE_US + i, 1) for board in BOARDS.values() for i in range(n))
    print(f"  built {len(BOARDS)} boards of {n:,} entries in {time.perf_counter() - t:.1f}s (recovery's Loader)")
    return s


class Runner:
    """Each operation on one board, `times` at once; returns seconds per operation."""

    def __init__(self, s: Standings, n: int, seed: int) -> None:
        self.s, self.n = s, n
        self.rng = random.Random(seed)
        self.current = {board: [value_of(i) for i in range(n)] for board in BOARDS.values()}
        self.version = 1
        self.clock = BASE_US + 10_000_000

    def players(self, times: int) -> list[str]:
        return [f"p{self.rng.randrange(self.n)}" for _ in range(times)]

    def top(self, board: str, times: int) -> float:
        t = time.perf_counter()
        for _ in range(times):
            board_reads.page(self.s, board, None, 50, None)
        return (time.perf_counter() - t) / times

    def cursor(self, board: str, times: int) -> float:
        """The page after a random player's place: the cursor a page ending there would carry."""
        order = self.s.order_of(board)
        tokens = [encode_cursor(self.s.entry(board, p)[0], "next", order) for p in self.players(times)]
        t = time.perf_counter()
        for token in tokens:
            board_reads.page(self.s, board, None, 50, token)
        return (time.perf_counter() - t) / times

    def around(self, board: str, times: int) -> float:
        who = self.players(times)
        t = time.perf_counter()
        for p in who:
            board_reads.around(self.s, board, None, p, 10)
        return (time.perf_counter() - t) / times

    def rank(self, board: str, times: int) -> float:
        who = self.players(times)
        t = time.perf_counter()
        for p in who:
            board_reads.rank(self.s, board, None, p)
        return (time.perf_counter() - t) / times

    def update(self, board: str, times: int) -> float:
        """A better value for random players: lower on the asc board, higher on the others, by the same step."""
        values, step = self.current[board], -1 if board == ASC_BOARD else 1
        slices = []
        for _ in range(max(1, times // SLICE)):
            u = ScoreUpdates()
            for _ in range(SLICE):
                i = self.rng.randrange(self.n)
                values[i] += step * self.rng.randrange(1, 500)
                self.version += 1
                self.clock += 1
                u.add(f"p{i}", board, None, values[i], self.clock, self.version)
            slices.append(u)
        t = time.perf_counter()
        for u in slices:
            self.s.apply(u, track=())
        return (time.perf_counter() - t) / (len(slices) * SLICE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seed", type=int, default=25)
    a = ap.parse_args()
    per_round = {"top": 100, "cursor": 100, "around": 300, "rank": 3000, "update": 3072}
    started = time.perf_counter()
    print(f"{a.entries:,} entries per board, {a.rounds} rounds")
    gc.disable()  # what the shard does around recovery; it then freezes the heap
    s = build(a.entries)
    gc.collect()
    gc.freeze()
    gc.enable()
    runner = Runner(s, a.entries, a.seed)
    ops: dict[str, Callable[[str, int], float]] = {op: getattr(runner, op) for op in OPS}
    samples: dict[tuple[str, str], list[float]] = {(name, op): [] for name in BOARDS for op in OPS}
    names = list(BOARDS)
    for r in range(a.rounds):
        turn = names[r % len(names):] + names[:r % len(names)]
        for op in OPS:
            for name in turn:
                samples[(name, op)].append(ops[op](BOARDS[name], per_round[op]))
    print(f"\nmedian µs per operation over {a.rounds} rounds (built and measured in "
          f"{time.perf_counter() - started:.0f}s)")
    print(f"{'op':<8}" + "".join(f"{n:>10}" for n in names) + f"{'asc/desc':>10}{'desc/points':>13}")
    for op in OPS:
        med = {name: statistics.median(samples[(name, op)]) * 1e6 for name in names}
        print(f"{op:<8}" + "".join(f"{med[n]:>10.2f}" for n in names)
              + f"{med['asc'] / med['desc']:>10.2f}{med['desc'] / med['points']:>13.2f}")


if __name__ == "__main__":
    main()
