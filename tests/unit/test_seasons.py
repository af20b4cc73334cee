from datetime import UTC, datetime

import pytest

from podium.core.board_order import ASC
from podium.core.periods import season_board_id, stat_board_id
from podium.core.player_state import to_us
from podium.core.seasons import FinalRow, Season, Seasons, final_standings
from podium.core.standings import Standings
from podium.wire.messages import ScoreUpdates


def us(*args: int) -> int:
    return to_us(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


AUTUMN = Season("autumn-26", us(2026, 9, 1), us(2026, 12, 1))
WINTER = Season("winter-26", us(2026, 12, 1), us(2027, 3, 1))  # back to back with autumn
SUMMER = Season("summer-27", us(2027, 6, 1), us(2027, 9, 1))  # after a gap
SEASONS = Seasons([SUMMER, WINTER, AUTUMN])


def test_seasons_are_ordered_by_start() -> None:
    assert [s.season_id for s in SEASONS] == ["autumn-26", "winter-26", "summer-27"] and len(SEASONS) == 3
    assert list(Seasons.of([("w", 10, 20), ("a", 0, 10)])) == [Season("a", 0, 10), Season("w", 10, 20)]


def test_a_season_holds_its_start_and_not_its_end() -> None:
    assert SEASONS.open_at(AUTUMN.start_us) == AUTUMN
    assert SEASONS.open_at(AUTUMN.start_us - 1) is None
    assert SEASONS.open_at(AUTUMN.end_us - 1) == AUTUMN
    assert SEASONS.open_at(AUTUMN.end_us) == WINTER  # exactly end_us: the next season, starting then
    assert SEASONS.open_at(WINTER.end_us) is None  # exactly end_us with no season after: none
    assert SEASONS.open_at(SUMMER.start_us + 1) == SUMMER and SEASONS.open_at(us(2030, 1, 1)) is None
    assert Seasons([]).open_at(0) is None


def test_the_next_close_is_the_earliest_end_after_now() -> None:
    assert SEASONS.next_close(us(2026, 1, 1)) == AUTUMN.end_us  # before any season
    assert SEASONS.next_close(AUTUMN.start_us) == AUTUMN.end_us
    assert SEASONS.next_close(AUTUMN.end_us - 1) == AUTUMN.end_us
    assert SEASONS.next_close(AUTUMN.end_us) == WINTER.end_us  # autumn closed at its end
    assert SEASONS.next_close(us(2027, 4, 1)) == SUMMER.end_us  # in the gap
    assert SEASONS.next_close(SUMMER.end_us) is None


def test_a_season_is_due_to_close_once_its_grace_has_passed_and_only_once() -> None:
    grace = 5_000_000
    assert SEASONS.closing_due(AUTUMN.end_us, set(), grace) == []
    assert SEASONS.closing_due(AUTUMN.end_us + grace, set(), grace) == [AUTUMN]
    assert SEASONS.closing_due(us(2027, 4, 1), {"autumn-26"}) == [WINTER]
    assert SEASONS.closing_due(us(2030, 1, 1), set()) == [AUTUMN, WINTER, SUMMER]


@pytest.mark.parametrize(("seasons", "match"), [
    ([Season("a", 10, 10)], "ends before it starts"),
    ([Season("a", 10, 5)], "ends before it starts"),
    ([Season("a", 0, 10), Season("a", 20, 30)], "twice"),
    ([Season("a", 0, 10), Season("b", 9, 30)], "overlap"),
])
def test_bad_seasons_are_refused(seasons: list[Season], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Seasons(seasons)


def test_a_closed_season_keeps_its_standings_in_rank_order_with_regional_ranks() -> None:
    board = season_board_id(stat_board_id("kart", "lap"), WINTER.season_id)
    s = Standings()
    s.set_order(stat_board_id("kart", "lap"), ASC)
    u = ScoreUpdates()
    for i, (player, lap, region, at) in enumerate([("ann", 61_000, "eu", 5), ("bob", 59_500, "na", 9),
                                                   ("cy", 61_000, "eu", 3), ("dee", 70_000, None, 1),
                                                   ("eve", 59_999, "na", 2)]):
        u.add(player, board, region, lap, WINTER.start_us + at, i + 1)
    s.apply(u)
    assert list(final_standings(s, board)) == [
        FinalRow(1, "bob", 59_500, WINTER.start_us + 9, "na", 1),
        FinalRow(2, "eve", 59_999, WINTER.start_us + 2, "na", 2),
        FinalRow(3, "cy", 61_000, WINTER.start_us + 3, "eu", 1),  # reached 61,000 before ann
        FinalRow(4, "ann", 61_000, WINTER.start_us + 5, "eu", 2),
        FinalRow(5, "dee", 70_000, WINTER.start_us + 1, None, None),
    ]
    assert list(final_standings(s, season_board_id(stat_board_id("kart", "lap"), "never-played"))) == []
