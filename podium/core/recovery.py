"""An actor's recovery as one loop: a single attempt at a time, retried after
a pause that doubles while it keeps failing. Callers never start an attempt:
they wait for the one under way (within their deadline) or, while recovery
pauses after a failure, are answered at once to come back. Ray-free; the
attempt and the sleep are passed in (podium/actors/shell.py gives the real ones)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from podium.wire.errors import ShardUnavailable

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, attempt: Callable[[], Awaitable[None]], *, name: str, first_pause_s: float = 0.5,
                 max_pause_s: float = 10.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._attempt = attempt
        self._name = name
        self._first_pause_s = first_pause_s
        self._max_pause_s = max_pause_s
        self._sleep = sleep
        self.ready = False
        self.attempts = 0
        self.last_error: BaseException | None = None
        self._loop_task: asyncio.Future[None] | None = None
        self._current: asyncio.Future[BaseException | None] | None = None  # the attempt under way, or the last

    def kick(self) -> asyncio.Future[None]:
        """The recovery loop, started if none runs and none succeeded; done once recovered."""
        if self._loop_task is None or (self._loop_task.done() and not self.ready):
            self._current = asyncio.get_running_loop().create_future()  # at once: callers wait on it
            self._loop_task = asyncio.ensure_future(self._run(self._current))
        return self._loop_task

    async def _run(self, current: asyncio.Future[BaseException | None]) -> None:
        pause = self._first_pause_s
        while True:
            self.attempts += 1
            try:
                await self._attempt()
            except Exception as exc:
                self.last_error = exc
                current.set_result(exc)
                log.exception("%s: recovery failed; retrying in %.1fs", self._name, pause)
                await self._sleep(pause)
                pause = min(pause * 2, self._max_pause_s)
                self._current = current = asyncio.get_running_loop().create_future()
                continue
            except BaseException as exc:  # cancelled: callers waiting on it are answered, not left hanging
                current.set_result(exc)
                raise
            self.ready = True
            self.last_error = None
            current.set_result(None)
            return

    async def close(self) -> None:
        """Stop the loop (an attempt under way or the pause after a failure) and
        wait until it has ended: a loop left running would recover the actor again
        beside whatever replaces it. Callers waiting on it are answered."""
        task = self._loop_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait(self, timeout_s: float) -> None:
        """Return once recovered. While an attempt runs, wait for it, at most
        `timeout_s`; ShardUnavailable if it fails, runs longer, or recovery is
        pausing after a failed attempt (then at once)."""
        if self.ready:
            return
        self.kick()
        current = self._current
        assert current is not None
        if not current.done():
            try:
                await asyncio.wait_for(asyncio.shield(current), timeout_s)
            except TimeoutError:
                raise ShardUnavailable(f"{self._name} is recovering; retry shortly") from None
        if not self.ready:
            raise ShardUnavailable(f"{self._name} could not recover yet ({self.last_error!r}); retry shortly")
