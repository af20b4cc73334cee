"""What a leaderboard shard owns: each (game, player) score with its version,
and the boards built from them - per game, global and per region. Applying a
ScoreUpdates batch returns the coalesced rank changes it caused."""
from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from actors.messages import RankChange, ScoreUpdates
from actors.ranking import Board

GLOBAL = "global"


@dataclass(slots=True)
class Entry:
    points: int
    reached_us: int
    region: str | None
    version: int


class Standings:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Entry] = {}  # (game_id, player_id)
        self.boards: dict[tuple[str, str], Board] = {}  # (game_id, GLOBAL | region)

    def board(self, game_id: str, scope: str = GLOBAL) -> Board | None:
        return self.boards.get((game_id, scope))

    def _board(self, game_id: str, scope: str) -> Board:
        board = self.boards.get((game_id, scope))
        if board is None:
            board = self.boards[(game_id, scope)] = Board()
        return board

    def apply(self, updates: ScoreUpdates, *, track: Container[str] | None = None) -> list[RankChange]:
        """Apply updates newer than what is held; returns one change per player
        and game whose global or regional rank moved (first old, last new),
        for the players in `track` (None: everyone). Rank look-ups cost, so
        callers pass who can hear about it (online players; nobody in recovery)."""
        changes: dict[tuple[str, str, str], RankChange] = {}
        for i in range(len(updates)):
            game_id, player_id, version = updates.game_ids[i], updates.player_ids[i], updates.versions[i]
            entry = self.entries.get((game_id, player_id))
            if entry is not None and entry.version >= version:
                continue
            region = updates.regions[i]
            points, reached = updates.points[i], updates.reached_us[i]
            scopes = [GLOBAL] + ([region] if region else [])
            tracked = track is None or player_id in track
            old_ranks = {s: self._board(game_id, s).rank(player_id) for s in scopes} if tracked else {}
            if entry is not None and entry.region and entry.region != region:
                self._board(game_id, entry.region).remove(player_id)
            self.entries[(game_id, player_id)] = Entry(points, reached, region, version)
            for scope in scopes:
                board = self._board(game_id, scope)
                board.upsert(player_id, points, reached)
                if not tracked:
                    continue
                new_rank = board.rank(player_id)
                assert new_rank is not None
                key = (player_id, game_id, scope)
                earlier = changes.get(key)
                old_rank = earlier.old_rank if earlier is not None else old_ranks[scope]
                changes[key] = RankChange(player_id, game_id, scope, old_rank, new_rank, points, len(board))
        return [c for c in changes.values() if c.old_rank != c.new_rank]

    def game_ids(self) -> set[str]:
        return {game_id for game_id, _ in self.boards}
