"""A read channel server in a process of its own, for the test that kills it:
`python -m tests.unit.read_server` prints its port and answers rank reads."""
from __future__ import annotations

import asyncio

import orjson

from podium.core.board_reads import Encoded, Read
from podium.transport.read_wire import serve

KEY = b"k" * 32  # the key tests/unit/test_read_channel.py presents


async def handle(reads: list[Read]) -> list[Encoded]:
    if any(args[-1] == "hang" for _, args in reads):
        await asyncio.Event().wait()
    return [(True, orjson.dumps({"player": args[-1]})) for _, args in reads]


async def main() -> None:
    server = await serve("127.0.0.1", 0, handle, KEY)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
