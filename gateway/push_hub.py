"""Fan-in of Redis pub/sub into the player sockets of one gateway replica: one
subscriber connection, a channel per connected player, a bounded queue per
socket (a slow socket loses its oldest pushes, never the replica's memory)."""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict

import redis.asyncio as aioredis

from actors.pushes import player_channel

log = logging.getLogger(__name__)
QUEUE_SIZE = 256


class PushHub:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._pubsub = client.pubsub()
        self._queues: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # redis-py reads only once subscribed: a replica channel makes that so from the start.
        await self._pubsub.subscribe(f"{self._prefix}gateway:{uuid.uuid4().hex}")
        self._task = asyncio.ensure_future(self._read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._pubsub.aclose()

    async def attach(self, player_id: str) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            first = not self._queues[player_id]
            self._queues[player_id].add(queue)
            if first:
                await self._pubsub.subscribe(player_channel(self._prefix, player_id))
        return queue

    async def detach(self, player_id: str, queue: asyncio.Queue[bytes]) -> None:
        async with self._lock:
            queues = self._queues.get(player_id)
            if queues is None:
                return
            queues.discard(queue)
            if not queues:
                del self._queues[player_id]
                await self._pubsub.unsubscribe(player_channel(self._prefix, player_id))

    @property
    def sockets(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def _read(self) -> None:
        skip = len(player_channel(self._prefix, ""))
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("push subscriber error; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"]
            player_id = (channel.decode() if isinstance(channel, bytes) else channel)[skip:]
            for queue in tuple(self._queues.get(player_id, ())):
                if queue.full():
                    queue.get_nowait()  # drop the oldest for a socket that does not keep up
                queue.put_nowait(message["data"])
