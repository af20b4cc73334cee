"""How many connections a node can hold: Serve's HAProxy (one per node) needs
file descriptors for both sides of every connection plus splice pipes, and
cannot go past the node's hard `nofile` limit (it refuses to start instead).
The replica's socket limit is cut to what HAProxy can carry, so a handshake
past it is refused by the replica (503) rather than queued by HAProxy."""
from __future__ import annotations

import resource

from persistence.settings import Settings

# HAProxy 2.8 as Serve configures it asked for 30,036 descriptors at maxconn
# 13,000 and 21,370 at 8,534: about 1.94 per connection plus 4,800 (splice
# pipes, listeners). Two per connection plus 5,000 stays above both.
FDS_PER_CONNECTION = 2
RESERVED_FDS = 5000


def nofile_limit() -> int:
    """The hard limit on open files of this process (HAProxy and the replicas inherit the node's)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else int(hard)


def haproxy_maxconn(settings: Settings, nofile: int) -> int:
    """Connections HAProxy is configured for: every replica's sockets and HTTP
    requests, as far as the node's descriptors allow."""
    wanted = (settings.max_sockets_per_replica + settings.max_http_in_flight) * settings.gateway_replicas + 256
    return max(1, min(wanted, (nofile - RESERVED_FDS) // FDS_PER_CONNECTION))


def sockets_per_replica(settings: Settings, nofile: int) -> int:
    """The socket limit a replica enforces: the setting, or less if HAProxy cannot carry it."""
    share = haproxy_maxconn(settings, nofile) // settings.gateway_replicas - settings.max_http_in_flight
    return max(1, min(settings.max_sockets_per_replica, share))
