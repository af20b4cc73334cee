"""The public catalog read (`GET /v1/games`) built from the catalog rows and the
Catalog: pure, so the answer's shape is tested without a cluster. Since issue 25
each game also lists its stats and stat boards (with seasons), so a client such
as the board page can offer a game's stat boards without knowing them beforehand."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from podium.core.catalog import Catalog
from podium.core.player_state import from_us


def games_body(rows: Iterable[Mapping[str, Any]], catalog: Catalog) -> dict[str, Any]:
    """`{"games": [...]}` in the rows' order: each game's achievements, stats and boards
    (boards and stats by id; seasons by start, with their RFC 3339 start and end)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        game = out.get(r["game_id"])
        if game is None:
            game = out[r["game_id"]] = {"game_id": r["game_id"], "name": r["game_name"], "achievements": [],
                                        **stats_and_boards(catalog, r["game_id"])}
        if r["achievement_id"] is not None:
            game["achievements"].append({"achievement_id": r["achievement_id"], "name": r["name"],
                                         "points": r["points"]})
    return {"games": list(out.values())}


def stats_and_boards(catalog: Catalog, game_id: str) -> dict[str, list[dict[str, Any]]]:
    """A game's stats and stat boards as the catalog read shows them (both empty for a game without stats)."""
    stats = catalog.stats.get(game_id, {})
    boards = catalog.boards.get(game_id, {})
    return {
        "stats": [{"stat_id": s.stat_id, "name": s.name} for _, s in sorted(stats.items())],
        "boards": [{"board_id": b.board_id, "name": b.name, "stat_id": b.stat_id, "order": b.order,
                    "periods": list(b.periods),
                    "seasons": [{"season_id": s, "start": from_us(start).isoformat(), "end": from_us(end).isoformat()}
                                for s, start, end in b.seasons]}
                   for _, b in sorted(boards.items())],
    }
