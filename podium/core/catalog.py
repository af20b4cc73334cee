"""The achievement catalog as the actors see it: game -> achievement -> points."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from podium.wire.errors import UnknownAchievement, UnknownGame


@dataclass(frozen=True, slots=True)
class Catalog:
    points: Mapping[str, Mapping[str, int]]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> Catalog:
        """Rows of (game_id, achievement_id|None, points|None), as read_catalog returns."""
        games: dict[str, dict[str, int]] = {}
        for row in rows:
            achievements = games.setdefault(str(row["game_id"]), {})
            if row["achievement_id"] is not None:
                achievements[str(row["achievement_id"])] = int(row["points"])  # type: ignore[call-overload]
        return cls(games)

    def points_of(self, game_id: str, achievement_id: str) -> int:
        achievements = self.points.get(game_id)
        if achievements is None:
            raise UnknownGame(game_id)
        points = achievements.get(achievement_id)
        if points is None:
            raise UnknownAchievement(f"{game_id}/{achievement_id}")
        return points

    def has_game(self, game_id: str) -> bool:
        return game_id in self.points
