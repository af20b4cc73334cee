import os
import subprocess
import sys

from actors.routing import shard_of


def test_shard_is_the_same_in_another_process_with_another_hash_seed() -> None:
    keys = [f"player-{i}" for i in range(50)]
    here = [shard_of(k, 7) for k in keys]
    code = "from actors.routing import shard_of; print([shard_of(f'player-{i}', 7) for i in range(50)])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.check_output([sys.executable, "-c", code], env=env, text=True)
    assert str(here) == there.strip()


def test_shards_spread_keys() -> None:
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"p{i}", 4)] += 1
    assert min(counts) > 800
