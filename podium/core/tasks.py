"""Background tasks that cannot vanish: a forever-loop that dies is logged and
restarted after a pause; a one-off task that fails is logged. Ray-free."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
HEALTHY_RUN_S = 60.0  # a loop that ran this long before dying restarts after the shortest pause


async def supervise(name: str, loop: Callable[[], Awaitable[None]], *, pause_s: float = 0.5,
                    max_pause_s: float = 10.0, on_restart: Callable[[], None] | None = None) -> None:
    """Run `loop()` forever; each exit (an error, or a return) is logged and
    followed by a restart after a pause that doubles while it keeps failing."""
    pause = pause_s
    while True:
        began = time.monotonic()
        try:
            await loop()
            log.error("%s returned; restarting it", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s died; restarting it in %.1fs", name, pause)
        if on_restart is not None:
            on_restart()
        await asyncio.sleep(pause)
        pause = pause_s if time.monotonic() - began > HEALTHY_RUN_S else min(pause * 2, max_pause_s)


def log_failure(task: asyncio.Task[object]) -> None:
    """Done-callback: a task that failed says so in the log instead of vanishing."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("background task %s failed", task.get_name(), exc_info=exc)
