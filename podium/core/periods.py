"""Period boards: besides its all-time board, every game has a daily and a
weekly board. A day starts at `reset_hour` UTC; a week is the ISO week (Monday)
starting at that hour. Only the current and the previous period of each kind
are live (held in memory and queryable); every closed day stays in PostgreSQL
as the players' history.

A period board is addressed by a board id, `game#kind#start_us`, which the
leaderboard actors treat like any game id: same ordering, cursors, regions.

Stat boards (a catalog board ranking one stat) use the same scheme on a base
id `game/board` instead of `game`: `game/board` (all-time),
`game/board#day#start_us`, `game/board#week#start_us`, and a season's board
`game/board#season#season_id`. Neither `/` nor `#` can appear in a game,
board or season id (podium/gateway/frames.Ident), and the kind is spelled
out, so no stat board id equals a game's, and a season's never equals a
day's or a week's."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ALL_TIME = "all"
DAY = "day"
WEEK = "week"
SEASON = "season"
PERIODS = (DAY, WEEK)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
_LENGTH = {DAY: DAY_US, WEEK: WEEK_US}
_FIRST_MONDAY_US = 4 * DAY_US  # 1970-01-01 was a Thursday; ISO weeks start on Monday
_SEP = "#"  # not allowed in game ids (podium/gateway/frames.Ident), so board ids cannot collide
_STAT = "/"  # between a game id and a stat board's id (not allowed in either)


def board_id(game_id: str, kind: str, start_us: int) -> str:
    """A day's or week's board (or the all-time one) of a base id: a game, or a stat board's `stat_board_id`."""
    return f"{game_id}{_SEP}{kind}{_SEP}{start_us}" if kind != ALL_TIME else game_id


def stat_board_id(game_id: str, board: str) -> str:
    """The all-time board id of a catalog stat board: also the base of its period and season boards."""
    return f"{game_id}{_STAT}{board}"


def season_board_id(base: str, season_id: str) -> str:
    return f"{base}{_SEP}{SEASON}{_SEP}{season_id}"


def parse_board_id(board: str) -> tuple[str, str, int | None]:
    """(base, kind, start_us): base is the game id (or `game/board` for a stat
    board); kind is ALL_TIME and start None for an all-time board; a season's
    board has kind SEASON and start None (its dates are the catalog's)."""
    base, sep, rest = board.partition(_SEP)
    if not sep:
        return base, ALL_TIME, None
    kind, _, start = rest.partition(_SEP)
    return base, kind, None if kind == SEASON else int(start)


@dataclass(frozen=True, slots=True)
class BoardRef:
    """What a board id names, parsed."""

    game_id: str
    stat_board: str | None  # the catalog board's id; None for the achievement-points board
    kind: str  # ALL_TIME, DAY, WEEK or SEASON
    start_us: int | None = None  # a day's or week's start
    season_id: str | None = None

    @property
    def base(self) -> str:
        return self.game_id if self.stat_board is None else stat_board_id(self.game_id, self.stat_board)


def parse(board: str) -> BoardRef:
    base, sep, rest = board.partition(_SEP)
    game_id, _, stat_board = base.partition(_STAT)
    if not sep:
        return BoardRef(game_id, stat_board or None, ALL_TIME)
    kind, _, tail = rest.partition(_SEP)
    if kind == SEASON:
        return BoardRef(game_id, stat_board or None, kind, season_id=tail)
    return BoardRef(game_id, stat_board or None, kind, start_us=int(tail))


def base_of(board: str) -> str:
    """The all-time board a period or season board belongs to (its order is that board's)."""
    return board.partition(_SEP)[0]


def game_of(board: str) -> str:
    return board.partition(_SEP)[0].partition(_STAT)[0]


def is_stat_board(board: str) -> bool:
    return _STAT in board


@dataclass(frozen=True, slots=True)
class PeriodClock:
    reset_hour: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.reset_hour <= 23:
            raise ValueError("reset_hour is an hour of the UTC day, 0-23")

    def start(self, kind: str, at_us: int) -> int:
        """Start (µs since the epoch) of the period of this kind holding `at_us`."""
        origin = self.reset_hour * HOUR_US + (_FIRST_MONDAY_US if kind == WEEK else 0)
        length = _LENGTH[kind]
        return (at_us - origin) // length * length + origin

    def current(self, kind: str, now_us: int) -> int:
        return self.start(kind, now_us)

    def previous(self, kind: str, now_us: int) -> int:
        return self.start(kind, now_us) - _LENGTH[kind]

    def is_live(self, kind: str, start_us: int, now_us: int) -> bool:
        """Current or previous period: held in memory and queryable."""
        return start_us >= self.previous(kind, now_us)

    def live_starts(self, now_us: int) -> list[tuple[str, int]]:
        return [(kind, start) for kind in PERIODS
                for start in (self.previous(kind, now_us), self.current(kind, now_us))]


def period_end(kind: str, start_us: int) -> int:
    return start_us + _LENGTH[kind]


def describe(board: str, season: tuple[int, int] | None = None) -> dict[str, object]:
    """What a reader is told about the board it asked for. A season's dates
    are not in its id: `season` gives them ((start_us, end_us), from the catalog)."""
    if _SEP not in board and _STAT not in board:
        return {"game_id": board, "period": ALL_TIME}  # the common read: a game's all-time board
    ref = parse(board)
    out: dict[str, object] = {"game_id": ref.game_id}
    if ref.stat_board is not None:
        out["board_id"] = ref.stat_board
    out["period"] = ref.kind
    if ref.start_us is not None:
        out["period_start"] = _iso(ref.start_us)
        out["period_end"] = _iso(period_end(ref.kind, ref.start_us))
    elif ref.season_id is not None:
        out["season_id"] = ref.season_id
        if season is not None:
            out["period_start"], out["period_end"] = _iso(season[0]), _iso(season[1])
    return out


def _iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()


def is_period(board: str) -> bool:
    return _SEP in board
