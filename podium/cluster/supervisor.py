"""`podium up` is two processes. This one, the owner, starts nothing itself
but the cluster's driver (`podium run-cluster`, in a session of its own so a
Ctrl-C or a SIGTERM to `podium up`'s process group reaches only the owner),
and adopts every orphan below it (podium/cluster/processes.py). On SIGINT, SIGTERM
or SIGHUP it asks the driver to stop (drain sockets, Serve, Ray, embedded
servers), and once the driver is gone, or stop_timeout_s has passed, it stops
whatever is left of its subtree: a stop can never hang, and leaves nothing.
A second signal stops everything at once."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from podium.cluster import processes
from podium.cluster.processes import haproxy_dir
from podium.settings import Settings

log = logging.getLogger(__name__)
FAILURE_ENV = "PODIUM_UP_FAILURE_FILE"  # where the driver writes why it could not start
SWEEP_S = 3.0  # of stop_timeout_s, kept for stopping what the driver left


def ports(settings: Settings) -> list[processes.Port]:
    """Every port a cluster that Podium starts itself opens on its node, with the setting that moves it."""
    found = [processes.Port(settings.host, settings.port, "the gateway", "PODIUM_PORT (or --port)"),
             processes.Port(settings.haproxy_admin_host, settings.haproxy_stats_port, "HAProxy's stats page",
                            "PODIUM_HAPROXY_STATS_PORT"),
             processes.Port(settings.haproxy_admin_host, settings.haproxy_metrics_port, "HAProxy's metrics",
                            "PODIUM_HAPROXY_METRICS_PORT"),
             processes.Port(settings.host, settings.serve_fallback_port, "Serve's fallback proxy",
                            "PODIUM_SERVE_FALLBACK_PORT")]
    if settings.metrics_port is not None:
        found.append(processes.Port("127.0.0.1", settings.metrics_port, "Ray's metrics agent", "PODIUM_METRICS_PORT"))
    return found


def stray_marks(settings: Settings) -> list[str]:
    """Paths that a server of this data dir carries in its command line."""
    return [f"{settings.data_dir.resolve()}/", f"{haproxy_dir(settings)}/"]


def preflight(settings: Settings) -> None:
    """Reap what a killed earlier run of this data dir left; refuse to start on a busy port."""
    left = processes.strays(stray_marks(settings))
    for proc in left:
        log.warning("stopping %s (pid %d), left running by an earlier `podium up` of this data dir",
                    proc.name(), proc.pid)
    if left:
        processes.stop_processes(left, time.monotonic() + 5.0)
    if settings.ray_address is not None:
        return  # joining a cluster: its node's ports are its own
    for port in ports(settings):
        if not processes.port_free(port.host, port.port):
            raise processes.StartRefused(processes.busy_port_message(port, processes.owner_of(port.port)))


class _Signals:
    def __init__(self, stop_timeout_s: float) -> None:
        self.stop_timeout_s = stop_timeout_s
        self.count = 0
        self.first_at: float | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.first_at is None:
            self.first_at = time.monotonic()
            log.info("%s: stopping Podium (within %.0f s)", signal.Signals(signum).name, self.stop_timeout_s)


def supervise(settings: Settings, driver: list[str]) -> int:
    """Run the driver until it ends or a signal stops it; returns `podium up`'s exit code."""
    try:
        lock = processes.lock_data_dir(settings.data_dir)
        preflight(settings)
    except processes.StartRefused as exc:
        print(f"podium up did not start: {exc}", file=sys.stderr, flush=True)
        return 1
    processes.become_subreaper()
    failure = settings.data_dir / "podium-up.failure"
    failure.unlink(missing_ok=True)
    signals = _Signals(settings.stop_timeout_s)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signals)  # SIGINT too when it was inherited as ignored (nohup, `&`)
    child = subprocess.Popen(driver, start_new_session=True, pass_fds=(lock.fileno(),),
                             preexec_fn=processes.die_with_parent,
                             env={**os.environ, FAILURE_ENV: str(failure)})
    code = _wait(child, signals, settings.stop_timeout_s)
    sweep_deadline = time.monotonic() + SWEEP_S
    left = processes.descendants()
    if left:
        names = ", ".join(sorted({_name(p) for p in left}))
        log.info("stopping %d process(es) the driver left: %s", len(left), names)
        killed = processes.stop_processes(left, sweep_deadline)
        if killed:
            log.warning("killed %d process(es) that did not stop in time: pids %s", len(killed), killed)
    if code is None:
        child.wait()
    processes.reap_zombies()
    if not processes.strays([f"{haproxy_dir(settings)}/"]):
        shutil.rmtree(haproxy_dir(settings), ignore_errors=True)  # config, sockets and logs of the run that ended
    lock.close()
    if signals.first_at is not None:
        log.info("Podium stopped in %.1f s", time.monotonic() - signals.first_at)
        return 0
    cause = failure.read_text().strip() if failure.exists() else f"its driver exited with code {child.returncode}"
    print(f"podium up stopped: {cause}", file=sys.stderr, flush=True)
    return child.returncode or 1


def _wait(child: subprocess.Popen[bytes], signals: _Signals, stop_timeout_s: float) -> int | None:
    """Until the driver exits (its code) or must be given up on (None)."""
    told = False
    while True:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        processes.reap_zombies(keep=(child.pid,))
        if signals.first_at is None:
            continue
        if not told:
            _send(child, signal.SIGTERM)
            told = True
        if signals.count > 1:
            log.warning("second signal: stopping everything now")
            return None
        if time.monotonic() > signals.first_at + stop_timeout_s - SWEEP_S:
            log.warning("the driver did not stop within %.0f s; stopping what is left", stop_timeout_s - SWEEP_S)
            return None


def _send(child: subprocess.Popen[bytes], sig: int) -> None:
    try:
        child.send_signal(sig)
    except ProcessLookupError:
        pass


def _name(proc: object) -> str:
    try:
        return proc.name()  # type: ignore[attr-defined, no-any-return]
    except Exception:
        return "?"


def failure_file() -> Path | None:
    """For the driver: where to say why it could not start."""
    path = os.environ.get(FAILURE_ENV)
    return Path(path) if path else None
