import asyncio
import logging

import pytest

from podium.core.tasks import log_failure, supervise
from tests.unit.polling import until


async def test_a_loop_that_dies_is_logged_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    restarted: list[int] = []

    async def loop() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    task = asyncio.ensure_future(supervise("test loop", loop, pause_s=0.001, on_restart=lambda: restarted.append(1)))
    await until(lambda: len(runs) >= 3)
    task.cancel()
    assert len(restarted) == 2
    assert sum("test loop died" in r.getMessage() for r in caplog.records) == 2


async def test_a_failed_one_off_task_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("lost")

    task = asyncio.ensure_future(fails())
    task.add_done_callback(log_failure)
    with caplog.at_level(logging.ERROR), pytest.raises(ValueError):
        await task
    await asyncio.sleep(0)  # done-callbacks run on the next loop pass
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)
