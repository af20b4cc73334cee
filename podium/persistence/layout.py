"""A new player-shard layout, written in one transaction (podium/cluster/launch.py
`reshard` calls it once every player shard has settled and checkpointed):
each player's rows move to the shard that owns them under the new count,
and every new shard's watermark becomes the journal's newest row, which all
checkpoints already cover (checked here first). A new shard's checkpoint holds
whole the stat series every old shard's held whole (its players come from any
of them); recovery rebuilds the others from the journal."""
from __future__ import annotations

from collections.abc import Callable

import asyncpg

_PLAYERS = """
SELECT player_id FROM player_game_stats UNION SELECT player_id FROM player_period_stats
UNION SELECT player_id FROM friend_edges UNION SELECT player_id FROM player_stats
UNION SELECT player_id FROM player_stat_periods
"""
_MOVE = [
    "UPDATE player_game_stats s SET player_shard = t.shard FROM relayout t "
    "WHERE s.player_id = t.player_id AND s.player_shard <> t.shard",
    "UPDATE player_period_stats s SET player_shard = t.shard FROM relayout t "
    "WHERE s.player_id = t.player_id AND s.player_shard <> t.shard",
    "UPDATE friend_edges s SET player_shard = t.shard FROM relayout t "
    "WHERE s.player_id = t.player_id AND s.player_shard <> t.shard",
    "UPDATE player_stats s SET player_shard = t.shard FROM relayout t "
    "WHERE s.player_id = t.player_id AND s.player_shard <> t.shard",
    "UPDATE player_stat_periods s SET player_shard = t.shard FROM relayout t "
    "WHERE s.player_id = t.player_id AND s.player_shard <> t.shard",
]
# The journal's newest row of a shard (unlocks and stat updates share one seq)
_NEWEST_OF_SHARD = """
SELECT greatest((SELECT max(seq) FROM unlocks WHERE player_shard = $1),
                (SELECT max(seq) FROM stat_updates WHERE player_shard = $1))
"""
_NEWEST = "SELECT coalesce(greatest((SELECT max(seq) FROM unlocks), (SELECT max(seq) FROM stat_updates)), 0)"


class NotSettled(Exception):
    """A shard's checkpoint does not cover its journal: moving its players would lose rows."""


async def relayout_players(conn: asyncpg.Connection, old_count: int, new_count: int,
                           shard_of: Callable[[str], int]) -> dict[str, int]:
    async with conn.transaction():
        await conn.execute("LOCK TABLE shard_watermarks IN EXCLUSIVE MODE")
        old = await conn.fetch("SELECT shard, seq, stat_series FROM shard_watermarks "
                               "WHERE kind = 'player' AND shard_count = $1", old_count)
        marks = {r["shard"]: r["seq"] for r in old}
        # (a shard without a watermark journaled nothing: it has no players to vouch for)
        held: set[str] = set(old[0]["stat_series"] or ()) if old else set()
        for r in old:
            held &= set(r["stat_series"] or ())
        for shard in range(old_count):
            newest = await conn.fetchval(_NEWEST_OF_SHARD, shard) or 0
            if newest > marks.get(shard, 0):
                raise NotSettled(f"player shard {shard} journaled up to {newest} but checkpointed "
                                 f"{marks.get(shard, 0)}; resharding would lose rows")
        newest_all = await conn.fetchval(_NEWEST)
        players = [r["player_id"] for r in await conn.fetch(_PLAYERS)]
        await conn.execute("CREATE TEMP TABLE relayout (player_id text PRIMARY KEY, shard int NOT NULL) "
                           "ON COMMIT DROP")
        await conn.copy_records_to_table("relayout", records=[(p, shard_of(p)) for p in players])
        moved = [int((await conn.execute(sql)).split()[-1]) for sql in _MOVE]
        await conn.execute("DELETE FROM shard_watermarks WHERE kind = 'player'")
        await conn.executemany(
            "INSERT INTO shard_watermarks (kind, shard, shard_count, seq, stat_series) "
            "VALUES ('player', $1, $2, $3, $4)",
            [(i, new_count, newest_all, sorted(held)) for i in range(new_count)])
    return {"players": len(players), "stats_rows_moved": moved[0], "period_rows_moved": moved[1],
            "edges_moved": moved[2], "stat_values_moved": moved[3], "stat_periods_moved": moved[4],
            "watermark": int(newest_all)}
