"""Player tokens: POST /v1/players/{player_id}/token mints one (a game
server, by API key) or refreshes one (the player, by a still valid token, as
long as a game server vouched for them within token_refresh_max_s)."""
from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from podium.gateway.rate_limits import credential_id
from podium.gateway.routes.deps import api_key_of, bearer_of, json_response, per_address, runtime
from podium.gateway.runtime import Runtime

router = APIRouter(tags=["players"], dependencies=[Depends(per_address)])


@router.post("/v1/players/{player_id}/token")
async def token(request: Request, player_id: str, rt: Runtime = Depends(runtime)) -> Response:
    """A fresh player token. With an API key: a new one (the game server vouches
    for the player now). With the player's own token: the same vouching carried
    forward, refused 401 once it is older than token_refresh_max_s."""
    keys = rt.tokens
    key = api_key_of(request)
    if key:
        await rt.keys.scope(key)
        await rt.limits.metered("player_reads", credential_id(key))
        minted = keys.mint(player_id)
    else:
        minted = keys.refresh(keys.verify(bearer_of(request), player_id))
        await rt.limits.metered("player_reads", f"player:{player_id}")
    claims = keys.verify(minted, player_id)
    return json_response({"player_id": player_id, "token": minted, "expires_at": claims["exp"],
                          "refresh_until": claims["auth_time"] + keys.refresh_max_s,
                          "expires_in_s": claims["exp"] - int(time.time())})
