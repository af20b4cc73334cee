"""What a player shard holds for its players' stat boards, and the score
updates it sends for them (issue 25, "leaderboards on any stat").

- The all-time board of a stat board ranks the stat's own value: it is read
  from the StatBook (value, when it was reached, the seq that set it), never
  held twice.
- Its day, week and season boards rank a period value
  (podium/core/stat_periods.fold of the updates made in the period). This book
  holds those per (player, game), board id -> (value, reached_us, seq of the
  row that last changed it).

Period values are checkpointed with the shard's other checkpoints (same
transaction, same watermark: `take_dirty`; migrations/009). A checkpoint also
names the series it holds whole (a board's days, its weeks, each season, with
the stat and dates they had: `series`): recovery loads the values of those
(`load`, which forgets closed windows as `evict` does) and folds only the
journal after the watermark. A series the checkpoint does not hold whole (a
board added or changed since the shard's last recovery, or a database from
before the checkpoint) is rebuilt by folding the journal rows of its windows,
in seq order, the same fold the live path runs (`only` restricts the fold to
it). Either way the values equal a rebuild from the journal.

Updates go out as ordinary absolute, versioned ScoreUpdates on the stat
board ids, through the same delivery lanes as the points boards: a (player,
game) pair touched by a stat row is owed to its game's leaderboard shard, so
the same watermark rule holds. Ray-free, no I/O."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Container, Iterable, Mapping
from typing import Any

from podium.core.catalog import Catalog, StatBoard
from podium.core.periods import (
    ALL_TIME,
    PERIODS,
    SEASON,
    BoardRef,
    PeriodClock,
    base_of,
    is_stat_board,
    parse,
    stat_board_id,
)
from podium.core.seasons import Seasons
from podium.core.stat_book import StatBook
from podium.core.stat_periods import PeriodValue, boards_at, fold

Pair = tuple[str, str]  # (player_id, game_id)
Held = tuple[int, int, int]  # (value, reached_us, seq that last changed it)
# One ScoreUpdates row: (player_id, board id, value, reached_us, seq)
Row = tuple[str, str, int, int, int]
SEASON_KEEP_US = 7 * 24 * 3_600_000_000  # a closed season's values stay held this long (late resends)
# One stat journal row as a rebuild reads it: (seq, player_id, game_id, stat_id, op, value sent, updated_us)
StatRow = tuple[int, str, str, str, str, int, int]
Key = tuple[str, str, str]  # (player_id, game_id, board id): one held value
# One checkpointed value: (player_id, game_id, board id, value, reached_us, seq)
HeldRow = tuple[str, str, str, int, int, int]
# The same as checkpoint columns
HeldColumns = tuple[list[str], list[str], list[str], list[int], list[int], list[int]]


def boards_on(catalog: Catalog, game_id: str, stat_id: str) -> list[StatBoard]:
    """The catalog boards that rank this stat."""
    return [b for b in catalog.boards.get(game_id, {}).values() if b.stat_id == stat_id]


def board_stats(catalog: Catalog) -> list[tuple[str, str]]:
    """(game, stat) of every stat some catalog board ranks: the only journal rows a rebuild needs."""
    return sorted({(game_id, b.stat_id) for game_id, boards in catalog.boards.items() for b in boards.values()})


# A series is what a checkpoint may hold whole: a board's days, its weeks, or
# one of its seasons, named with the stat it folds (and a season's dates), so
# that a board changed in the catalog is a new series. `#` is in no id.
def _period_series(base: str, kind: str, board: StatBoard) -> str:
    return f"{base}#{kind}#{board.stat_id}"


def _season_series(base: str, season: tuple[str, int, int], board: StatBoard) -> str:
    season_id, start_us, end_us = season
    return f"{base}#{SEASON}#{season_id}#{start_us}#{end_us}#{board.stat_id}"


def series(catalog: Catalog) -> set[str]:
    """Every series of the catalog's stat boards."""
    out: set[str] = set()
    for game_id, boards in catalog.boards.items():
        for board in boards.values():
            base = stat_board_id(game_id, board.board_id)
            out.update(_period_series(base, kind, board) for kind in PERIODS if kind in board.periods)
            out.update(_season_series(base, season, board) for season in board.seasons)
    return out


def series_of(catalog: Catalog, game_id: str, ref: BoardRef) -> str | None:
    """The series a held value's board belongs to; None if the catalog has no such series."""
    board = catalog.boards.get(game_id, {}).get(ref.stat_board or "")
    if board is None:
        return None
    base = stat_board_id(game_id, board.board_id)
    if ref.start_us is not None:
        return _period_series(base, ref.kind, board) if ref.kind in board.periods else None
    season = next((s for s in board.seasons if s[0] == ref.season_id), None)
    return None if season is None else _season_series(base, season, board)


def only(catalog: Catalog, wanted: Collection[str]) -> Catalog:
    """The catalog with only the stat boards' series in `wanted` (the fold of a
    rebuild of those series touches no other value)."""
    boards: dict[str, dict[str, StatBoard]] = {}
    for game_id, of_game in catalog.boards.items():
        for board in of_game.values():
            base = stat_board_id(game_id, board.board_id)
            periods = tuple(k for k in PERIODS if k in board.periods and _period_series(base, k, board) in wanted)
            seasons = tuple(s for s in board.seasons if _season_series(base, s, board) in wanted)
            if periods or seasons:
                boards.setdefault(game_id, {})[board.board_id] = dataclasses.replace(
                    board, periods=periods, seasons=seasons)
    return dataclasses.replace(catalog, boards=boards)


class StatBoardBook:
    def __init__(self, clock: PeriodClock) -> None:
        self.clock = clock
        self.held: dict[Pair, dict[str, Held]] = {}
        self._seasons: dict[tuple[str, str], tuple[tuple[tuple[str, int, int], ...], Seasons]] = {}
        self._dirty: set[Key] = set()  # changed since the last checkpoint
        self._gone: set[Key] = set()  # forgotten (closed, or not loaded): their checkpoint rows are deleted
        # The series whose values this book holds whole, i.e. as a fold of every journal row of their
        # windows would give them (recovery sets it; a catalog change keeps only those still the same).
        self.complete: set[str] = set()

    def seasons(self, game_id: str, board: StatBoard) -> Seasons:
        """The board's Seasons, built once per catalog value of its seasons."""
        cached = self._seasons.get((game_id, board.board_id))
        if cached is None or cached[0] != board.seasons:
            cached = self._seasons[(game_id, board.board_id)] = (board.seasons, Seasons.of(board.seasons))
        return cached[1]

    def fold(self, catalog: Catalog, seq: int, player_id: str, game_id: str, stat_id: str, op: str, sent: int,
             at_us: int) -> bool:
        """Fold one stat journal row into the period and season values of every
        board on its stat. A row already folded (seq not newer than the value's)
        changes nothing, so replays are harmless. True when the pair has stat
        boards (its scores are owed to the leaderboard)."""
        boards = boards_on(catalog, game_id, stat_id)
        if not boards:
            return False
        held = self.held.setdefault((player_id, game_id), {})
        for board in boards:
            base = stat_board_id(game_id, board.board_id)
            for ident in boards_at(base, at_us, self.clock, board.periods, self.seasons(game_id, board)):
                before = held.get(ident)
                if before is not None and seq <= before[2]:
                    continue
                value: PeriodValue | None = None if before is None else (before[0], before[1])
                after = fold(op, value, sent, at_us)
                if after is not value:
                    held[ident] = (after[0], after[1], seq)
                    self._dirty.add((player_id, game_id, ident))
        return True

    def rebuild(self, catalog: Catalog, rows: Iterable[Mapping[str, Any]], to_us: Callable[[Any], int]) -> set[Pair]:
        """Recovery: fold stat journal rows (seq, player_id, game_id, stat_id,
        op, value, updated_at) oldest first; returns the pairs with stat boards."""
        return self.fold_rows(catalog, ((r["seq"], r["player_id"], r["game_id"], r["stat_id"], r["op"], r["value"],
                                         to_us(r["updated_at"])) for r in rows))

    def fold_rows(self, catalog: Catalog, rows: Iterable[StatRow]) -> set[Pair]:
        """Fold StatRows oldest first (a streamed rebuild hands them a chunk at
        a time); returns the pairs with stat boards."""
        touched: set[Pair] = set()
        for seq, player_id, game_id, stat_id, op, sent, at_us in rows:
            if self.fold(catalog, seq, player_id, game_id, stat_id, op, sent, at_us):
                touched.add((player_id, game_id))
        return touched

    def window_start(self, catalog: Catalog, now_us: int) -> int:
        """The oldest update time a rebuild must read: the previous day's and
        week's starts (of the kinds some board keeps), and the start of every
        season still held; `now_us` if none."""
        kinds = {kind for boards in catalog.boards.values() for board in boards.values() for kind in board.periods}
        starts = [self.clock.previous(kind, now_us) for kind in PERIODS if kind in kinds]
        for boards in catalog.boards.values():
            for board in boards.values():
                starts += [start for _, start, end in board.seasons if end + SEASON_KEEP_US > now_us]
        return min(starts, default=now_us)

    def load(self, catalog: Catalog, rows: Iterable[HeldRow], now_us: int, covered: Container[str]) -> int:
        """Recovery: take checkpointed values as they are, those of the series
        in `covered` (the checkpoint holds them whole) that are still held
        (rows and evict keep them). The others are forgotten, and their rows
        deleted by the next checkpoint: a closed window's, or one of a series
        rebuilt from the journal (its stale rows must not outlive the rebuild).
        Returns how many were taken."""
        oldest_live = {kind: self.clock.previous(kind, now_us) for kind in PERIODS}
        loaded = 0
        for player_id, game_id, ident, value, reached_us, seq in rows:
            ref = parse(ident)
            board = catalog.boards.get(game_id, {}).get(ref.stat_board or "")
            name = series_of(catalog, game_id, ref)
            if board is None or name is None or name not in covered or self._closed(board, ref, now_us, oldest_live):
                self._gone.add((player_id, game_id, ident))
                continue
            self.held.setdefault((player_id, game_id), {})[ident] = (value, reached_us, seq)
            loaded += 1
        return loaded

    def take_dirty(self) -> tuple[set[Key], HeldColumns, list[Key]]:
        """For a checkpoint: (the changed keys, their values as columns, the keys
        of forgotten values to delete). Give both sets back with `mark_dirty` if
        the write fails. A forgotten value held again (folded anew) is not
        deleted: it is written."""
        keys, self._dirty = self._dirty, set()
        gone_keys, self._gone = self._gone, set()
        cols: HeldColumns = ([], [], [], [], [], [])
        players, games, idents, values, reached, seqs = cols
        for player_id, game_id, ident in keys:
            held = self.held.get((player_id, game_id), {}).get(ident)
            if held is None:
                continue  # forgotten since: deleted below
            players.append(player_id)
            games.append(game_id)
            idents.append(ident)
            values.append(held[0])
            reached.append(held[1])
            seqs.append(held[2])
        gone = [k for k in gone_keys if k[2] not in self.held.get((k[0], k[1]), {})]
        return keys, cols, gone

    def mark_dirty(self, keys: Iterable[Key], gone: Iterable[Key]) -> None:
        self._dirty.update(keys)
        self._gone.update(gone)

    @property
    def dirty_count(self) -> int:
        return len(self._dirty) + len(self._gone)

    def catalog_changed(self, catalog: Catalog) -> None:
        """A new catalog: series no longer in it (a board removed, its stat or
        a season's dates changed) are no longer held whole, even if they come
        back: rows folded meanwhile did not count in them."""
        self.complete &= series(catalog)

    def rows(self, catalog: Catalog, stat_book: StatBook, pairs: Iterable[Pair], now_us: int,
             delivered_upto: int, version: Callable[[str, int], int] = lambda _, seq: seq) -> list[Row]:
        """Every stat board score of these pairs, with its version: the all-time
        value (always: cheap, and versioned), and live period and season values
        whose version is newer than `delivered_upto` (older ones reached their
        board already: the same rule as the points boards' periods). `version`
        turns a row's seq into the score's version (a region move re-versions)."""
        out: list[Row] = []
        oldest_live = {kind: self.clock.previous(kind, now_us) for kind in PERIODS}
        for player_id, game_id in pairs:
            boards = catalog.boards.get(game_id)
            if not boards:
                continue
            values = stat_book.players.get(player_id, {}).get(game_id, {})
            for board in boards.values():
                held = values.get(board.stat_id)
                if held is not None and ALL_TIME in board.periods:
                    out.append((player_id, stat_board_id(game_id, board.board_id), held.value, held.updated_us,
                                version(player_id, held.last_seq)))
            for ident, (value, reached, seq) in self.held.get((player_id, game_id), {}).items():
                seq = version(player_id, seq)
                if seq <= delivered_upto:
                    continue
                ref = parse(ident)
                if ref.stat_board not in boards:
                    continue  # a board removed from the catalog: no leaderboard keeps it (evict drops it)
                if ref.start_us is not None and ref.start_us < oldest_live.get(ref.kind, 0):
                    continue  # a closed day or week no board keeps
                out.append((player_id, ident, value, reached, seq))
        return out

    def games_of(self, player_id: str, stat_book: StatBook) -> set[str]:
        """The player's games with stat values (a region move re-sends them)."""
        return set(stat_book.players.get(player_id, {}))

    def evict(self, catalog: Catalog, now_us: int) -> int:
        """Forget the values of boards no longer in the catalog, day and week
        values older than the previous period, and season values of seasons
        ended more than SEASON_KEEP_US ago (or no longer in the catalog). A
        removed board's values must go: a leaderboard that does not know the
        board would have to skip them on every resend. Their checkpoint rows
        are deleted by the next checkpoint (`take_dirty`)."""
        oldest_live = {kind: self.clock.previous(kind, now_us) for kind in PERIODS}
        evicted = 0
        for (player_id, game_id), held in self.held.items():
            boards = catalog.boards.get(game_id, {})
            for ident in list(held):
                ref = parse(ident)
                board = boards.get(ref.stat_board or "")
                if board is None or self._closed(board, ref, now_us, oldest_live):
                    del held[ident]
                    self._gone.add((player_id, game_id, ident))
                    evicted += 1
        return evicted

    @staticmethod
    def _closed(board: StatBoard, ref: BoardRef, now_us: int, oldest_live: Mapping[str, int]) -> bool:
        """A day or week older than the previous one, or a season ended more
        than SEASON_KEEP_US ago (or no longer in the catalog): not held."""
        if ref.start_us is not None:
            return ref.start_us < oldest_live.get(ref.kind, 0)
        season = next((s for s in board.seasons if s[0] == ref.season_id), None)
        return season is None or season[2] + SEASON_KEEP_US < now_us


def unknown_stat_boards(board_ids: Iterable[str], known: Container[str]) -> set[str]:
    """The stat board ids among `board_ids` whose base board is not in `known`
    (a leaderboard's orders): boards it cannot rank."""
    return {b for b in board_ids if is_stat_board(b) and base_of(b) not in known}
