"""The live board page (`GET /boards/{game}`) and its two assets, served by
the gateway itself: plain HTML, CSS and an ES module (podium/gateway/page/), no
build step. The page reads the public API and the board socket like any
client (docs/protocol.md "The board page")."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import xxhash
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from podium.core.periods import SEASON, stat_board_id
from podium.gateway.board_watch import Key, parse_key
from podium.gateway.routes.deps import per_address, runtime
from podium.gateway.runtime import Runtime
from podium.wire.errors import InvalidRequest, UnknownBoard, UnknownGame, UnknownSeason
from podium.wire.messages import ALL_GAMES

router = APIRouter(dependencies=[Depends(per_address)], include_in_schema=False)
PAGE_DIR = Path(__file__).resolve().parent.parent / "page"
ASSET_TYPES = {"board.css": "text/css; charset=utf-8", "board.js": "text/javascript; charset=utf-8"}
ASSETS = {name: (PAGE_DIR / name).read_bytes() for name in ASSET_TYPES}
VERSION = xxhash.xxh64_hexdigest(b"".join(ASSETS.values()))  # in the asset URLs: a new release is fetched anew
TEMPLATE = (PAGE_DIR / "board.html").read_text()
# The page loads only its own assets and talks only to its own origin (its socket included).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache",
}


def render(key: Key, game_name: str, ping_ms: int, board: dict[str, Any] | None) -> str:
    """The page of one board, with the board's top N as it stands (None: a season's, which the
    script reads); the rest arrives over the API. A stat board's column says "Value"."""
    game_id, _, _, top = key
    game_id, _, stat_board = game_id.partition("/")
    values = {"game": escape(game_id), "game_name": escape(game_name), "top": str(top), "ping_ms": str(ping_ms),
              "version": VERSION, "value_head": "Value" if stat_board else "Points",
              "total": f"of {board['total']:,} players" if board else "",
              "rows": rows_html(board["entries"]) if board else LOADING}
    html = TEMPLATE
    for name, value in values.items():
        html = html.replace("{{" + name + "}}", value)
    return html


LOADING = '<tr class="empty"><td colspan="3">Loading…</td></tr>'


def rows_html(entries: list[dict[str, Any]]) -> str:
    """Rows of a points board (`points`) or a stat board (`value`, an integer)."""
    if not entries:
        return '<tr class="empty"><td colspan="3">No scores on this board yet</td></tr>'
    return "".join(f'<tr data-player="{escape(e["player_id"])}"><td class="rank">{e["rank"]}</td>'
                   f'<td>{escape(e["player_id"])}</td><td class="points">{e.get("points", e.get("value")):,}</td></tr>'
                   for e in entries)


@router.get("/boards")
async def first_board(rt: Runtime = Depends(runtime)) -> Response:
    """The first game's board (a start page for a newcomer)."""
    _, rows = await rt.catalog()
    if not rows:
        raise UnknownGame("the catalog has no games yet")
    return RedirectResponse(f"/boards/{rows[0]['game_id']}", status_code=307)


@router.get("/boards/assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return Response(ASSETS[name], media_type=ASSET_TYPES[name], headers={
        "Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"})


@router.get("/boards/{game_id}")
async def board_page(request: Request, game_id: str, rt: Runtime = Depends(runtime)) -> Response:
    """The page, its board's top N already in it (drawn before the socket's first frame)."""
    await rt.require_game(game_id)
    params = dict(request.query_params)
    top_max = rt.settings.board_top_max
    if params.get("top", "").isdigit() and int(params["top"]) > top_max:
        params["top"] = str(top_max)  # a page asking for more rows shows as many as a socket may watch
    board, season = params.get("board"), params.get("season")
    in_season = bool(board) and params.get("period") == SEASON  # a season is read by the script, not served here
    try:
        key = parse_key(game_id, {**params, "period": "all"} if in_season else params, top_max)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if board:  # a catalog stat board of the game: 404 unknown_board / unknown_season as its reads answer
        catalog, _ = await rt.catalog()
        held = catalog.boards.get(game_id, {}).get(board)
        if held is None:
            raise UnknownBoard(f"game {game_id!r} has no stat board {board!r}")
        if not in_season:
            await rt.stat_board(game_id, board, key[2], False, None)  # a period the board does not keep: 404
        elif season and not any(s[0] == season for s in held.seasons):
            raise UnknownSeason(f"stat board {board!r} has no season {season!r}")
        key = (stat_board_id(game_id, board), *key[1:])
    _, rows = await rt.catalog()
    name = "All games" if game_id == ALL_GAMES else next(r["game_name"] for r in rows if r["game_id"] == game_id)
    ping_ms = int(rt.settings.socket_idle_s * 1000 / 4)  # the socket's client pings every socket_idle_s / 4
    html = render(key, name, ping_ms, None if in_season else await rt.top_page(key))
    return Response(html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
