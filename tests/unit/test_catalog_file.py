"""The catalog file's rules (podium/core/catalog_file.py): the spec's example passes with its defaults filled in;
every broken rule refuses the whole file with a message that names the game and the field."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from podium.cluster.launch import DEMO_CATALOG, load_catalog_file
from podium.core.catalog_file import IDENT, CatalogFileError, parse_file, parse_games
from podium.core.stats import SAFE_INT
from podium.gateway import frames

KART: dict[str, Any] = {
    "game_id": "kart-party", "name": "Kart Party",
    "stats": [
        {"stat_id": "races_won", "name": "Races won", "op": "incr", "min": 0},
        {"stat_id": "best_lap_ms", "name": "Best lap (ms)", "op": "min", "min": 1, "max": 3600000},
        {"stat_id": "top_speed", "name": "Top speed", "op": "max"},
        {"stat_id": "level", "name": "Level", "op": "set", "min": 1, "max": 100}],
    "achievements": [
        {"achievement_id": "podium-finish", "name": "Podium Finish", "points": 15},
        {"achievement_id": "century", "name": "Win 100 races", "points": 50,
         "threshold": {"stat_id": "races_won", "at_least": 100}},
        {"achievement_id": "sub-minute", "name": "Lap under a minute", "points": 30,
         "threshold": {"stat_id": "best_lap_ms", "at_most": 59999}}],
    "boards": [
        {"board_id": "fastest-lap", "name": "Fastest lap", "stat_id": "best_lap_ms", "order": "asc",
         "periods": ["all", "day", "week"],
         "seasons": [{"season_id": "winter-26", "start": "2026-12-01T00:00:00Z", "end": "2027-03-01T00:00:00Z"}]}]}


def kart(**changes: Any) -> dict[str, Any]:
    game = copy.deepcopy(KART)
    game.update(changes)
    return game


def refused(game: dict[str, Any], *words: str) -> str:
    with pytest.raises(CatalogFileError) as caught:
        parse_games([game])
    message = str(caught.value)
    for word in (f"game {game['game_id']}", *words):
        assert word in message, message
    return message


def test_the_specs_example_passes_with_defaults_filled_in() -> None:
    [game] = parse_file({"games": [KART]})
    assert [s["stat_id"] for s in game["stats"]] == ["races_won", "best_lap_ms", "top_speed", "level"]
    assert game["stats"][2] == {"stat_id": "top_speed", "name": "Top speed", "op": "max", "min": None, "max": None}
    assert game["achievements"][0]["threshold"] is None
    assert game["achievements"][1]["threshold"] == {"stat_id": "races_won", "at_least": 100, "at_most": None}
    [board] = game["boards"]
    assert board["seasons"] == [{"season_id": "winter-26", "start": datetime(2026, 12, 1, tzinfo=UTC),
                                 "end": datetime(2027, 3, 1, tzinfo=UTC)}]
    assert parse_games([game]) == [game]  # a parsed catalog parses to itself (import_catalog checks again)
    assert KART["boards"][0]["seasons"][0]["start"] == "2026-12-01T00:00:00Z"  # the input is left alone


def test_board_and_name_defaults() -> None:
    [game] = parse_games([kart(boards=[{"board_id": "wins", "stat_id": "races_won"}])])
    assert game["boards"] == [{"board_id": "wins", "name": "wins", "stat_id": "races_won", "order": "desc",
                               "periods": ["all"], "seasons": []}]
    [plain] = parse_games([{"game_id": "old", "achievements": [{"achievement_id": "a", "points": 1}]}])
    assert (plain["name"], plain["stats"], plain["boards"]) == ("old", [], [])
    assert plain["achievements"][0]["name"] == "a"


def test_the_catalog_ident_is_the_frames_ident() -> None:
    assert IDENT.pattern == frames.Ident.__metadata__[0].pattern


@pytest.mark.parametrize(("stat", "words"), [
    ({"stat_id": "bad id", "op": "incr"}, ("stats[4].stat_id",)),
    ({"stat_id": "x" * 65, "op": "incr"}, ("stats[4].stat_id",)),
    ({"stat_id": "s", "op": "add"}, ("stats[s].op", "incr, max, min, set")),
    ({"stat_id": "s"}, ("stats[s].op",)),
    ({"stat_id": "s", "op": "max", "min": 5, "max": 4}, ("stats[s].min", "above max")),
    ({"stat_id": "s", "op": "max", "min": 1.5}, ("stats[s].min", "integer")),
    ({"stat_id": "s", "op": "max", "max": "9"}, ("stats[s].max", "integer")),
    ({"stat_id": "s", "op": "max", "max": True}, ("stats[s].max", "integer")),
    ({"stat_id": "s", "op": "max", "max": SAFE_INT + 1}, ("stats[s].max",)),
    ({"stat_id": "s", "op": "max", "minimum": 0}, ("stats[4].minimum", "not a field")),
    ({"stat_id": "races_won", "op": "max"}, ("stats[races_won].stat_id", "twice")),
])
def test_a_bad_stat_is_refused(stat: dict[str, Any], words: tuple[str, ...]) -> None:
    refused(kart(stats=[*KART["stats"], stat]), *words)


@pytest.mark.parametrize(("threshold", "words"), [
    ({"stat_id": "nope", "at_least": 1}, ("achievements[t].threshold.stat_id", "not a stat")),
    ({"stat_id": "races_won"}, ("achievements[t].threshold", "exactly one")),
    ({"stat_id": "level", "at_least": 5, "at_most": 9}, ("achievements[t].threshold", "exactly one")),
    ({"stat_id": "races_won", "at_most": 5}, ("achievements[t].threshold.at_most", "incr")),
    ({"stat_id": "top_speed", "at_most": 5}, ("achievements[t].threshold.at_most", "max")),
    ({"stat_id": "best_lap_ms", "at_least": 5}, ("achievements[t].threshold.at_least", "min")),
    ({"stat_id": "races_won", "at_least": -1}, ("achievements[t].threshold.at_least", "[0,")),
    ({"stat_id": "level", "at_least": 101}, ("achievements[t].threshold.at_least", "[1, 100]")),
    ({"stat_id": "best_lap_ms", "at_most": 0}, ("achievements[t].threshold.at_most",)),
    ({"stat_id": "races_won", "at_least": 2.0}, ("achievements[t].threshold.at_least", "integer")),
    ({"stat_id": "races_won", "at_leest": 2}, ("achievements[t].threshold.at_leest", "not a field")),
    ("races_won", ("achievements[t].threshold", "object")),
])
def test_a_bad_threshold_is_refused(threshold: object, words: tuple[str, ...]) -> None:
    refused(kart(achievements=[{"achievement_id": "t", "points": 1, "threshold": threshold}]), *words)


def test_set_stats_take_either_threshold_and_bounds_are_inclusive() -> None:
    [game] = parse_games([kart(achievements=[
        {"achievement_id": "max-level", "points": 1, "threshold": {"stat_id": "level", "at_least": 100}},
        {"achievement_id": "level-one", "points": 1, "threshold": {"stat_id": "level", "at_most": 1}}])])
    assert [a["threshold"]["stat_id"] for a in game["achievements"]] == ["level", "level"]


@pytest.mark.parametrize(("achievements", "words"), [
    ([{"achievement_id": "a", "points": -1}], ("achievements[a].points",)),
    ([{"achievement_id": "a", "points": 2**31}], ("achievements[a].points",)),
    ([{"achievement_id": "a"}], ("achievements[a].points",)),
    ([{"achievement_id": "a", "points": 1}, {"achievement_id": "a", "points": 2}], ("achievements", "twice")),
    ([{"achievement_id": "a b", "points": 1}], ("achievements[0].achievement_id",)),
])
def test_a_bad_achievement_is_refused(achievements: list[Any], words: tuple[str, ...]) -> None:
    refused(kart(achievements=achievements), *words)


def season(sid: str, start: str, end: str) -> dict[str, str]:
    return {"season_id": sid, "start": start, "end": end}


@pytest.mark.parametrize(("board", "words"), [
    ({"board_id": "b", "stat_id": "nope"}, ("boards[b].stat_id", "not a stat")),
    ({"board_id": "b"}, ("boards[b].stat_id",)),
    ({"board_id": "b", "stat_id": "level", "order": "up"}, ("boards[b].order",)),
    ({"board_id": "b", "stat_id": "level", "periods": []}, ("boards[b].periods",)),
    ({"board_id": "b", "stat_id": "level", "periods": ["month"]}, ("boards[b].periods",)),
    ({"board_id": "b", "stat_id": "level", "periods": ["day", "day"]}, ("boards[b].periods",)),
    ({"board_id": "b", "stat_id": "level", "periods": "all"}, ("boards[b].periods",)),
    ({"board_id": "b", "stat_id": "level", "sort": "asc"}, ("boards[1].sort", "not a field")),
    ({"board_id": "fastest-lap", "stat_id": "level"}, ("boards", "fastest-lap is listed twice")),
    ({"board_id": "b", "stat_id": "level", "seasons": [season("s", "2026-12-01", "2027-01-01T00:00:00Z")]},
     ("boards[b].seasons[s].start", "RFC 3339")),
    ({"board_id": "b", "stat_id": "level", "seasons": [season("s", "2026-12-01T00:00:00", "2027-01-01T00:00:00Z")]},
     ("boards[b].seasons[s].start", "timezone")),
    ({"board_id": "b", "stat_id": "level", "seasons": [season("s", "2026-12-01T00:00:00Z", "soon")]},
     ("boards[b].seasons[s].end",)),
    ({"board_id": "b", "stat_id": "level", "seasons": [season("s", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z")]},
     ("boards[b].seasons[s].end", "after start")),
    ({"board_id": "b", "stat_id": "level", "seasons": [
        season("s1", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
        season("s2", "2027-01-31T23:00:00+02:00", "2027-03-01T00:00:00Z")]},
     ("boards[b].seasons[s2]", "overlaps season s1")),
    ({"board_id": "b", "stat_id": "level", "seasons": [
        season("s1", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
        season("s1", "2027-03-01T00:00:00Z", "2027-04-01T00:00:00Z")]},
     ("boards[b].seasons", "s1 is listed twice")),
])
def test_a_bad_board_is_refused(board: dict[str, Any], words: tuple[str, ...]) -> None:
    refused(kart(boards=[*KART["boards"], board]), *words)


def test_seasons_may_touch_and_come_in_any_order() -> None:
    [game] = parse_games([kart(boards=[{"board_id": "b", "stat_id": "level", "seasons": [
        season("s2", "2027-02-01T00:00:00+01:00", "2027-03-01T00:00:00Z"),
        season("s1", "2027-01-01T00:00:00Z", "2027-01-31T23:00:00Z")]}])])
    assert [s["season_id"] for s in game["boards"][0]["seasons"]] == ["s2", "s1"]


def test_game_level_mistakes_are_refused() -> None:
    with pytest.raises(CatalogFileError, match="_all is reserved"):
        parse_games([{"game_id": "_all", "achievements": []}])
    with pytest.raises(CatalogFileError, match="games\\[1\\]: game_id"):
        parse_games([KART, {"game_id": "", "achievements": []}])
    with pytest.raises(CatalogFileError, match="game kart-party: game_id: listed twice"):
        parse_games([KART, KART])
    refused(kart(stats={"races_won": "incr"}), "stats", "list")
    refused(kart(boards=["fastest-lap"]), "boards[0]", "object")
    with pytest.raises(CatalogFileError, match="games"):
        parse_file({"game": []})


def test_one_bad_game_refuses_the_whole_file(tmp_path: Path) -> None:
    file = tmp_path / "catalog.json"
    bad = {"game_id": "second", "stats": [{"stat_id": "s", "op": "incr"}],
           "achievements": [{"achievement_id": "a", "points": 1, "threshold": {"stat_id": "s", "at_most": 3}}]}
    file.write_text(json.dumps({"games": [KART, bad]}))
    with pytest.raises(CatalogFileError, match=r"game second: achievements\[a\]\.threshold\.at_most"):
        load_catalog_file(file)
    file.write_text("{not json")
    with pytest.raises(CatalogFileError, match="not a readable JSON file"):
        load_catalog_file(file)


def test_the_demo_catalog_passes() -> None:
    games = load_catalog_file(DEMO_CATALOG)
    assert {g["game_id"] for g in games} >= {"space-race", "dungeon-deep", "kart-party"}
