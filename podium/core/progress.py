"""A player's progress towards a game's threshold achievements, as the
player shard answers it (GET /v1/players/{p}/progress, the `progress` socket
query) and pushes it (`progress` events after an accepted stat update).
Ray-free: the catalog and the player's stat values are passed in."""
from __future__ import annotations

from collections.abc import Mapping

from podium.core import stats
from podium.core.catalog import Catalog


def body(catalog: Catalog, player_id: str, game_id: str, values: Mapping[str, int]) -> dict[str, object]:
    """Every threshold achievement of the game with the player's progress, and
    the player's value of every stat of the game (null before its first update)."""
    achievements: list[dict[str, object]] = []
    for stat_id in sorted(catalog.stats.get(game_id, {})):
        for threshold in catalog.thresholds_on(game_id, stat_id):
            achievements.append(_entry(threshold, values.get(stat_id)))
    achievements.sort(key=lambda a: str(a["achievement_id"]))
    return {"player_id": player_id, "game_id": game_id,
            "stats": {s: values.get(s) for s in sorted(catalog.stats.get(game_id, {}))},
            "achievements": achievements}


def events(catalog: Catalog, game_id: str, stat_id: str, before: int | None, after: int) -> list[dict[str, object]]:
    """The `progress` pushes of one accepted update: one per threshold on the
    stat whose progress moved (none if the value did not change, and none for a
    threshold met before and after)."""
    if before == after:
        return []
    out: list[dict[str, object]] = []
    for threshold in catalog.thresholds_on(game_id, stat_id):
        if threshold.met(before) and threshold.met(after):
            continue
        out.append({"type": "progress", "game_id": game_id, **_entry(threshold, after)})
    return out


def _entry(threshold: stats.Threshold, value: int | None) -> dict[str, object]:
    p = stats.progress(threshold, value)
    return {"achievement_id": threshold.achievement_id, "stat_id": threshold.stat_id, "value": p.value,
            "target": p.target, "percent": p.percent, "done": p.done}
