"""Channel calls that used to wait for a hung shard forever now give up at
actor_call_timeout_s: the friends board request (podium/gateway/runtime.py) and the
pass worker's `passes` calls (podium/actors/social.py). Real loopback sockets, no Ray."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from podium.actors.social import Social
from podium.core.friendship import FriendBook
from podium.gateway.runtime import Runtime
from podium.settings import Settings
from podium.transport.channel import Channel, serve_calls
from podium.wire.errors import ShardUnavailable

KEY = b"k" * 32
SETTINGS = Settings(token_secret="unit-test-secret", actor_call_timeout_s=0.2, player_shards=1, leaderboard_shards=1)


async def hung_shard() -> tuple[asyncio.Server, asyncio.Event, Channel]:
    """A shard whose calls never finish (its loop is stuck behind something)."""
    release = asyncio.Event()

    async def hang(payload: Any) -> Any:
        await release.wait()
        return []

    server = await serve_calls("127.0.0.1", 0, {"friends": hang, "passes": hang}, KEY)
    host, port = server.sockets[0].getsockname()[:2]
    return server, release, Channel(lambda: asyncio.sleep(0, (host, port)), name="shard 0", connect_timeout_s=1.0,
                                    key=KEY)


async def test_a_friends_board_gives_up_on_a_hung_player_shard() -> None:
    server, release, channel = await hung_shard()
    rt = Runtime(SETTINGS)
    rt.ingest_channels[0] = channel
    try:
        with pytest.raises(ShardUnavailable, match=r"did not answer within 0\.2s"):
            await asyncio.wait_for(rt.friends_of("alice"), 2.0)
    finally:
        release.set()
        await channel.close()
        server.close()
        await rt.stop()  # its loop lag monitor


class PassWorker(Social):
    def __init__(self, to_leaderboard: Channel) -> None:
        self.settings = SETTINGS
        self.friend_book = FriendBook()
        self.friend_book.friends = {"alice": ("bob",)}
        self._to = to_leaderboard

    def _leaderboard(self, shard: int) -> Channel:
        return self._to


async def test_the_pass_worker_gives_up_on_a_hung_leaderboard_shard(caplog: pytest.LogCaptureFixture) -> None:
    """A round whose `passes` call hangs ends at the deadline (logged), so the
    worker takes the next round instead of stopping for good."""
    server, release, channel = await hung_shard()
    worker = PassWorker(channel)
    try:
        with caplog.at_level(logging.WARNING, logger="podium.actors.social"):
            await asyncio.wait_for(worker.fan_out_passes({("alice", "g"): (None, (10, 1))}), 2.0)
        assert "friend passes not computed" in caplog.text
    finally:
        release.set()
        await channel.close()
        server.close()
