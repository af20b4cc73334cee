"""What a leaderboard shard owns: each player's score per game (one Entry,
versioned) and the boards built from them - per game, global and per region.
Applying a ScoreUpdates batch returns the coalesced rank changes it caused.
A stat board (podium/core/periods.stat_board_id) ranks a stat's value in the
order its catalog board names: `orders` holds it per base board id, and its
period and season boards follow it. Every other board ranks achievement points."""
from __future__ import annotations

import gc
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from sys import intern
from typing import Final

from podium.core.board_order import POINTS, Order
from podium.core.periods import base_of
from podium.core.ranking import Board, Ranked, SortKey, sort_key
from podium.wire.errors import UnknownPlayer
from podium.wire.messages import RankChange, ScoreUpdates

GLOBAL = "global"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Creating a million long-lived objects triggers the cyclic GC over and
    over (it doubled recovery time); nothing here makes cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# One player's score on one board: (sort key, region, version). A plain tuple,
# not a class: CPython stops tracking a tuple of atoms in its cyclic GC, so a
# million entries cost the collector nothing (a slotted class instance is
# scanned by every full collection: ~1 s pauses at a few million entries).
Entry = tuple[SortKey, str | None, int]
KEY: Final = 0
REGION: Final = 1
VERSION: Final = 2


@dataclass(frozen=True, slots=True)
class Standing:
    """A player's place on a board; `points` is the board's value (a stat's real value on a stat board)."""

    rank: int
    total: int
    percentile: float
    points: int
    reached_us: int


class Standings:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}  # board id (game or period) -> player -> Entry
        self.boards: dict[tuple[str, str], Board] = {}  # (board id, GLOBAL | region)
        self.orders: dict[str, Order] = {}  # base board id (a stat board's) -> its order; absent: POINTS

    def order_of(self, board_id: str) -> Order:
        """The order of a board: its base board's (a period or season board follows its all-time board)."""
        if not self.orders:
            return POINTS
        return self.orders.get(base_of(board_id), POINTS)

    def set_order(self, base: str, order: Order) -> None:
        """Declare (or change: a catalog import may flip asc and desc) the
        order of a stat board and of its period and season boards. Entries
        already held are re-keyed and their boards rebuilt in the new order."""
        old = self.order_of(base)
        if order is POINTS:
            self.orders.pop(base, None)
        else:
            self.orders[base] = order
        if old == order:
            return
        for board_id in [b for b in self.entries if base_of(b) == base]:
            players = self.entries[board_id]
            for player_id, (key, region, version) in players.items():
                _, value, reached = old.unpack(key)
                players[player_id] = (order.key(player_id, value, reached), region, version)
            for board_key in [k for k in self.boards if k[0] == board_id]:
                scope = board_key[1]
                self.boards[board_key] = Board((e[KEY] for e in players.values()
                                                if scope == GLOBAL or e[REGION] == scope), order)

    def __len__(self) -> int:
        return sum(len(players) for players in self.entries.values())

    def board(self, board_id: str, scope: str = GLOBAL) -> Board | None:
        return self.boards.get((board_id, scope))

    def regions(self, board_id: str) -> dict[str, int]:
        """The non-empty regional boards of a board id, and how many players each holds."""
        return {scope: len(held) for (held_id, scope), held in self.boards.items()
                if held_id == board_id and scope != GLOBAL and len(held)}

    def _board(self, board_id: str, scope: str) -> Board:
        board = self.boards.get((board_id, scope))
        if board is None:
            board = self.boards[(board_id, scope)] = Board(order=self.order_of(board_id))
        return board

    def drop(self, board_id: str) -> None:
        """Forget a board and every entry on it (a period that is no longer live)."""
        self.entries.pop(board_id, None)
        for board_key in [k for k in self.boards if k[0] == board_id]:
            del self.boards[board_key]

    def entry(self, board_id: str, player_id: str, scope: str = GLOBAL) -> Entry:
        entry = self.entries.get(board_id, {}).get(player_id)
        if entry is None or (scope != GLOBAL and entry[REGION] != scope):
            where = "" if scope == GLOBAL else f" in {scope}"
            raise UnknownPlayer(f"{player_id} has no score on {board_id}{where}")
        return entry

    def standing(self, board_id: str, player_id: str, scope: str = GLOBAL) -> Standing:
        key = self.entry(board_id, player_id, scope)[KEY]
        board = self._board(board_id, scope)
        rank = board.rank_of(key)
        _, points, reached = board.order.unpack(key)
        return Standing(rank, len(board), board.percentile(rank), points, reached)

    def around(self, board_id: str, player_id: str, k: int, scope: str = GLOBAL) -> list[Ranked]:
        return self._board(board_id, scope).around(self.entry(board_id, player_id, scope)[KEY], k)

    def ranked_together(self, board_id: str, player_ids: Iterable[str], scope: str = GLOBAL) -> list[Ranked]:
        """The given players ranked among themselves (a friends board); players
        without a score on the board are left out."""
        keys = []
        for player_id in player_ids:
            entry = self.entries.get(board_id, {}).get(player_id)
            if entry is not None and (scope == GLOBAL or entry[REGION] == scope):
                keys.append(entry[KEY])
        unpacked = self.order_of(board_id).unpack
        return [Ranked(i + 1, *unpacked(key)) for i, key in enumerate(sorted(set(keys)))]

    def apply(self, updates: ScoreUpdates, *, track: Container[str] | None = None,
              ranked: Callable[[str], bool] | None = None) -> list[RankChange]:
        """Apply updates newer than what is held; returns one change per player
        and board whose global or regional rank moved (first old, last new),
        for the players in `track` (None: everyone) on the boards `ranked`
        accepts (None: all). Rank look-ups cost (and fold a lazy board), so
        callers pass who can hear about it (online players; nobody in
        recovery) and where (the leaderboard pushes all-time boards only)."""
        changes: dict[tuple[str, str, str], RankChange] = {}
        entries, boards = self.entries, self.boards
        ranks_here: dict[str, bool] = {}  # board id -> whether its ranks are wanted, asked once per call
        orders_here: dict[str, Order] = {}  # board id -> its order, when any board is a stat board
        for board_id, player_id, region, points, reached, version in zip(
                updates.game_ids, updates.player_ids, updates.regions, updates.points, updates.reached_us,
                updates.versions, strict=True):
            players = entries.get(board_id)
            if players is None:
                players = entries[board_id] = {}
            entry = players.get(player_id)
            if entry is not None and entry[VERSION] >= version:
                continue
            if region:
                region = intern(region)
            if self.orders:
                order = orders_here.get(board_id)
                if order is None:
                    order = orders_here[board_id] = self.order_of(board_id)
                key = order.key(player_id, points, reached)
            else:
                key = sort_key(player_id, points, reached)
            wanted = ranks_here.get(board_id)
            if wanted is None:
                wanted = ranks_here[board_id] = ranked is None or ranked(board_id)
            tracked = wanted and (track is None or player_id in track)
            old_scopes: tuple[str, ...] = ()
            if entry is not None:
                old_key, old_region = entry[KEY], entry[REGION]
                old_scopes = (GLOBAL, old_region) if old_region else (GLOBAL,)
                if old_region and old_region != region:  # the player left a regional board
                    self._board(board_id, old_region).discard(old_key)
            players[player_id] = (key, region, version)
            for scope in (GLOBAL, region) if region else (GLOBAL,):
                board = boards.get((board_id, scope)) or self._board(board_id, scope)
                moves = scope in old_scopes
                old_rank = board.rank_of(old_key) if tracked and moves else None
                if moves:
                    board.move(old_key, key)
                else:
                    board.add(key)
                if not tracked:
                    continue
                change_key = (player_id, board_id, scope)
                earlier = changes.get(change_key)
                if earlier is not None:
                    old_rank = earlier.old_rank
                changes[change_key] = RankChange(player_id, board_id, scope, old_rank, board.rank_of(key), points,
                                                 len(board))
        return [c for c in changes.values() if c.old_rank != c.new_rank]

    def bulk_load(self, rows: Iterable[tuple[str, str, str | None, int, int, int]]) -> None:
        """Recovery into an empty Standings: (player_id, board_id, region, points,
        reached_us, version) rows, boards built with one sort each."""
        loader = Loader(self)
        with gc_paused():
            loader.add(rows)
            loader.finish()


class Loader:
    """Fills an empty Standings from rows given a chunk at a time (recovery
    streams them from PostgreSQL): each key goes straight into the bucket of
    its board and score, and `finish` builds each board from its buckets (a
    sort per score, linear when the rows come in board order). Callers pause
    the GC around it."""

    def __init__(self, standings: Standings) -> None:
        assert not standings.entries, "a Loader builds from nothing"
        self._standings = standings
        self._buckets: dict[tuple[str, str], dict[int, list[SortKey]]] = {}  # bucket keys: scores, not values

    def _scores(self, board_id: str, scope: str) -> dict[int, list[SortKey]]:
        scores = self._buckets.get((board_id, scope))
        if scores is None:
            scores = self._buckets[(board_id, scope)] = {}
        return scores

    def add(self, rows: Iterable[tuple[str, str, str | None, int, int, int]]) -> None:
        entries = self._standings.entries
        players: dict[str, Entry] = {}
        last_board: str | None = None
        last_points: int | None = None
        order = POINTS
        glob: list[SortKey] = []
        here: dict[str | None, list[SortKey]] = {}  # region -> its bucket of the current board and points
        for player_id, board_id, region, points, reached_us, version in rows:
            if region:
                region = intern(region)  # one string per region, not one per entry: 50 MB a million
            if board_id != last_board:
                players = entries.setdefault(board_id, {})
                last_board, last_points = board_id, None
                order = self._standings.order_of(board_id)
            key = (sort_key(player_id, points, reached_us) if order is POINTS
                   else order.key(player_id, points, reached_us))
            players[player_id] = (key, region, version)
            if points != last_points:  # rows come in board order: a run of equal points shares buckets
                last_points, here = points, {}
                glob = self._scores(board_id, GLOBAL).setdefault(order.score(points), [])
            glob.append(key)
            if region:
                bucket = here.get(region)
                if bucket is None:
                    bucket = here[region] = self._scores(board_id, region).setdefault(order.score(points), [])
                bucket.append(key)

    def finish(self) -> None:
        while self._buckets:  # popped one by one: each board's buckets are freed once it is built
            board_key, scores = self._buckets.popitem()
            self._standings.boards[board_key] = Board.of_buckets(scores, self._standings.order_of(board_key[0]))
