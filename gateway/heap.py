"""The gateway replica's cyclic-GC policy: long-lived objects (the imports,
and every open socket's handler, mailbox, tasks and protocol state) are frozen
out of the collector's reach every few seconds, so a full collection walks
only what was made since the last freeze. Without it a replica holding 6,000
sockets spent 0.6-2.0 s in each full collection, every few seconds under 350
reads/s (LOOP_STALL, issue 23): every ack, push and read on the replica waited.

Frozen objects that become cyclic garbage (a closed socket's task and
exception cycles) are not collected while frozen. So when the frozen heap has
grown by `growth` since the last compaction, a compaction unfreezes and
collects everything once (a pause as long as the old full collections, but
as rare as the heap's growth by that share) and freezes again: memory stays
within (1 + growth) x the live heap. Started by gateway/runtime.py."""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class HeapFreezer:
    growth: float = 0.5
    collect: Callable[[], int] = gc.collect
    freeze: Callable[[], None] = gc.freeze
    unfreeze: Callable[[], None] = gc.unfreeze
    frozen: Callable[[], int] = gc.get_freeze_count
    clock: Callable[[], float] = time.perf_counter
    baseline: int = 0  # frozen objects right after the last compaction
    freezes: int = 0
    compactions: int = 0
    last_step_ms: float = 0.0
    last_compaction_ms: float = 0.0
    collected: int = 0  # objects the compactions found to be garbage, in all

    def step(self) -> bool:
        """Collect what is not frozen, then freeze what is left; a compaction
        instead when the frozen heap outgrew the baseline. True if it compacted."""
        t0 = self.clock()
        compact = self.baseline > 0 and self.frozen() > (1 + self.growth) * self.baseline
        if compact:
            self.unfreeze()
            found = self.collect()
            self.collected += found
        else:
            self.collect()  # only the unfrozen objects: what was made since the last step
        self.freeze()
        took_ms = (self.clock() - t0) * 1000
        self.last_step_ms = took_ms
        self.freezes += 1
        if compact or not self.baseline:
            self.baseline = max(1, self.frozen())
        if compact:
            self.compactions += 1
            self.last_compaction_ms = took_ms
            log.info("gc compaction: %d objects of garbage collected in %.0f ms; %d objects frozen",
                     found, took_ms, self.baseline)
        return compact

    def status(self) -> dict[str, float | int]:
        return {"frozen": self.frozen(), "baseline": self.baseline, "freezes": self.freezes,
                "compactions": self.compactions, "last_step_ms": round(self.last_step_ms, 1),
                "last_compaction_ms": round(self.last_compaction_ms, 1), "collected": self.collected}
