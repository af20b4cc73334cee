"""Who has a push socket open, mirrored in each actor. Gateway replicas keep a
count per player in a Redis hash and broadcast every new count; an actor loads
the hash once, then follows the broadcasts. Actors compute rank changes and
build push events only for players in this set: work for a player nobody
listens to is skipped. A stale entry (a replica that died) only costs work."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

_CHANGE = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', KEYS[2], ARGV[1] .. ' ' .. n)
return n
"""


def presence_key(prefix: str) -> str:
    return f"{prefix}presence"


async def change(client: aioredis.Redis, prefix: str, player_id: str, delta: int) -> int:
    """Add delta (+1 open, -1 close) to the player's socket count, atomically
    with its broadcast, so every follower sees the counts in order."""
    key = presence_key(prefix)
    return int(await client.eval(_CHANGE, 2, key, key, player_id, delta))


class Presence:
    def __init__(self) -> None:
        self.online: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, player_id: object) -> bool:
        return player_id in self.online

    def apply(self, message: bytes | str) -> None:
        text = message.decode() if isinstance(message, bytes) else message
        player_id, _, count = text.rpartition(" ")
        if int(count) > 0:
            self.online.add(player_id)
        else:
            self.online.discard(player_id)

    async def follow(self, client: aioredis.Redis, prefix: str) -> None:
        """Subscribe first, then load the hash: no change can fall in between."""
        pubsub = client.pubsub()
        await pubsub.subscribe(presence_key(prefix))
        counts = await client.hgetall(presence_key(prefix))
        self.online = {k.decode() for k, v in counts.items() if int(v) > 0}
        self._task = asyncio.ensure_future(read_forever(pubsub, self.apply, "presence follower"))



async def read_forever(pubsub: aioredis.client.PubSub, handle: Callable[[bytes], object], what: str) -> None:
    """Hand every message's data to `handle`; a Redis restart or a bad
    message is logged and the loop goes on (it never dies on one item)."""
    while True:
        try:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                handle(message["data"])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s error; continuing", what, exc_info=True)
            await asyncio.sleep(0.5)
