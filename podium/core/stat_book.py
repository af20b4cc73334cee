"""What a player shard holds of its players' stats: per (player, game, stat)
the value and the seq of the journal row that set it. Rows carry the value
after the update (`value_after`), so folding a row sets the value, never
re-applies an operator: a row folded twice, or one already in the checkpoint
(its seq is not newer than the held one), changes nothing. Ray-free; the
player shard plans with `value` and folds what its journal wrote or replays."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podium.core.player_state import to_us

StatKey = tuple[str, str, str]  # (player_id, game_id, stat_id)
# six columns of player_stats rows: player, game, stat, value, updated_us, last_seq
StatColumns = tuple[list[str], list[str], list[str], list[int], list[int], list[int]]


@dataclass(slots=True)
class StatValue:
    value: int
    updated_us: int  # server time the value was reached (an update leaving it as it was keeps the earlier time)
    last_seq: int  # the journal row that set it


class StatBook:
    def __init__(self) -> None:
        self.players: dict[str, dict[str, dict[str, StatValue]]] = {}  # player -> game -> stat -> value
        self._dirty: set[StatKey] = set()
        self._count = 0  # values held (status reads it; counting them walks every player)
        # Threshold unlocks known journaled (player, game, achievement): a stat update whose value meets a
        # threshold unlocks it unless it is here, so a met threshold is not inserted (and skipped) again with
        # every later update. Learnt as the shard writes, reconciles and replays, not read whole at recovery
        # (a scan of the shard's unlocks): one missing costs one insert the unique key skips, then it is here.
        self.unlocks: set[tuple[str, str, str]] = set()

    def value(self, player_id: str, game_id: str, stat_id: str) -> int | None:
        """The stat's current value; None before its first update."""
        held = self.players.get(player_id, {}).get(game_id, {}).get(stat_id)
        return None if held is None else held.value

    def of(self, player_id: str, game_id: str) -> dict[str, int]:
        """Every stat of the player in the game that has a value."""
        return {s: v.value for s, v in self.players.get(player_id, {}).get(game_id, {}).items()}

    def unlocked(self, player_id: str, game_id: str, achievement_id: str) -> bool:
        return (player_id, game_id, achievement_id) in self.unlocks

    def load(self, player_id: str, game_id: str, stat_id: str, value: int, updated_us: int, last_seq: int) -> None:
        """Take a checkpointed row as it is (recovery)."""
        stats = self.players.setdefault(player_id, {}).setdefault(game_id, {})
        self._count += stat_id not in stats
        stats[stat_id] = StatValue(value, updated_us, last_seq)

    def fold(self, seq: int, player_id: str, game_id: str, stat_id: str, value_after: int, at_us: int) -> bool:
        """Fold one journal row in; False if the held value is as new or newer."""
        stats = self.players.setdefault(player_id, {}).setdefault(game_id, {})
        held = stats.get(stat_id)
        if held is not None and seq <= held.last_seq:
            return False
        self._count += held is None
        # A stat board's all-time entry ranks ties by who reached the value first: an
        # update that leaves the value as it was (an equal or worse max/min) keeps the time.
        reached = held.updated_us if held is not None and held.value == value_after else at_us
        stats[stat_id] = StatValue(value_after, reached, seq)
        self._dirty.add((player_id, game_id, stat_id))
        return True

    def replay(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Fold stat journal rows (seq, player_id, game_id, stat_id, value_after,
        updated_at) in, in any order; returns how many moved a value."""
        return sum(self.fold(r["seq"], r["player_id"], r["game_id"], r["stat_id"], r["value_after"],
                             to_us(r["updated_at"])) for r in rows)

    def take_dirty(self) -> tuple[set[StatKey], StatColumns]:
        """Changed values since the last call, as checkpoint columns; give the keys
        back with `mark_dirty` if the write fails."""
        keys, self._dirty = self._dirty, set()
        cols: StatColumns = ([], [], [], [], [], [])
        for player_id, game_id, stat_id in keys:
            v = self.players[player_id][game_id][stat_id]
            cols[0].append(player_id)
            cols[1].append(game_id)
            cols[2].append(stat_id)
            cols[3].append(v.value)
            cols[4].append(v.updated_us)
            cols[5].append(v.last_seq)
        return keys, cols

    def mark_dirty(self, keys: set[StatKey]) -> None:
        self._dirty |= keys

    @property
    def dirty_count(self) -> int:
        return len(self._dirty)

    def __len__(self) -> int:
        return self._count
