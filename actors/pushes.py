"""Push events to players through Redis pub/sub. Events are grouped by push
partition (stable hash of player_id): one PUBLISH per partition per batch,
never one per event. A gateway replica subscribes to the partitions of the
players whose sockets it holds and hands each event to those sockets."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

import orjson
import redis.asyncio as aioredis

from actors.routing import shard_of

log = logging.getLogger(__name__)
Event = tuple[str, dict[str, object]]  # (player_id, event)


def partition_channel(prefix: str, partition: int) -> str:
    return f"{prefix}push:{partition}"


def channel_of(prefix: str, player_id: str, partitions: int) -> str:
    return partition_channel(prefix, shard_of(player_id, partitions))


def group(events: Iterable[Event], prefix: str, partitions: int) -> dict[str, bytes]:
    """Channel -> one payload: a JSON array of [player_id, event] pairs."""
    by_channel: dict[str, list[Event]] = defaultdict(list)
    for player_id, event in events:
        by_channel[channel_of(prefix, player_id, partitions)].append((player_id, event))
    return {channel: orjson.dumps(items) for channel, items in by_channel.items()}


async def publish(client: aioredis.Redis, prefix: str, partitions: int, events: Iterable[Event]) -> None:
    """Publish in one pipelined round trip; never raises (a push is best
    effort: the state it reports is already durable and readable)."""
    try:
        payloads = group(events, prefix, partitions)
        if not payloads:
            return
        async with client.pipeline(transaction=False) as pipe:
            for channel, payload in payloads.items():
                pipe.publish(channel, payload)
            await pipe.execute()
    except Exception:
        log.warning("push publish failed", exc_info=True)
