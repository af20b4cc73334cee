"""The board page's template: every placeholder filled, names escaped, assets versioned."""
import re

from gateway.routes.page import ASSETS, VERSION, render


def test_the_page_is_rendered_with_escaped_names_and_versioned_assets() -> None:
    html = render("arena", 'Arena <script>alert("x")</script>', 25, 3750)
    assert "{{" not in html and "<script>alert" not in html
    assert "Arena &lt;script&gt;" in html
    assert 'data-game="arena" data-ping-ms="3750" data-top="25"' in html
    assert set(re.findall(r"/boards/assets/([\w.]+)\?v=" + VERSION, html)) == set(ASSETS) == {"board.css", "board.js"}


def test_the_page_script_builds_nodes_never_html_strings() -> None:
    # Player ids and achievement names come from clients: text nodes only, never parsed as markup.
    assert "innerHTML" not in ASSETS["board.js"].decode() and "insertAdjacentHTML" not in ASSETS["board.js"].decode()
