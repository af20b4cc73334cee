"""Decides, before any I/O, what a player shard does with each item of a
batch: reject it (unknown game, achievement or stat; wrong operator; out of
bounds), mark it a duplicate (a repeat within the batch, or a stat update the
journal already holds), or send it to the journal: an unlock with its points,
a stat update with the value it leaves and the threshold unlocks it crosses.

Stat updates are planned in batch order, which is the order of their journal
seqs: each is checked against the value the updates before it in the batch
left, so two updates of one stat in one round apply one after the other."""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from podium.core import stats
from podium.core.catalog import Catalog
from podium.wire.errors import PodiumError
from podium.wire.messages import AckStatus, Key, UnlockBatch

Current = Callable[[str, str, str], int | None]  # (player, game, stat) -> the value held before this batch
Unlocked = Callable[[str, str, str], bool]  # (player, game, achievement) -> known to be journaled already


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold achievement unlocked by the stat update at `index`."""

    index: int
    achievement_id: str
    points: int


@dataclass(frozen=True, slots=True)
class IntakePlan:
    statuses: list[AckStatus | None]  # None: waiting on the journal
    reasons: list[str | None]
    journal_rows: list[int]  # indices of unlock items, to insert
    points: list[int]  # points of each journal row, aligned with journal_rows
    stat_rows: list[int] = field(default_factory=list)  # indices of stat updates to insert, in batch order
    values_after: list[int] = field(default_factory=list)  # aligned with stat_rows
    crossings: list[Crossing] = field(default_factory=list)  # in batch order

    @property
    def unknown_seen(self) -> bool:
        return any(r is not None and r.startswith("unknown_") for r in self.reasons)

    @property
    def rows(self) -> list[int]:
        """Every item the journal would insert a row for, in batch order."""
        if not self.stat_rows:
            return self.journal_rows
        return sorted(self.journal_rows + self.stat_rows)


def _none(player_id: str, game_id: str, stat_id: str) -> int | None:
    return None


def _never(player_id: str, game_id: str, achievement_id: str) -> bool:
    return False


def plan_intake(batch: UnlockBatch, catalog: Catalog, current: Current = _none,
                journaled: Collection[int] = (), unlocked: Unlocked = _never) -> IntakePlan:
    """`current`: the values before the batch; `journaled`: indices of stat
    updates whose event id the journal holds already (answered `duplicate`,
    whatever else they carry, and left out of the value chain); `unlocked`:
    the threshold unlocks known journaled. A stat update whose value meets a
    threshold not known unlocked unlocks it, met before or not (a threshold
    added or lowered later still unlocks). One the journal holds after all
    is skipped by the unlock's unique key; `unlocked` only spares that insert."""
    n = len(batch)
    statuses: list[AckStatus | None] = [None] * n
    reasons: list[str | None] = [None] * n
    rows: list[int] = []
    points: list[int] = []
    stat_rows: list[int] = []
    values_after: list[int] = []
    crossings: list[Crossing] = []
    first_index: dict[Key, int] = {}
    running: dict[tuple[str, str, str], int] = {}  # values as this batch's planned updates leave them
    for i, key in enumerate(batch.keys()):
        if batch.is_stat(i):
            if i in journaled or key in first_index:
                statuses[i] = AckStatus.DUPLICATE
                first_index.setdefault(key, i)
                continue
            try:
                after, crossed = _plan_stat(batch, i, catalog, current, running, unlocked)
            except PodiumError as exc:
                statuses[i] = AckStatus.REJECTED
                reasons[i] = exc.code
                continue
            first_index[key] = i
            stat_rows.append(i)
            values_after.append(after)
            for achievement_id, pts in crossed:
                unlock = (batch.player_ids[i], batch.game_ids[i], achievement_id)
                if unlock not in first_index:  # an unlock item or a crossing of this round has it already
                    first_index[unlock] = i
                    crossings.append(Crossing(i, achievement_id, pts))
            continue
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
    return IntakePlan(statuses, reasons, rows, points, stat_rows, values_after, crossings)


def _plan_stat(batch: UnlockBatch, i: int, catalog: Catalog, current: Current,
               running: dict[tuple[str, str, str], int], unlocked: Unlocked) -> tuple[int, list[tuple[str, int]]]:
    """The value stat update i leaves, and the (achievement, points) it unlocks;
    raises the PodiumError that rejects it."""
    player_id, game_id = batch.player_ids[i], batch.game_ids[i]
    stat_id, op, value = str(batch.stat_ids[i]), str(batch.ops[i]), batch.values[i]
    stat = catalog.stat_of(game_id, stat_id)
    held = (player_id, game_id, stat_id)
    before = running[held] if held in running else current(player_id, game_id, stat_id)
    after = stats.apply(stat, before, op, int(value or 0))
    running[held] = after
    crossed: list[tuple[str, int]] = []
    due = stats.due(catalog.thresholds_on(game_id, stat_id), after,
                    lambda achievement_id: unlocked(player_id, game_id, achievement_id))
    for achievement_id in due:
        try:
            crossed.append((achievement_id, catalog.points_of(game_id, achievement_id)))
        except PodiumError:  # a catalog names only its own achievements as thresholds: never seen
            continue
    return after, crossed
