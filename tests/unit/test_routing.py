import os
import subprocess
import sys

from podium.core.routing import shard_of

# xxh64 of the id, modulo the shard count (recorded 2026-11-23; never to change for stored data)
PINNED_PLAYERS = [5, 8, 5, 5, 3, 4, 12, 14]
PINNED_GAMES = [3, 2, 2]


def test_shard_is_the_same_in_another_process_with_another_hash_seed() -> None:
    keys = [f"player-{i}" for i in range(50)]
    here = [shard_of(k, 7) for k in keys]
    code = "from podium.core.routing import shard_of; print([shard_of(f'player-{i}', 7) for i in range(50)])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.check_output([sys.executable, "-c", code], env=env, text=True)
    assert str(here) == there.strip()


def test_shards_spread_keys() -> None:
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"p{i}", 4)] += 1
    assert min(counts) > 800


def test_known_ids_keep_their_shards() -> None:
    # Stored players and games live on these shards: a changed hash would silently move them.
    assert [shard_of(f"player-{i}", 16) for i in range(8)] == PINNED_PLAYERS
    assert [shard_of(g, 4) for g in ("arena", "puzzle", "_all")] == PINNED_GAMES
