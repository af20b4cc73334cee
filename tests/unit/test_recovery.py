"""An actor's recovery: one attempt at a time, a growing pause after each
failure, and callers that never start an attempt of their own."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from podium.actors import shell
from podium.core.recovery import Recovery
from podium.settings import Settings
from podium.wire.errors import ShardUnavailable
from tests.unit.polling import until


class Attempts:
    """A recovery whose attempts fail while `down` (PostgreSQL away), each taking `takes_s`."""

    def __init__(self, takes_s: float = 0.0) -> None:
        self.down = True
        self.takes_s = takes_s
        self.count = 0
        self.running = 0
        self.most_at_once = 0
        self.pauses: list[float] = []

    async def attempt(self) -> None:
        self.count += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.takes_s)
            if self.down:
                raise OSError("connection refused: PostgreSQL is away")
        finally:
            self.running -= 1

    async def sleep(self, pause_s: float) -> None:
        self.pauses.append(pause_s)
        await asyncio.sleep(0.01)  # the pause, shortened: the test reads what was asked


async def test_failed_attempts_are_retried_one_at_a_time_after_a_doubling_pause() -> None:
    attempts = Attempts()
    recovery = Recovery(attempts.attempt, name="shard", first_pause_s=0.5, max_pause_s=2.0, sleep=attempts.sleep)
    loop = recovery.kick()
    await until(lambda: attempts.count >= 5)
    attempts.down = False
    await asyncio.wait_for(loop, 1.0)
    assert recovery.ready and attempts.most_at_once == 1
    assert attempts.pauses[:4] == [0.5, 1.0, 2.0, 2.0]
    await recovery.wait(0.1)  # recovered: returns at once
    assert recovery.kick() is loop, "no second loop once recovered"


async def test_callers_wait_for_the_attempt_under_way_and_are_answered_at_once_while_it_pauses() -> None:
    attempts = Attempts(takes_s=0.05)
    attempts.down = False
    recovery = Recovery(attempts.attempt, name="shard", sleep=attempts.sleep)
    await asyncio.gather(*(recovery.wait(1.0) for _ in range(20)))  # all ride the one attempt
    assert attempts.count == 1 and recovery.ready

    attempts = Attempts(takes_s=0.05)
    pausing: asyncio.Event = asyncio.Event()

    async def long_pause(_: float) -> None:
        pausing.set()
        await asyncio.Event().wait()

    recovery = Recovery(attempts.attempt, name="shard", sleep=long_pause)
    with pytest.raises(ShardUnavailable, match="could not recover"):
        await recovery.wait(1.0)  # the attempt it waited for failed
    await pausing.wait()
    t0 = time.monotonic()
    for _ in range(50):
        with pytest.raises(ShardUnavailable):
            await recovery.wait(1.0)
    assert time.monotonic() - t0 < 0.1 and attempts.count == 1, "nobody starts an attempt while it pauses"
    recovery._loop_task.cancel()  # type: ignore[union-attr]


async def test_a_caller_waits_at_most_its_deadline_for_a_long_attempt() -> None:
    attempts = Attempts(takes_s=5.0)
    recovery = Recovery(attempts.attempt, name="shard", sleep=attempts.sleep)
    t0 = time.monotonic()
    with pytest.raises(ShardUnavailable, match="is recovering"):
        await recovery.wait(0.05)
    assert time.monotonic() - t0 < 0.5
    recovery._loop_task.cancel()  # type: ignore[union-attr]


class FailingActor(shell.ActorBase):
    def __init__(self, attempts: Attempts) -> None:
        self.attempts = attempts
        super().__init__(0, Settings(database_url="postgresql://db.invalid/podium", redis_url="redis://redis.invalid",
                                     token_secret="unit-test-secret", actor_call_timeout_s=5.0))

    async def recover(self) -> None:
        await self.attempts.attempt()

    def _fresh_state(self) -> None:
        pass


async def test_an_actor_whose_recovery_fails_answers_waiting_calls_without_a_recovery_each(monkeypatch) -> None:
    """PostgreSQL down while a shard restarts: every ingest call used to run a
    full recovery inline, one after the other and with no pause; calls the
    gateway had given up on kept them coming."""
    monkeypatch.setattr(shell.threading, "Thread", lambda **_: SimpleNamespace(start=lambda: None))
    monkeypatch.setattr(shell.ray, "get_runtime_context", lambda: SimpleNamespace(current_actor=None))

    async def pool(*_: object, **__: object) -> object:
        return object()

    async def no_presence(*_: object, **__: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(shell, "create_pool", pool)
    monkeypatch.setattr(shell.presence, "follow", no_presence)
    attempts = Attempts(takes_s=0.02)
    actor = FailingActor(attempts)
    try:
        t0 = time.monotonic()
        answers = await asyncio.gather(*(actor.ready() for _ in range(50)), return_exceptions=True)
        took = time.monotonic() - t0
        assert attempts.count == 1, f"{attempts.count} recoveries for 50 waiting calls"
        assert all(isinstance(a, ShardUnavailable) for a in answers), answers[:3]
        assert took < 0.5
        with pytest.raises(ShardUnavailable):
            await asyncio.wait_for(actor.ready(), 0.1)  # while it pauses: at once, no new attempt
        assert attempts.count == 1
    finally:
        for task in list(actor._tasks):
            task.cancel()
        recovery = getattr(actor, "_recovery", None)
        if recovery is not None and recovery._loop_task is not None:
            recovery._loop_task.cancel()


class ReconfiguredActor(FailingActor):
    def _new_recovery(self) -> Recovery:
        return Recovery(self._recover_once, name="reconfigured", first_pause_s=0.1)


async def test_reconfigure_stops_the_old_recovery_loop(monkeypatch) -> None:
    """Resharding reconfigures an actor whose recovery is pausing after a
    failure: the old loop used to run on beside the new one, its next attempt
    recovering the actor a second time (a second writer, deliverer, ...)."""
    monkeypatch.setattr(shell.threading, "Thread", lambda **_: SimpleNamespace(start=lambda: None))
    monkeypatch.setattr(shell.ray, "get_runtime_context", lambda: SimpleNamespace(current_actor=None))
    monkeypatch.setattr(shell.directory, "forget", lambda: None)

    async def pool(*_: object, **__: object) -> object:
        return object()

    async def no_presence(*_: object, **__: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(shell, "create_pool", pool)
    monkeypatch.setattr(shell.presence, "follow", no_presence)
    attempts = Attempts()
    actor = ReconfiguredActor(attempts)
    old = actor._recovery
    try:
        with pytest.raises(ShardUnavailable):
            await actor.ready()  # the first attempt failed: the old loop pauses 0.1 s
        attempts.down = False
        await asyncio.wait_for(actor.reconfigure(actor.settings), 1.0)
        assert actor._recovery is not old and actor._recovery.ready
        await asyncio.sleep(0.3)  # past the old loop's pause
        assert attempts.count == 2, f"{attempts.count} attempts: the old recovery loop ran on"
        assert old._loop_task is not None and old._loop_task.done()
    finally:
        for task in list(actor._tasks):
            task.cancel()
        for recovery in (old, actor._recovery):
            if recovery._loop_task is not None:
                recovery._loop_task.cancel()
