"""Read queries as plain functions of a replica's Runtime, shared by the HTTP
routes (podium/gateway/routes/reads.py) and the query frames of the sockets, so both
answer the same bodies and the same errors. Query frames are validated here,
at the edge, with pydantic."""
from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from podium.core import cursors
from podium.core.player_state import from_us
from podium.gateway.auth import Unauthorized
from podium.gateway.board_watch import REGION_PATTERN
from podium.gateway.frames import FrameError, Ident
from podium.gateway.limits import MAX_AMONG
from podium.gateway.rate_limits import RateLimited
from podium.gateway.runtime import Runtime
from podium.persistence import stat_boards
from podium.telemetry import metrics
from podium.wire.errors import Forbidden, InvalidRequest, PodiumError, UnknownBoard, UnknownGame, UnknownSeason
from podium.wire.messages import ALL_GAMES

Period = Literal["all", "day", "week", "season"]
RegionIn = Annotated[str, StringConstraints(pattern=REGION_PATTERN)]


async def _board(rt: Runtime, game_id: str, period: str, previous: bool, board: str | None = None,
                 season: str | None = None) -> str:
    """The board id a read names: the game's points board, or with `board` one
    of its catalog stat boards (docs/protocol.md "Stat boards")."""
    await rt.require_game(game_id)
    if board is not None:
        return await rt.stat_board(game_id, board, period, previous, season)
    if period == "season" or season is not None:
        raise InvalidRequest("seasons belong to stat boards: add board=")
    return rt.board(game_id, period, previous)


async def leaderboard_page(rt: Runtime, game_id: str, *, region: str | None = None, period: str = "all",
                           previous: bool = False, limit: int = 50, cursor: str | None = None, board: str | None = None,
        season: str | None = None) -> Any:
    board = await _board(rt, game_id, period, previous, board, season)
    return await rt.board_read(game_id, "page", board, region, min(limit, rt.settings.page_limit_max), cursor)


async def regions(rt: Runtime, game_id: str, *, period: str = "all", previous: bool = False, board: str | None = None,
        season: str | None = None) -> Any:
    board = await _board(rt, game_id, period, previous, board, season)
    return await rt.board_read(game_id, "regions", board)


async def player_rank(rt: Runtime, game_id: str, player_id: str, *, region: str | None = None, period: str = "all",
                      previous: bool = False, board: str | None = None,
        season: str | None = None) -> Any:
    board = await _board(rt, game_id, period, previous, board, season)
    return await rt.board_read(game_id, "rank", board, region, player_id)


async def around_player(rt: Runtime, game_id: str, player_id: str, *, region: str | None = None,
                        period: str = "all", previous: bool = False, k: int = 5, board: str | None = None,
        season: str | None = None) -> Any:
    board = await _board(rt, game_id, period, previous, board, season)
    return await rt.board_read(game_id, "around", board, region, player_id, k)


async def among(rt: Runtime, game_id: str, players: list[str], *, region: str | None = None, period: str = "all",
                previous: bool = False, board: str | None = None,
        season: str | None = None) -> Any:
    board = await _board(rt, game_id, period, previous, board, season)
    return await rt.board_read(game_id, "among", board, region, players)


async def friends_board(rt: Runtime, game_id: str, player_id: str, *, region: str | None = None,
                        period: str = "all", previous: bool = False, k: int = 5, board: str | None = None,
        season: str | None = None) -> Any:
    """The player among their friends (podium/core/board_reads.friends); the list
    comes from the player's shard, the ranks from the game's leaderboard shard."""
    board = await _board(rt, game_id, period, previous, board, season)
    mates = await rt.friends_of(player_id)
    return await rt.board_read(game_id, "friends", board, region, player_id, mates, k, alone=len(mates) > 50)


async def season_standings(rt: Runtime, game_id: str, board: str, season: str, *, region: str | None = None,
                           limit: int = 50, cursor: str | None = None) -> Any:
    """A closed season's final standings from PostgreSQL (podium/persistence/stat_boards.py),
    a page after the cursor's rank."""
    await rt.require_game(game_id)
    catalog, _ = await rt.catalog()
    held = catalog.boards.get(game_id, {}).get(board)
    if held is None:
        raise UnknownBoard(f"game {game_id!r} has no stat board {board!r}")
    found = next((s for s in held.seasons if s[0] == season), None)
    if found is None:
        raise UnknownSeason(f"stat board {board!r} has no season {season!r}")
    after = cursors.decode(cursor, (int,))[0] if cursor else 0
    assert isinstance(after, int)  # decode checked the type
    limit = min(limit, rt.settings.page_limit_max)
    async with rt.pool.acquire(timeout=rt.settings.db_timeout_s) as conn:  # a busy pool is a timeout, not a hang
        close, rows = await stat_boards.season_standings(conn, game_id, board, season, region or "", after, limit + 1)
    page = rows[:limit]
    return {"game_id": game_id, "board_id": board, "season_id": season, "order": held.order, "region": region,
            "start": from_us(found[1]).isoformat(), "end": from_us(found[2]).isoformat(),
            "closed": close is not None, "closed_at": None if close is None else close["closed_at"].isoformat(),
            "total": None if close is None else close["entries"],
            "entries": [{"rank": r["rank"], "player_id": r["player_id"], "value": r["value"],
                         "reached_at": r["reached_at"].isoformat()} for r in page],
            "next_cursor": cursors.encode([page[-1]["rank"]]) if len(rows) > limit else None}


async def dashboard(rt: Runtime, player_id: str) -> Any:
    [body] = await rt.call(rt.player_shard(player_id).dashboard.remote([player_id]))
    return body


async def progress(rt: Runtime, player_id: str, game_id: str) -> Any:
    """The player's stats and threshold progress in a game, from their player shard.
    The all-games id has no stats: refused here, as an id the shard's catalog lacks
    would make the shard reload it."""
    if game_id == ALL_GAMES:
        raise UnknownGame(f"no game {game_id!r} in the catalog")
    await rt.require_game(game_id)
    return await rt.call(rt.player_shard(player_id).progress.remote(player_id, game_id))


# ---- query frames on the sockets ---------------------------------------------
class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | int | None = Field(None, description="Your correlation id, echoed in the reply")


class _BoardQuery(_Query):
    game_id: Ident
    region: RegionIn | None = None
    period: Period = "all"
    previous: bool = False
    board: Ident | None = Field(None, description="A catalog stat board of the game; omit for the points board")
    season: Ident | None = Field(None, description="With period=season: the season (default: the open one)")


class PageQuery(_BoardQuery):
    q: Literal["page"]
    limit: int = Field(50, ge=1)
    cursor: str | None = Field(None, max_length=512)


class RankQuery(_BoardQuery):
    q: Literal["rank"]
    player_id: Ident


class AroundQuery(_BoardQuery):
    q: Literal["around"]
    player_id: Ident
    k: int = Field(5, ge=0, le=50)


class AmongQuery(_BoardQuery):
    q: Literal["among"]
    players: list[Ident] = Field(min_length=1, max_length=MAX_AMONG)


class DashboardQuery(_Query):
    q: Literal["dashboard"]
    player_id: Ident


class ProgressQuery(_Query):
    q: Literal["progress"]
    player_id: Ident
    game_id: Ident


Query = Annotated[PageQuery | RankQuery | AroundQuery | AmongQuery | DashboardQuery | ProgressQuery,
                  Field(discriminator="q")]
_QUERY: TypeAdapter[Query] = TypeAdapter(Query)


def is_query(data: object) -> bool:
    return isinstance(data, dict) and "q" in data


async def run(rt: Runtime, query: Query, owner: str | None = None) -> Any:
    """Answer a query; `owner` is the player of a player socket (private reads
    only for them), None for a game server's (ingest) socket."""
    match query:
        case PageQuery():
            return await leaderboard_page(rt, query.game_id, region=query.region, period=query.period,
                                          previous=query.previous, limit=query.limit, cursor=query.cursor,
                                          board=query.board, season=query.season)
        case RankQuery():
            return await player_rank(rt, query.game_id, query.player_id, region=query.region, period=query.period,
                                     previous=query.previous, board=query.board, season=query.season)
        case AroundQuery():
            return await around_player(rt, query.game_id, query.player_id, region=query.region,
                                       period=query.period, previous=query.previous, k=query.k,
                                       board=query.board, season=query.season)
        case AmongQuery():
            return await among(rt, query.game_id, list(query.players), region=query.region, period=query.period,
                               previous=query.previous, board=query.board, season=query.season)
        case DashboardQuery():
            if owner is not None and query.player_id != owner:
                raise Forbidden("a player socket reads only its own player's dashboard")
            return await dashboard(rt, query.player_id)
        case ProgressQuery():
            if owner is not None and query.player_id != owner:
                raise Forbidden("a player socket reads only its own player's progress")
            return await progress(rt, query.player_id, query.game_id)


async def answer(rt: Runtime, data: dict[str, Any], owner: str | None = None, limit_as: str | None = None) -> bytes:
    """The reply frame to one query frame: a result, or an error naming the
    same code an HTTP read would (docs/protocol.md, "Reads over a socket").
    The frame counts against `limit_as`'s `player_reads` limit (the socket's
    player, or its API key's digest; default: `owner`)."""
    query_id = data.get("id") if isinstance(data.get("id"), str | int) else None
    t0 = time.perf_counter()
    try:
        await rt.limits.metered("player_reads", limit_as or f"player:{owner}")
    except RateLimited as exc:
        metrics.count("podium_socket_queries", q="-", outcome=exc.code)
        return orjson.dumps({"type": "error", "id": query_id, "code": exc.code, "detail": str(exc),
                             "retry_after_s": exc.retry_after_s})
    try:
        query = _QUERY.validate_python(data)
        body = await run(rt, query, owner)
        metrics.count("podium_socket_queries", q=query.q, outcome="result")
        metrics.observe("podium_socket_query_seconds", time.perf_counter() - t0, q=query.q)
        return orjson.dumps({"type": "result", "id": query_id, "q": query.q, "body": body})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        return _error(query_id, "invalid_request", f"{where}: {first['msg']}")
    except (PodiumError, Unauthorized) as exc:
        cause = getattr(exc, "cause", None) or exc  # an actor's error arrives wrapped by Ray
        return _error(query_id, exc.code, str(cause))
    except FrameError as exc:
        return _error(query_id, exc.code, exc.detail)
    except Exception:  # a restarting shard (Ray's errors), a deadline: the client retries
        return _error(query_id, "unavailable", "a shard is restarting or did not answer; retry shortly")


def _error(query_id: object, code: str, detail: str) -> bytes:
    metrics.count("podium_socket_queries", q="-", outcome=code)
    return orjson.dumps({"type": "error", "id": query_id, "code": code, "detail": detail})
