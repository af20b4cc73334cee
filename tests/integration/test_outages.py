"""PostgreSQL, then Redis, stopped and started under load (tests/integration/
outages.py, embedded servers of its own in a process of its own): while
PostgreSQL is away every unlock is answered `unavailable` at once, never
`accepted`; ingest resumes by itself; Redis going away never stops ingest,
and presence and pushes come back; nothing acked is lost."""
from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.timeout(600)
def test_postgresql_and_redis_restarts_mid_stream_lose_nothing_and_heal_by_themselves() -> None:
    out = subprocess.run([sys.executable, "-m", "tests.integration.outages"], capture_output=True, text=True,
                         timeout=540)
    assert out.returncode == 0, out.stderr[-4000:]
    report = orjson.loads(next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{")))
    assert report["acked"] == report["offered"], report  # the client resent until each was acked
    assert report["journaled_once"] and report["acked_journaled"] and report["boards_equal"], report
    down = report["pg_down"]
    assert set(down["outcomes"]) == {"rejected/unavailable"}, down  # never accepted without a commit
    assert down["max_s"] < 2.0, down  # promptly, never held until PostgreSQL is back
    assert report["pg_first_unavailable_s"] is not None and report["pg_first_unavailable_s"] < 5, report
    assert report["pg_resumed_s"] is not None and report["pg_resumed_s"] < 15, report
    redis_down = report["redis_down"]["outcomes"]
    assert redis_down.get("accepted/", 0) > 0 and set(redis_down) <= {"accepted/", "rejected/overloaded"}, report
    assert report["presence_rebuilt_s"] is not None and report["pushes_resumed_s"] is not None, report
    assert report["pushes_resumed_s"] < 30, report
    probes = report["pg_down_probes"]  # reads that need PostgreSQL, a key not verified yet: 503, never 500
    assert probes["post_with_an_unseen_key"]["status"] == 503, probes
    assert all(p["status"] in (200, 503) and (p["status"] == 200 or (p["problem"] and p["retry_after"]))
               for p in probes.values()), probes
