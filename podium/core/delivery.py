"""What a player shard may hold for the leaderboards, and what one delivery
call may carry. Ray-free; used by podium/core/journal_pipeline.py (routing, the
per-leaderboard backlog and the pair chunks) and the player shard's
`_deliver` (the byte limit).

- Every touched (player, game) pair goes to two places: its game's
  leaderboard shard, and the player's cross-game total (the item (player,
  ALL_GAMES)) to the shard of ALL_GAMES. A pair only stat rows touched (a stat
  board's value moved; no points, no region) goes to its game's shard alone:
  the total did not move. Each leaderboard shard is a lane of its own:
  delivered in order, independently of the others.
- The backlog is bounded per leaderboard shard: once `delivery_backlog_max`
  items wait for one shard, new unlocks that would add to it are answered
  `overloaded` instead of being journaled; unlocks for games on the other
  shards go on. Without that bound a leaderboard that is down lets it grow with
  every commit. The totals shard is in every unlock's path, so while it is
  full every unlock is refused.
- A delivery call carries one chunk: at most CHUNK_PAIRS items, and at most
  CHUNK_BYTES of encoded updates. The leaderboard closes a connection that
  sends a frame over channel.MAX_CALL, so a frame past it can never land."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import orjson

from podium.core.routing import shard_of
from podium.settings import DELIVERY_CHUNK_PAIRS_MAX
from podium.wire.messages import ALL_GAMES, MAX_CALL, ScoreUpdates

Pair = tuple[str, str]  # (player_id, game_id); (player_id, ALL_GAMES) is the player's total

# The two limits of one delivery call, which the receiver's frame cap (MAX_CALL, 64 MiB) must hold:
CHUNK_PAIRS = DELIVERY_CHUNK_PAIRS_MAX  # pairs per call (Settings.delivery_chunk_pairs, at most this): ~6 updates each
CHUNK_BYTES = MAX_CALL // 4  # encoded updates per leaderboard per call; a part past it is halved until it fits
# A chunk of CHUNK_PAIRS pairs with 64-character ids on every live board encodes to ~4.5 MiB
# (tests/unit/test_delivery.py builds it): the byte limit is a guard, not the usual cut.


def destinations(pair: Pair, leaderboard_shards: int) -> tuple[tuple[int, Pair], tuple[int, Pair]]:
    """Where a touched pair is delivered: (leaderboard shard, item) for its
    game's boards and for the player's total."""
    player_id, game_id = pair
    return ((shard_of(game_id, leaderboard_shards), pair),
            (shard_of(ALL_GAMES, leaderboard_shards), (player_id, ALL_GAMES)))


def admit(held: Mapping[int, int], limit: int, rows: Sequence[Iterable[int]]) -> list[bool]:
    """Which unlocks (in order; each as the leaderboard shards it adds an item
    to) may be journaled now: each whose shards all hold fewer than `limit`
    items when its turn comes, counting the ones admitted before it. So a shard
    holds at most `limit` plus one unlock's items; the others are answered
    `overloaded`, and a full shard refuses only the unlocks bound for it."""
    charged = dict(held)
    out: list[bool] = []
    for shards in rows:
        shards = list(shards)
        ok = all(charged.get(s, 0) < limit for s in shards)
        if ok:
            for s in shards:
                charged[s] = charged.get(s, 0) + 1
        out.append(ok)
    return out


def chunks(pairs: Iterable[Pair], size: int) -> list[set[Pair]]:
    """The pairs in consecutive chunks of at most `size` (one delivery call each)."""
    out: list[set[Pair]] = []
    chunk: set[Pair] = set()
    for pair in pairs:
        chunk.add(pair)
        if len(chunk) >= size:
            out.append(chunk)
            chunk = set()
    if chunk:
        out.append(chunk)
    return out


def columns(updates: ScoreUpdates) -> list[Sequence[object]]:
    """An `apply` call's payload (the leaderboard's `_apply_columns` reads it back)."""
    return [updates.player_ids, updates.game_ids, updates.regions, updates.points, updates.reached_us,
            updates.versions]


def encoded_size(updates: ScoreUpdates) -> int:
    return len(orjson.dumps(columns(updates)))


def fit(updates: ScoreUpdates, max_bytes: int = CHUNK_BYTES) -> list[ScoreUpdates]:
    """The updates in parts whose encoded payload is at most `max_bytes` each
    (usually one part: the pair limit keeps chunks well under it)."""
    if encoded_size(updates) <= max_bytes:
        return [updates]
    if len(updates) == 1:
        raise ValueError(f"one score update encodes to more than {max_bytes} bytes")
    half = (len(updates) + 1) // 2
    first, second = updates.slices(half)
    return fit(first, max_bytes) + fit(second, max_bytes)
