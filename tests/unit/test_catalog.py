"""Catalog.from_rows (podium/core/catalog.py): the achievement rows every caller passes today still build the
same catalog; stat, board and season rows add the stats, thresholds and boards of issue 25."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from podium.core.catalog import Catalog, StatBoard
from podium.core.stats import Op, StatDef, Threshold
from podium.wire.errors import UnknownAchievement, UnknownGame, UnknownStat


def us(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1_000_000)


def ach(game: str, achievement: str | None, points: int | None, stat: str | None = None,
        at_least: int | None = None, at_most: int | None = None) -> dict[str, object]:
    return {"game_id": game, "game_name": game.title(), "achievement_id": achievement, "name": achievement,
            "points": points, "threshold_stat": stat, "threshold_at_least": at_least, "threshold_at_most": at_most}


ACHIEVEMENTS = [ach("kart", "century", 50, "races_won", at_least=100), ach("kart", "podium", 15),
                ach("kart", "sub-minute", 30, "best_lap_ms", at_most=59_999),
                ach("kart", "ten", 5, "races_won", at_least=10), ach("empty", None, None)]
Row = dict[str, object]
STATS: list[Row] = [
    {"game_id": "kart", "stat_id": "races_won", "name": "Races won", "op": "incr", "min_value": 0, "max_value": None},
    {"game_id": "kart", "stat_id": "best_lap_ms", "name": "Best lap", "op": "min", "min_value": 1,
     "max_value": 3_600_000},
    {"game_id": "stats-only", "stat_id": "level", "name": "Level", "op": "set", "min_value": None, "max_value": None}]
BOARDS: list[Row] = [
    {"game_id": "kart", "board_id": "fastest-lap", "name": "Fastest lap", "stat_id": "best_lap_ms",
     "sort_order": "asc", "periods": ["all", "day", "week"]},
    {"game_id": "kart", "board_id": "wins", "name": "Wins", "stat_id": "races_won", "sort_order": "desc",
     "periods": ["all"]}]
SEASONS: list[Row] = [
    {"game_id": "kart", "board_id": "fastest-lap", "season_id": "spring-27", "start_us": us("2027-03-01"),
     "end_us": us("2027-06-01")},
    {"game_id": "kart", "board_id": "fastest-lap", "season_id": "winter-26", "start_us": us("2026-12-01"),
     "end_us": us("2027-03-01")}]


def test_the_rows_of_todays_callers_build_the_same_catalog() -> None:
    old = Catalog.from_rows([{"game_id": "g", "achievement_id": "a", "points": 10},
                             {"game_id": "g", "achievement_id": "b", "points": 0},
                             {"game_id": "h", "achievement_id": None, "points": None}])
    assert old == Catalog({"g": {"a": 10, "b": 0}, "h": {}})
    assert (old.stats, old.thresholds, old.boards) == ({}, {}, {})
    assert old.threshold_of("g", "a") is None and old.points_of("g", "b") == 0
    with pytest.raises(UnknownStat):
        old.stat_of("g", "anything")


def test_stats_thresholds_and_boards_come_from_their_rows() -> None:
    catalog = Catalog.from_rows(ACHIEVEMENTS, STATS, BOARDS, SEASONS)
    assert catalog.stat_of("kart", "best_lap_ms") == StatDef("best_lap_ms", "Best lap", Op.MIN, 1, 3_600_000)
    assert catalog.stat_of("stats-only", "level").op is Op.SET
    assert catalog.has_game("stats-only")  # a game with stats and no achievements is still a game
    assert catalog.thresholds[("kart", "races_won")] == (Threshold("century", "races_won", at_least=100),
                                                         Threshold("ten", "races_won", at_least=10))
    assert catalog.thresholds_on("kart", "best_lap_ms") == (Threshold("sub-minute", "best_lap_ms", at_most=59_999),)
    assert catalog.thresholds_on("kart", "top_speed") == ()
    assert catalog.threshold_of("kart", "ten") == Threshold("ten", "races_won", at_least=10)
    assert catalog.threshold_of("kart", "podium") is None
    assert catalog.points_of("kart", "century") == 50  # a threshold achievement is an ordinary achievement
    assert catalog.boards["kart"]["fastest-lap"] == StatBoard(
        "fastest-lap", "Fastest lap", "best_lap_ms", "asc", ("all", "day", "week"),
        (("winter-26", us("2026-12-01"), us("2027-03-01")), ("spring-27", us("2027-03-01"), us("2027-06-01"))))
    assert catalog.boards["kart"]["wins"].seasons == ()


def test_unknown_games_stats_and_achievements_are_typed_errors() -> None:
    catalog = Catalog.from_rows(ACHIEVEMENTS, STATS)
    with pytest.raises(UnknownGame):
        catalog.stat_of("nope", "races_won")
    with pytest.raises(UnknownStat):
        catalog.stat_of("kart", "top_speed")
    with pytest.raises(UnknownStat):
        catalog.stat_of("empty", "races_won")  # a known game without stats
    with pytest.raises(UnknownAchievement):
        catalog.points_of("kart", "nope")


def test_a_catalog_built_by_hand_finds_its_thresholds_by_achievement() -> None:
    t = Threshold("century", "races_won", at_least=100)
    catalog = Catalog({"kart": {"century": 50}}, {"kart": {"races_won": StatDef("races_won", "W", Op.INCR)}},
                      {("kart", "races_won"): (t,)})
    assert catalog.threshold_of("kart", "century") is t
    assert catalog.threshold_of("other", "century") is None
