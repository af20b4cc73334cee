"""The catalog as the actors see it: game -> achievement -> points, and since issue 25 each game's stats, the
thresholds that unlock achievements from them, and its stat boards with their seasons. Built by `from_rows` from
what podium/persistence/catalog_store.py reads; immutable, replaced whole when the catalog changes."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from podium.core.stats import Op, StatDef, Threshold
from podium.wire.errors import UnknownAchievement, UnknownGame, UnknownStat

ASC = "asc"
DESC = "desc"


@dataclass(frozen=True, slots=True)
class StatBoard:
    """A leaderboard of one stat's value. `order` asc ranks the lowest first (a best lap); seasons are
    (season_id, start_us, end_us), start inclusive and end exclusive, sorted by start, never overlapping."""

    board_id: str
    name: str
    stat_id: str
    order: str = DESC
    periods: tuple[str, ...] = ("all",)
    seasons: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Catalog:
    points: Mapping[str, Mapping[str, int]]
    stats: Mapping[str, Mapping[str, StatDef]] = field(default_factory=dict)  # game -> stat id -> def
    thresholds: Mapping[tuple[str, str], tuple[Threshold, ...]] = field(default_factory=dict)  # (game, stat) -> ...
    boards: Mapping[str, Mapping[str, StatBoard]] = field(default_factory=dict)  # game -> board id -> board
    _by_achievement: dict[tuple[str, str], Threshold] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_achievement", {
            (game, t.achievement_id): t for (game, _), ts in self.thresholds.items() for t in ts})

    @classmethod
    def from_rows(cls, achievement_rows: Iterable[Mapping[str, object]],
                  stat_rows: Iterable[Mapping[str, object]] = (),
                  board_rows: Iterable[Mapping[str, object]] = (),
                  season_rows: Iterable[Mapping[str, object]] = ()) -> Catalog:
        """The rows of catalog_store's readers. Achievement rows: (game_id, achievement_id|None, points|None, and
        optionally threshold_stat, threshold_at_least, threshold_at_most); stat rows: (game_id, stat_id, name, op,
        min_value, max_value); board rows: (game_id, board_id, name, stat_id, sort_order, periods); season rows:
        (game_id, board_id, season_id, start_us, end_us)."""
        games: dict[str, dict[str, int]] = {}
        thresholds: dict[tuple[str, str], list[Threshold]] = {}
        for row in achievement_rows:
            game = str(row["game_id"])
            achievements = games.setdefault(game, {})
            if row["achievement_id"] is None:
                continue
            achievement = str(row["achievement_id"])
            achievements[achievement] = _int(row["points"])
            stat = row.get("threshold_stat")
            if stat is not None:
                thresholds.setdefault((game, str(stat)), []).append(Threshold(
                    achievement, str(stat), _opt_int(row.get("threshold_at_least")),
                    _opt_int(row.get("threshold_at_most"))))
        stats: dict[str, dict[str, StatDef]] = {}
        for row in stat_rows:
            game = str(row["game_id"])
            games.setdefault(game, {})
            stats.setdefault(game, {})[str(row["stat_id"])] = StatDef(
                str(row["stat_id"]), str(row["name"]), Op(str(row["op"])), _opt_int(row.get("min_value")),
                _opt_int(row.get("max_value")))
        seasons: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        for row in season_rows:
            seasons.setdefault((str(row["game_id"]), str(row["board_id"])), []).append(
                (str(row["season_id"]), _int(row["start_us"]), _int(row["end_us"])))
        boards: dict[str, dict[str, StatBoard]] = {}
        for row in board_rows:
            game, board = str(row["game_id"]), str(row["board_id"])
            periods = row["periods"]
            assert isinstance(periods, Iterable)
            boards.setdefault(game, {})[board] = StatBoard(
                board, str(row["name"]), str(row["stat_id"]), str(row["sort_order"]), tuple(str(p) for p in periods),
                tuple(sorted(seasons.get((game, board), ()), key=lambda s: s[1])))
        return cls(games, stats, {k: tuple(v) for k, v in thresholds.items()}, boards)

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

    def stat_of(self, game_id: str, stat_id: str) -> StatDef:
        if game_id not in self.points and game_id not in self.stats:
            raise UnknownGame(game_id)
        stat = self.stats.get(game_id, {}).get(stat_id)
        if stat is None:
            raise UnknownStat(f"{game_id}/{stat_id}")
        return stat

    def thresholds_on(self, game_id: str, stat_id: str) -> tuple[Threshold, ...]:
        """The thresholds a stat's updates may cross (empty for most stats)."""
        return self.thresholds.get((game_id, stat_id), ())

    def threshold_of(self, game_id: str, achievement_id: str) -> Threshold | None:
        """The achievement's threshold, None for an achievement unlocked only by unlock items."""
        return self._by_achievement.get((game_id, achievement_id))


def _int(value: object) -> int:
    if not isinstance(value, int | str):
        raise TypeError(f"not an integer column: {value!r}")
    return int(value)


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)
