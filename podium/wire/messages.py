"""Typed messages between the gateway and the actors, and between actors.
Batches travel as columns: one actor call per batch, never one per item."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

ALL_GAMES = "_all"  # reserved game id of the cross-game board (sum of a player's points in every game)
MAX_CALL = 64 * 1024 * 1024  # the frame cap of a channel call (podium/transport/channel.py): a delivery round of
# 20,000 pairs on 5 boards is ~6 MB, so a frame past this is a broken peer


class AckStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class Reason(StrEnum):
    INVALID = "invalid"
    UNKNOWN_GAME = "unknown_game"
    UNKNOWN_ACHIEVEMENT = "unknown_achievement"
    FORBIDDEN_GAME = "forbidden_game"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_STAT = "unknown_stat"  # the three stat update reasons are the codes of podium/wire/errors.py's
    WRONG_OPERATOR = "wrong_operator"  # UnknownStat, WrongOperator and OutOfBounds
    OUT_OF_BOUNDS = "out_of_bounds"


@dataclass(frozen=True, slots=True)
class Unlock:
    """One validated unlock as the gateway hands it on."""

    player_id: str
    game_id: str
    achievement_id: str
    region: str | None = None
    client_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class StatUpdate:
    """One validated stat update as the gateway hands it on (docs/protocol.md, "The stat update item")."""

    player_id: str
    game_id: str
    stat_id: str
    op: str
    value: int
    event_id: str
    region: str | None = None
    client_at_us: int | None = None


Item = Unlock | StatUpdate
Key = tuple[str, str, str]  # an item's resend identity: (player, game, achievement id) or (player, game, "#" + event)
EVENT_KEY = "#"  # marks a stat update's key: outside the id alphabet, so it never equals an achievement id


@dataclass(frozen=True, slots=True)
class UnlockBatch:
    """Unlocks and stat updates for one player shard, as columns. The four stat
    columns are empty when no item of the batch is a stat update (unlock-only
    batches carry nothing more); otherwise they are as long as the others and
    `stat_ids[i]` is None for an unlock (whose `achievement_ids[i]` names it).
    A stat update's `achievement_ids[i]` is ""."""

    player_ids: list[str]
    game_ids: list[str]
    achievement_ids: list[str]
    regions: list[str | None]
    client_at_us: list[int | None]
    stat_ids: list[str | None] = field(default_factory=list)
    ops: list[str | None] = field(default_factory=list)
    values: list[int | None] = field(default_factory=list)
    event_ids: list[str | None] = field(default_factory=list)

    @classmethod
    def of(cls, items: Sequence[Item]) -> UnlockBatch:
        base = (
            [u.player_id for u in items],
            [u.game_id for u in items],
            ["" if isinstance(u, StatUpdate) else u.achievement_id for u in items],
            [u.region for u in items],
            [u.client_at_us for u in items],
        )
        if not any(isinstance(u, StatUpdate) for u in items):
            return cls(*base)
        stats = [u if isinstance(u, StatUpdate) else None for u in items]
        return cls(*base, [None if s is None else s.stat_id for s in stats],
                   [None if s is None else s.op for s in stats], [None if s is None else s.value for s in stats],
                   [None if s is None else s.event_id for s in stats])

    @property
    def has_stats(self) -> bool:
        return bool(self.stat_ids)

    def is_stat(self, i: int) -> bool:
        return bool(self.stat_ids) and self.stat_ids[i] is not None

    def key(self, i: int) -> Key:
        """Item i's identity for resends: the journal's unique key of its row."""
        if self.stat_ids and self.stat_ids[i] is not None:
            return self.player_ids[i], self.game_ids[i], EVENT_KEY + str(self.event_ids[i])
        return self.player_ids[i], self.game_ids[i], self.achievement_ids[i]

    def keys(self) -> list[Key]:
        """Every item's `key`, in order (one pass: the pipeline and the plan take them all)."""
        if not self.stat_ids:
            return list(zip(self.player_ids, self.game_ids, self.achievement_ids, strict=True))
        return [(p, g, a) if s is None else (p, g, EVENT_KEY + str(e))
                for p, g, a, s, e in zip(self.player_ids, self.game_ids, self.achievement_ids, self.stat_ids,
                                         self.event_ids, strict=True)]

    def stat_columns(self) -> tuple[list[str | None], list[str | None], list[int | None], list[str | None]]:
        """The four stat columns, full length (all None for an unlock-only batch)."""
        if self.stat_ids:
            return self.stat_ids, self.ops, self.values, self.event_ids
        none: list[None] = [None] * len(self.player_ids)
        return none, none, none, none  # type: ignore[return-value]

    @classmethod
    def concat(cls, batches: list[UnlockBatch]) -> UnlockBatch:
        """One batch of all of them, in order (the player shard's group commit)."""
        base = (
            [p for b in batches for p in b.player_ids],
            [g for b in batches for g in b.game_ids],
            [a for b in batches for a in b.achievement_ids],
            [r for b in batches for r in b.regions],
            [c for b in batches for c in b.client_at_us],
        )
        if not any(b.stat_ids for b in batches):
            return cls(*base)
        cols = [b.stat_columns() for b in batches]
        return cls(*base, *([v for c in cols for v in c[k]] for k in range(4)))  # type: ignore[arg-type]

    def take(self, indices: list[int]) -> UnlockBatch:
        """The items at these indices, in that order."""
        base = ([self.player_ids[i] for i in indices], [self.game_ids[i] for i in indices],
                [self.achievement_ids[i] for i in indices], [self.regions[i] for i in indices],
                [self.client_at_us[i] for i in indices])
        if not self.stat_ids or all(self.stat_ids[i] is None for i in indices):
            return UnlockBatch(*base)
        return UnlockBatch(*base, [self.stat_ids[i] for i in indices], [self.ops[i] for i in indices],
                           [self.values[i] for i in indices], [self.event_ids[i] for i in indices])

    def __len__(self) -> int:
        return len(self.player_ids)


@dataclass(frozen=True, slots=True)
class AckBatch:
    """Index-aligned with the UnlockBatch it answers."""

    statuses: list[AckStatus]
    reasons: list[str | None]


@dataclass(frozen=True, slots=True)
class ScoreUpdates:
    """Absolute per-player-per-game scores from one player shard. `versions` is
    the newest journal seq folded into each score: a leaderboard applies an
    update only if it is newer than what it holds, so resends are harmless."""

    player_ids: list[str] = field(default_factory=list)
    game_ids: list[str] = field(default_factory=list)
    regions: list[str | None] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    reached_us: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)

    def add(self, player_id: str, game_id: str, region: str | None, points: int, reached_us: int, version: int) -> None:
        self.player_ids.append(player_id)
        self.game_ids.append(game_id)
        self.regions.append(region)
        self.points.append(points)
        self.reached_us.append(reached_us)
        self.versions.append(version)

    def extend(self, other: ScoreUpdates) -> None:
        for mine, theirs in zip((self.player_ids, self.game_ids, self.regions, self.points, self.reached_us,
                                 self.versions), (other.player_ids, other.game_ids, other.regions, other.points,
                                                  other.reached_us, other.versions), strict=True):
            mine.extend(theirs)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.player_ids)

    def without(self, game_ids: set[str]) -> ScoreUpdates:
        """The updates whose board is not in `game_ids` (itself if none is)."""
        if not game_ids:
            return self
        keep = [i for i, g in enumerate(self.game_ids) if g not in game_ids]
        return ScoreUpdates([self.player_ids[i] for i in keep], [self.game_ids[i] for i in keep],
                            [self.regions[i] for i in keep], [self.points[i] for i in keep],
                            [self.reached_us[i] for i in keep], [self.versions[i] for i in keep])

    def slices(self, size: int) -> list[ScoreUpdates]:
        """Consecutive parts of at most `size` updates (the whole batch if it is small)."""
        if len(self) <= size:
            return [self]
        return [ScoreUpdates(self.player_ids[i:i + size], self.game_ids[i:i + size], self.regions[i:i + size],
                             self.points[i:i + size], self.reached_us[i:i + size], self.versions[i:i + size])
                for i in range(0, len(self), size)]


@dataclass(frozen=True, slots=True)
class RankChange:
    player_id: str
    game_id: str
    board: str  # "global" or the region
    old_rank: int | None
    new_rank: int
    points: int
    total: int
