"""What a player shard holds for its players' stat boards, and the score
updates it sends for them (issue 25, "leaderboards on any stat").

- The all-time board of a stat board ranks the stat's own value: it is read
  from the StatBook (value, when it was reached, the seq that set it), never
  held twice.
- Its day, week and season boards rank a period value
  (podium/core/stat_periods.fold of the updates made in the period). This book
  holds those per (player, game), board id -> (value, reached_us, seq of the
  row that last changed it).

Period values are NOT checkpointed: a recovering player shard rebuilds them
by folding its stat journal rows of the live windows (the previous day and
week on, and each season not yet closed long ago), in seq order, the same
fold the live path runs. That is exact (the journal is the source of truth
and the fold is deterministic) and needs no new table, at the price of
reading (streamed, only stats some board ranks) every row of the shard's
players since the oldest window, a whole season's, at each restart:
checkpointing these values is the fix left to do (docs/architecture.md).

Updates go out as ordinary absolute, versioned ScoreUpdates on the stat
board ids, through the same delivery lanes as the points boards: a (player,
game) pair touched by a stat row is owed to its game's leaderboard shard, so
the same watermark rule holds. Ray-free, no I/O."""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from podium.core.catalog import Catalog, StatBoard
from podium.core.periods import ALL_TIME, PERIODS, PeriodClock, base_of, is_stat_board, parse, stat_board_id
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


def boards_on(catalog: Catalog, game_id: str, stat_id: str) -> list[StatBoard]:
    """The catalog boards that rank this stat."""
    return [b for b in catalog.boards.get(game_id, {}).values() if b.stat_id == stat_id]


def board_stats(catalog: Catalog) -> list[tuple[str, str]]:
    """(game, stat) of every stat some catalog board ranks: the only journal rows a rebuild needs."""
    return sorted({(game_id, b.stat_id) for game_id, boards in catalog.boards.items() for b in boards.values()})


class StatBoardBook:
    def __init__(self, clock: PeriodClock) -> None:
        self.clock = clock
        self.held: dict[Pair, dict[str, Held]] = {}
        self._seasons: dict[tuple[str, str], tuple[tuple[tuple[str, int, int], ...], Seasons]] = {}

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
        week's starts, and the start of every season still held."""
        starts = [self.clock.previous(kind, now_us) for kind in PERIODS]
        for boards in catalog.boards.values():
            for board in boards.values():
                starts += [start for _, start, end in board.seasons if end + SEASON_KEEP_US > now_us]
        return min(starts)

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
        board would have to skip them on every resend."""
        oldest_live = {kind: self.clock.previous(kind, now_us) for kind in PERIODS}
        evicted = 0
        for (_, game_id), held in self.held.items():
            boards = catalog.boards.get(game_id, {})
            for ident in list(held):
                ref = parse(ident)
                board = boards.get(ref.stat_board or "")
                if board is None:
                    stale = True
                elif ref.start_us is not None:
                    stale = ref.start_us < oldest_live.get(ref.kind, 0)
                else:
                    season = next((s for s in board.seasons if s[0] == ref.season_id), None)
                    stale = season is None or season[2] + SEASON_KEEP_US < now_us
                if stale:
                    del held[ident]
                    evicted += 1
        return evicted


def unknown_stat_boards(board_ids: Iterable[str], known: Container[str]) -> set[str]:
    """The stat board ids among `board_ids` whose base board is not in `known`
    (a leaderboard's orders): boards it cannot rank."""
    return {b for b in board_ids if is_stat_board(b) and base_of(b) not in known}
