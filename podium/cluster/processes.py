"""What `podium up` owns, and how it lets go of it: the data dir's lock, ports
checked before anything starts, processes of an earlier run of the same data
dir that nobody stopped, and the stop of every descendant with a deadline.
Linux facts it leans on: a "child subreaper" inherits every orphan of its
subtree (the embedded PostgreSQL and Redis daemonize, HAProxy is a Ray
worker's child), so its descendants are all it started and nothing else."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
import xxhash

from podium.settings import Settings

log = logging.getLogger(__name__)
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
LOCK_FILE = "podium-up.pid"
# Servers `podium up` starts outside Ray's process tree, by their executable's name.
STRAY_NAMES = ("haproxy", "redis-server", "postgres")


def haproxy_dir(settings: Settings) -> Path:
    """Where Serve keeps this cluster's HAProxy config, admin socket and state: one
    directory per data dir (Serve's default, /tmp/haproxy-serve, is shared by every
    cluster on the machine), short enough for a unix socket path, owner-only. Its
    path in a HAProxy's argv tells whose it is (strays below)."""
    tag = xxhash.xxh64_hexdigest(str(settings.data_dir.resolve()).encode())[:8]
    # HAProxy takes socket paths of at most 97 bytes, and Serve adds "/<56-hex node id>/metrics.sock".
    return Path("/tmp") / f"podium-hap-{tag}"


class StartRefused(Exception):
    """`podium up` cannot start; the message says why and what to do, in an operator's words."""


@dataclass(frozen=True, slots=True)
class Port:
    host: str
    port: int
    what: str
    setting: str  # the environment variable that moves it


def become_subreaper() -> bool:
    """Adopt every orphan of this process's subtree (Linux 3.4+); False elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """For a child's preexec_fn: get `sig` when the process that started us dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold data_dir's lock for as long as the returned file stays open: one
    `podium up` per data dir. The lock dies with its holder, however it dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise StartRefused(f"another `podium up` (pid {holder}) runs with the data dir {data_dir.resolve()}: "
                           "stop it, or give this one --data-dir of its own") from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def owner_of(port: int) -> psutil.Process | None:
    """The process listening on a TCP port, if this user may see it."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid)
    except (psutil.Error, OSError):
        pass
    return None


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers do not count
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def busy_port_message(port: Port, owner: psutil.Process | None) -> str:
    if owner is None:
        who = "another process"
    else:
        try:
            who = f"pid {owner.pid} ({owner.name()})"
        except psutil.Error:
            who = f"pid {owner.pid}"
    return f"port {port.port} ({port.what}) is in use by {who}: stop it or set {port.setting}"


def strays(marks: Iterable[str]) -> list[psutil.Process]:
    """HAProxy, redis-server and postgres processes whose command line names one
    of `marks` (this data dir's paths): left by an earlier `podium up` of the
    same data dir that was killed before it could stop them."""
    wanted = tuple(marks)
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            name = proc.info["name"] or ""
            if not name.startswith(STRAY_NAMES) or proc.pid == os.getpid():
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
            if any(mark in cmdline for mark in wanted):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def stop_processes(procs: list[psutil.Process], deadline: float, *, grace_s: float = 3.0) -> list[int]:
    """Ask each to stop (PostgreSQL's postmaster with SIGINT, its fast shutdown;
    the rest SIGTERM), wait until `deadline` (at most grace_s), then SIGKILL
    what is left. Returns the pids that had to be killed."""
    for proc in procs:
        _signal(proc, signal.SIGINT if _is_postmaster(proc) else signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=max(0.0, min(grace_s, deadline - time.monotonic())))
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=2.0)
    return [p.pid for p in alive]


def _is_postmaster(proc: psutil.Process) -> bool:
    try:
        return proc.name() == "postgres" and proc.parent() is not None and proc.parent().name() != "postgres"
    except psutil.Error:
        return False


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def descendants() -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.Error:
        return []


def reap_zombies(keep: Iterable[int] = ()) -> None:
    """Collect the exit status of adopted orphans that ended (not of `keep`,
    which their own Popen objects wait for)."""
    skip = set(keep)
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for child in children:
        if child.pid in skip:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


# Ports handed out between Ray's worker ports (10002-19999 by default) and the kernel's ephemeral range
# (32768 and up here): a port the kernel gave a socket bound to port 0 was handed back the moment it was
# closed, and Ray's agents, bound to port 0 while the cluster starts, took it before HAProxy could (seen
# with clusters side by side). No process is given a port from this range unless it asks for it.
_FREE_PORTS = range(20_000, 32_000)
_PICK = random.SystemRandom()  # not the seeded module state: two seeded runs side by side would pick alike


def free_port() -> int:
    """A TCP port nothing listens on now, outside the ranges the kernel and Ray hand
    out on their own (for tests and benches that run clusters side by side)."""
    for _ in range(200):
        port = _PICK.choice(_FREE_PORTS)
        if port_free("127.0.0.1", port) and port_free("0.0.0.0", port):
            return port
    raise RuntimeError(f"no free TCP port in {_FREE_PORTS.start}-{_FREE_PORTS.stop - 1}")


def own_ports() -> dict[str, int]:
    """Settings that give a cluster every node port of its own, so it runs beside others on one machine."""
    return {"port": free_port(), "haproxy_stats_port": free_port(), "haproxy_metrics_port": free_port(),
            "serve_fallback_port": free_port()}
