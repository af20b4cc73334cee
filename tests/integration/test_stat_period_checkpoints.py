"""The stat boards' period values checkpoint (migrations/009,
podium/persistence/checkpoints.py): written with the watermark and the series
it holds whole, read back exactly, closed windows skipped at load and their
rows deleted by the next checkpoint, and moved with their player by a
reshard. Needs no cluster: a database of its own (tests/integration/
test_stat_rows_after_reshard.py's fixture)."""
from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from podium.core.catalog import Catalog, StatBoard
from podium.core.periods import DAY_US, PeriodClock, board_id, season_board_id, stat_board_id
from podium.core.stat_boards import HeldColumns, HeldRow, StatBoardBook, series
from podium.persistence import checkpoints, layout
from tests.integration import test_stat_rows_after_reshard

conn = test_stat_rows_after_reshard.conn  # the fixture: a database of its own, migrated

T0 = 1_796_000_000_000_000
CLOCK = PeriodClock()
CAT = Catalog({"g": {}}, boards={"g": {"lap": StatBoard("lap", "Lap", "lap", "asc", ("all", "day", "week"),
                                                        (("s1", T0 - 30 * DAY_US, T0 + 30 * DAY_US),))}})
BASE = stat_board_id("g", "lap")
DAY0 = board_id(BASE, "day", CLOCK.start("day", T0))
DAY3 = board_id(BASE, "day", CLOCK.start("day", T0 + 3 * DAY_US))
SEASON = season_board_id(BASE, "s1")


async def write(c: asyncpg.Connection, shard: int, watermark: int, rows: list[HeldRow],
                gone: Sequence[tuple[str, str, str]] = (), held_whole: list[str] | None = None) -> None:
    cols: HeldColumns = ([], [], [], [], [], [])
    for row in rows:
        for col, v in zip(cols, row, strict=True):
            col.append(v)  # type: ignore[attr-defined]
    await checkpoints.write_player_checkpoint(
        c, shard=shard, shard_count=2, watermark=watermark, columns=([], [], [], [], [], [], [], []),
        stat_period_columns=cols, stat_periods_gone=gone, stat_series=held_whole)


async def read(c: asyncpg.Connection, shard: int) -> list[HeldRow]:
    got: list[HeldRow] = []
    count = await checkpoints.stream_player_shard_stat_periods(c, shard, got.extend)
    assert count == len(got)
    return sorted(got)


async def test_held_values_round_trip_and_closed_windows_are_skipped_then_deleted(conn: asyncpg.Connection) -> None:
    rows: list[HeldRow] = [("p", "g", DAY0, 900, T0 + 17, 5), ("p", "g", DAY3, 800, T0 + 3 * DAY_US, 9),
                           ("p", "g", SEASON, 800, T0 + 3 * DAY_US, 9), ("q", "g", SEASON, -4, T0 + 1, 7)]
    await write(conn, 0, 9, rows, held_whole=sorted(series(CAT)))
    await write(conn, 1, 9, [("r", "g", SEASON, 1, T0, 3)])
    assert await read(conn, 0) == sorted(rows)  # times in exact µs, negative values too
    assert await read(conn, 1) == [("r", "g", SEASON, 1, T0, 3)]
    assert await checkpoints.read_stat_series(conn, 0, 2) == series(CAT)
    assert await checkpoints.read_stat_series(conn, 1, 2) == set()  # it said it holds none whole
    assert await checkpoints.read_stat_series(conn, 0, 4) == set()  # another layout's watermark says nothing

    # Recovery three days later: day0 has closed (older than the previous day), the rest is held
    book = StatBoardBook(CLOCK)
    now = T0 + 3 * DAY_US + 1
    await checkpoints.stream_player_shard_stat_periods(
        conn, 0, lambda chunk: book.load(CAT, chunk, now, series(CAT)))
    assert book.held == {("p", "g"): {DAY3: (800, T0 + 3 * DAY_US, 9), SEASON: (800, T0 + 3 * DAY_US, 9)},
                         ("q", "g"): {SEASON: (-4, T0 + 1, 7)}}
    # The next checkpoint deletes day0's row, and writes a value changed since (a lower seq wins too: no guard)
    book.fold(CAT, 11, "q", "g", "lap", "min", -9, T0 + 3 * DAY_US)
    _, cols, gone = book.take_dirty()
    assert gone == [("p", "g", DAY0)]
    await write(conn, 0, 11, list(zip(*cols, strict=True)), gone, sorted(series(CAT)))
    week = board_id(BASE, "week", CLOCK.start("week", T0 + 3 * DAY_US))
    assert {r[:3] for r in await read(conn, 0)} == {("p", "g", DAY3), ("p", "g", SEASON), ("q", "g", DAY3),
                                                   ("q", "g", week), ("q", "g", SEASON)}
    assert ("q", "g", SEASON, -9, T0 + 3 * DAY_US, 11) in await read(conn, 0)
    await write(conn, 0, 12, [("q", "g", SEASON, -9, T0 + 3 * DAY_US, 2)], held_whole=sorted(series(CAT)))
    assert ("q", "g", SEASON, -9, T0 + 3 * DAY_US, 2) in await read(conn, 0)
    assert await conn.fetchval("SELECT seq FROM shard_watermarks WHERE kind = 'player' AND shard = 0") == 12


async def test_a_watermark_from_before_the_migration_holds_no_series(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO shard_watermarks (kind, shard, shard_count, seq) VALUES ('player', 0, 2, 5)")
    assert await checkpoints.read_stat_series(conn, 0, 2) == set()


async def test_a_reshard_moves_held_values_with_their_player_and_keeps_the_series_all_held(
        conn: asyncpg.Connection) -> None:
    a, b = "#day#lap", "#week#lap"
    await write(conn, 0, 0, [("mover", "g", SEASON, 1, T0, 0)], held_whole=[a, b])
    await write(conn, 1, 0, [("stayer", "g", SEASON, 2, T0, 0)], held_whole=[a])
    for player, shard in (("mover", 0), ("stayer", 1)):  # every player with held values has stat values
        await conn.execute("INSERT INTO player_stats (player_id, game_id, stat_id, value, updated_at, last_seq, "
                           "player_shard) VALUES ($1, 'g', 'lap', 1, now(), 0, $2)", player, shard)
    moved = await layout.relayout_players(conn, 2, 4, {"mover": 3, "stayer": 1}.__getitem__)
    assert moved["stat_periods_moved"] == 1
    owners = {r["player_id"]: r["player_shard"] for r in await conn.fetch(
        "SELECT player_id, player_shard FROM player_stat_periods")}
    assert owners == {"mover": 3, "stayer": 1}
    # A new shard's players may come from any old shard: it holds whole what all of them did
    assert [await checkpoints.read_stat_series(conn, s, 4) for s in range(4)] == [{a}] * 4
