"""The benchmark's workload, the same for every system: 20 games x 50
achievements, players with Zipf-skewed activity (player 0 is the most active),
regions eu/na/asia, and an unlock stream where every unlock is new (durable
throughput counts only accepted unlocks; there are no accidental duplicates)."""
from __future__ import annotations

import bisect
import itertools
import random
from typing import Any

GAMES = 20
ACHIEVEMENTS = 50
REGIONS = ("eu", "na", "asia")
PER_PLAYER = GAMES * ACHIEVEMENTS  # distinct unlocks a player can make


def game_id(g: int) -> str:
    return f"g{g:02d}"


def achievement_id(a: int) -> str:
    return f"a{a:02d}"


def points(g: int, a: int) -> int:
    return 5 * (1 + (a * 7 + g) % 20)


def catalog() -> list[dict[str, Any]]:
    return [{"game_id": game_id(g), "name": f"Game {g}", "achievements": [
        {"achievement_id": achievement_id(a), "name": f"Achievement {a}", "points": points(g, a)}
        for a in range(ACHIEVEMENTS)]} for g in range(GAMES)]


def player_id(i: int) -> str:
    return f"p{i:07d}"


def unlock(i: int, k: int) -> dict[str, str]:
    """Player i's k-th unlock (0 <= k < PER_PLAYER): a distinct (game, achievement) per k."""
    g, a = (i + k) % GAMES, (i + k // GAMES) % ACHIEVEMENTS
    return {"player_id": player_id(i), "game_id": game_id(g), "achievement_id": achievement_id(a),
            "region": REGIONS[i % len(REGIONS)]}


def first_game(i: int) -> str:
    """The game of player i's first unlock: every preloaded player has a score there."""
    return game_id(i % GAMES)


class Workload:
    def __init__(self, seed: int = 7, zipf_s: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.zipf_s = zipf_s
        self.players = 0
        self._cum: list[float] = []
        self._next: dict[int, int] = {}

    def grow(self, n: int) -> list[dict[str, str]]:
        """Add players up to n; returns their first unlocks (the preload)."""
        start = self.players
        if n <= start:
            return []
        total = self._cum[-1] if self._cum else 0.0
        weights = (1.0 / (i + 1) ** self.zipf_s for i in range(start, n))
        self._cum.extend(itertools.islice(itertools.accumulate(weights, initial=total), 1, None))
        self.players = n
        return [unlock(i, 0) for i in range(start, n)]

    def active_player(self) -> int:
        return bisect.bisect_left(self._cum, self.rng.random() * self._cum[-1])

    def any_player(self) -> int:
        return self.rng.randrange(self.players)

    def next(self) -> dict[str, str]:
        while True:
            item = self.next_for(self.active_player())
            if item is not None:
                return item

    def next_for(self, i: int) -> dict[str, str] | None:
        """Player i's next new unlock (None once it has unlocked everything)."""
        k = self._next.get(i, 1)
        if k >= PER_PLAYER:
            return None
        self._next[i] = k + 1
        return unlock(i, k)

    def batch(self, n: int) -> list[dict[str, str]]:
        return [self.next() for _ in range(n)]


# ---- stats (Podium only: phase j of load/bench.py) ----------------------------------

STAT_GAME = "stats"  # a game of its own: the points games above stay as the peers have them
WINS = "wins"  # incr, counted by the ingest run; both stat boards rank it
WINS_AT_LEAST = 50  # the threshold: the most active players cross it during the ingest run (Zipf)
WINS_ACHIEVEMENT = "wins-50"
LEVEL = "level"  # set, for the watched players of the progress run: every new value moves their progress
LEVEL_ACHIEVEMENT = "level-max"  # a threshold nobody reaches in a run, so every update pushes `progress`
BOARDS = {"desc": "wins-desc", "asc": "wins-asc"}  # order -> board id, the same stat's values


def stats_catalog() -> list[dict[str, Any]]:
    """The stats game: imported beside catalog() into Podium only (the peers have no stats)."""
    return [{"game_id": STAT_GAME, "name": "Stats", "stats": [
        {"stat_id": WINS, "name": "Wins", "op": "incr", "min": 0},
        {"stat_id": LEVEL, "name": "Level", "op": "set", "min": 0}],
        "achievements": [
            {"achievement_id": WINS_ACHIEVEMENT, "name": f"Win {WINS_AT_LEAST}", "points": 10,
             "threshold": {"stat_id": WINS, "at_least": WINS_AT_LEAST}},
            {"achievement_id": LEVEL_ACHIEVEMENT, "name": "Level a trillion", "points": 10,
             "threshold": {"stat_id": LEVEL, "at_least": 10**12}}],
        "boards": [{"board_id": board, "name": f"Wins ({order})", "stat_id": WINS, "order": order}
                   for order, board in BOARDS.items()]}]


class StatStream:
    """`incr wins 1` updates for players picked as the unlock stream picks them
    (Zipf), each with an event id of its own (every update is new: none is a
    duplicate). Counts what it sent per player, so the run knows who should
    have crossed the threshold once the acks are in."""

    def __init__(self, work: Workload, run: str) -> None:
        self.work, self.run = work, run
        self.sent = 0

    def batch(self, n: int) -> list[dict[str, Any]]:
        items = []
        for _ in range(n):
            self.sent += 1
            i = self.work.active_player()
            items.append({"kind": "stat", "player_id": player_id(i), "game_id": STAT_GAME, "stat_id": WINS,
                          "op": "incr", "value": 1, "event_id": f"w-{self.run}-{self.sent}",
                          "region": REGIONS[i % len(REGIONS)]})
        return items
