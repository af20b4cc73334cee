"""Decides, before any I/O, what a player shard does with each unlock of a
batch: reject (unknown game or achievement), mark a duplicate within the batch,
or send it to the journal with its points."""
from __future__ import annotations

from dataclasses import dataclass

from podium.core.catalog import Catalog
from podium.wire.errors import PodiumError
from podium.wire.messages import AckStatus, UnlockBatch


@dataclass(frozen=True, slots=True)
class IntakePlan:
    statuses: list[AckStatus | None]  # None: waiting on the journal
    reasons: list[str | None]
    journal_rows: list[int]  # indices into the batch, to insert
    points: list[int]  # points of each journal row, aligned with journal_rows

    @property
    def unknown_seen(self) -> bool:
        return any(r is not None and r.startswith("unknown_") for r in self.reasons)


def plan_intake(batch: UnlockBatch, catalog: Catalog) -> IntakePlan:
    n = len(batch)
    statuses: list[AckStatus | None] = [None] * n
    reasons: list[str | None] = [None] * n
    rows: list[int] = []
    points: list[int] = []
    first_index: dict[tuple[str, str, str], int] = {}
    for i in range(n):
        key = (batch.player_ids[i], batch.game_ids[i], batch.achievement_ids[i])
        try:
            pts = catalog.points_of(key[1], key[2])
        except PodiumError as exc:
            statuses[i] = AckStatus.REJECTED
            reasons[i] = exc.code
            continue
        if key in first_index:
            statuses[i] = AckStatus.DUPLICATE
            continue
        first_index[key] = i
        rows.append(i)
        points.append(pts)
    return IntakePlan(statuses, reasons, rows, points)
