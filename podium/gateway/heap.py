"""The gateway replica's cyclic-GC policy: long-lived objects (the imports,
and every open socket's handler, mailbox, tasks and protocol state) are frozen
out of the collector's reach every few seconds, so no collection walks them.
Without it a replica holding 6,000 sockets spent 0.6-2.0 s in each full
collection, every few seconds under 350 reads/s (LOOP_STALL, issue 23): every
ack, push and read on the replica waited.

A step runs a full collection of what is not frozen (cheap: only what was
allocated and survived since the last step) and freezes what survived. It is
a full one, not of the young generations only, so a cycle that outlived a
young collection and died before the step (a slow request's exception and
its traceback) is freed now, not frozen as garbage. Frozen objects that later become cyclic garbage are
not collected while frozen, so a compaction unfreezes, collects everything
once and freezes again: a pause as long as one old full collection (3-5 s on
a starved 2-core box with a large heap), so it is rare (podium/gateway/runtime.py:
at start, then every `gateway_gc_compact_s`). Measured: after 6,000 sockets
opened and closed, a compaction found ~6,000 objects of garbage, ~1 per
socket, so the frozen garbage grows slowly. No call here walks the frozen
heap (gc.get_freeze_count does: 0.1-0.4 s at 6,000 sockets)."""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class HeapFreezer:
    collect: Callable[[int], int] = gc.collect
    freeze: Callable[[], None] = gc.freeze
    unfreeze: Callable[[], None] = gc.unfreeze
    clock: Callable[[], float] = time.perf_counter
    freezes: int = 0
    compactions: int = 0
    last_step_ms: float = 0.0
    last_compaction_ms: float = 0.0
    collected: int = 0  # objects the steps and compactions found to be garbage, in all

    def step(self, compact: bool = False) -> None:
        """Collect what is not frozen and freeze what survived; or, if
        `compact`, unfreeze and collect everything first."""
        t0 = self.clock()
        if compact:
            self.unfreeze()
        found = self.collect(2)  # with the old heap frozen, this walks only what came since the last step
        self.collected += found
        self.freeze()
        took_ms = (self.clock() - t0) * 1000
        self.last_step_ms = took_ms
        self.freezes += 1
        if compact:
            self.compactions += 1
            self.last_compaction_ms = took_ms
            log.warning("gc compaction: %d objects of garbage collected in %.0f ms (the loop was held meanwhile)",
                        found, took_ms)

    def status(self) -> dict[str, float | int]:
        return {"freezes": self.freezes, "compactions": self.compactions, "last_step_ms": round(self.last_step_ms, 1),
                "last_compaction_ms": round(self.last_compaction_ms, 1), "collected": self.collected}
