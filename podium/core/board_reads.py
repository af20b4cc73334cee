"""Leaderboard reads as plain functions over Standings, and a batch of them
answered in one go: the leaderboard shard answers a whole list of reads per
actor call (the gateway gathers them per window), each read succeeding or
failing alone. Ray-free. On a stat board every read is the same, in the
board's order (asc or desc); entries carry the stat's real `value` where an
achievement board's carry `points`, and the answer names the `order`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from podium.core.board_order import Order
from podium.core.periods import describe
from podium.core.player_state import from_us
from podium.core.ranking import Board, Ranked
from podium.core.standings import GLOBAL, Standings
from podium.wire.errors import InvalidRequest, PodiumError

Read = tuple[str, tuple[Any, ...]]  # (kind, arguments): ("rank", (board, region, player_id)), ...
Answer = tuple[bool, Any]  # (True, body) or (False, (error code, detail))
Encoded = tuple[bool, bytes | tuple[str, str]]  # the same with the body as JSON bytes (the read channel's form)


def _field(order: Order) -> str:
    return "value" if order.is_stat else "points"


def _head(standings: Standings, board: str, region: str | None) -> tuple[dict[str, object], str]:
    """What every answer starts with (the board described, the region), and
    what its entries call their value."""
    order = standings.order_of(board)
    head = {**describe(board), "region": region}
    if order.is_stat:
        head["order"] = order.name
    return head, _field(order)


def _entry(r: Ranked, field: str = "points") -> dict[str, object]:
    return {"rank": r.rank, "player_id": r.player_id, field: r.points,
            "reached_at": from_us(r.reached_us).isoformat()}


def page(standings: Standings, board: str, region: str | None, limit: int, cursor: str | None) -> dict[str, object]:
    head, field = _head(standings, board, region)
    held = standings.board(board, region or GLOBAL) or Board(order=standings.order_of(board))
    entries, next_cursor, prev_cursor = held.page(limit, cursor)
    return {**head, "total": len(held), "entries": [_entry(e, field) for e in entries],
            "next_cursor": next_cursor, "prev_cursor": prev_cursor}


def rank(standings: Standings, board: str, region: str | None, player_id: str) -> dict[str, object]:
    head, field = _head(standings, board, region)
    s = standings.standing(board, player_id, region or GLOBAL)
    return {**head, "player_id": player_id, "rank": s.rank, field: s.points,
            "reached_at": from_us(s.reached_us).isoformat(), "total": s.total, "percentile": s.percentile}


def around(standings: Standings, board: str, region: str | None, player_id: str, k: int) -> dict[str, object]:
    head, field = _head(standings, board, region)
    entries = standings.around(board, player_id, k, region or GLOBAL)
    held = standings.board(board, region or GLOBAL)
    return {**head, "player_id": player_id, "total": len(held or ()),
            "entries": [_entry(e, field) for e in entries]}


def among(standings: Standings, board: str, region: str | None, player_ids: list[str]) -> dict[str, object]:
    head, field = _head(standings, board, region)
    entries = standings.ranked_together(board, player_ids, region or GLOBAL)
    return {**head, "entries": [_entry(e, field) for e in entries]}


def ahead(standings: Standings, board: str, region: str | None, value: int) -> dict[str, object]:
    """How many entries rank ahead of a value (better: greater on a desc
    board, lower on an asc one) and how many hold it: the rank a player
    reaching it now would get is ahead + holding + 1."""
    head, field = _head(standings, board, region)
    held = standings.board(board, region or GLOBAL) or Board(order=standings.order_of(board))
    if not isinstance(value, int) or isinstance(value, bool) or not held.order.accepts(value):
        raise InvalidRequest(f"{value!r} is not a value this board holds")
    return {**head, field: value, "ahead": held.ahead_of(value), "holding": held.holding(value), "total": len(held)}


def friends(standings: Standings, board: str, region: str | None, player_id: str, friend_ids: list[str],
            k: int) -> dict[str, object]:
    """A player ranked among their friends: every ranked friend, the player's
    place (None without a score) and the k entries either side of it."""
    head, field = _head(standings, board, region)
    entries = standings.ranked_together(board, [player_id, *friend_ids], region or GLOBAL)
    mine = next((e.rank for e in entries if e.player_id == player_id), None)
    near = [] if mine is None else entries[max(0, mine - 1 - k):mine + k]
    return {**head, "player_id": player_id, "friends": len(friend_ids),
            "rank": mine, "total": len(entries), "entries": [_entry(e, field) for e in entries],
            "around": [_entry(e, field) for e in near]}


def regions(standings: Standings, board: str) -> dict[str, object]:
    """A board's regions, largest first, and the size of its global board."""
    held = standings.regions(board)
    return {**describe(board), "total": len(standings.board(board) or ()), "regions": [
        {"region": region, "total": total} for region, total in sorted(held.items(), key=lambda kv: (-kv[1], kv[0]))]}


READS: dict[str, Callable[..., dict[str, object]]] = {"page": page, "rank": rank, "around": around, "among": among,
                                                      "friends": friends, "regions": regions, "ahead": ahead}


def answer_all(standings: Standings, reads: list[Read]) -> list[Answer]:
    """Each read's body, or its domain error as (code, detail); one bad read
    never fails the others."""
    out: list[Answer] = []
    for kind, args in reads:
        try:
            read = READS.get(kind)
            if read is None:
                raise InvalidRequest(f"no read called {kind!r}")
            out.append((True, read(standings, *args)))
        except PodiumError as exc:
            out.append((False, (exc.code, str(exc))))
    return out


def answer_encoded(standings: Standings, reads: list[Read]) -> list[Encoded]:
    """`answer_all` with each body serialized here, once: the gateway splices
    the bytes into its HTTP and socket responses unparsed."""
    return [(True, orjson.dumps(body)) if ok else (False, body) for ok, body in answer_all(standings, reads)]
