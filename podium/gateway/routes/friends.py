"""Friends and the inbox (docs/protocol.md "Friends"). Every route needs the
player's own token or a game server's API key: a player invites, accepts,
removes and blocks; a game server (API key) makes or ends friendships at once
and replaces whole lists. Changes are answered once committed."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from podium.core.friendship import STATE_OF, Op
from podium.gateway import queries
from podium.gateway.frames import Ident
from podium.gateway.routes.deps import json_response, per_address, runtime, server_or_player
from podium.gateway.runtime import Runtime
from podium.wire.errors import Forbidden

router = APIRouter(tags=["friends"], dependencies=[Depends(per_address)])
IDENT = r"^[A-Za-z0-9_.:@-]{1,64}$"
Friend = Annotated[str, Path(pattern=IDENT, description="The other player")]
INBOX_PAGE_MAX = 100
INBOX_ID_MAX = 2**63 - 1  # inbox ids are PostgreSQL bigints


async def _change(rt: Runtime, player_id: str, friend_id: str, op: Op, by_server: bool) -> Response:
    [result] = await rt.call(rt.player_shard(player_id).friends_change.remote(
        [(player_id, friend_id, op.value, by_server)], True))
    return json_response({"player_id": player_id, **result})


@router.get("/v1/players/{player_id}/friends")
async def list_friends(request: Request, player_id: str,
                       state: str | None = Query(None, description=f"Only one state: {', '.join(STATE_OF)}"),
                       limit: int = Query(100, ge=1, le=1000),
                       after: str = Query("", max_length=64, description="next_after of the previous page"),
                       rt: Runtime = Depends(runtime)) -> Response:
    """The player's edges in friend-id order: friends, invites both ways, blocks."""
    await server_or_player(rt, request, player_id)
    return json_response(await rt.call(rt.player_shard(player_id).friends_list.remote(player_id, state, after,
                                                                                          limit)))


@router.put("/v1/players/{player_id}/friends/{friend_id}")
async def add_friend(request: Request, player_id: str, friend_id: Friend, rt: Runtime = Depends(runtime)) -> Response:
    """A player: invite, or accept the friend's invite. A game server: friends at once."""
    return await _change(rt, player_id, friend_id, Op.ADD, await server_or_player(rt, request, player_id))


@router.delete("/v1/players/{player_id}/friends/{friend_id}")
async def remove_friend(request: Request, player_id: str, friend_id: Friend,
                        rt: Runtime = Depends(runtime)) -> Response:
    """End a friendship, cancel or decline an invite, or lift one's own block."""
    return await _change(rt, player_id, friend_id, Op.REMOVE, await server_or_player(rt, request, player_id))


@router.put("/v1/players/{player_id}/blocks/{friend_id}")
async def block(request: Request, player_id: str, friend_id: Friend, rt: Runtime = Depends(runtime)) -> Response:
    """Block: any friendship or invite between the two ends; no new one until lifted (DELETE .../friends/{id})."""
    return await _change(rt, player_id, friend_id, Op.BLOCK, await server_or_player(rt, request, player_id))


class FriendList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    friends: list[Ident] = Field(max_length=10_000, description="The player's friends from now on")


@router.put("/v1/players/{player_id}/friends")
async def replace_friends(request: Request, player_id: str, body: FriendList,
                          rt: Runtime = Depends(runtime)) -> Response:
    """A game server replaces the player's friend list (friendships only; invites and blocks stay)."""
    if not await server_or_player(rt, request, player_id):
        raise Forbidden("replacing a friend list needs a game server's API key")
    results = await rt.call(rt.player_shard(player_id).friends_replace.remote(player_id, body.friends))
    return json_response({"player_id": player_id, "changes": results})


@router.get("/v1/players/{player_id}/friends/leaderboard")
async def friends_leaderboard(request: Request, player_id: str,
                              game: str = Query(..., pattern=IDENT, description="Game id, or _all"),
                              region: str | None = Query(None, pattern=queries.REGION_PATTERN),
                              period: queries.Period = Query("all"), previous: bool = Query(False),
                              k: int = Query(5, ge=0, le=50, description="Entries either side in `around`"),
                              board: str | None = Query(None, pattern=IDENT, description="A stat board of the game"),
                              season: str | None = Query(None, pattern=IDENT, description="With period=season"),
                              rt: Runtime = Depends(runtime)) -> Response:
    """The player and their friends ranked on one board, with the player's place."""
    await server_or_player(rt, request, player_id)
    return json_response(await queries.friends_board(rt, game, player_id, region=region, period=period,
                                                     previous=previous, k=k, board=board, season=season))


@router.get("/v1/players/{player_id}/inbox")
async def inbox(request: Request, player_id: str,
                since: int | None = Query(None, ge=0, le=INBOX_ID_MAX,
                                         description="Items after this id; omit: after read_upto"),
                limit: int = Query(50, ge=1, le=INBOX_PAGE_MAX), rt: Runtime = Depends(runtime)) -> Response:
    await server_or_player(rt, request, player_id)
    return json_response(await rt.call(rt.player_shard(player_id).inbox.remote(player_id, since, limit)))


@router.post("/v1/players/{player_id}/inbox/read")
async def mark_read(request: Request, player_id: str,
                    upto: Annotated[int, Body(embed=True, ge=0, le=INBOX_ID_MAX, description="Newest id read")],
                    rt: Runtime = Depends(runtime)) -> Response:
    """Mark everything up to `upto` read; the cursor never moves back."""
    await server_or_player(rt, request, player_id)
    body: dict[str, Any] = await rt.call(rt.player_shard(player_id).inbox_mark.remote(player_id, upto))
    return json_response(body)
