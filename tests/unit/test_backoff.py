"""Per-key retry backoff (podium/core/backoff.py): a failing key waits longer
each time up to the cap, other keys are never held back, success forgets."""
from __future__ import annotations

import asyncio

from podium.core.backoff import Backoff, run_each


def test_a_failing_key_waits_doubling_up_to_the_cap_and_others_stay_due() -> None:
    b = Backoff(first_s=5, most_s=30)
    assert b.due("s1", 0) and b.due("s2", 0)
    assert [b.failed("s1", 0) for _ in range(5)] == [5, 10, 20, 30, 30]
    assert not b.due("s1", 29.9) and b.due("s1", 30)
    assert b.due("s2", 1)  # one key's failures hold back no other
    b.succeeded("s1")
    assert b.due("s1", 0) and b.failed("s1", 0) == 5  # a success starts over


async def test_run_each_runs_every_due_key_whatever_one_key_does() -> None:
    ran: list[str] = []

    async def step(key: str) -> None:
        if key == "broken":
            raise RuntimeError("no")
        if key == "hung":
            await asyncio.sleep(60)
        ran.append(key)

    b = Backoff(first_s=5, most_s=30)
    failures = await run_each(["broken", "hung", "fine"], step, b, now_s=0, timeout_s=0.05)
    assert ran == ["fine"]
    assert [(k, type(e), wait) for k, e, wait in failures] == [("broken", RuntimeError, 5), ("hung", TimeoutError, 5)]
    # Within the wait the failed keys are not tried again (not every second); after it they are.
    ran.clear()
    assert await run_each(["broken", "hung", "fine"], step, b, now_s=1, timeout_s=0.05) == []
    assert ran == ["fine"]
    failures = await run_each(["broken"], step, b, now_s=5, timeout_s=0.05)
    assert [wait for _, _, wait in failures] == [10]
