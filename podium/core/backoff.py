"""Per-key retry backoff for periodic work that can fail one item at a time
(a leaderboard shard's season closes): a failing key waits longer after each
failure, up to a cap, while the other keys go on. Ray-free, no I/O; times are
the caller's monotonic seconds."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class Backoff:
    first_s: float = 5.0
    most_s: float = 300.0
    _failures: dict[Hashable, tuple[int, float]] = field(default_factory=dict)  # key -> (failures, retry at)

    def due(self, key: Hashable, now_s: float) -> bool:
        """True unless the key failed and its wait has not passed."""
        held = self._failures.get(key)
        return held is None or now_s >= held[1]

    def failed(self, key: Hashable, now_s: float) -> float:
        """Record a failure; returns the wait before the key is due again
        (first_s, doubling per failure in a row, at most most_s)."""
        count = self._failures.get(key, (0, 0.0))[0] + 1
        wait = min(self.first_s * float(1 << min(count - 1, 30)), self.most_s)
        self._failures[key] = (count, now_s + wait)
        return wait

    def succeeded(self, key: Hashable) -> None:
        self._failures.pop(key, None)


async def run_each(keys: Iterable[K], step: Callable[[K], Awaitable[object]], backoff: Backoff, now_s: float,
                   timeout_s: float) -> list[tuple[K, BaseException, float]]:
    """Run `step` for each due key in turn, each under its own deadline: a key
    that fails or overruns is backed off and the next key still runs. Returns
    (key, error, wait) per failure, for the caller to log. A cancellation of
    the caller is not a failure: it propagates."""
    failures: list[tuple[K, BaseException, float]] = []
    for key in keys:
        if not backoff.due(key, now_s):
            continue
        try:
            await asyncio.wait_for(step(key), timeout_s)
        except Exception as exc:  # TimeoutError included; CancelledError is not an Exception
            failures.append((key, exc, backoff.failed(key, now_s)))
        else:
            backoff.succeeded(key)
    return failures
