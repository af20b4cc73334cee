"""podium/cluster/haproxy_shim.py: Serve's generated HAProxy config as Podium runs it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podium.cluster import haproxy_shim

# The parts of a config Serve 2.60 wrote on this machine (ray/serve/_private/haproxy_templates.py) that the shim edits.
SERVE_CONFIG = """global
    stats socket /tmp/podium-hap-x/n1/admin.sock mode 666 level admin expose-fd listeners
    tune.bufsize 65536
defaults
    mode http
    retry-on conn-failure
    errorfile 502 /tmp/podium-hap-x/n1/500.http
    errorfile 503 /tmp/podium-hap-x/n1/500.http
    errorfile 504 /tmp/podium-hap-x/n1/500.http
    balance leastconn
frontend prometheus
    bind :9101
    mode http
frontend http_frontend
    bind *:8000
    default_backend default_backend
backend http-podium
    server SERVE_REPLICA_podium-gateway-4e2o7r0s 127.0.0.1:30004 check observe layer4 error-limit 3 on-error mark-down
    server SERVE_PROXY_ACTOR-fallback-7a89878d9d 127.0.0.1:8501 check backup
listen stats
  bind *:8404
  stats enable
"""


def rewritten() -> str:
    return haproxy_shim.rewrite(SERVE_CONFIG, "127.0.0.1", "/tmp/podium-hap-x/n1")


def test_stats_and_metrics_bind_the_admin_host_and_the_gateway_keeps_its_own() -> None:
    lines = rewritten().splitlines()
    assert "    bind 127.0.0.1:9101" in lines
    assert "  bind 127.0.0.1:8404" in lines
    assert "    bind *:8000" in lines  # the gateway binds what PODIUM_HOST says, untouched
    assert "  bind 0.0.0.0:8404" in haproxy_shim.rewrite(SERVE_CONFIG, "0.0.0.0", "/d").splitlines()


def test_the_admin_socket_is_the_owners_alone() -> None:
    assert "admin.sock mode 600 level admin" in rewritten()
    assert "mode 666" not in rewritten()


def test_haproxys_own_answers_are_podium_problems_and_no_replica_is_a_503() -> None:
    text = rewritten()
    for status in (502, 503, 504):
        assert f"errorfile {status} /tmp/podium-hap-x/n1/podium-503.http" in text
    assert "500.http" not in text


def test_serves_fallback_proxy_is_no_backup_server() -> None:
    text = rewritten()
    assert "SERVE_PROXY_ACTOR-fallback" not in text
    assert "SERVE_REPLICA_podium-gateway-4e2o7r0s 127.0.0.1:30004" in text


def test_a_config_rewritten_twice_stays_the_same() -> None:
    once = rewritten()
    assert haproxy_shim.rewrite(once, "127.0.0.1", "/tmp/podium-hap-x/n1") == once


@pytest.mark.parametrize("status", [503])
def test_each_errorfile_is_a_whole_problem_json_response(status: int) -> None:
    raw = haproxy_shim.problem_response(status)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/problem+json"
    assert int(headers["Content-Length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] and problem["detail"]
    assert ("Retry-After" in headers) == (status == 503)


def test_the_config_path_is_read_from_serves_argv() -> None:
    assert haproxy_shim.config_path(["-db", "-f", "/a/haproxy.cfg", "-sf", "12"]) == "/a/haproxy.cfg"
    assert haproxy_shim.config_path(["-v"]) is None


def test_the_real_binary_is_never_the_shim_serve_is_told_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", "/venv/bin/podium-haproxy")  # what launch.py sets
    monkeypatch.delenv(haproxy_shim.REAL_BINARY_ENV, raising=False)
    binary = haproxy_shim.real_binary()
    assert Path(binary).name == "haproxy" and os.access(binary, os.X_OK)
    monkeypatch.setenv(haproxy_shim.REAL_BINARY_ENV, "/opt/haproxy")
    assert haproxy_shim.real_binary() == "/opt/haproxy"
