"""Push events to players through Redis pub/sub, addressed to the gateway
replicas that hold the players' sockets (presence says which): one PUBLISH
per replica per batch, carrying every event for that replica's players. A
replica subscribes to its own channel only, so it reads just its players'
events, however many players and replicas there are."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

import orjson
import redis.asyncio as aioredis

log = logging.getLogger(__name__)
Event = tuple[str, dict[str, object]]  # (player_id, event)
ReplicasOf = Callable[[str], Iterable[str]]  # player -> replicas holding a socket of theirs


def replica_channel(prefix: str, replica: str) -> str:
    return f"{prefix}gateway:{replica}"


def group(events: Iterable[Event], prefix: str, replicas_of: ReplicasOf) -> dict[str, bytes]:
    """Channel -> one payload: a JSON array of [player_id, event] pairs for the
    players that replica holds (an event goes to every replica holding its player)."""
    by_channel: dict[str, list[Event]] = defaultdict(list)
    for player_id, event in events:
        for replica in replicas_of(player_id):
            by_channel[replica_channel(prefix, replica)].append((player_id, event))
    return {channel: orjson.dumps(items) for channel, items in by_channel.items()}


async def publish(client: aioredis.Redis, prefix: str, replicas_of: ReplicasOf, events: Iterable[Event]) -> None:
    """Publish in one pipelined round trip; never raises (a push is best
    effort: the state it reports is already durable and readable)."""
    try:
        payloads = group(events, prefix, replicas_of)
        if not payloads:
            return
        async with client.pipeline(transaction=False) as pipe:
            for channel, payload in payloads.items():
                pipe.publish(channel, payload)
            await pipe.execute()
    except Exception:
        log.warning("push publish failed", exc_info=True)
