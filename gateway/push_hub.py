"""Fan-in of Redis pub/sub into the player sockets of one gateway replica: one
subscriber connection, subscribed to the push partitions of the players it
holds sockets for, a bounded queue per socket (a slow socket loses its oldest
pushes, never the replica's memory)."""
from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import orjson
import redis.asyncio as aioredis

from actors import presence
from actors.pushes import channel_of

QUEUE_SIZE = 256


class PushHub:
    def __init__(self, client: aioredis.Redis, prefix: str, partitions: int) -> None:
        self._client = client
        self._prefix = prefix
        self._partitions = partitions
        self._pubsub = client.pubsub()
        self._queues: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._channel_players: dict[str, int] = defaultdict(int)  # channel -> players held on it
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # redis-py reads only once subscribed: a replica channel makes that so from the start.
        await self._pubsub.subscribe(f"{self._prefix}gateway:{uuid.uuid4().hex}")
        self._task = asyncio.ensure_future(presence.read_forever(self._pubsub, self.dispatch, "push subscriber"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._pubsub.aclose()

    async def attach(self, player_id: str) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            if not self._queues[player_id]:
                channel = channel_of(self._prefix, player_id, self._partitions)
                self._channel_players[channel] += 1
                if self._channel_players[channel] == 1:
                    await self._pubsub.subscribe(channel)
                await presence.change(self._client, self._prefix, player_id, +1)
            self._queues[player_id].add(queue)
        return queue

    async def detach(self, player_id: str, queue: asyncio.Queue[bytes]) -> None:
        async with self._lock:
            queues = self._queues.get(player_id)
            if queues is None:
                return
            queues.discard(queue)
            if queues:
                return
            del self._queues[player_id]
            await presence.change(self._client, self._prefix, player_id, -1)
            channel = channel_of(self._prefix, player_id, self._partitions)
            self._channel_players[channel] -= 1
            if self._channel_players[channel] == 0:
                del self._channel_players[channel]
                await self._pubsub.unsubscribe(channel)

    @property
    def sockets(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def dispatch(self, payload: bytes) -> int:
        """Hand each [player_id, event] of a partition payload to that player's
        sockets here; returns how many sockets got an event."""
        delivered = 0
        for player_id, event in orjson.loads(payload):
            queues = self._queues.get(player_id)
            if not queues:
                continue
            data = orjson.dumps(event)
            for queue in tuple(queues):
                if queue.full():
                    queue.get_nowait()  # drop the oldest for a socket that does not keep up
                queue.put_nowait(data)
                delivered += 1
        return delivered
