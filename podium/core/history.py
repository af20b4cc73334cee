"""A player's daily history: one entry per day of the window, oldest first,
zero-filled, with the per-game split. Pure: the player shard feeds it the
checkpointed rows and the days it holds in memory (those win: they are newer)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from podium.core.periods import DAY_US
from podium.core.player_state import from_us

DayRow = tuple[str, int, int, int]  # (game_id, day_start_us, points, unlocked)


def day_series(checkpointed: Iterable[DayRow], held: Iterable[DayRow], first_us: int,
               days: int) -> list[dict[str, Any]]:
    cells: dict[tuple[int, str], tuple[int, int]] = {}
    for rows in (checkpointed, held):  # held last: it overrides what the checkpoint had
        for game_id, start, points, unlocked in rows:
            if first_us <= start < first_us + days * DAY_US:
                cells[(start, game_id)] = (points, unlocked)
    series = []
    for i in range(days):
        start = first_us + i * DAY_US
        day = [(g, p, u) for (s, g), (p, u) in sorted(cells.items()) if s == start]
        series.append({"day_start": from_us(start).isoformat(), "points": sum(p for _, p, _ in day),
                       "unlocked": sum(u for _, _, u in day),
                       "games": [{"game_id": g, "points": p, "unlocked": u} for g, p, u in day]})
    return series
