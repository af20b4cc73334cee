"""podium/telemetry/loop_lag.py: the lag window, the monitor on an injected clock, the
stall line (rate limit, GC attribution), and one real loop held on purpose."""
from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time

import pytest

from podium.telemetry.loop_lag import GcTimer, LagSummary, LagWindow, LoopLagMonitor, quantile, stack_lines
from tests.unit.polling import until


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def scripted(clock: Clock, lags: list[float], gc_timer: GcTimer | None = None,
             gc_at: dict[int, float] | None = None):
    """A sleep that advances the clock by the interval plus the next scripted
    lag (a GC pass of gc_at[tick] seconds inside it), then parks once spent."""
    ticks = 0

    async def sleep(seconds: float) -> None:
        nonlocal ticks
        if ticks >= len(lags):
            await asyncio.Event().wait()
        lag = lags[ticks]
        ticks += 1
        if gc_timer is not None and gc_at and ticks in gc_at:
            clock.t += seconds + lag - gc_at[ticks]
            gc_timer._on_gc("start", {"generation": 2})
            clock.t += gc_at[ticks]
            gc_timer._on_gc("stop", {"generation": 2})
        else:
            clock.t += seconds + lag
        await asyncio.sleep(0)

    return sleep, lambda: ticks


def test_quantiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0 and quantile(values, 0.99) == 99.0 and quantile(values, 1.0) == 100.0
    assert quantile([], 0.99) == 0.0 and quantile([7.0], 0.5) == 7.0


def test_the_window_keeps_the_last_window_s_and_counts_stalls() -> None:
    window = LagWindow(window_s=10.0, stall_s=0.2)
    assert window.add(0.0, 0.5) is True
    assert window.add(5.0, 0.001) is False
    window.add(9.0, 0.25)
    assert window.lags(9.0) == [0.001, 0.25, 0.5]
    assert window.lags(12.0) == [0.001, 0.25]  # the sample of t=0 aged out
    assert window.stalls_total == 2


async def test_the_monitor_reports_quantiles_and_stalls_of_its_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lags = [0.001] * 97 + [0.3, 0.5, 0.002]
    sleep, ticks = scripted(clock, lags)
    reports: list[LagSummary] = []
    monitor = LoopLagMonitor("player-shard-0", interval_s=0.1, stall_s=0.2, window_s=60.0, log_every_s=10.0,
                             report=reports.append, report_every_s=5.0, watchdog=False, clock=clock, sleep=sleep,
                             gc_timer=GcTimer(clock))
    with caplog.at_level(logging.WARNING, logger="podium.telemetry.loop_lag"):
        monitor.start()
        await until(lambda: ticks() == len(lags))
        await asyncio.sleep(0)
        summary = monitor.summary()
        await monitor.stop()
    assert summary.samples == 100 and summary.max_s == pytest.approx(0.5)
    assert summary.p50_s == pytest.approx(0.001) and summary.p99_s == pytest.approx(0.3)
    assert summary.stalls == 2 and summary.stalls_total == 2
    assert len(reports) >= 2 and reports[0].samples < 100  # every 5 s of (fake) time
    # Two stalls 0.5 s apart: one line, the second is counted for the next one.
    lines = [r.getMessage() for r in caplog.records if "LOOP_STALL" in r.getMessage()]
    assert len(lines) == 1 and "player-shard-0" in lines[0] and "held 300 ms" in lines[0]
    assert "did not see it" in lines[0]  # no watchdog here
    status = monitor.status()
    assert status["max_ms"] == 500.0 and status["p99_ms"] == 300.0 and status["stalls"] == 2
    assert status["last_stall"]["lag_ms"] == 500.0 and status["interval_ms"] == 100.0


async def test_stall_lines_are_rate_limited_and_say_how_many_were_left_out(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    monitor = LoopLagMonitor("gateway", interval_s=0.1, stall_s=0.2, log_every_s=10.0, watchdog=False,
                             clock=clock, gc_timer=GcTimer(clock))
    with caplog.at_level(logging.WARNING, logger="podium.telemetry.loop_lag"):
        for seq, at in enumerate([0.0, 1.0, 2.0, 3.0, 10.5], start=1):
            monitor.observe(seq, 1000.0 + at - 0.4, 1000.0 + at, 0.3)
    lines = [r.getMessage() for r in caplog.records if "LOOP_STALL" in r.getMessage()]
    assert len(lines) == 2
    assert "more stalls" not in lines[0] and "3 more stalls since the last line" in lines[1]
    assert monitor.window.stalls_total == 5


async def test_a_stall_that_gc_made_says_so() -> None:
    clock = Clock()
    timer = GcTimer(clock)
    lags = [0.001, 0.31, 0.001]
    sleep, ticks = scripted(clock, lags, timer, gc_at={2: 0.28})
    messages: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("test.loop_lag.gc")
    logger.addHandler(Capture())
    monitor = LoopLagMonitor("leaderboard-shard-1", watchdog=False, clock=clock, sleep=sleep, gc_timer=timer,
                             logger=logger)
    monitor.start()
    await until(lambda: ticks() == len(lags))
    await monitor.stop()
    assert len(messages) == 1
    assert "held 310 ms" in messages[0] and "GC paused it 280 ms of that" in messages[0]
    assert "generation 2" in messages[0]
    summary = monitor.summary()
    assert summary.gc_s == pytest.approx(0.28) and summary.gc_max_s == pytest.approx(0.28)
    assert monitor.status()["last_stall"]["gc_ms"] == 280.0


def test_the_gc_timer_times_real_collections() -> None:
    timer = GcTimer()
    timer.install()
    try:
        before = timer.passes
        gc.collect()
        assert timer.passes > before and timer.total_s > 0
    finally:
        timer.uninstall()
    assert timer._on_gc not in gc.callbacks


def test_stacks_name_podium_frames_innermost_first() -> None:
    def inner() -> list[str]:
        return stack_lines(sys._getframe(), podium=2, innermost=1)

    def outer() -> list[str]:
        return inner()

    lines = outer()
    assert lines[0].startswith("tests/unit/test_loop_lag.py:") and lines[0].endswith(" inner")
    assert lines[1].endswith(" outer")
    assert lines[2] == "..."  # pytest's frames below are left out


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a blocking call in a handler does


async def test_a_real_loop_held_on_purpose_shows_as_lag_and_a_stack(caplog: pytest.LogCaptureFixture) -> None:
    monitor = LoopLagMonitor("unit", interval_s=0.05, stall_s=0.1, log_every_s=10.0)
    with caplog.at_level(logging.WARNING, logger="podium.telemetry.loop_lag"):
        monitor.start()
        try:
            await asyncio.sleep(0.2)  # a few healthy ticks first

            async def handler() -> None:
                hold_the_loop(0.3)

            await asyncio.create_task(handler(), name="the-blocker")
            await until(lambda: monitor.window.stalls_total >= 1, timeout=5.0)
            summary = monitor.summary()
        finally:
            await monitor.stop()
    assert summary.max_s >= 0.25 and summary.stalls >= 1
    assert summary.p50_s < 0.05  # the healthy ticks
    lines = [r.getMessage() for r in caplog.records if "LOOP_STALL unit" in r.getMessage()]
    assert len(lines) == 1
    assert "the-blocker" in lines[0] and "handler" in lines[0]
    assert "tests/unit/test_loop_lag.py" in lines[0] and "hold_the_loop" in lines[0]
    assert not monitor.running


def test_the_reporter_exports_quantiles_and_counts_only_what_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    from podium.telemetry import metrics

    calls: list[tuple[str, str, float, dict[str, str]]] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def set(self, value: float, tags: dict[str, str]) -> None:
            calls.append((self.name, "set", value, tags))

        def inc(self, value: float, tags: dict[str, str]) -> None:
            calls.append((self.name, "inc", value, tags))

    names = ("podium_loop_lag_seconds", "podium_loop_stalls", "podium_gc_pause_seconds")
    monkeypatch.setattr(metrics, "_made", {n: Fake(n) for n in names})
    report = metrics.loop_reporter("player_shard", "player-shard-0")
    report(LagSummary(0.001, 0.3, 0.5, 600, 2, 2, 60.0, 0.1, 0.05, 0.4))
    report(LagSummary(0.001, 0.3, 0.5, 600, 2, 3, 60.0, 0.1, 0.05, 0.4))
    lags = {c[3]["quantile"]: c[2] for c in calls if c[0] == "podium_loop_lag_seconds"}
    assert lags == {"p50": 0.001, "p99": 0.3, "max": 0.5}
    assert all(c[3]["name"] == "player-shard-0" and c[3]["process_kind"] == "player_shard" for c in calls)
    assert [c[2] for c in calls if c[0] == "podium_loop_stalls"] == [2, 1]
    assert [c[2] for c in calls if c[0] == "podium_gc_pause_seconds"] == [0.4]  # nothing new the second time
