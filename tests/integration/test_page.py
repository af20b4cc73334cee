"""The live board page (`/boards/{game}`) in a real browser: Debian's headless
Chromium, driven by Playwright, against the suite's cluster (started by the
same launch code as `podium up`). The page loads, an unlock sent over the API
moves a row, the region switch and the player search work, it fits a phone;
screenshots are saved under test-artifacts/. Plus the page's HTTP edges."""
from __future__ import annotations

import json
import os
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.conftest import eventually
from tests.integration.test_recovery import ingest

CHROMIUM = os.environ.get("PODIUM_CHROMIUM", "/usr/bin/chromium")
# As the machine's own probe starts it: no sandbox (root), no GPU, nothing reaching out to the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("PODIUM_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
PHONE = {"width": 390, "height": 844}


def prepared() -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make browser)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    prepared()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def open_page(browser: Browser, url: str, errors: list[str], failed: list[str], **options: Any) -> Page:
    page = await browser.new_page(**options)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error"
            and not message.text.startswith("Failed to load resource") else None)  # those are in `failed`
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    await page.goto(url)
    return page


async def rows(page: Page, table: str = "board-rows") -> list[str]:
    return await page.eval_on_selector_all(f"#{table} tr[data-player]", "rs => rs.map(r => r.dataset.player)")


async def until_live(page: Page) -> None:
    """Until the page drew its socket's first frame."""
    await page.wait_for_function("() => document.body.dataset.seq !== undefined", timeout=10_000)


async def until_first(page: Page, player: str) -> None:
    await page.wait_for_function(
        "p => document.querySelector('#board-rows tr[data-player]')?.dataset.player === p", arg=player,
        timeout=10_000, polling="raf")


async def delivered(http, region: str, total: int) -> None:
    """Until the region's board holds `total` players (ranks trail the journal's acks by a delivery)."""
    async def held() -> bool:
        return (await http.get("/v1/games/arena/leaderboard", params={"region": region})).json()["total"] == total

    await eventually(held)


def unlock(player: str, achievement: str, region: str) -> dict[str, str]:
    return {"player_id": player, "game_id": "arena", "achievement_id": achievement, "region": region}


async def test_the_page_shows_the_board_live_switches_regions_and_finds_players(
        cluster, http, server, api_key, browser, uid) -> None:
    here, there = f"pg{uuid.uuid4().hex[:8]}", f"pt{uuid.uuid4().hex[:8]}"  # boards of this test's own
    ace, bea, cid, dot = uid("ace"), uid("bea"), uid("cid"), uid("dot")
    await ingest(http, api_key, [unlock(ace, "a0", here), unlock(ace, "a1", here),  # 30 points
                                 unlock(bea, "a3", here),                           # 40
                                 unlock(cid, "a0", here),                           # 10
                                 unlock(dot, "a2", there)])                         # 30, elsewhere
    await delivered(http, here, 3)
    await delivered(http, there, 1)
    errors: list[str] = []  # script errors, CSP refusals
    failed: list[str] = []  # answers >= 400
    page = await open_page(browser, f"{cluster.base_url}/boards/arena?region={here}&top=5", errors, failed)
    assert await rows(page) == [bea, ace, cid]  # in the served HTML, before the socket's first frame
    await until_live(page)
    assert await rows(page) == [bea, ace, cid]
    assert await page.text_content("#status") == "live"
    assert await page.text_content("#board-total") == "of 3 players"
    assert set(await page.eval_on_selector_all("#region option", "os => os.map(o => o.value)")) >= {"", here, there}
    assert len(await page.query_selector_all("#rarity-rows li")) == 6  # arena's achievements, rarest first
    paint = await page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")

    # Unlocks sent over the API move rows on the open page: cid climbs to the top, then bea and ace pass him back.
    seen_after_ack: list[float] = []
    for player, achievements in ((cid, ["a3"]), (bea, ["a2"]), (ace, ["a2", "a3"])):
        acked = await ingest(http, api_key, [unlock(player, a, here) for a in achievements])
        assert {a["status"] for a in acked} == {"accepted"}
        t0 = time.monotonic()
        await until_first(page, player)
        seen_after_ack.append(time.monotonic() - t0)
        assert "moved" in (await page.get_attribute(f"#board-rows tr[data-player='{player}']", "class") or "")
    assert await rows(page) == [ace, bea, cid]  # 100, 70, 50
    assert statistics.median(seen_after_ack) < 1.0, seen_after_ack
    await page.screenshot(path=ARTIFACTS / "board-page.png", full_page=True)

    # The player search: rank, around-me; history is private without the player's token.
    await page.fill("#player", bea)
    await page.click("#search button")
    await page.wait_for_selector("#player-card:not([hidden])")
    assert (await page.text_content("#player-rank") or "").startswith(f"{bea}: #2 of 3")
    assert await rows(page, "around-rows") == [ace, bea, cid]
    assert await page.get_attribute(f"#around-rows tr[data-player='{bea}']", "class") == "me"
    assert "Private" in (await page.text_content("#history") or "")
    assert f"player={bea}" in page.url
    # Someone landing within 3 ranks of the searched player refreshes the search as well.
    await ingest(http, api_key, [unlock(eve := uid("eve"), "a1", here)])  # 20 points: 4th
    await page.wait_for_selector(f"#around-rows tr[data-player='{eve}']", timeout=10_000)
    assert await rows(page, "around-rows") == [ace, bea, cid, eve]
    assert (await page.text_content("#player-rank") or "").startswith(f"{bea}: #2 of 4")

    # The region switch: the other board's rows, and the address says which board is shown. The search
    # follows the board: bea has no score in that region (the page's lookups are answered 404 unknown_player).
    assert failed == []
    await page.select_option("#region", there)
    await until_first(page, dot)
    assert await rows(page) == [dot] and f"region={there}" in page.url
    await page.wait_for_selector("#player-missing:not([hidden])")
    assert await page.text_content("#player-missing") == f"{bea} has no score on this board"
    await page.click("[data-period='day']")
    await page.wait_for_function("document.querySelector('[data-period=day]').getAttribute('aria-pressed') === 'true'")
    await until_first(page, dot)  # today's board of that region holds the same unlock
    assert "period=day" in page.url
    await page.close()
    assert failed and all(f.startswith("404 ") and f"/players/{bea}/" in f for f in failed), failed
    failed.clear()

    # With the player's own token (in the fragment: never sent to a server) the page charts 30 days.
    token = (await server.post(f"/v1/players/{ace}/token")).json()["token"]
    phone = await open_page(browser, f"{cluster.base_url}/boards/arena?region={here}&player={ace}#token={token}",
                            errors, failed, viewport=PHONE)
    await phone.wait_for_selector("#history svg")
    bars = await phone.eval_on_selector_all("#history rect", "rs => rs.map(r => r.getAttribute('height'))")
    assert len(bars) == 30 and sorted(map(float, bars))[-2] == 2  # one day (today) holds all of ace's points
    assert ": 100 points" in (await phone.text_content("#history figcaption") or "")
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    await phone.screenshot(path=ARTIFACTS / "board-page-phone.png", full_page=True)
    await phone.close()
    # ?overlay=1: the board alone, for a stream overlay or a lobby screen.
    overlay = await open_page(browser, f"{cluster.base_url}/boards/arena?region={here}&overlay=1", errors, failed)
    await until_live(overlay)
    assert await overlay.is_visible("#board-rows") and await rows(overlay) == [ace, bea, cid, eve]
    assert not any([await overlay.is_visible(s) for s in ("nav.controls", "section.search", "section.rarity")])
    await overlay.close()
    assert errors == [] and failed == []
    (ARTIFACTS / "board-page.json").write_text(json.dumps(
        {"first_contentful_paint_ms": paint, "ack_to_row_moved_s": seen_after_ack}, indent=2))


async def test_the_page_and_its_assets_are_served_with_safe_headers(cluster, http) -> None:
    page = await http.get("/boards/arena", params={"top": 500})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'data-top="100"' in page.text  # capped at board_top_max
    asset = re.search(r'src="(/boards/assets/board\.js\?v=\w+)"', page.text).group(1)
    script = await http.get(asset)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]
    assert (await http.get("/boards", follow_redirects=False)).headers["location"].startswith("/boards/")
    for path, status in (("/boards/no-such-game", 404), ("/boards/assets/secrets.txt", 404),
                         ("/boards/arena?top=0", 422), ("/boards/arena?period=year", 422),
                         ("/boards/arena?region=NOT%20OK", 422)):
        refused = await http.get(path)
        assert refused.status_code == status and refused.headers["content-type"] == "application/problem+json"


async def test_regions_lists_the_regional_boards_largest_first(cluster, http, api_key, uid) -> None:
    big, small = f"rb{uuid.uuid4().hex[:8]}", f"rs{uuid.uuid4().hex[:8]}"
    await ingest(http, api_key, [unlock(uid(f"p{i}"), "a0", big) for i in range(3)] + [unlock(uid("q"), "a0", small)])
    await delivered(http, big, 3)
    await delivered(http, small, 1)
    body = (await http.get("/v1/games/arena/regions")).json()
    mine = [r for r in body["regions"] if r["region"] in (big, small)]
    assert mine == [{"region": big, "total": 3}, {"region": small, "total": 1}]
    assert body["total"] >= 4 and body["period"] == "all"
    assert (await http.get("/v1/games/no-such-game/regions")).status_code == 404
