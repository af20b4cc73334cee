"""Calls over a channel (actors/channel.py) on real loopback sockets, no Ray:
each call runs in a task of its own, domain errors travel as codes, garbage
closes the connection, and a stream that breaks fails what was in flight."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.channel import Channel, serve_calls
from actors.errors import ShardUnavailable, UnknownGame

KEY = b"k" * 32


async def started(methods: dict[str, Any]) -> tuple[asyncio.Server, Channel]:
    server = await serve_calls("127.0.0.1", 0, methods, KEY)
    host, port = server.sockets[0].getsockname()[:2]

    async def resolve() -> tuple[str, int]:
        return host, port

    return server, Channel(resolve, name="shard 0", connect_timeout_s=1.0, key=KEY)


async def test_a_slow_call_does_not_hold_the_others_and_errors_travel_as_codes() -> None:
    gate = asyncio.Event()

    async def slow(payload: Any) -> Any:
        await gate.wait()
        return payload

    async def fast(payload: Any) -> Any:
        if payload == "no-such-game":
            raise UnknownGame("no game 'no-such-game'")
        return [payload, len(payload)]

    server, channel = await started({"slow": slow, "fast": fast})
    try:
        held = asyncio.ensure_future(channel.call("slow", {"a": [1, None]}))
        assert await asyncio.wait_for(channel.call("fast", "abc"), 1.0) == ["abc", 3]  # answered before `slow`
        with pytest.raises(UnknownGame, match="no-such-game"):
            await channel.call("fast", "no-such-game")
        assert not held.done()
        gate.set()
        assert await held == {"a": [1, None]}
        assert channel.connects == 1
    finally:
        await channel.close()
        server.close()


async def test_an_unknown_method_closes_the_connection_and_fails_the_call() -> None:
    async def echo(payload: Any) -> Any:
        return payload

    server, channel = await started({"echo": echo})
    try:
        with pytest.raises(ShardUnavailable):
            await asyncio.wait_for(channel.call("drop_tables", None), 2.0)
        assert await channel.call("echo", 5) == 5  # the next call reconnects
        assert channel.connects == 2
    finally:
        await channel.close()
        server.close()


async def test_a_call_that_crashes_is_answered_unavailable_and_the_stream_lives_on() -> None:
    async def broken(payload: Any) -> Any:
        raise RuntimeError("boom")

    server, channel = await started({"broken": broken})
    try:
        with pytest.raises(ShardUnavailable, match="boom"):
            await channel.call("broken", None)
        with pytest.raises(ShardUnavailable, match="boom"):
            await channel.call("broken", None)
        assert channel.connects == 1
    finally:
        await channel.close()
        server.close()


async def test_a_caller_without_the_channel_key_is_cut_off_before_any_call_runs() -> None:
    ran: list[Any] = []

    async def record(payload: Any) -> Any:
        ran.append(payload)
        return payload

    server = await serve_calls("127.0.0.1", 0, {"record": record}, KEY)
    host, port = server.sockets[0].getsockname()[:2]

    async def resolve() -> tuple[str, int]:
        return host, port

    stranger = Channel(resolve, name="shard 0", connect_timeout_s=1.0, key=b"not the key")
    try:
        with pytest.raises(ShardUnavailable):
            await asyncio.wait_for(stranger.call("record", "unlock everything"), 2.0)
        assert ran == []
    finally:
        await stranger.close()
        server.close()
