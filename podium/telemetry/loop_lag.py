"""Event-loop lag: how late a timer fires on this process's asyncio loop, and
what held the loop when it fired very late. Pure (no Ray): the shells
(podium/actors/shell.py, podium/gateway/runtime.py) start one per process and export it.

A task sleeps `interval_s` over and over and records how late it woke (lag).
Everything on the loop - acks, pushes, reads - waits at least that long too
when the loop is held, so the lag's p99 / max over the last `window_s` say
whether the loop itself is where latency goes. A stall of D seconds shows as
a lag between D - interval_s and D (the timer was due somewhere inside it).

Lags of `stall_s` or more are stalls. A watchdog thread wakes when the next
tick is `stall_s` overdue; if it still has not run, it takes the loop
thread's stack (sys._current_frames) and the task running, which the loop
logs when it wakes, at most once per `log_every_s` (`LOOP_STALL` lines).
While the loop is healthy the watchdog wakes once per tick or two, finds the
tick ran, and sleeps again. It needs the GIL to look: a stall inside one C
call holding the GIL (a cyclic GC pass, a huge sort or dumps) is seen only
when it ends, so the line then says the stack was not taken; GC pauses are
timed through gc.callbacks and the line says how much of the stall they were."""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the checkout: Podium's own files are named relative to this
PODIUM_DIRS = ("podium/",)
NOTABLE_GC_S = 0.001  # GC passes at least this long are kept one by one (attribution); all are summed
MAX_SAMPLES = 100_000  # a window's bound whatever the interval
STILL_STALLED_AFTER_S = 5.0  # the watchdog logs by itself when the loop is held this long (it may never wake)


@dataclass(frozen=True)
class LagSummary:
    """The last `window_s` of one loop: lag quantiles, stalls, GC pauses (seconds)."""
    p50_s: float
    p99_s: float
    max_s: float
    samples: int
    stalls: int  # lags >= stall_s in the window
    stalls_total: int  # since the monitor started
    window_s: float
    gc_s: float  # GC pause time in the window (passes >= NOTABLE_GC_S)
    gc_max_s: float
    gc_total_s: float  # every GC pass since the monitor started

    def as_dict(self) -> dict[str, float | int]:
        """For status bodies: milliseconds, rounded."""
        return {"p50_ms": _ms(self.p50_s), "p99_ms": _ms(self.p99_s), "max_ms": _ms(self.max_s),
                "stalls": self.stalls, "stalls_total": self.stalls_total, "samples": self.samples,
                "window_s": self.window_s, "gc_ms": _ms(self.gc_s), "gc_max_ms": _ms(self.gc_max_s)}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list (0.0 if empty)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class LagWindow:
    """Lag samples of the last `window_s` seconds (bounded), and stall counts."""

    def __init__(self, window_s: float, stall_s: float) -> None:
        self.window_s = window_s
        self.stall_s = stall_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)  # (when, lag)
        self.stalls_total = 0

    def add(self, at: float, lag: float) -> bool:
        """Record a lag measured at `at`; True if it is a stall."""
        self._samples.append((at, lag))
        self._prune(at)
        stalled = lag >= self.stall_s
        self.stalls_total += stalled
        return stalled

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def lags(self, now: float) -> list[float]:
        self._prune(now)
        return sorted(lag for _, lag in self._samples)


class GcTimer:
    """Times the cyclic GC's passes through gc.callbacks (process-wide: one
    per process, installed while some monitor uses it). ~0.5 us per pass."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._users = 0
        self._began = 0.0
        self.total_s = 0.0
        self.passes = 0
        self.notable: deque[tuple[float, float, int]] = deque(maxlen=4096)  # (ended, seconds, generation)

    def install(self) -> None:
        self._users += 1
        if self._users == 1:
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        self._users -= 1
        if self._users == 0 and self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = self._clock()
            return
        ended = self._clock()
        took = ended - self._began
        self.total_s += took
        self.passes += 1
        if took >= NOTABLE_GC_S:
            self.notable.append((ended, took, info.get("generation", -1)))

    def between(self, start: float, end: float) -> tuple[float, float, int]:
        """Notable passes that ended in [start, end]: (seconds, longest, oldest generation)."""
        total = longest = 0.0
        oldest = -1
        for ended, took, generation in reversed(self.notable):
            if ended < start:
                break
            if ended <= end:
                total += took
                longest = max(longest, took)
                oldest = max(oldest, generation)
        return total, longest, oldest


_process_gc: GcTimer | None = None


def process_gc_timer() -> GcTimer:
    global _process_gc
    if _process_gc is None:
        _process_gc = GcTimer()
    return _process_gc


@dataclass(frozen=True)
class Sample:
    """What the loop thread was running when the watchdog looked."""
    seq: int  # the tick it was overdue
    overdue_s: float  # how late that tick was when it looked
    task: str | None
    stack: list[str]  # innermost first, "path:line function"


class LoopLagMonitor:
    """One loop's lag monitor (see the module docstring). `start` on the loop
    it watches; `stop` before the loop goes. `report` gets a summary every
    `report_every_s` (the shells export it as metrics)."""

    def __init__(self, name: str, *, interval_s: float = 0.1, stall_s: float = 0.2, window_s: float = 60.0,
                 log_every_s: float = 10.0, report: Callable[[LagSummary], None] | None = None,
                 report_every_s: float = 5.0, watchdog: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 gc_timer: GcTimer | None = None, logger: logging.Logger = log) -> None:
        assert interval_s > 0 and stall_s > 0 and window_s > 0
        self.name = name
        self.interval_s = interval_s
        self.stall_s = stall_s
        self.log_every_s = log_every_s
        self.report = report
        self.report_every_s = report_every_s
        self.window = LagWindow(window_s, stall_s)
        self._watchdog = watchdog
        self._clock = clock
        self._sleep = sleep
        self._gc = gc_timer if gc_timer is not None else process_gc_timer()
        self._log = logger
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._beat: tuple[int, float] = (0, math.inf)  # (tick, when it is due): read by the watchdog
        self._sample: Sample | None = None  # written by the watchdog
        self._logged_at = -math.inf
        self._unlogged = 0  # stalls not logged since the last line (rate limit)
        self.last_stall: dict[str, Any] | None = None  # the latest stall, for status bodies
        self._last_stall_at = 0.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start watching the running loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._gc.install()
        self._task = self._loop.create_task(self._run(), name=f"loop lag monitor {self.name}")
        if self._watchdog:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._watch, name=f"loop watchdog {self.name}", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._gc.uninstall()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def summary(self) -> LagSummary:
        now = self._clock()
        lags = self.window.lags(now)
        gc_s, gc_max, _ = self._gc.between(now - self.window.window_s, now)
        return LagSummary(quantile(lags, 0.5), quantile(lags, 0.99), lags[-1] if lags else 0.0, len(lags),
                          sum(lag >= self.stall_s for lag in lags), self.window.stalls_total, self.window.window_s,
                          gc_s, gc_max, self._gc.total_s)

    def status(self) -> dict[str, Any]:
        """For a status or health body: the summary in ms, and the latest stall."""
        last = self.last_stall and {**self.last_stall, "ago_s": round(self._clock() - self._last_stall_at, 1)}
        return {**self.summary().as_dict(), "interval_ms": _ms(self.interval_s), "stall_ms": _ms(self.stall_s),
                "last_stall": last}

    async def _run(self) -> None:
        seq = 0
        next_report = self._clock() + self.report_every_s
        while True:
            seq += 1
            began = self._clock()
            due = began + self.interval_s
            self._beat = (seq, due)
            await self._sleep(self.interval_s)
            now = self._clock()
            self.observe(seq, began, now, max(0.0, now - due))
            if self.report is not None and now >= next_report:
                next_report = now + self.report_every_s
                try:
                    self.report(self.summary())
                except Exception:
                    self._log.warning("loop lag of %s not reported", self.name, exc_info=True)

    def observe(self, seq: int, began: float, now: float, lag: float) -> None:
        """One tick: it slept from `began` and woke `lag` late at `now`."""
        if not self.window.add(now, lag):
            return
        sample = self._sample if self._sample is not None and self._sample.seq == seq else None
        gc_s, gc_max, generation = self._gc.between(began, now)
        self._last_stall_at = now
        self.last_stall = {"lag_ms": _ms(lag), "gc_ms": _ms(gc_s), "task": sample.task if sample else None,
                           "stack": sample.stack[:6] if sample else None}
        if now - self._logged_at < self.log_every_s:
            self._unlogged += 1
            return
        self._log.warning("%s", self.stall_line(lag, sample, gc_s, gc_max, generation))
        self._logged_at = now
        self._unlogged = 0

    def stall_line(self, lag: float, sample: Sample | None, gc_s: float, gc_max: float, generation: int) -> str:
        parts = [f"LOOP_STALL {self.name}: the loop was held {lag * 1000:.0f} ms (a {self.interval_s * 1000:.0f} ms "
                 f"timer fired that late)"]
        if gc_s:
            parts.append(f"GC paused it {gc_s * 1000:.0f} ms of that (longest pass {gc_max * 1000:.0f} ms, "
                         f"generation {generation})")
        else:
            parts.append("no GC pass over 1 ms in it")
        if sample is not None:
            task = sample.task or "(none: a bare callback)"
            parts.append(f"at {sample.overdue_s * 1000:.0f} ms overdue it was running task {task}; stack, "
                         "innermost first: " + " < ".join(sample.stack))
        else:
            parts.append("the watchdog did not see it (one C call held the GIL: GC, a large sort or encode - or "
                         "it was shorter than the watch)")
        if self._unlogged:
            parts.append(f"{self._unlogged} more stalls since the last line")
        return "; ".join(parts)

    # ---- the watchdog thread --------------------------------------------------
    def _watch(self) -> None:
        looked = 0  # the tick whose stack was taken last
        warned = 0
        while not self._stopping.is_set():
            seq, due = self._beat
            wait = due + self.stall_s - self._clock()
            if wait > 0:
                self._stopping.wait(min(wait, self.interval_s + self.stall_s))  # not started yet: due is inf
                continue
            if self._beat[0] != seq:
                continue  # it ran meanwhile
            overdue = self._clock() - due
            if looked != seq:
                looked = seq
                try:
                    self._sample = self.take_sample(seq, overdue)
                except Exception:  # never let the watchdog die
                    self._log.debug("no stack sample", exc_info=True)
            elif overdue >= STILL_STALLED_AFTER_S and warned != seq and self._sample is not None:
                warned = seq
                self._log.warning("LOOP_STALL %s: the loop has been held %.1f s so far; running task %s; stack, "
                                  "innermost first: %s", self.name, overdue, self._sample.task,
                                  " < ".join(self.take_sample(seq, overdue).stack))
            self._stopping.wait(min(self.stall_s, 0.1))

    def take_sample(self, seq: int, overdue_s: float) -> Sample:
        frame = sys._current_frames().get(self._loop_thread)
        task = None
        if self._loop is not None:
            current = asyncio.current_task(self._loop)
            if current is not None:
                task = f"{current.get_name()} {_coro_name(current)}"
        return Sample(seq, overdue_s, task, stack_lines(frame))


def _coro_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or type(coro).__name__


def stack_lines(frame: FrameType | None, *, podium: int = 6, innermost: int = 3) -> list[str]:
    """The `innermost` frames of a stack, then the innermost `podium` frames of
    Podium's own code below them (the caller that matters), innermost first;
    a run of frames left out shows as '...'."""
    frames: list[tuple[str, int, str, bool]] = []
    while frame is not None and len(frames) < 500:
        path, mine = _where(frame.f_code.co_filename)
        frames.append((path, frame.f_lineno, frame.f_code.co_name, mine))
        frame = frame.f_back
    lines: list[str] = []
    kept_podium = 0
    skipped = False
    for i, (path, line, function, mine) in enumerate(frames):
        if i < innermost or (mine and kept_podium < podium):
            if skipped:
                lines.append("...")
                skipped = False
            lines.append(f"{path}:{line} {function}")
            kept_podium += mine
        else:
            skipped = True
    if skipped:
        lines.append("...")
    return lines


@functools.lru_cache(maxsize=4096)
def _where(filename: str) -> tuple[str, bool]:
    """A file's short name, and whether it is Podium's (tests count: they are how a stall is made on purpose)."""
    try:
        relative = Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        parts = Path(filename).parts
        for i in range(len(parts) - 1, -1, -1):  # the package path: after site-packages or python3.X
            if parts[i] == "site-packages" or parts[i].startswith("python3"):
                return "/".join(parts[i + 1:]), False
        return filename, False
    return relative, relative.startswith((*PODIUM_DIRS, "tests/", "load/"))
