"""Typed messages between the gateway and the actors, and between actors.
Batches travel as columns: one actor call per batch, never one per item."""
from __future__ import annotations

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
class UnlockBatch:
    """Unlocks for one player shard, as columns."""

    player_ids: list[str]
    game_ids: list[str]
    achievement_ids: list[str]
    regions: list[str | None]
    client_at_us: list[int | None]

    @classmethod
    def of(cls, unlocks: list[Unlock]) -> UnlockBatch:
        return cls(
            [u.player_id for u in unlocks],
            [u.game_id for u in unlocks],
            [u.achievement_id for u in unlocks],
            [u.region for u in unlocks],
            [u.client_at_us for u in unlocks],
        )

    @classmethod
    def concat(cls, batches: list[UnlockBatch]) -> UnlockBatch:
        """One batch of all of them, in order (the player shard's group commit)."""
        return cls(
            [p for b in batches for p in b.player_ids],
            [g for b in batches for g in b.game_ids],
            [a for b in batches for a in b.achievement_ids],
            [r for b in batches for r in b.regions],
            [c for b in batches for c in b.client_at_us],
        )

    def take(self, indices: list[int]) -> UnlockBatch:
        """The unlocks at these indices, in that order."""
        return UnlockBatch([self.player_ids[i] for i in indices], [self.game_ids[i] for i in indices],
                           [self.achievement_ids[i] for i in indices], [self.regions[i] for i in indices],
                           [self.client_at_us[i] for i in indices])

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
