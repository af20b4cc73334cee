"""A stat board's seasons (catalog `seasons`, table `seasons`): which one is
open at a time, when the next one closes, and the standings a closed season
keeps. A season holds [start_us, end_us): an update at exactly end_us is not
in it; it belongs to the season starting at end_us if there is one, else to
no season (like a day holds [start, start + 24 h)). So a season's last
instant is end_us - 1 µs and two seasons back to back never share an update.

A season's board is an ordinary board under `periods.season_board_id`
(`game/board#season#season_id`), ranked in its stat board's order. When
end_us has passed (and the updates before it have been delivered: the
caller's grace), its final standings are the board's entries in rank order:
`final_standings`. Ray-free, no I/O."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

from podium.core.standings import GLOBAL, Standings


@dataclass(frozen=True, slots=True)
class Season:
    season_id: str
    start_us: int
    end_us: int  # exclusive: the first instant not in the season

    def holds(self, at_us: int) -> bool:
        return self.start_us <= at_us < self.end_us


class Seasons:
    """One board's seasons, ordered by start. Refuses an empty or reversed
    season, a repeated id and overlapping seasons (the catalog refuses them
    first, naming the field; this is the engine's own guard)."""

    __slots__ = ("_seasons", "_starts")

    def __init__(self, seasons: Iterable[Season]) -> None:
        ordered = sorted(seasons, key=lambda s: s.start_us)
        ids = set()
        for i, season in enumerate(ordered):
            if season.start_us >= season.end_us:
                raise ValueError(f"season {season.season_id} ends before it starts")
            if season.season_id in ids:
                raise ValueError(f"season {season.season_id} is declared twice")
            ids.add(season.season_id)
            if i and ordered[i - 1].end_us > season.start_us:
                raise ValueError(f"seasons {ordered[i - 1].season_id} and {season.season_id} overlap")
        self._seasons = tuple(ordered)
        self._starts = [s.start_us for s in ordered]

    @classmethod
    def of(cls, rows: Iterable[tuple[str, int, int]]) -> Seasons:
        """From (season_id, start_us, end_us) rows: what the catalog's StatBoard.seasons holds."""
        return cls(Season(*row) for row in rows)

    def __iter__(self) -> Iterator[Season]:
        return iter(self._seasons)

    def __len__(self) -> int:
        return len(self._seasons)

    def open_at(self, at_us: int) -> Season | None:
        """The season holding `at_us`, if any."""
        i = bisect_right(self._starts, at_us) - 1
        if i >= 0 and self._seasons[i].holds(at_us):
            return self._seasons[i]
        return None

    def next_close(self, now_us: int) -> int | None:
        """When the next season closes after `now_us` (the earliest end_us >
        now_us: the open season's end, else the next season's), or None when
        every season has closed. A season whose end_us is now_us has closed."""
        i = bisect_right(self._starts, now_us) - 1
        for season in self._seasons[max(i, 0):]:
            if season.end_us > now_us:
                return season.end_us
        return None

    def closing_due(self, now_us: int, closed: Container[str], grace_us: int = 0) -> list[Season]:
        """Seasons ended at least `grace_us` ago whose standings are not yet
        kept (`closed`: the ids already closed), oldest first. The grace is how
        long updates made before end_us may take to reach the board."""
        return [s for s in self._seasons if s.end_us + grace_us <= now_us and s.season_id not in closed]


@dataclass(frozen=True, slots=True)
class FinalRow:
    """One kept standing of a closed season. `region_rank` is the place
    among the players of the same region (the regional board's rank); None
    for players without a region."""

    rank: int
    player_id: str
    value: int
    reached_us: int
    region: str | None
    region_rank: int | None


def final_standings(standings: Standings, season_board: str) -> Iterator[FinalRow]:
    """The closed season's standings to keep, best first: every entry of its
    global board with the stat's real value, and each player's regional rank
    (the order of the regional board is the global order restricted to the
    region, so one pass gives both). Rows stream: a caller can copy them to
    PostgreSQL in chunks."""
    board = standings.board(season_board, GLOBAL)
    if board is None:
        return
    players = standings.entries.get(season_board, {})
    unpack = board.order.unpack
    in_region: dict[str, int] = {}
    for rank, key in enumerate(board.keys(), 1):
        player_id, value, reached = unpack(key)
        region = players[player_id][1]
        region_rank = None
        if region:
            region_rank = in_region[region] = in_region.get(region, 0) + 1
        yield FinalRow(rank, player_id, value, reached, region, region_rank)
