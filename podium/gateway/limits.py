"""How many connections a node can hold: Serve's HAProxy (one per node) needs
file descriptors for both sides of every connection plus splice pipes, and
cannot go past the node's hard `nofile` limit (it refuses to start instead).
The replica's socket limit is cut to what HAProxy can carry, so a handshake
past it is refused by the replica (503) rather than queued by HAProxy.
And how large a request HAProxy lets through, next to the largest one Podium
documents (the two limits of that wire)."""
from __future__ import annotations

import resource

from podium.gateway.frames import IDENT_MAX_LENGTH
from podium.settings import Settings

# HAProxy 2.8 as Serve configures it asked for 30,036 descriptors at maxconn
# 13,000 and 21,370 at 8,534: about 1.94 per connection plus 4,800 (splice
# pipes, listeners). Two per connection plus 5,000 stays above both.
FDS_PER_CONNECTION = 2
RESERVED_FDS = 5000

# Two limits of one wire, HAProxy's request buffer and Podium's largest legal request, kept in agreement (unit
# test test_limits.py; the integration test test_fuzz.py sends that request). HAProxy refuses a request whose line
# and headers outgrow tune.bufsize less its rewrite reserve (tune.maxrewrite, 1,024 bytes by default) with its own
# HTML 400, before a replica sees it. The largest legal request is GET /v1/games/{game}/leaderboard/among with
# MAX_AMONG ids of IDENT_MAX_LENGTH characters, every one percent-encoded (':' and '@' are legal in ids and
# encoders escape them): 40,486 bytes of request line. Serve's default buffer, 16 KiB, held 200 plain ids of 60
# characters but not that. 64 KiB leaves the headers 23 KiB, more than the whole request had before (15 KiB).
# HAProxy takes buffers from a pool while data passes, two per connection at most.
MAX_AMONG = 200  # players in one "ranked together" (friends) board: GET .../leaderboard/among, the "among" query
HAPROXY_BUFSIZE = 64 * 1024  # RAY_SERVE_HAPROXY_TUNE_BUFSIZE, set in podium/cluster/launch.serve_env
HAPROXY_MAXREWRITE = 1024  # HAProxy's default tune.maxrewrite (Serve leaves it)
REGION_MAX_LENGTH = 16  # podium/gateway/board_watch.REGION_PATTERN
LARGEST_REQUEST_LINE = (len("GET /v1/games/") + 3 * IDENT_MAX_LENGTH + len("/leaderboard/among?")
                        + MAX_AMONG * len("players=&") + MAX_AMONG * 3 * IDENT_MAX_LENGTH
                        + len("region=") + REGION_MAX_LENGTH + len("&period=week&previous=false HTTP/1.1\r\n"))
HEADERS_ALLOWANCE = HAPROXY_BUFSIZE - HAPROXY_MAXREWRITE - LARGEST_REQUEST_LINE  # left to the request's headers


def nofile_limit() -> int:
    """The hard limit on open files of this process (HAProxy and the replicas inherit the node's)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else int(hard)


def http_plane_connections(settings: Settings) -> int:
    """What the HTTP plane's replicas (split planes, podium/gateway/app.py) take at once."""
    return settings.max_http_in_flight * settings.http_replicas if settings.split_planes else 0


def haproxy_maxconn(settings: Settings, nofile: int) -> int:
    """Connections HAProxy is configured for: every replica's sockets and HTTP
    requests, as far as the node's descriptors allow."""
    wanted = ((settings.max_sockets_per_replica + settings.max_http_in_flight) * settings.gateway_replicas
              + http_plane_connections(settings) + 256)
    return max(1, min(wanted, (nofile - RESERVED_FDS) // FDS_PER_CONNECTION))


def sockets_per_replica(settings: Settings, nofile: int) -> int:
    """The socket limit a replica enforces: the setting, or less if HAProxy cannot carry it."""
    share = ((haproxy_maxconn(settings, nofile) - http_plane_connections(settings)) // settings.gateway_replicas
             - settings.max_http_in_flight)
    return max(1, min(settings.max_sockets_per_replica, share))
