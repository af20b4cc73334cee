"""The board page's template: every placeholder filled, names escaped, assets versioned, the top N drawn."""
import re

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
