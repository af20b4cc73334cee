"""The live board page (`/boards/{game}`) in a real browser: Debian's headless
Chromium, driven by Playwright, against the suite's cluster (started by the
same launch code as `podium up`). The page loads, an unlock sent over the API
moves a row, the region switch and the player search work, it fits a phone;
a game's stat boards (asc and desc, a season) and a found player's progress
show; screenshots are saved under test-artifacts/. Plus the page's HTTP edges."""
from __future__ import annotations

import json
import os
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.conftest import eventually
from tests.integration.test_recovery import ingest
from tests.integration.test_stat_boards import ingest as stat_ingest
from tests.integration.test_stat_boards import iso
from tests.integration.test_stats_ingest import add_game, stat, stats_game

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


def kart(game: str, season_start: datetime) -> dict[str, Any]:
    """A game with stats, threshold achievements, an asc board with an open season and a desc board."""
    entry = stats_game(game)
    entry["boards"] = [
        {"board_id": "fastest-lap", "name": "Fastest lap", "stat_id": "lap", "order": "asc",
         "periods": ["all", "day", "week"], "seasons": [
             {"season_id": "s1", "start": iso(season_start), "end": iso(season_start + timedelta(days=30))}]},
        {"board_id": "most-wins", "name": "Most wins", "stat_id": "wins", "periods": ["all", "week"]}]
    return entry


async def board_rows(page: Page) -> list[list[str]]:
    return await page.eval_on_selector_all(
        "#board-rows tr[data-player]", "rs => rs.map(r => [r.dataset.player, r.cells[2].textContent])")


async def until_rows(page: Page, players: list[str]) -> None:
    await page.wait_for_function(
        "ps => JSON.stringify([...document.querySelectorAll('#board-rows tr[data-player]')]"
        ".map(r => r.dataset.player)) === JSON.stringify(ps)", arg=players, timeout=10_000, polling="raf")


async def test_the_page_shows_stat_boards_seasons_and_a_found_players_progress(
        cluster, db, http, server, api_key, browser, uid) -> None:
    game = uid("kart")
    await add_game(db, game, cluster, api_key, kart(game, datetime.now(UTC) - timedelta(days=1)))
    ann, bob, cy = uid("ann"), uid("bob"), uid("cy")
    laps, wins = {ann: 61000, bob: 59000, cy: 75000}, {ann: 2, bob: 1, cy: 3}  # bob: fast-lap; cy: three-wins
    await stat_ingest(cluster, api_key, [stat(p, game, "lap", "min", lap, f"{p}-l") for p, lap in laps.items()]
                      + [stat(p, game, "wins", "incr", n, f"{p}-w") for p, n in wins.items()])

    async def ranked() -> bool:  # the board holds all three, and the gateway's catalog knows the boards
        page = (await http.get(f"/v1/games/{game}/leaderboard", params={"board": "fastest-lap"})).json()
        games = {g["game_id"]: g for g in (await http.get("/v1/games")).json()["games"]}
        return page.get("total") == 3 and len(games.get(game, {}).get("boards", [])) == 2

    await eventually(ranked, timeout=30)
    listed = {g["game_id"]: g for g in (await http.get("/v1/games")).json()["games"]}[game]
    assert [(b["board_id"], b["order"], b["periods"]) for b in listed["boards"]] == [
        ("fastest-lap", "asc", ["all", "day", "week"]), ("most-wins", "desc", ["all", "week"])]
    assert [s["season_id"] for s in listed["boards"][0]["seasons"]] == ["s1"]

    errors: list[str] = []
    failed: list[str] = []
    page = await open_page(browser, f"{cluster.base_url}/boards/{game}?top=5", errors, failed)
    await until_live(page)
    assert await rows(page) == [bob, cy]  # the points board: fast-lap (30), three-wins (15)
    await page.wait_for_selector("#board-pick:not([hidden])")
    assert await page.is_hidden("[data-period=season]")  # the points board has no seasons

    # An asc board: lowest first, values as integers, the caption says lower is better; live over the socket.
    await page.select_option("#board", "fastest-lap")
    await until_rows(page, [bob, ann, cy])
    assert await board_rows(page) == [[bob, "59,000"], [ann, "61,000"], [cy, "75,000"]]
    assert "lower is better" in (await page.text_content("#board-note") or "")
    assert await page.text_content("#value-head") == "Best lap" and "board=fastest-lap" in page.url
    await until_live(page)
    assert await page.text_content("#status") == "live"
    await stat_ingest(cluster, api_key, [stat(cy, game, "lap", "min", 58000, f"{cy}-l2")])
    await until_first(page, cy)  # cy's new best lap moves him to the top on the open page
    assert await rows(page) == [cy, bob, ann]
    # A desc board keeps the periods it lists (no day board here).
    await page.select_option("#board", "most-wins")
    await until_rows(page, [cy, ann, bob])
    assert "higher is better" in (await page.text_content("#board-note") or "")
    assert await page.is_hidden("[data-period=day]") and await page.is_hidden("[data-period=season]")
    # The season: read over HTTP, its picker lists the seasons begun so far.
    await page.select_option("#board", "fastest-lap")
    await page.click("[data-period=season]")
    await page.wait_for_selector("#season-pick:not([hidden])")
    await until_rows(page, [cy, bob, ann])
    assert await page.eval_on_selector_all("#season option", "os => os.map(o => o.textContent)") == ["s1 (open)"]
    assert "period=season" in page.url and "season=s1" in page.url

    # A found player: rank on the board shown; progress is private without their token.
    await page.fill("#player", ann)
    await page.click("#search button")
    await page.wait_for_selector("#player-card:not([hidden])")
    assert (await page.text_content("#player-rank") or "").startswith(f"{ann}: #3 of 3")
    assert "61,000 Best lap" in (await page.text_content("#player-detail") or "")
    await page.wait_for_selector("#progress-note:not([hidden])")
    assert "Private" in (await page.text_content("#progress-note") or "")
    await page.close()

    # With ann's token (in the fragment) her progress towards each threshold achievement shows.
    token = (await server.post(f"/v1/players/{ann}/token")).json()["token"]
    mine = await open_page(browser, f"{cluster.base_url}/boards/{game}?board=fastest-lap&player={ann}#token={token}",
                           errors, failed)
    await mine.wait_for_selector("#progress-rows li")
    progress = await mine.eval_on_selector_all("#progress-rows li", """ls => ls.map(l => [l.dataset.achievement,
        l.querySelector('small').textContent, l.querySelector('[role=progressbar]').getAttribute('aria-valuenow')])""")
    assert progress == [["fast-lap", "61,000 / 59,999", "0"], ["level-50", "— / 50", "0"],
                        ["three-wins", "2 / 3", "66"]]
    assert (await mine.text_content("#progress-rows li[data-achievement=three-wins]") or "").startswith("Three wins")
    await mine.wait_for_selector("#history svg")
    await mine.screenshot(path=ARTIFACTS / "board-page-stats.png", full_page=True)
    await mine.screenshot(path=Path(os.environ.get("PODIUM_PAGE_SCREENSHOT", "/tmp/page-stats.png")), full_page=True)
    await mine.close()

    # A game without stats shows no board picker, season or progress (exactly as before).
    plain = await open_page(browser, f"{cluster.base_url}/boards/arena?player={ann}", errors, failed)
    await until_live(plain)
    await plain.wait_for_selector("#player-missing:not([hidden])")
    assert not any([await plain.is_visible(s) for s in ("#board-pick", "#season-pick", "#progress-box",
                                                        "[data-period=season]", "#board-note")])
    assert await plain.text_content("#value-head") == "Points"
    await plain.close()
    assert errors == []
    assert all(f.startswith("404 ") and f"/players/{ann}/" in f for f in failed), failed
