"""Period boards: besides its all-time board, every game has a daily and a
weekly board. A day starts at `reset_hour` UTC; a week is the ISO week (Monday)
starting at that hour. Only the current and the previous period of each kind
are live (held in memory and queryable); every closed day stays in PostgreSQL
as the players' history.

A period board is addressed by a board id, `game#kind#start_us`, which the
leaderboard actors treat like any game id: same ordering, cursors, regions."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ALL_TIME = "all"
DAY = "day"
WEEK = "week"
PERIODS = (DAY, WEEK)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
_LENGTH = {DAY: DAY_US, WEEK: WEEK_US}
_FIRST_MONDAY_US = 4 * DAY_US  # 1970-01-01 was a Thursday; ISO weeks start on Monday
_SEP = "#"  # not allowed in game ids (podium/gateway/frames.Ident), so board ids cannot collide


def board_id(game_id: str, kind: str, start_us: int) -> str:
    return f"{game_id}{_SEP}{kind}{_SEP}{start_us}" if kind != ALL_TIME else game_id


def parse_board_id(board: str) -> tuple[str, str, int | None]:
    """(game_id, kind, start_us); kind is ALL_TIME and start None for an all-time board."""
    game_id, sep, rest = board.partition(_SEP)
    if not sep:
        return game_id, ALL_TIME, None
    kind, _, start = rest.partition(_SEP)
    return game_id, kind, int(start)


def game_of(board: str) -> str:
    return board.partition(_SEP)[0]


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


def describe(board: str) -> dict[str, object]:
    """What a reader is told about the board it asked for."""
    game_id, kind, start = parse_board_id(board)
    if start is None:
        return {"game_id": game_id, "period": ALL_TIME}
    return {"game_id": game_id, "period": kind, "period_start": _iso(start),
            "period_end": _iso(period_end(kind, start))}


def _iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()


def is_period(board: str) -> bool:
    return _SEP in board
