"""Socket limits cut to what the node's file descriptors allow, and HAProxy's request buffer against the largest
legal request (podium/gateway/limits.py)."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from podium.cluster import launch
from podium.gateway.frames import IDENT_MAX_LENGTH
from podium.gateway.limits import (
    HAPROXY_BUFSIZE,
    HAPROXY_MAXREWRITE,
    HEADERS_ALLOWANCE,
    LARGEST_REQUEST_LINE,
    MAX_AMONG,
    REGION_MAX_LENGTH,
    haproxy_maxconn,
    sockets_per_replica,
)
from podium.settings import Settings


def settings(**kw: object) -> Settings:
    return Settings(token_secret="unit-test-secret", **kw)  # type: ignore[arg-type]


def test_with_descriptors_to_spare_the_settings_hold() -> None:
    s = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=2)
    assert haproxy_maxconn(s, 1 << 20) == (10_000 + 256) * 2 + 256 + 256  # + the HTTP plane's replica
    assert sockets_per_replica(s, 1 << 20) == 10_000
    one_plane = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=2,
                         split_planes=False)
    assert haproxy_maxconn(one_plane, 1 << 20) == (10_000 + 256) * 2 + 256


def test_a_small_nofile_limit_cuts_haproxy_and_the_replicas_share() -> None:
    s = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=1)
    maxconn = haproxy_maxconn(s, 20_000)
    assert 1.94 * maxconn + 4_810 <= 20_000  # what HAProxy 2.8 asked for at 8,534 and 13,000, extrapolated
    assert sockets_per_replica(s, 20_000) == maxconn - 256 - 256 < 10_000  # the HTTP plane's share first
    two = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=2)
    assert sockets_per_replica(two, 20_000) == (maxconn - 256) // 2 - 256


def test_the_largest_legal_request_line_is_what_an_encoder_writes() -> None:
    """MAX_AMONG ids of IDENT_MAX_LENGTH legal characters that encoders escape (':' and '@'), as urlencode and a
    browser's URLSearchParams write them, plus the longest region and period."""
    ident = (":@" * IDENT_MAX_LENGTH)[:IDENT_MAX_LENGTH]
    query = urlencode([("players", ident)] * MAX_AMONG + [("region", "r" * REGION_MAX_LENGTH), ("period", "week"),
                                                          ("previous", "false")])
    line = f"GET /v1/games/{quote(ident, safe='')}/leaderboard/among?{query} HTTP/1.1\r\n"
    assert len(line) == LARGEST_REQUEST_LINE


def test_haproxy_holds_the_largest_legal_request_with_room_for_headers() -> None:
    assert LARGEST_REQUEST_LINE + HEADERS_ALLOWANCE == HAPROXY_BUFSIZE - HAPROXY_MAXREWRITE
    assert HEADERS_ALLOWANCE >= 16 * 1024 - HAPROXY_MAXREWRITE  # what a whole request had with Serve's default
    env = launch.serve_env(settings(max_sockets_per_replica=100))
    assert env["RAY_SERVE_HAPROXY_TUNE_BUFSIZE"] == str(HAPROXY_BUFSIZE)
