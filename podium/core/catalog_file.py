"""The catalog file's rules (docs/protocol.md "Stats in the catalog"), pure: `parse_games` checks a whole file's
games and returns them normalized (defaults filled in, seasons' times parsed; parsing that again gives the same),
or raises CatalogFileError naming the game and the field of the first problem, so a bad file is refused whole. Called by
podium/persistence/catalog_store.import_catalog (hence `podium catalog import` and the demo catalog)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

from podium.core.periods import ALL_TIME, DAY, WEEK
from podium.core.stats import SAFE_INT, Op

# The same pattern as podium/gateway/frames.Ident (tests/unit/test_catalog_file.py holds them equal): ids in the
# catalog are ids that frames accept.
IDENT = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
RESERVED_GAME = "_all"  # podium/wire/messages.ALL_GAMES; migrations/003 refuses it too
MAX_POINTS = 2**31 - 1  # achievements.points is an integer column
PERIOD_NAMES = (ALL_TIME, DAY, WEEK)
ORDERS = ("desc", "asc")
AT_LEAST_OPS = (Op.INCR, Op.MAX, Op.SET)
AT_MOST_OPS = (Op.MIN, Op.SET)
_STAT_KEYS = {"stat_id", "name", "op", "min", "max"}
_THRESHOLD_KEYS = {"stat_id", "at_least", "at_most"}
_BOARD_KEYS = {"board_id", "name", "stat_id", "order", "periods", "seasons"}
_SEASON_KEYS = {"season_id", "start", "end"}


class CatalogFileError(ValueError):
    """A catalog that cannot be imported; the message names the game and the field."""


def parse_file(data: object) -> list[dict[str, Any]]:
    """A decoded catalog file: {"games": [...]} or a bare list of games."""
    games = data.get("games") if isinstance(data, Mapping) else data
    if not isinstance(games, list):
        raise CatalogFileError('the file must be {"games": [...]} or a list of games')
    return parse_games(games)


def parse_games(games: list[Any]) -> list[dict[str, Any]]:
    """Every game checked and normalized; the input is not changed."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, game in enumerate(games):
        if not isinstance(game, Mapping):
            raise CatalogFileError(f"games[{n}]: not an object")
        game_id = game.get("game_id")
        if not isinstance(game_id, str) or not IDENT.match(game_id):
            raise CatalogFileError(f"games[{n}]: game_id: {_IDENT_RULE}")
        if game_id == RESERVED_GAME:
            raise CatalogFileError(f"game {game_id}: game_id: {RESERVED_GAME} is reserved for the all-games board")
        if game_id in seen:
            raise CatalogFileError(f"game {game_id}: game_id: listed twice in the file")
        seen.add(game_id)
        out.append(_Game(game_id).parse(game))
    return out


_IDENT_RULE = "want 1-64 characters of A-Z a-z 0-9 _ . : @ -"


class _Game:
    """One game's checks; every message starts with `game <id>:`."""

    def __init__(self, game_id: str) -> None:
        self.game_id = game_id
        self.stats: dict[str, Op] = {}
        self.bounds: dict[str, tuple[int | None, int | None]] = {}

    def fail(self, where: str, why: str) -> CatalogFileError:
        return CatalogFileError(f"game {self.game_id}: {where}: {why}")

    def parse(self, game: Mapping[str, Any]) -> dict[str, Any]:
        stats = [self.stat(f"stats[{i}]", s) for i, s in enumerate(self.items(game, "stats"))]
        achievements = [self.achievement(f"achievements[{i}]", a)
                        for i, a in enumerate(self.items(game, "achievements"))]
        self.unique("achievements", [a["achievement_id"] for a in achievements])
        boards = [self.board(f"boards[{i}]", b) for i, b in enumerate(self.items(game, "boards"))]
        self.unique("boards", [b["board_id"] for b in boards])
        return {**game, "game_id": self.game_id, "name": self.name("name", game, self.game_id),
                "stats": stats, "achievements": achievements, "boards": boards}

    def items(self, game: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = game.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "want a list")
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{key}[{i}]", "want an object")
        return value

    def unique(self, key: str, ids: list[str]) -> None:
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise self.fail(key, f"{twice[0]} is listed twice")

    def ident(self, where: str, item: Mapping[str, Any], key: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not IDENT.match(value):
            raise self.fail(f"{where}.{key}", _IDENT_RULE)
        return value

    def name(self, where: str, item: Mapping[str, Any], default: str) -> str:
        value = item.get("name", default)
        if not isinstance(value, str) or not value:
            raise self.fail(where, "want a non-empty string")
        return value

    def integer(self, where: str, value: object, low: int = -SAFE_INT, high: int = SAFE_INT) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(where, "want an integer")
        if not low <= value <= high:
            raise self.fail(where, f"want an integer within [{low}, {high}]")
        return value

    def known_keys(self, where: str, item: Mapping[str, Any], keys: set[str]) -> None:
        unknown = sorted(set(item) - keys)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"not a field (want {', '.join(sorted(keys))})")

    def stat(self, where: str, stat: Mapping[str, Any]) -> dict[str, Any]:
        self.known_keys(where, stat, _STAT_KEYS)
        stat_id = self.ident(where, stat, "stat_id")
        where = f"stats[{stat_id}]"
        if stat_id in self.stats:
            raise self.fail(f"{where}.stat_id", "listed twice")
        op = stat.get("op")
        if op not in tuple(Op):
            raise self.fail(f"{where}.op", "want one of incr, max, min, set")
        low = None if stat.get("min") is None else self.integer(f"{where}.min", stat["min"])
        high = None if stat.get("max") is None else self.integer(f"{where}.max", stat["max"])
        if low is not None and high is not None and low > high:
            raise self.fail(f"{where}.min", f"{low} is above max {high}")
        self.stats[stat_id], self.bounds[stat_id] = Op(op), (low, high)
        return {"stat_id": stat_id, "name": self.name(f"{where}.name", stat, stat_id), "op": Op(op).value,
                "min": low, "max": high}

    def achievement(self, where: str, ach: Mapping[str, Any]) -> dict[str, Any]:
        achievement_id = self.ident(where, ach, "achievement_id")
        where = f"achievements[{achievement_id}]"
        points = self.integer(f"{where}.points", ach.get("points"), 0, MAX_POINTS)
        out = {**ach, "achievement_id": achievement_id, "name": self.name(f"{where}.name", ach, achievement_id),
               "points": points, "threshold": None}
        threshold = ach.get("threshold")
        if threshold is not None:
            out["threshold"] = self.threshold(f"{where}.threshold", threshold)
        return out

    def threshold(self, where: str, threshold: object) -> dict[str, Any]:
        if not isinstance(threshold, Mapping):
            raise self.fail(where, "want an object")
        self.known_keys(where, threshold, _THRESHOLD_KEYS)
        stat_id = threshold.get("stat_id")
        if not isinstance(stat_id, str) or stat_id not in self.stats:
            raise self.fail(f"{where}.stat_id", f"{stat_id!r} is not a stat of this game (its \"stats\")")
        op = self.stats[stat_id]
        has_least, has_most = threshold.get("at_least") is not None, threshold.get("at_most") is not None
        if has_least == has_most:
            raise self.fail(where, "want exactly one of at_least and at_most")
        key, allowed = ("at_least", AT_LEAST_OPS) if has_least else ("at_most", AT_MOST_OPS)
        if op not in allowed:
            raise self.fail(f"{where}.{key}", f"a threshold on a {op.value} stat must be "
                                              f"{'at_most' if key == 'at_least' else 'at_least'}")
        low, high = self.bounds[stat_id]
        value = self.integer(f"{where}.{key}", threshold[key],
                             -SAFE_INT if low is None else low, SAFE_INT if high is None else high)
        return {"stat_id": stat_id, "at_least": value if key == "at_least" else None,
                "at_most": value if key == "at_most" else None}

    def board(self, where: str, board: Mapping[str, Any]) -> dict[str, Any]:
        self.known_keys(where, board, _BOARD_KEYS)
        board_id = self.ident(where, board, "board_id")
        where = f"boards[{board_id}]"
        stat_id = board.get("stat_id")
        if not isinstance(stat_id, str) or stat_id not in self.stats:
            raise self.fail(f"{where}.stat_id", f"{stat_id!r} is not a stat of this game (its \"stats\")")
        order = board.get("order", "desc")
        if order not in ORDERS:
            raise self.fail(f"{where}.order", "want desc or asc")
        periods = board.get("periods", [ALL_TIME])
        if (not isinstance(periods, list) or not periods or any(p not in PERIOD_NAMES for p in periods)
                or len(set(periods)) != len(periods)):
            raise self.fail(f"{where}.periods", "want a non-empty list of all, day, week, each once")
        seasons = board.get("seasons", [])
        if not isinstance(seasons, list):
            raise self.fail(f"{where}.seasons", "want a list")
        parsed = [self.season(f"{where}.seasons[{i}]", s) for i, s in enumerate(seasons)]
        self.unique(f"{where}.seasons", [s["season_id"] for s in parsed])
        ordered = sorted(parsed, key=lambda s: s["start"])
        for earlier, later in pairwise(ordered):
            if later["start"] < earlier["end"]:
                raise self.fail(f"{where}.seasons[{later['season_id']}]",
                                f"overlaps season {earlier['season_id']}")
        return {"board_id": board_id, "name": self.name(f"{where}.name", board, board_id), "stat_id": stat_id,
                "order": order, "periods": list(periods), "seasons": parsed}

    def season(self, where: str, season: object) -> dict[str, Any]:
        if not isinstance(season, Mapping):
            raise self.fail(where, "want an object")
        self.known_keys(where, season, _SEASON_KEYS)
        season_id = self.ident(where, season, "season_id")
        where = f"{where.rpartition('[')[0]}[{season_id}]"
        starts_at, ends_at = self.time(f"{where}.start", season.get("start")), self.time(f"{where}.end",
                                                                                        season.get("end"))
        if not starts_at < ends_at:
            raise self.fail(f"{where}.end", "must be after start")
        return {"season_id": season_id, "start": starts_at, "end": ends_at}

    def time(self, where: str, value: object) -> datetime:
        """An RFC 3339 string from a file, or an aware datetime (a catalog already parsed, checked again)."""
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value
        try:
            if not isinstance(value, str) or "T" not in value.upper():
                raise ValueError
            at = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(where, "want an RFC 3339 time such as 2026-12-01T00:00:00Z") from None
        if at.tzinfo is None:
            raise self.fail(where, "needs a timezone (e.g. Z)")
        return at
