"""The board page's template: every placeholder filled, names escaped, assets versioned, the top N drawn (a
stat board's values too); and the catalog read the page builds its stat board picker from."""
import re
from datetime import UTC, datetime

from podium.core.catalog import Catalog
from podium.gateway.catalog_view import games_body
from podium.gateway.routes.page import ASSETS, VERSION, render

BOARD = {"total": 1234, "entries": [{"rank": 1, "player_id": "<b>eve</b>", "points": 12345}]}


def test_the_page_is_rendered_with_escaped_names_and_versioned_assets() -> None:
    html = render(("arena", "eu", "day", 25), 'Arena <script>alert("x")</script>', 3750, BOARD)
    assert "{{" not in html and "<script>alert" not in html and "<b>eve" not in html
    assert "Arena &lt;script&gt;" in html
    assert 'data-game="arena" data-ping-ms="3750" data-top="25"' in html
    assert set(re.findall(r"/boards/assets/([\w.]+)\?v=" + VERSION, html)) == set(ASSETS) == {"board.css", "board.js"}


def test_the_page_holds_the_top_n_before_any_script_runs() -> None:
    html = render(("arena", None, "all", 10), "Arena", 1000, BOARD)
    assert ('<tr data-player="&lt;b&gt;eve&lt;/b&gt;"><td class="rank">1</td><td>&lt;b&gt;eve&lt;/b&gt;</td>'
            '<td class="points">12,345</td></tr>') in html
    assert "of 1,234 players" in html
    assert "No scores on this board yet" in render(("arena", None, "all", 10), "Arena", 1000,
                                                   {"total": 0, "entries": []})


def test_the_page_script_builds_nodes_never_html_strings() -> None:
    # Player ids and achievement names come from clients: text nodes only, never parsed as markup.
    script = ASSETS["board.js"].decode()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_a_stat_board_page_says_value_and_draws_integer_values() -> None:
    board = {"total": 2, "entries": [{"rank": 1, "player_id": "dave", "value": 58000},
                                     {"rank": 2, "player_id": "carol", "value": 61234}]}
    html = render(("kart/fastest-lap", None, "all", 10), "Kart", 1000, board)
    assert 'data-game="kart"' in html and '>Value</th>' in html and "of 2 players" in html
    assert [m for m in re.findall(r'<td class="points">([^<]*)</td>', html)] == ["58,000", "61,234"]
    assert '>Points</th>' in render(("kart", None, "all", 10), "Kart", 1000, BOARD)


def test_a_season_page_leaves_its_rows_to_the_script() -> None:
    html = render(("kart/fastest-lap", None, "all", 10), "Kart", 1000, None)
    assert "Loading…" in html and "{{" not in html and '<small id="board-total"></small>' in html


def us(*day: int) -> int:
    return int(datetime(*day, tzinfo=UTC).timestamp()) * 1_000_000


ROWS = [{"game_id": "arena", "game_name": "Arena", "achievement_id": "a0", "name": "First", "points": 10},
        {"game_id": "kart", "game_name": "Kart", "achievement_id": "century", "name": "Win 100", "points": 50},
        {"game_id": "empty", "game_name": "Empty", "achievement_id": None, "name": None, "points": None}]
KART = Catalog.from_rows(
    ROWS, [{"game_id": "kart", "stat_id": "races_won", "name": "Races won", "op": "incr"},
           {"game_id": "kart", "stat_id": "best_lap_ms", "name": "Best lap", "op": "min"}],
    [{"game_id": "kart", "board_id": "most-wins", "name": "Most wins", "stat_id": "races_won", "sort_order": "desc",
      "periods": ["all"]},
     {"game_id": "kart", "board_id": "fastest-lap", "name": "Fastest lap", "stat_id": "best_lap_ms",
      "sort_order": "asc", "periods": ["all", "day", "week"]}],
    [{"game_id": "kart", "board_id": "fastest-lap", "season_id": "s2", "start_us": us(2027, 3, 1),
      "end_us": us(2027, 6, 1)},
     {"game_id": "kart", "board_id": "fastest-lap", "season_id": "s1", "start_us": us(2026, 12, 1),
      "end_us": us(2027, 3, 1)}])


def test_the_catalog_read_lists_each_games_stats_and_boards_with_seasons_in_order() -> None:
    games = {g["game_id"]: g for g in games_body(ROWS, KART)["games"]}
    assert list(games) == ["arena", "kart", "empty"]
    assert games["arena"] == {"game_id": "arena", "name": "Arena", "stats": [], "boards": [],
                              "achievements": [{"achievement_id": "a0", "name": "First", "points": 10}]}
    assert games["empty"]["achievements"] == [] and games["empty"]["boards"] == []
    kart = games["kart"]
    assert kart["stats"] == [{"stat_id": "best_lap_ms", "name": "Best lap"},
                             {"stat_id": "races_won", "name": "Races won"}]
    lap, wins = kart["boards"]
    assert (lap["board_id"], lap["order"], lap["periods"], wins["order"]) == (
        "fastest-lap", "asc", ["all", "day", "week"], "desc")
    assert lap["seasons"] == [
        {"season_id": "s1", "start": "2026-12-01T00:00:00+00:00", "end": "2027-03-01T00:00:00+00:00"},
        {"season_id": "s2", "start": "2027-03-01T00:00:00+00:00", "end": "2027-06-01T00:00:00+00:00"}]
    assert wins["seasons"] == []


def test_the_page_script_shows_values_and_progress_as_text() -> None:
    # Stat values, achievement names and progress figures are put in as text, like player ids.
    script = ASSETS["board.js"].decode()
    assert "/progress?game=" in script and "authorization: `Bearer ${state.token}`" in script
    assert "lower is better" in script and "maximumFractionDigits: 0" in script
