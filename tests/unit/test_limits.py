"""Socket limits cut to what the node's file descriptors allow (gateway/limits.py)."""
from __future__ import annotations

from gateway.limits import haproxy_maxconn, sockets_per_replica
from persistence.settings import Settings


def settings(**kw: object) -> Settings:
    return Settings(token_secret="unit-test-secret", **kw)  # type: ignore[arg-type]


def test_with_descriptors_to_spare_the_settings_hold() -> None:
    s = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=2)
    assert haproxy_maxconn(s, 1 << 20) == (10_000 + 256) * 2 + 256
    assert sockets_per_replica(s, 1 << 20) == 10_000


def test_a_small_nofile_limit_cuts_haproxy_and_the_replicas_share() -> None:
    s = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=1)
    maxconn = haproxy_maxconn(s, 20_000)
    assert 1.94 * maxconn + 4_810 <= 20_000  # what HAProxy 2.8 asked for at 8,534 and 13,000, extrapolated
    assert sockets_per_replica(s, 20_000) == maxconn - 256 < 10_000
    two = settings(max_sockets_per_replica=10_000, max_http_in_flight=256, gateway_replicas=2)
    assert sockets_per_replica(two, 20_000) == maxconn // 2 - 256
