"""Who has a push socket open, mirrored in each actor so rank changes and push
events are built only for players someone listens to.

Each gateway replica owns a Redis set of the players it holds sockets for
(`{prefix}presence:r:{replica}`) and heartbeats into a sorted set of live
replicas; every change is published on `{prefix}presence` atomically with the
set update. An actor subscribes, then snapshots the live replicas' sets, then
applies the messages in order. It re-snapshots every `resync_s` and after any
Redis error, and a replica whose heartbeat is older than `ttl_s` is dropped, so
a dead replica or a message lost in a Redis restart is healed within
resync_s (+ ttl_s for a dead replica). Stale entries only cost work; missing
ones cost pushes, which is why the bound matters."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import redis.asyncio as aioredis

log = logging.getLogger(__name__)
JOIN, LEAVE, GONE = "+", "-", "~"  # message kinds: a player joins / leaves a replica; a replica is gone


def channel(prefix: str) -> str:
    return f"{prefix}presence"


def replicas_key(prefix: str) -> str:
    return f"{prefix}presence:replicas"


def replica_key(prefix: str, replica: str) -> str:
    return f"{prefix}presence:r:{replica}"


def message(kind: str, replica: str, player_id: str = "") -> str:
    return f"{kind}{replica} {player_id}"


class PresenceView:
    """The union of the live replicas' sets; pure, fed by snapshots and messages."""

    def __init__(self) -> None:
        self._by_replica: dict[str, set[str]] = {}
        self._holders: dict[str, int] = {}  # player -> replicas holding a socket of theirs

    def __contains__(self, player_id: object) -> bool:
        return player_id in self._holders

    def __len__(self) -> int:
        return len(self._holders)

    @property
    def holders(self) -> Mapping[str, int]:
        """Online players (a mapping: `in` on it is a C-level dict look-up, for loops over many ids)."""
        return self._holders

    def replicas_of(self, player_id: str) -> list[str]:
        """The replicas holding a socket of this player (where its pushes go)."""
        if player_id not in self._holders:
            return []
        return [replica for replica, players in self._by_replica.items() if player_id in players]

    def snapshot(self, sets: Mapping[str, Iterable[str]]) -> None:
        """Replace everything with these replicas' sets (replica -> players)."""
        self._by_replica = {replica: set(players) for replica, players in sets.items()}
        self._holders = {}
        for players in self._by_replica.values():
            for player_id in players:
                self._holders[player_id] = self._holders.get(player_id, 0) + 1

    def apply(self, raw: bytes | str) -> None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        head, _, player_id = text.partition(" ")
        kind, replica = head[:1], head[1:]
        if kind == JOIN:
            held = self._by_replica.setdefault(replica, set())
            if player_id not in held:
                held.add(player_id)
                self._holders[player_id] = self._holders.get(player_id, 0) + 1
        elif kind == LEAVE:
            holding = self._by_replica.get(replica)
            if holding is not None and player_id in holding:
                holding.discard(player_id)
                self._drop(player_id)
        elif kind == GONE:
            for gone in self._by_replica.pop(replica, set()):
                self._drop(gone)
        else:
            raise ValueError(f"not a presence message: {text[:80]!r}")

    def _drop(self, player_id: str) -> None:
        left = self._holders[player_id] - 1
        if left:
            self._holders[player_id] = left
        else:
            del self._holders[player_id]


# ---- the replica side (gateway) ----------------------------------------------
async def join(client: aioredis.Redis, prefix: str, replica: str, player_id: str) -> None:
    async with client.pipeline(transaction=True) as pipe:  # set and message in one step: followers see the order
        pipe.sadd(replica_key(prefix, replica), player_id)
        pipe.publish(channel(prefix), message(JOIN, replica, player_id))
        await pipe.execute()


async def leave(client: aioredis.Redis, prefix: str, replica: str, player_id: str) -> None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.srem(replica_key(prefix, replica), player_id)
        pipe.publish(channel(prefix), message(LEAVE, replica, player_id))
        await pipe.execute()


async def heartbeat(client: aioredis.Redis, prefix: str, replica: str, players: set[str], ttl_s: float) -> bool:
    """Mark the replica alive and make its set equal `players` if Redis lost or
    mangled it (a restart); True if the set had to be rewritten."""
    key = replica_key(prefix, replica)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zadd(replicas_key(prefix), {replica: time.time()})
        pipe.expire(key, max(1, int(ttl_s * 2)))
        pipe.scard(key)
        held = (await pipe.execute())[2]
    if held == len(players):
        return False
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if players:
            pipe.sadd(key, *players)
            pipe.expire(key, max(1, int(ttl_s * 2)))
        await pipe.execute()
    return True


async def retire(client: aioredis.Redis, prefix: str, replica: str) -> None:
    """A replica stopping cleanly: its players are gone at once."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(replica_key(prefix, replica))
        pipe.zrem(replicas_key(prefix), replica)
        pipe.publish(channel(prefix), message(GONE, replica))
        await pipe.execute()


# ---- the follower side (actors) ----------------------------------------------
async def read_sets(client: aioredis.Redis, prefix: str, ttl_s: float) -> dict[str, list[str]]:
    """The players of every replica that heartbeated within ttl_s; older ones are removed."""
    await client.zremrangebyscore(replicas_key(prefix), "-inf", time.time() - ttl_s)
    replicas = [_text(r) for r in await client.zrange(replicas_key(prefix), 0, -1)]  # type: ignore[arg-type]
    async with client.pipeline(transaction=False) as pipe:
        for replica in replicas:
            pipe.smembers(replica_key(prefix, replica))
        members = await pipe.execute()
    return {replica: [_text(p) for p in players] for replica, players in zip(replicas, members, strict=True)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def follow(view: PresenceView, client: aioredis.Redis, prefix: str, *, resync_s: float, ttl_s: float) -> None:
    """Keep `view` current forever: subscribe, snapshot, apply messages, resnapshot
    every resync_s; any error (Redis away, a bad message) starts over after a pause."""
    pause = 0.2
    while True:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel(prefix))  # first: no change falls between snapshot and messages
            view.snapshot(await read_sets(client, prefix, ttl_s))
            pause = 0.2
            next_resync = time.monotonic() + resync_s
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(1.0, resync_s))
                if msg is not None:
                    view.apply(msg["data"])
                if time.monotonic() >= next_resync:
                    view.snapshot(await read_sets(client, prefix, ttl_s))
                    next_resync = time.monotonic() + resync_s
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("presence follower: %r; resubscribing in %.1fs", exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        finally:
            try:
                await pubsub.aclose()
            except Exception:
                log.debug("presence pubsub did not close cleanly", exc_info=True)


async def read_forever(pubsub: aioredis.client.PubSub, handle: Callable[[bytes], object], what: str) -> None:
    """Hand every message's data to `handle`; a Redis restart or a bad
    message is logged and the loop goes on (it never dies on one item)."""
    while True:
        try:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is not None:
                handle(msg["data"])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s error; continuing", what, exc_info=True)
            await asyncio.sleep(0.5)
