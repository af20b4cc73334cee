"""Push events to players through Redis pub/sub, one channel per player. The
gateway replica holding a player's socket is subscribed to that channel."""
from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def player_channel(prefix: str, player_id: str) -> str:
    return f"{prefix}player:{player_id}"


async def publish(client: aioredis.Redis, prefix: str, events: Iterable[tuple[str, dict[str, object]]]) -> None:
    """Publish (player_id, event) pairs in one pipelined round trip; never raises
    (a push is best effort: the state it reports is already durable)."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            count = 0
            for player_id, event in events:
                pipe.publish(player_channel(prefix, player_id), orjson.dumps(event))
                count += 1
            if count:
                await pipe.execute()
    except Exception:
        log.warning("push publish failed", exc_info=True)
