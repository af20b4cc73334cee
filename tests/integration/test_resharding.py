"""Resharding at runtime, in a process and cluster of its own
(tests/integration/resharding.py): 2 -> 4 -> 1 player shards and 1 -> 3
leaderboard shards while unlocks and stat updates stream; every acked unlock and
stat update counted once."""
from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.timeout(840)  # two clusters on two cores: it took 2-5 min here, more on a loaded CI box
def test_resharding_while_unlocks_stream_counts_every_acked_unlock_once(cluster) -> None:
    out = subprocess.run([sys.executable, "-m", "tests.integration.resharding", cluster.admin_url,
                          cluster.settings.redis_url], capture_output=True, text=True, timeout=780)
    assert out.returncode == 0, out.stderr[-4000:]
    report = orjson.loads(next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{")))
    assert [step["to"][:2] for step in report["steps"]] == [[4, 3], [1, 3]], report
    assert report["final"] == [1, 3]
    assert report["acked"] == report["offered"], report  # the client resent until each was acked
    assert report["journaled_once"] and report["acked_journaled"] and report["boards_equal"], report
    assert report["stat_updates"] > 20 and report["probe_status"] == 200, report
    assert report["stat_events_once"] and report["stat_values_equal"] and report["stat_values_held"], report
    assert report["threshold_unlocks_once"], report
    assert all(step["relayout"]["watermark"] > 0 for step in report["steps"]), report
