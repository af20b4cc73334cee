"""Several nodes (three raylets on this box, ray.cluster_utils.Cluster), in a
process of its own (tests/integration/multinode.py): shards spread over the
nodes; a worker node removed mid-stream; its shards come back on the others
and nothing acked is lost."""
from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.timeout(660)  # a cluster of three raylets beside the suite's own, on two cores
def test_a_lost_node_loses_no_acked_unlock(cluster) -> None:
    out = subprocess.run([sys.executable, "-m", "tests.integration.multinode", cluster.admin_url,
                          cluster.settings.redis_url], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    report = orjson.loads(next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{")))
    assert report["nodes"] >= 2, report  # spread: the 5 shards are on more than one node
    assert report["moved"], report  # the removed node held shards ...
    assert all(report["after"][name] != report["victim"] for name in report["moved"]), report  # ... now elsewhere
    held = report["statuses"].get("accepted", 0) + report["statuses"].get("duplicate", 0)
    assert held > 0.8 * report["offered"], report
    assert report["lost"] == 0 and report["boards_equal"], report
