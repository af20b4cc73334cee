"""Reads: the catalog, leaderboard pages, a player's rank, the dashboard."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from podium.core import cursors
from podium.gateway import queries
from podium.gateway.catalog_view import games_body
from podium.gateway.frames import Ident
from podium.gateway.routes.deps import json_response, per_address, public_json, runtime, server_or_player
from podium.gateway.runtime import Runtime
from podium.persistence import journal
from podium.wire.errors import InvalidRequest
from podium.wire.messages import ALL_GAMES

router = APIRouter(dependencies=[Depends(per_address)])
IDENT = r"^[A-Za-z0-9_.:@-]{1,64}$"  # podium/gateway/frames.Ident's pattern
HISTORY_WINDOWS = (7, 30, 90)
Region = Query(None, pattern=queries.REGION_PATTERN, description="Regional board; omit for global")
PeriodParam = Query("all", description="all-time, daily or weekly board; season for a stat board's season")
BoardParam = Query(None, pattern=IDENT, description="A catalog stat board of the game (docs/protocol.md "
                   "\"Stat boards\"); omit for the achievement-points board")
SeasonParam = Query(None, pattern=IDENT, description="With period=season: the season; omit for the one open now")
Previous = Query(False, description="The period that closed last (day or week only)")


@router.get("/v1/games", tags=["catalog"])
async def games(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    """Every game with its achievements, stats and stat boards (seasons included)."""
    catalog, rows = await rt.catalog()
    return public_json(request, games_body(rows, catalog), rt.settings.public_cache_s)


@router.get("/v1/games/{game_id}/leaderboard", tags=["leaderboards"])
async def leaderboard(
    request: Request,
    game_id: str,
    region: str | None = Region,
    period: queries.Period = PeriodParam,
    previous: bool = Previous,
    limit: int = Query(50, ge=1, description="Page size; capped at the server's page_limit_max"),
    cursor: str | None = Query(None, max_length=512),
    board: str | None = BoardParam,
    season: str | None = SeasonParam,
    rt: Runtime = Depends(runtime),
) -> Response:
    return public_json(request, await queries.leaderboard_page(rt, game_id, region=region, period=period,
                                                               previous=previous, limit=limit, cursor=cursor,
                                                               board=board, season=season),
                       rt.settings.public_cache_s)


@router.get("/v1/games/{game_id}/regions", tags=["leaderboards"])
async def regions(request: Request, game_id: str, period: queries.Period = PeriodParam, previous: bool = Previous,
                  board: str | None = BoardParam, season: str | None = SeasonParam,
                  rt: Runtime = Depends(runtime)) -> Response:
    """The board's regions that hold players, largest first (what a region picker offers)."""
    return public_json(request, await queries.regions(rt, game_id, period=period, previous=previous, board=board,
                                                      season=season),
                       rt.settings.public_cache_s)


@router.get("/v1/games/{game_id}/players/{player_id}/rank", tags=["leaderboards"])
async def player_rank(request: Request, game_id: str, player_id: str, region: str | None = Region,
                      period: queries.Period = PeriodParam, previous: bool = Previous,
                      board: str | None = BoardParam, season: str | None = SeasonParam,
                      rt: Runtime = Depends(runtime)) -> Response:
    return public_json(request, await queries.player_rank(rt, game_id, player_id, region=region, period=period,
                                                          previous=previous, board=board, season=season),
                       rt.settings.public_cache_s)


@router.get("/v1/games/{game_id}/players/{player_id}/around", tags=["leaderboards"])
async def around_player(request: Request, game_id: str, player_id: str, region: str | None = Region,
                        k: int = Query(5, ge=0, le=50, description="Entries above and below"),
                        period: queries.Period = PeriodParam, previous: bool = Previous,
                        board: str | None = BoardParam, season: str | None = SeasonParam,
                        rt: Runtime = Depends(runtime)) -> Response:
    return public_json(request, await queries.around_player(rt, game_id, player_id, region=region, period=period,
                                                            previous=previous, k=k, board=board, season=season),
                       rt.settings.public_cache_s)


@router.get("/v1/games/{game_id}/leaderboard/among", tags=["leaderboards"])
async def among(request: Request, game_id: str,
                players: list[Ident] = Query(..., min_length=1, max_length=queries.MAX_AMONG,
                                             description="Repeat: ?players=a&players=b"),
                region: str | None = Region, period: queries.Period = PeriodParam, previous: bool = Previous,
                board: str | None = BoardParam, season: str | None = SeasonParam,
                rt: Runtime = Depends(runtime)) -> Response:
    return public_json(request, await queries.among(rt, game_id, players, region=region, period=period,
                                                    previous=previous, board=board, season=season),
                       rt.settings.public_cache_s)


@router.get("/v1/games/{game_id}/boards/{board_id}/seasons/{season_id}/standings", tags=["leaderboards"])
async def season_standings(request: Request, game_id: str, board_id: str, season_id: str,
                           region: str | None = Region,
                           limit: int = Query(50, ge=1, description="Page size; capped at page_limit_max"),
                           cursor: str | None = Query(None, max_length=512),
                           rt: Runtime = Depends(runtime)) -> Response:
    """A stat board season's final standings, kept once when it closed (table
    season_standings); `closed` false (and no entries) while it is not closed yet."""
    return public_json(request, await queries.season_standings(rt, game_id, board_id, season_id, region=region,
                                                               limit=limit, cursor=cursor),
                       rt.settings.public_cache_s)


@router.get("/v1/players/{player_id}/dashboard", tags=["players"])
async def dashboard(request: Request, player_id: str, rt: Runtime = Depends(runtime)) -> Response:
    """Every game's standing of the player in one call. Private: the player's token or an API key."""
    await server_or_player(rt, request, player_id)
    return json_response(await queries.dashboard(rt, player_id))


@router.get("/v1/players/{player_id}/progress", tags=["players"])
async def progress(request: Request, player_id: str, game: Ident = Query(..., description="The game"),
                   rt: Runtime = Depends(runtime)) -> Response:
    """The player's stat values in a game and their progress towards each threshold
    achievement (value, target, percent, done). Private: the player's token or an API key."""
    await server_or_player(rt, request, player_id)
    return json_response(await queries.progress(rt, player_id, game))


@router.get("/v1/players/{player_id}/history", tags=["players"])
async def history(request: Request, player_id: str, game: str | None = Query(None, description="Only this game"),
                  days: int = Query(7, description="Window: 7, 30 or 90 days, today included"),
                  rt: Runtime = Depends(runtime)) -> Response:
    """Points and unlocks per day (the daily rollups), oldest first, zero-filled.
    Private: the player's token or an API key."""
    await server_or_player(rt, request, player_id)
    if days not in HISTORY_WINDOWS:
        raise InvalidRequest(f"days must be one of {', '.join(map(str, HISTORY_WINDOWS))}")
    if game == ALL_GAMES:
        raise InvalidRequest("history is per game; omit game for every game")
    if game is not None:
        await rt.require_game(game)
    return json_response(await rt.call(rt.player_shard(player_id).history.remote(player_id, game, days)))


@router.get("/v1/games/{game_id}/achievements", tags=["catalog"])
async def achievements(request: Request, game_id: str, rt: Runtime = Depends(runtime)) -> Response:
    """The game's achievements with rarity: the share of the game's players holding each."""
    await rt.require_game(game_id)
    return public_json(request, await rt.rarity(game_id), rt.settings.public_cache_s)


@router.get("/v1/players/{player_id}/achievements", tags=["players"])
async def player_achievements(
    request: Request,
    player_id: str,
    game: str | None = Query(None, description="Only this game"),
    limit: int = Query(50, ge=1, description="Page size; capped at page_limit_max"),
    cursor: str | None = Query(None, max_length=512),
    rt: Runtime = Depends(runtime),
) -> Response:
    """What the player unlocked, paged. Private: the player's token or an API key."""
    await server_or_player(rt, request, player_id)
    after = cursors.decode(cursor, (str, str)) if cursor else ["", ""]
    limit = min(limit, rt.settings.page_limit_max)
    async with rt.pool.acquire() as conn:
        rows = await journal.player_unlocks(conn, player_id, game_id=game, after=(str(after[0]), str(after[1])),
                                            limit=limit + 1)
    page = rows[:limit]
    return json_response({
        "player_id": player_id,
        "achievements": [{"game_id": r["game_id"], "achievement_id": r["achievement_id"], "points": r["points"],
                          "unlocked_at": r["unlocked_at"].isoformat()} for r in page],
        "next_cursor": cursors.encode([page[-1]["game_id"], page[-1]["achievement_id"]]) if len(rows) > limit
        else None,
    })
