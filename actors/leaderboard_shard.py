"""LeaderboardShard: the Ray actor owning the boards of the games whose stable
hash lands on it. Its checkpoint is the player shards' player_game_stats plus
their watermarks: recovery reads those and replays the journal after them."""
from __future__ import annotations

import logging

import ray

from actors.errors import UnknownPlayer
from actors.messages import RankChange, ScoreUpdates
from actors.player_state import GameStats, PlayerBook, from_us, to_us
from actors.pushes import publish
from actors.ranking import Board, Ranked
from actors.routing import shard_of
from actors.shell import ActorBase
from actors.standings import GLOBAL, Standings
from persistence import catalog_store, checkpoints, journal
from persistence.settings import Settings

log = logging.getLogger(__name__)


def _entry(r: Ranked) -> dict[str, object]:
    return {"rank": r.rank, "player_id": r.player_id, "points": r.points,
            "reached_at": from_us(r.reached_us).isoformat()}


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class LeaderboardShard(ActorBase):
    def __init__(self, index: int, settings: Settings) -> None:
        super().__init__(index, settings)
        self.standings = Standings()

    async def recover(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            games = sorted({r["game_id"] for r in await catalog_store.read_catalog(conn)
                            if shard_of(r["game_id"], self.settings.leaderboard_shards) == self.index})
            watermarks = await checkpoints.read_watermarks(conn, "player", self.settings.player_shards)
            stats = await checkpoints.read_game_stats(conn, games)
            replays = [
                await journal.replay(conn, shard=p, after_seq=watermarks.get(p, 0), game_ids=games)
                for p in range(self.settings.player_shards)
            ]
        # Fold the journal tail onto the checkpoint exactly as the player shards do.
        book = PlayerBook()
        for r in stats:
            book.load(r["player_id"], r["game_id"], GameStats(
                r["points"], r["unlocked_count"], to_us(r["first_unlock_at"]), to_us(r["last_unlock_at"]),
                to_us(r["score_reached_at"]), r["last_seq"]), r["region"])
        replayed = 0
        for rows in replays:
            for r in rows:
                book.regions[r["player_id"]] = r["region"]
                replayed += book.apply(r["seq"], r["player_id"], r["game_id"], r["points"], to_us(r["unlocked_at"]))
        pairs = {(p, g) for p, per_game in book.games.items() for g in per_game}
        self.standings.apply(book.score_updates(pairs), track=())
        log.info("leaderboard shard %d: %d games, %d entries (%d replayed)",
                 self.index, len(games), len(pairs), replayed)

    async def apply(self, updates: ScoreUpdates) -> int:
        """Apply absolute scores from a player shard; pushes rank changes."""
        await self.ready()
        changes = self.standings.apply(updates, track=self.presence)
        if changes:
            self.spawn(publish(self.redis, self.settings.redis_prefix, self.settings.push_partitions,
                               [_rank_event(c) for c in changes]))
        return len(changes)

    def _board_or_empty(self, game_id: str, region: str | None) -> Board:
        return self.standings.board(game_id, region or GLOBAL) or Board()

    async def page(self, game_id: str, region: str | None, limit: int, cursor: str | None) -> dict[str, object]:
        await self.ready()
        board = self._board_or_empty(game_id, region)
        entries, next_cursor, prev_cursor = board.page(limit, cursor)
        return {"game_id": game_id, "region": region, "total": len(board), "entries": [_entry(e) for e in entries],
                "next_cursor": next_cursor, "prev_cursor": prev_cursor}

    async def rank(self, game_id: str, region: str | None, player_id: str) -> dict[str, object]:
        await self.ready()
        board = self._board_or_empty(game_id, region)
        rank = board.rank(player_id)
        if rank is None:
            raise UnknownPlayer(f"{player_id} has no score on {game_id}" + (f" in {region}" if region else ""))
        entry = board.around(player_id, 0)[0]
        return {"game_id": game_id, "region": region, "player_id": player_id, "rank": rank, "points": entry.points,
                "reached_at": from_us(entry.reached_us).isoformat(), "total": len(board),
                "percentile": board.percentile(rank)}

    async def status(self) -> dict[str, object]:
        await self.ready()
        return {"shard": self.index, "entries": len(self.standings.entries), "boards": len(self.standings.boards),
                "recovered_in_s": self.recovered_in_s}


def _rank_event(c: RankChange) -> tuple[str, dict[str, object]]:
    return c.player_id, {"type": "rank.changed", "game_id": c.game_id, "board": c.board, "old_rank": c.old_rank,
                         "new_rank": c.new_rank, "points": c.points, "total": c.total}
