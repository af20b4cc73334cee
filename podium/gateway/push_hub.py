"""Fan-in of Redis pub/sub into the player sockets of one gateway replica: one subscriber connection on the replica's
own channel (actors address pushes to the replicas presence says hold the players, podium/transport/pushes.py), a
mailbox per socket (podium/gateway/mailbox.py: events merge there; a socket that stops reading is closed, never the
replica's memory). It also keeps this replica's presence set in Redis (podium/transport/presence.py) and heartbeats
it, rewriting it if Redis lost it, and hears the broadcast that drains every replica before a shutdown
(`drain_all`)."""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from podium.core.tasks import log_failure, supervise
from podium.gateway.mailbox import Mailbox
from podium.telemetry import metrics
from podium.transport import presence
from podium.transport.pushes import replica_channel

log = logging.getLogger(__name__)
RESTARTING = 1012  # WebSocket close code "service restart": reconnect (to another replica)
IDLE = 4408  # the client sent nothing for socket_idle_s (like HTTP 408): reconnect, and ping meanwhile
SLOW_CONSUMER = 1013  # "try again later": the client took no frame for socket_send_timeout_s (gateway/mailbox.py)


def broadcast_channel(prefix: str) -> str:
    return f"{prefix}gateway:all"


def draining_key(prefix: str) -> str:
    """Hash: replica -> sockets it still holds, written by draining replicas."""
    return f"{prefix}gateway:draining"


def loop_key(prefix: str) -> str:
    """Hash: replica -> its event-loop lag (JSON, podium/telemetry/loop_lag.py), refreshed
    every few seconds; `podium status` reads it."""
    return f"{prefix}gateway:loop"


async def drain_all(client: aioredis.Redis, prefix: str) -> int:
    """Tell every gateway replica to close its sockets with 1012 and refuse new
    ones; returns how many replicas heard it."""
    return int(await client.publish(broadcast_channel(prefix), orjson.dumps({"drain": True})))


class PushHub:
    def __init__(self, client: aioredis.Redis, prefix: str, *, presence_ttl_s: float = 30.0,
                 backlog: int = 1000, on_drain: Any = None, replica: str | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = presence_ttl_s
        self.replica = replica or uuid.uuid4().hex
        self._pubsub = client.pubsub()
        self._backlog = backlog
        self._on_drain = on_drain
        self._queues: dict[str, set[Mailbox]] = defaultdict(set)
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._draining = False

    async def start(self) -> None:
        await self._pubsub.subscribe(replica_channel(self._prefix, self.replica), broadcast_channel(self._prefix))
        self._heartbeat_task = asyncio.ensure_future(supervise("presence heartbeat", self._heartbeat))
        self._tasks = [asyncio.ensure_future(presence.read_forever(self._pubsub, self.dispatch, "push subscriber")),
                       self._heartbeat_task]

    async def _heartbeat(self) -> None:
        while True:
            if await presence.heartbeat(self._client, self._prefix, self.replica, set(self._queues), self._ttl_s):
                log.warning("presence of replica %s was rewritten (%d players): Redis had lost it",
                            self.replica, len(self._queues))
            await asyncio.sleep(min(5.0, self._ttl_s / 3))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        try:
            await presence.retire(self._client, self._prefix, self.replica)
        except Exception:
            log.warning("could not retire presence of replica %s; it expires in %.0fs", self.replica, self._ttl_s)
        await self._pubsub.aclose()

    async def attach(self, player_id: str, wake: Callable[[], None] | None = None) -> Mailbox:
        """A mailbox for one socket of the player; `wake` is called when something is put in it."""
        queue = Mailbox(self._backlog, wake)
        async with self._lock:
            if not self._queues[player_id]:
                await self._presence(presence.join, player_id)  # actors address its pushes here from now on
            self._queues[player_id].add(queue)
        return queue

    async def detach(self, player_id: str, queue: Mailbox) -> None:
        async with self._lock:
            queues = self._queues.get(player_id)
            if queues is None:
                return
            queues.discard(queue)
            if queues:
                return
            del self._queues[player_id]
            if self._draining:
                return  # the replica's presence set is retired whole; nothing to undo one by one
            await self._presence(presence.leave, player_id)

    async def _presence(self, change: Any, player_id: str) -> None:
        """A lost presence write is repaired by the next heartbeat: it must not fail the socket."""
        try:
            await change(self._client, self._prefix, self.replica, player_id)
        except Exception as exc:
            log.warning("presence %s of %s failed (%r); the heartbeat repairs it", change.__name__, player_id, exc)

    @property
    def sockets(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def dispatch(self, payload: bytes) -> int:
        """Hand each [player_id, event] of a payload to that player's
        sockets here; returns how many sockets got an event. A JSON object is
        a broadcast to the replicas instead (`drain_all`)."""
        items = orjson.loads(payload)
        if isinstance(items, dict):
            if items.get("drain"):
                self.drain()
            return 0
        delivered = dropped = 0
        for player_id, event in items:
            for mailbox in self._queues.get(player_id, ()):
                if mailbox.put(event):
                    delivered += 1
                else:
                    dropped += 1
        metrics.count("podium_pushes", delivered, outcome="sent")
        metrics.count("podium_pushes", dropped, outcome="dropped")
        return delivered

    def drain(self) -> None:
        """Close every player socket with 1012 (the replica is going away) and
        retire the replica's presence at once: its sockets then close without
        a Redis round trip each (3,000 of them took longer than Serve waits)."""
        if self._draining:
            return
        self._draining = True
        if self._on_drain is not None:
            self._on_drain()
        for mailboxes in self._queues.values():
            for mailbox in mailboxes:
                mailbox.close(RESTARTING, "server restarting: reconnect")
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()  # it would write the presence set back
        task = asyncio.ensure_future(self._retire())
        task.add_done_callback(log_failure)
        self._tasks.append(task)

    async def _retire(self) -> None:
        await presence.retire(self._client, self._prefix, self.replica)
