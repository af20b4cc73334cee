"""What a player shard may hold for the leaderboards, and what one delivery
call may carry. Ray-free; used by actors/journal_pipeline.py (the backlog and
the pair chunks) and the player shard's `_deliver` (the byte limit).

- The backlog (pairs journaled and not yet on their leaderboard) is bounded:
  once `delivery_backlog_max` pairs wait, new unlocks are answered
  `overloaded` instead of being journaled. Without that bound a leaderboard
  that is down lets it grow with every commit.
- A delivery call carries one chunk: at most CHUNK_PAIRS pairs, and at most
  CHUNK_BYTES of encoded updates. The leaderboard closes a connection that
  sends a frame over channel.MAX_CALL, so a frame past it can never land."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from actors.channel import MAX_CALL
from actors.messages import ScoreUpdates
from persistence.settings import DELIVERY_CHUNK_PAIRS_MAX

Pair = tuple[str, str]  # (player_id, game_id)

# The two limits of one delivery call, which the receiver's frame cap (MAX_CALL, 64 MiB) must hold:
CHUNK_PAIRS = DELIVERY_CHUNK_PAIRS_MAX  # pairs per call (Settings.delivery_chunk_pairs, at most this): ~6 updates each
CHUNK_BYTES = MAX_CALL // 4  # encoded updates per leaderboard per call; a part past it is halved until it fits
# A chunk of CHUNK_PAIRS pairs with 64-character ids on every live board encodes to ~4.5 MiB
# (tests/unit/test_delivery.py builds it): the byte limit is a guard, not the usual cut.


def admit(backlog: int, limit: int, sizes: Sequence[int]) -> int:
    """How many of the queued batches (in order) may be journaled now: each
    whose turn comes while fewer than `limit` pairs await delivery. A batch of
    n unlocks adds at most n pairs, so the backlog stays under limit plus one
    batch; the batches not taken are answered `overloaded` at once."""
    taken = 0
    for size in sizes:
        if backlog >= limit:
            break
        backlog += size
        taken += 1
    return taken


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
