"""The stats part of the catalog against real PostgreSQL (migrations/007_stats.sql, podium/persistence/
catalog_store.py): import, re-import, refusals that write nothing, catalog_version, and the analyst views. No Ray:
a database of this module's own, made and dropped like the suite's (tests/integration/conftest.py)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from podium.core.catalog import StatBoard
from podium.core.catalog_file import CatalogFileError
from podium.core.stats import Op, StatDef, Threshold
from podium.persistence import catalog_store, migrations
from tests.integration.conftest import _admin, _with_database

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
OTHER: dict[str, Any] = {"game_id": "other", "name": "Other", "stats": [{"stat_id": "level", "op": "set"}],
                         "achievements": [{"achievement_id": "a", "points": 1}],
                         "boards": [{"board_id": "levels", "stat_id": "level"}]}


def us(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh, migrated database per test (its URL), dropped after it."""
    admin = os.environ.get("PODIUM_DATABASE_URL")
    if not admin:
        pytest.skip("needs PODIUM_DATABASE_URL")
    name = f"podium_test_stats_{uuid.uuid4().hex[:10]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = _with_database(admin, name)
        connection = await asyncpg.connect(url)
        try:
            await migrations.apply(connection)
        finally:
            await connection.close()
        yield url
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database)
    try:
        yield connection
    finally:
        await connection.close()


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = {"games": "game_id", "achievements": "game_id, achievement_id", "stats": "game_id, stat_id",
              "stat_boards": "game_id, board_id", "seasons": "game_id, board_id, season_id"}
    return {t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY {key}")]
            for t, key in tables.items()}


async def test_an_import_writes_stats_thresholds_boards_and_seasons_and_reads_them_back(conn) -> None:
    done = await catalog_store.import_catalog(conn, [KART, OTHER])
    assert done == catalog_store.Imported(games=2, achievements=4, stats=5, boards=2, seasons=1)
    catalog = await catalog_store.load_catalog(conn)
    assert catalog.stat_of("kart-party", "best_lap_ms") == StatDef("best_lap_ms", "Best lap (ms)", Op.MIN, 1,
                                                                    3_600_000)
    assert catalog.stat_of("other", "level") == StatDef("level", "level", Op.SET)
    assert catalog.threshold_of("kart-party", "century") == Threshold("century", "races_won", at_least=100)
    assert catalog.thresholds_on("kart-party", "best_lap_ms") == (
        Threshold("sub-minute", "best_lap_ms", at_most=59_999),)
    assert catalog.threshold_of("kart-party", "podium-finish") is None
    assert catalog.points_of("kart-party", "century") == 50
    assert catalog.boards["kart-party"]["fastest-lap"] == StatBoard(
        "fastest-lap", "Fastest lap", "best_lap_ms", "asc", ("all", "day", "week"),
        (("winter-26", us(2026, 12, 1), us(2027, 3, 1)),))
    assert catalog.boards["other"]["levels"] == StatBoard("levels", "levels", "level")


async def test_a_reimport_replaces_the_games_stats_boards_and_seasons_and_nulls_removed_thresholds(conn) -> None:
    await catalog_store.import_catalog(conn, [KART, OTHER])
    before = await catalog_store.catalog_version(conn)
    kart = copy.deepcopy(KART)
    kart["stats"] = [s for s in kart["stats"] if s["stat_id"] != "top_speed"]  # dropped
    kart["stats"][0]["max"] = 1000  # races_won gains a max
    kart["achievements"][1].pop("threshold")  # century loses its threshold
    kart["achievements"][2]["threshold"]["at_most"] = 49_999  # sub-minute's moves
    kart["boards"][0]["seasons"] = [  # winter-26 goes, two others come
        {"season_id": "spring-27", "start": "2027-03-01T00:00:00Z", "end": "2027-06-01T00:00:00Z"},
        {"season_id": "summer-27", "start": "2027-06-01T00:00:00Z", "end": "2027-09-01T00:00:00Z"}]
    kart["boards"].append({"board_id": "wins", "stat_id": "races_won", "periods": ["week"]})
    await catalog_store.import_catalog(conn, [kart])
    assert await catalog_store.catalog_version(conn) != before
    catalog = await catalog_store.load_catalog(conn)
    assert set(catalog.stats["kart-party"]) == {"races_won", "best_lap_ms", "level"}
    assert catalog.stat_of("kart-party", "races_won").max_value == 1000
    assert catalog.threshold_of("kart-party", "century") is None
    assert await conn.fetchrow("SELECT threshold_stat, threshold_at_least, threshold_at_most FROM achievements "
                               "WHERE achievement_id = 'century'") == (None, None, None)
    assert catalog.threshold_of("kart-party", "sub-minute") == Threshold("sub-minute", "best_lap_ms", at_most=49_999)
    assert [s[0] for s in catalog.boards["kart-party"]["fastest-lap"].seasons] == ["spring-27", "summer-27"]
    assert catalog.boards["kart-party"]["wins"] == StatBoard("wins", "wins", "races_won", "desc", ("week",))
    assert set(catalog.boards["other"]) == {"levels"}  # a game the file does not list is left alone

    kart["boards"] = []  # no boards any more: the board and its seasons go
    kart["stats"].append({"stat_id": "top_speed", "op": "max"})  # and a stat comes back
    await catalog_store.import_catalog(conn, [kart])
    catalog = await catalog_store.load_catalog(conn)
    assert "kart-party" not in catalog.boards and "top_speed" in catalog.stats["kart-party"]
    assert await conn.fetchval("SELECT count(*) FROM seasons WHERE game_id = 'kart-party'") == 0


async def test_catalog_version_moves_with_each_kind_of_change(conn) -> None:
    await catalog_store.import_catalog(conn, [KART])
    kart = copy.deepcopy(KART)
    versions = [await catalog_store.catalog_version(conn)]
    for change in (lambda k: k["stats"][2].update(name="Top speed (km/h)"),
                   lambda k: k["boards"][0].update(order="desc"),
                   lambda k: k["boards"][0]["seasons"][0].update(end="2027-04-01T00:00:00Z"),
                   lambda k: k["stats"].pop(3)):
        change(kart)
        await conn.execute("SELECT pg_sleep(0.002)")  # now() of the next transaction is later
        await catalog_store.import_catalog(conn, [kart])
        versions.append(await catalog_store.catalog_version(conn))
    assert len(set(versions)) == len(versions), versions


async def test_a_bad_file_is_refused_whole_and_writes_nothing(conn) -> None:
    await catalog_store.import_catalog(conn, [KART])
    before = await snapshot(conn)
    good = {"game_id": "new-game", "stats": [{"stat_id": "s", "op": "incr"}], "achievements": []}
    bad = copy.deepcopy(KART)
    bad["stats"][0]["name"] = "renamed"
    bad["boards"][0]["seasons"].append({"season_id": "overlap", "start": "2027-02-01T00:00:00Z",
                                        "end": "2027-05-01T00:00:00Z"})
    with pytest.raises(CatalogFileError, match=r"game kart-party: boards\[fastest-lap\]\.seasons\[overlap\]"):
        await catalog_store.import_catalog(conn, [good, bad])
    assert await snapshot(conn) == before


async def test_dropping_a_stat_that_an_unlisted_achievement_still_needs_is_refused_and_writes_nothing(conn) -> None:
    await catalog_store.import_catalog(conn, [KART])
    before = await snapshot(conn)
    kart = copy.deepcopy(KART)
    kart["stats"] = [s for s in kart["stats"] if s["stat_id"] != "races_won"]
    kart["achievements"] = [a for a in kart["achievements"] if a["achievement_id"] != "century"]
    kart["stats"][0]["name"] = "renamed"  # an upsert that must be rolled back
    with pytest.raises(CatalogFileError, match=r"game kart-party: stats: races_won .* achievement century"):
        await catalog_store.import_catalog(conn, [kart])
    assert await snapshot(conn) == before
    kart["achievements"].append({"achievement_id": "century", "name": "Win 100 races", "points": 50})
    await catalog_store.import_catalog(conn, [kart])  # listed without its threshold: the stat may go
    assert "races_won" not in (await catalog_store.load_catalog(conn)).stats["kart-party"]


async def test_the_analyst_views_show_current_values_and_the_named_journal(conn) -> None:
    await catalog_store.import_catalog(conn, [KART])
    at = datetime(2026, 12, 7, 10, tzinfo=UTC)
    rows = [("p1", "races_won", "e1", "incr", 1, 1), ("p1", "races_won", "e2", "incr", 2, 3),
            ("p2", "races_won", "e1", "incr", 5, 5), ("p1", "best_lap_ms", "e3", "min", 70_000, 70_000),
            ("p1", "best_lap_ms", "e4", "min", 80_000, 70_000), ("p1", "gone", "e5", "set", 4, 4)]
    for player, stat, event, op, value, after in rows:
        await conn.execute(
            "INSERT INTO stat_updates (player_id, game_id, stat_id, event_id, op, value, value_after, updated_at, "
            "player_shard) VALUES ($1, 'kart-party', $2, $3, $4, $5, $6, $7, 0)", player, stat, event, op, value,
            after, at)
    current = await conn.fetch("SELECT player_id, stat_id, stat_name, game_name, op, value FROM current_stat_values "
                               "WHERE game_id = 'kart-party' ORDER BY player_id, stat_id")
    assert [tuple(r) for r in current] == [
        ("p1", "best_lap_ms", "Best lap (ms)", "Kart Party", "min", 70_000),
        ("p1", "gone", None, "Kart Party", None, 4),  # a stat the catalog does not (or no longer) define
        ("p1", "races_won", "Races won", "Kart Party", "incr", 3),
        ("p2", "races_won", "Races won", "Kart Party", "incr", 5)]
    journal = await conn.fetch("SELECT event_id, stat_name, value, value_after FROM stat_journal "
                               "WHERE player_id = 'p1' AND stat_id = 'best_lap_ms' ORDER BY seq")
    assert [tuple(r) for r in journal] == [("e3", "Best lap (ms)", 70_000, 70_000),
                                           ("e4", "Best lap (ms)", 80_000, 70_000)]


async def test_stat_updates_share_the_unlock_journals_sequence(conn) -> None:
    await catalog_store.import_catalog(conn, [KART])
    unlock = await conn.fetchval(
        "INSERT INTO unlocks (player_id, game_id, achievement_id, points, unlocked_at, player_shard) "
        "VALUES ('p', 'kart-party', 'podium-finish', 15, now(), 0) RETURNING seq")
    stat = await conn.fetchval(
        "INSERT INTO stat_updates (player_id, game_id, stat_id, event_id, op, value, value_after, updated_at, "
        "player_shard) VALUES ('p', 'kart-party', 'races_won', 'e', 'incr', 1, 1, now(), 0) RETURNING seq")
    assert stat == unlock + 1
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO stat_updates (player_id, game_id, stat_id, event_id, op, value, value_after, updated_at, "
            "player_shard) VALUES ('p', 'kart-party', 'level', 'e', 'set', 1, 1, now(), 0)")


def test_podium_catalog_import_reports_what_it_imported_and_refuses_a_bad_file(database: str, tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_DATABASE_URL": database, "PODIUM_DATA_DIR": str(tmp_path)}
    file = tmp_path / "catalog.json"

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "podium.cluster.cli", "catalog", "import", str(file)], env=env,
                              capture_output=True, text=True, timeout=120)

    file.write_text(json.dumps({"games": [KART]}))
    out = run()
    assert out.returncode == 0, out.stderr
    assert "imported 1 games, 3 achievements, 4 stats, 1 stat boards, 1 seasons" in out.stderr
    bad = copy.deepcopy(KART)
    bad["achievements"][1]["threshold"] = {"stat_id": "races_won", "at_most": 3}
    bad["stats"].append({"stat_id": "laps", "op": "incr"})
    file.write_text(json.dumps({"games": [bad]}))
    out = run()
    assert out.returncode == 1
    assert "catalog not imported: game kart-party: achievements[century].threshold.at_most" in out.stderr
