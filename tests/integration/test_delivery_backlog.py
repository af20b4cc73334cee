"""A leaderboard shard stopped under heavy ingest (tests/integration/backlog.py,
a cluster of its own with a small delivery backlog and chunk): the player
shard's backlog stays bounded, ingest is answered `overloaded` at once
meanwhile, and after the shard resumes every accepted unlock is on the boards."""
from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.timeout(300)
def test_a_stopped_leaderboard_bounds_the_backlog_answers_overloaded_and_loses_nothing(cluster) -> None:
    out = subprocess.run([sys.executable, "-m", "tests.integration.backlog", cluster.admin_url,
                          cluster.settings.redis_url], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-4000:]
    report = orjson.loads(next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{")))
    limits = report["limits"]
    assert report["outcomes_while_stopped"].get("rejected/overloaded", 0) > 0, report
    assert report["max_backlog"] <= limits["backlog_max"] + limits["batch_max"], report
    assert report["overloaded_max_s"] < 1.0, report  # answered at once, never held
    assert report["offered"] > 2 * (limits["backlog_max"] + limits["batch_max"]), report
    assert report["acked"] == report["offered"], report  # the client resent until each was acked
    assert report["boards_equal"], report
    assert report["after_status"]["backlog"] == 0, report
    assert report["after_status"]["delivered_seq"] == report["after_status"]["journaled_seq"], report
