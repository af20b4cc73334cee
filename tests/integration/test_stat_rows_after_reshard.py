"""The stat journal rows a period rebuild streams (only stats some board
ranks), and across a reshard: stat_updates.player_shard names the shard that journaled a row and a
reshard moves only the checkpoint rows, so the rebuild must pick rows by the
players the shard owns now. Needs no cluster: a database of its own on the
server PODIUM_DATABASE_URL names (else the session cluster's)."""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from podium.core.player_state import to_us
from podium.core.stat_boards import StatRow
from podium.persistence import layout, migrations, stat_boards
from tests.integration.conftest import _admin, _with_database

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def conn(request: pytest.FixtureRequest) -> AsyncIterator[asyncpg.Connection]:
    admin = os.environ.get("PODIUM_DATABASE_URL") or request.getfixturevalue("cluster").admin_url
    name = f"podium_reshard_{uuid.uuid4().hex[:8]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    c = await asyncpg.connect(_with_database(admin, name))
    try:
        await migrations.apply(c)
        yield c
    finally:
        await c.close()
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def journal(c: asyncpg.Connection, player: str, shard: int, event: str, value: int, minutes: int) -> int:
    return int(await c.fetchval(
        "INSERT INTO stat_updates (player_id, game_id, stat_id, event_id, op, value, value_after, updated_at, "
        "player_shard) VALUES ($1, 'g', 'wins', $2, 'incr', $3, $3, $4, $5) RETURNING seq",
        player, event, value, T0 + timedelta(minutes=minutes), shard))


async def checkpoint(c: asyncpg.Connection, player: str, shard: int, value: int, seq: int) -> None:
    await c.execute("INSERT INTO player_stats (player_id, game_id, stat_id, value, updated_at, last_seq, "
                    "player_shard) VALUES ($1, 'g', 'wins', $2, $3, $4, $5)", player, value, T0, seq, shard)


async def test_a_moved_players_rows_follow_it_to_its_new_shard(conn: asyncpg.Connection) -> None:
    # Two shards: "mover" on 0 (moves to 3), "stayer" on 1 (stays on 1).
    s1 = await journal(conn, "mover", 0, "e1", 5, 1)
    s2 = await journal(conn, "stayer", 1, "e2", 7, 2)
    s3 = await journal(conn, "mover", 0, "e3", 2, 3)
    await checkpoint(conn, "mover", 0, 7, s3)
    await checkpoint(conn, "stayer", 1, 7, s2)
    await conn.executemany("INSERT INTO shard_watermarks (kind, shard, shard_count, seq) VALUES ('player', $1, 2, $2)",
                           [(0, s3), (1, s3)])
    new_shard = {"mover": 3, "stayer": 1}
    moved = await layout.relayout_players(conn, 2, 4, new_shard.__getitem__)
    mark = moved["watermark"]
    # After the reshard: a new player journaled on shard 3, and the mover once more.
    s4 = await journal(conn, "fresh", 3, "e4", 1, 4)
    s5 = await journal(conn, "mover", 3, "e5", 1, 5)

    async def read(shard: int, since: datetime = T0,
                   ranked: tuple[tuple[str, str], ...] = (("g", "wins"),)) -> list[StatRow]:
        got: list[StatRow] = []
        count = await stat_boards.stream_shard_rows_since(conn, shard, since, mark, ranked, got.extend)
        assert count == len(got)
        return got

    async def seqs(shard: int) -> list[tuple[str, int]]:
        return [(r[1], r[0]) for r in await read(shard)]

    assert await seqs(3) == [("mover", s1), ("mover", s3), ("fresh", s4), ("mover", s5)]
    assert await seqs(0) == []  # the old shard no longer owns the mover
    assert await seqs(1) == [("stayer", s2)]
    assert await seqs(2) == []
    # The window still applies, and the rows are what was journaled (times in exact µs).
    assert await read(3, T0 + timedelta(minutes=3)) == [
        (s3, "mover", "g", "wins", "incr", 2, to_us(T0 + timedelta(minutes=3))),
        (s4, "fresh", "g", "wins", "incr", 1, to_us(T0 + timedelta(minutes=4))),
        (s5, "mover", "g", "wins", "incr", 1, to_us(T0 + timedelta(minutes=5)))]
    # Only the stats some board ranks are read.
    assert await read(3, ranked=(("g", "laps"), ("h", "wins"))) == []


async def test_game_rows_between_reads_only_the_ranked_stats_in_the_window(conn: asyncpg.Connection) -> None:
    s1 = await journal(conn, "a", 0, "e1", 5, 1)
    await conn.execute(
        "INSERT INTO stat_updates (player_id, game_id, stat_id, event_id, op, value, value_after, updated_at, "
        "player_shard) VALUES ('a', 'g', 'laps', 'e2', 'set', 9, 9, $1, 0), "
        "('a', 'h', 'wins', 'e3', 'set', 9, 9, $1, 0)",
        T0 + timedelta(minutes=2))
    s4 = await journal(conn, "b", 1, "e4", 3, 3)
    await journal(conn, "b", 1, "e5", 3, 10)
    got: list[StatRow] = []
    await stat_boards.stream_game_rows_between(conn, [("g", "wins"), ("h", "laps")], T0, T0 + timedelta(minutes=10),
                                               got.extend, timeout=10)
    assert [r[0] for r in got] == [s1, s4]
