"""Podium's series in Ray's metrics (`ray.util.metrics`): each node's metrics
agent exports them for Prometheus (and the Ray dashboard's Metrics view,
when a Prometheus and Grafana are attached). Ray prefixes every name with
`ray_`. Recorded by the shells (gateway replica, shard actors) per frame,
commit or request, never per unlock: a record costs ~2.8 us here.
docs/operations.md "Metrics" says what each one means."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from podium.telemetry.loop_lag import LoopLagMonitor

if TYPE_CHECKING:
    from podium.settings import Settings
    from podium.telemetry.loop_lag import LagSummary

LATENCY_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
SIZES = [1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0]

# name -> (kind, description, tag keys, histogram boundaries)
SPEC: dict[str, tuple[str, str, tuple[str, ...], list[float] | None]] = {
    "podium_unlocks": ("counter", "Unlocks answered by the gateway, by ack status and reason", ("status", "reason"),
                       None),
    "podium_stat_updates": ("counter", "Stat update items among podium_unlocks, by ack status and reason",
                            ("status", "reason"), None),
    "podium_ack_seconds": ("histogram", "From a frame or POST read to its acks (gateway)", ("via",), LATENCY_S),
    "podium_journal_batch_unlocks": ("histogram", "Unlocks per group commit (player shard)", ("shard",), SIZES),
    "podium_journal_commit_seconds": ("histogram", "Journal transaction time per group commit", ("shard",),
                                      LATENCY_S),
    "podium_delivery_backlog_pairs": ("gauge", "scores waiting for the fullest leaderboard shard", ("shard",), None),
    "podium_delivery_lag_rows": ("gauge", "Journal rows committed but not yet on the leaderboards (staleness)",
                                 ("shard",), None),
    "podium_checkpoint_age_seconds": ("gauge", "Seconds since the shard's last checkpoint", ("shard",), None),
    "podium_players": ("gauge", "Players a player shard holds", ("shard",), None),
    "podium_friend_edges": ("gauge", "Friend edges a player shard holds", ("shard",), None),
    "podium_board_entries": ("gauge", "Entries on a leaderboard shard's all-time boards", ("shard",), None),
    "podium_season_close_failures": ("counter", "Season closes that failed or overran their deadline (retried "
                                     "after a backoff)", ("shard",), None),
    "podium_stat_rows_unknown_board": ("counter", "Stat board scores a leaderboard shard skipped: their board is "
                                       "not in the catalog (removed)", ("shard",), None),
    "podium_pushes": ("counter", "Push events handed to player sockets (sent) or refused to a slow one (dropped)",
                      ("outcome",), None),
    "podium_sockets_open": ("gauge", "WebSockets open on a gateway replica", ("kind", "replica"), None),
    "podium_http_requests": ("counter", "HTTP requests by route and status class (gateway)", ("endpoint", "status"),
                             None),
    "podium_http_seconds": ("histogram", "HTTP request latency by route (gateway)", ("endpoint",), LATENCY_S),
    "podium_socket_queries": ("counter", "Query frames answered on sockets, by query and outcome", ("q", "outcome"),
                              None),
    "podium_rate_limited": ("counter", "Requests, frames or handshakes refused over a rate limit (gateway)",
                            ("kind",), None),
    "podium_rate_limit_errors": ("counter", "Rate limit checks skipped because Redis failed or was slow (the "
                                 "request went through)", ("kind",), None),
    "podium_socket_query_seconds": ("histogram", "Query frame latency on sockets, by query", ("q",), LATENCY_S),
    "podium_loop_lag_seconds": ("gauge", "How late a 100 ms timer fired on the process's event loop over the last "
                                "60 s (quantile p50, p99, max), per gateway replica and shard",
                                ("process_kind", "name", "quantile"), None),
    "podium_loop_stalls": ("counter", "Event-loop lags of loop_stall_ms or more (see the LOOP_STALL log lines)",
                           ("process_kind", "name"), None),
    "podium_gc_pause_seconds": ("counter", "Time the process spent in cyclic GC passes (the loop waits meanwhile)",
                                ("process_kind", "name"), None),
}

_made: dict[str, Any] = {}


def _metric(name: str) -> Any:
    metric = _made.get(name)
    if metric is None:
        from ray.util import metrics as ray_metrics  # the shells only: importing this module needs no Ray

        kind, description, tags, bounds = SPEC[name]
        if kind == "counter":
            metric = ray_metrics.Counter(name, description, tag_keys=tags)
        elif kind == "gauge":
            metric = ray_metrics.Gauge(name, description, tag_keys=tags)
        else:
            metric = ray_metrics.Histogram(name, description, boundaries=bounds or [], tag_keys=tags)
        _made[name] = metric
    return metric


log = logging.getLogger(__name__)
COUNT_FLUSH_S = 0.5  # counts made on an event loop reach Ray's counters summed, this often
_counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
_flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on


def count(name: str, value: float = 1.0, **tags: str) -> None:
    """Add to a counter. On an event loop the adds are summed per series and
    handed to Ray every COUNT_FLUSH_S (a record is ~3 us; a POST made four)."""
    global _flush_on
    if not value:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _metric(name).inc(value, tags)
        return
    _metric(name)  # made now, not in the flush (the first one imports Ray's metrics: seconds without Ray)
    key = (name, tuple(tags.items()))
    _counts[key] = _counts.get(key, 0.0) + value
    if _flush_on is not loop:  # none scheduled, or on a loop that may have ended (asyncio.run in a driver)
        _flush_on = loop
        loop.call_later(COUNT_FLUSH_S, flush_counts)


def flush_counts() -> None:
    """Hand the summed counts to Ray now."""
    global _flush_on
    _flush_on = None
    pending = list(_counts.items())
    _counts.clear()
    for (name, tags), value in pending:
        try:
            _metric(name).inc(value, dict(tags))
        except Exception:  # one bad series loses its own count, not the others'
            log.exception("counter %s not recorded", name)


def observe(name: str, value: float, **tags: str) -> None:
    _metric(name).observe(value, tags)


def gauge(name: str, value: float, **tags: str) -> None:
    _metric(name).set(value, tags)


def count_all(name: str, counts: Mapping[tuple[str, ...], int], keys: tuple[str, ...]) -> None:
    """Many tag combinations of one counter at once (e.g. a frame's acks by status and reason)."""
    for values, n in counts.items():
        count(name, n, **dict(zip(keys, values, strict=True)))


def loop_reporter(process_kind: str, name: str) -> Callable[[LagSummary], None]:
    """A loop lag monitor's `report` (podium/telemetry/loop_lag.py): its window's lag
    quantiles as gauges, its stalls and the process's GC time as counters."""
    tags = {"process_kind": process_kind, "name": name}  # `name` is a tag here: not through gauge(name, ...)
    seen = {"stalls": 0.0, "gc": 0.0}

    def report(summary: LagSummary) -> None:
        for q, value in (("p50", summary.p50_s), ("p99", summary.p99_s), ("max", summary.max_s)):
            _metric("podium_loop_lag_seconds").set(value, {**tags, "quantile": q})
        for metric, total, key in (("podium_loop_stalls", summary.stalls_total, "stalls"),
                                   ("podium_gc_pause_seconds", summary.gc_total_s, "gc")):
            if total > seen[key]:
                _metric(metric).inc(total - seen[key], tags)
            seen[key] = total

    return report


def loop_monitor(settings: Settings, process_kind: str, name: str) -> LoopLagMonitor:
    """The process's event-loop lag monitor (podium/telemetry/loop_lag.py), exported as Ray metrics."""
    return LoopLagMonitor(name, interval_s=settings.loop_lag_interval_ms / 1000, stall_s=settings.loop_stall_ms / 1000,
                          log_every_s=settings.loop_stall_log_s, report=loop_reporter(process_kind, name))
