"""The unit tier's one wait on a condition: poll with a deadline, never a bare sleep."""
from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], timeout: float = 2.0) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the conditions are plain state, with no event to wait on
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)
