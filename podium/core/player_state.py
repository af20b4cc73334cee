"""What a player shard owns: per player per game counters and each player's
region. Replay-safe: a journal row applies only if its seq is newer than the
last one folded into that player's game. A region change is versioned by the
seq of the commit that carried it, so it moves every board the player is on
under the leaderboards' one rule: a newer version wins."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from podium.core.periods import DAY, PERIODS, PeriodClock, board_id
from podium.wire.messages import ALL_GAMES, ScoreUpdates

# eight columns of rows (stats, periods), one list each
Columns = tuple[list[Any], list[Any], list[Any], list[Any], list[Any], list[Any], list[Any], list[Any]]

Pair = tuple[str, str]  # (player_id, game_id)
Period = tuple[str, int]  # (kind, start_us)
PeriodKey = tuple[str, str, str, int]  # (player_id, game_id, kind, start_us)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Exact microseconds since the epoch (PostgreSQL's timestamptz precision)."""
    return (moment - _EPOCH) // _US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class GameStats:
    points: int
    unlocked: int
    first_us: int
    last_us: int
    reached_us: int  # when `points` was reached: the rank tie-break
    last_seq: int


@dataclass(slots=True)
class PeriodStats:
    """A player's score in one game during one day or week."""

    points: int
    unlocked: int
    reached_us: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Dirty:
    """Rows changed since the last checkpoint, as checkpoint columns (times in µs)."""

    pairs: set[Pair]
    periods: set[PeriodKey]
    stats_columns: Columns
    period_columns: Columns


class PlayerBook:
    def __init__(self, clock: PeriodClock | None = None) -> None:
        self.clock = clock or PeriodClock()
        self.games: dict[str, dict[str, GameStats]] = {}
        self.periods: dict[Pair, dict[Period, PeriodStats]] = {}
        self.regions: dict[str, str | None] = {}
        self.region_seq: dict[str, int] = {}  # the seq that set the player's current region (if set while held)
        self._dirty: set[Pair] = set()
        self._dirty_periods: set[PeriodKey] = set()
        self._cutoffs: dict[str, int] | None = None  # the oldest live period start per kind at the last eviction
        self._taken: set[PeriodKey] = set()  # period rows checkpointed since the last eviction
        self._closed_dirty: set[PeriodKey] = set()  # closed at the last eviction, but not checkpointed yet
        self._starts_at = -1  # a group commit stamps every row with one time: its periods are computed once
        self._starts: tuple[Period, ...] = ()
        self._board_ids: dict[tuple[str, str, int], str] = {}

    def load(self, player_id: str, game_id: str, stats: GameStats, region: str | None) -> None:
        """Take a checkpointed row as it is (recovery)."""
        self.games.setdefault(player_id, {})[game_id] = stats
        self.regions.setdefault(player_id, region)

    def load_period(self, player_id: str, game_id: str, kind: str, start_us: int, stats: PeriodStats) -> None:
        """Take a checkpointed period row as it is (recovery)."""
        self.periods.setdefault((player_id, game_id), {})[(kind, start_us)] = stats

    def region_change(self, player_id: str, region: str | None, seq: int,
                      other_games: Iterable[str] = ()) -> set[Pair]:
        """Record the player's region as of journal row `seq`; returns every pair
        whose boards must move if it changed: all the player's points games and
        `other_games` (its stat games: a player with stats and no points game
        has boards to move too)."""
        if region is None or self.regions.get(player_id) == region:
            return set()
        known = player_id in self.regions
        self.regions[player_id] = region
        self.region_seq[player_id] = max(seq, self.region_seq.get(player_id, 0))
        if not known:
            return set()
        return {(player_id, g) for g in self.games.get(player_id, ())} | {(player_id, g) for g in other_games}

    def _version(self, player_id: str, seq: int) -> int:
        return max(seq, self.region_seq.get(player_id, 0))

    def version(self, player_id: str, seq: int) -> int:
        """The version of a score last changed by row `seq`: a later region move re-versions it."""
        return max(seq, self.region_seq.get(player_id, 0))

    def apply(self, seq: int, player_id: str, game_id: str, points: int, at_us: int) -> bool:
        """Fold one journal row in; False if it was already folded in."""
        per_game = self.games.setdefault(player_id, {})
        stats = per_game.get(game_id)
        if stats is None:
            per_game[game_id] = GameStats(points, 1, at_us, at_us, at_us, seq)
        elif seq <= stats.last_seq:
            return False
        else:
            stats.unlocked += 1
            stats.first_us = min(stats.first_us, at_us)
            stats.last_us = max(stats.last_us, at_us)
            if points > 0:
                stats.points += points
                stats.reached_us = max(stats.reached_us, at_us)
            stats.last_seq = seq
        self._dirty.add((player_id, game_id))
        self._apply_periods(seq, player_id, game_id, points, at_us)
        return True

    def _apply_periods(self, seq: int, player_id: str, game_id: str, points: int, at_us: int) -> None:
        """The same row into its day and its week (called once per row, after the seq guard)."""
        held = self.periods.setdefault((player_id, game_id), {})
        if at_us != self._starts_at:
            self._starts_at, self._starts = at_us, tuple((kind, self.clock.start(kind, at_us)) for kind in PERIODS)
        for period in self._starts:
            kind, start = period
            stats = held.get(period)
            if stats is None:
                held[period] = PeriodStats(points, 1, at_us, seq)
            else:
                stats.unlocked += 1
                if points > 0:
                    stats.points += points
                    stats.reached_us = max(stats.reached_us, at_us)
                stats.last_seq = max(stats.last_seq, seq)
            self._dirty_periods.add((player_id, game_id, kind, start))

    def replay(self, rows: Iterable[Mapping[str, Any]],
               other_games: Callable[[str], Iterable[str]] | None = None) -> set[Pair]:
        """Fold journal rows (seq, player_id, game_id, points, unlocked_at,
        region) in, oldest first; returns every pair the rows touch, including
        rows already folded in (their scores may still need resending). A
        region move also moves `other_games(player)` (its stat games), as
        region_change does on the live path."""
        touched: set[Pair] = set()
        for r in rows:
            more = () if other_games is None else other_games(r["player_id"])
            touched |= self.region_change(r["player_id"], r["region"], r["seq"], more)
            self.regions.setdefault(r["player_id"], r["region"])
            self.apply(r["seq"], r["player_id"], r["game_id"], r["points"], to_us(r["unlocked_at"]))
            touched.add((r["player_id"], r["game_id"]))
        return touched

    def score_updates(self, pairs: set[Pair], now_us: int, delivered_upto: int = 0) -> ScoreUpdates:
        """Absolute scores of these pairs on every board they are on: all-time,
        and each live (current or previous) day and week - except period scores
        whose version is <= `delivered_upto` (the shard's delivered watermark):
        those reached their board already. So yesterday's score is not sent
        again with every unlock of today; a region move re-versions it."""
        out = ScoreUpdates()
        oldest_live = {kind: self.clock.previous(kind, now_us) for kind in PERIODS}
        board_ids = self._board_ids
        if len(board_ids) > 100_000:  # ids of periods long closed; rebuilt on demand
            board_ids.clear()
        for player_id, game_id in pairs:
            s = self.games[player_id][game_id]
            region = self.regions.get(player_id)
            out.add(player_id, game_id, region, s.points, s.reached_us, self._version(player_id, s.last_seq))
            for (kind, start), p in self.periods.get((player_id, game_id), {}).items():
                version = self._version(player_id, p.last_seq)
                if start >= oldest_live[kind] and version > delivered_upto:  # live: PeriodClock.is_live
                    ident = board_ids.get((game_id, kind, start))
                    if ident is None:
                        ident = board_ids[(game_id, kind, start)] = board_id(game_id, kind, start)
                    out.add(player_id, ident, region, p.points, p.reached_us, version)
        return out

    def total_updates(self, player_ids: set[str]) -> ScoreUpdates:
        """Each player's cross-game total as a score of ALL_GAMES: reached when
        the last point was added, versioned by the newest seq of any game."""
        out = ScoreUpdates()
        for player_id in player_ids:
            games = self.games.get(player_id)
            if not games:
                continue
            scoring = [s.reached_us for s in games.values() if s.points > 0]
            reached = max(scoring) if scoring else min(s.reached_us for s in games.values())
            out.add(player_id, ALL_GAMES, self.regions.get(player_id), sum(s.points for s in games.values()),
                    reached, self._version(player_id, max(s.last_seq for s in games.values())))
        return out

    def take_dirty(self) -> Dirty:
        """Changed rows since the last call, as checkpoint columns; the caller
        gives them back with `mark_dirty` if the write fails."""
        pairs, self._dirty = self._dirty, set()
        periods, self._dirty_periods = self._dirty_periods, set()
        self._taken |= periods
        cols: Columns = ([], [], [], [], [], [], [], [])
        for player_id, game_id in pairs:
            s = self.games[player_id][game_id]
            for col, value in zip(cols, (player_id, game_id, s.points, s.unlocked, s.first_us, s.last_us,
                                         s.reached_us, s.last_seq), strict=True):
                col.append(value)
        pcols: Columns = ([], [], [], [], [], [], [], [])
        for player_id, game_id, kind, start in periods:
            p = self.periods[(player_id, game_id)][(kind, start)]
            for col, value in zip(pcols, (player_id, game_id, kind, start, p.points, p.unlocked, p.reached_us,
                                          p.last_seq), strict=True):
                col.append(value)
        return Dirty(pairs, periods, cols, pcols)

    def mark_dirty(self, dirty: Dirty) -> None:
        self._dirty |= dirty.pairs
        self._dirty_periods |= dirty.periods

    @property
    def dirty_count(self) -> int:
        return len(self._dirty) + len(self._dirty_periods)

    def evict_periods(self, now_us: int) -> int:
        """Forget closed periods that are checkpointed; they live on in PostgreSQL.
        Every held period is looked at only when a period closed since the last
        call (or on the first); otherwise only the rows checkpointed since, and
        closed rows that were still dirty then: a sweep of every player's
        periods held a player shard's loop 0.2-0.8 s at each checkpoint (issue 23)."""
        cutoffs = {kind: self.clock.previous(kind, now_us) for kind in PERIODS}
        if cutoffs != self._cutoffs:
            self._cutoffs = cutoffs
            candidates: Iterable[PeriodKey] = [(p, g, kind, start) for (p, g), held in self.periods.items()
                                               for kind, start in held if start < cutoffs[kind]]
        else:
            candidates = self._closed_dirty | self._taken
        self._taken = set()
        self._closed_dirty = set()
        evicted = 0
        for key in candidates:
            player_id, game_id, kind, start = key
            if start >= cutoffs[kind]:
                continue
            if key in self._dirty_periods:
                self._closed_dirty.add(key)
                continue
            held = self.periods.get((player_id, game_id))
            if held is not None and held.pop((kind, start), None) is not None:
                evicted += 1
        return evicted

    def days(self, player_id: str, game_id: str | None, since_us: int) -> list[tuple[str, int, int, int]]:
        """(game_id, day_start_us, points, unlocked) held in memory from `since_us` on."""
        return [(g, start, p.points, p.unlocked)
                for g in ([game_id] if game_id else self.games.get(player_id, {}))
                for (kind, start), p in self.periods.get((player_id, g), {}).items()
                if kind == DAY and start >= since_us]

    def dashboard(self, player_id: str) -> dict[str, object]:
        per_game = self.games.get(player_id, {})
        return {
            "player_id": player_id,
            "region": self.regions.get(player_id),
            "total_points": sum(s.points for s in per_game.values()),
            "games": [
                {
                    "game_id": game_id,
                    "points": s.points,
                    "unlocked": s.unlocked,
                    "first_unlock_at": from_us(s.first_us).isoformat(),
                    "last_unlock_at": from_us(s.last_us).isoformat(),
                }
                for game_id, s in sorted(per_game.items())
            ],
        }
