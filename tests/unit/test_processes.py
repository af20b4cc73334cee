"""podium/cluster/processes.py and the owner's port list: what `podium up` checks before it starts."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil
import pytest

from podium.cluster import processes
from podium.cluster.supervisor import ports, stray_marks
from podium.settings import Settings


def test_one_podium_up_per_data_dir_and_the_refusal_names_the_holder(tmp_path: Path) -> None:
    held = processes.lock_data_dir(tmp_path)
    try:
        with pytest.raises(processes.StartRefused, match=rf"another `podium up` \(pid {os.getpid()}\) runs with "
                                                          rf"the data dir {tmp_path}"):
            processes.lock_data_dir(tmp_path)
    finally:
        held.close()
    processes.lock_data_dir(tmp_path).close()  # free again once its holder let go


def test_a_busy_port_is_found_with_its_owner() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not processes.port_free("127.0.0.1", port)
        owner = processes.owner_of(port)
        assert owner is not None and owner.pid == os.getpid()
        message = processes.busy_port_message(processes.Port("127.0.0.1", port, "HAProxy's stats page",
                                                             "PODIUM_HAPROXY_STATS_PORT"), owner)
    assert message == (f"port {port} (HAProxy's stats page) is in use by pid {os.getpid()} "
                       f"({psutil.Process().name()}): stop it or set PODIUM_HAPROXY_STATS_PORT")
    assert processes.port_free("127.0.0.1", port)


def test_every_node_port_is_checked_with_the_setting_that_moves_it() -> None:
    settings = Settings(port=8100, haproxy_stats_port=8405, haproxy_metrics_port=9102, serve_fallback_port=8502,
                        metrics_port=9300)
    found = {(p.port, p.setting) for p in ports(settings)}
    assert found == {(8100, "PODIUM_PORT (or --port)"), (8405, "PODIUM_HAPROXY_STATS_PORT"),
                     (9102, "PODIUM_HAPROXY_METRICS_PORT"), (8502, "PODIUM_SERVE_FALLBACK_PORT"),
                     (9300, "PODIUM_METRICS_PORT")}
    assert {p.host for p in ports(settings) if "HAProxy" in p.what} == {"127.0.0.1"}  # admin ports stay local


def test_two_data_dirs_have_haproxy_dirs_of_their_own_short_enough_for_socket_paths(tmp_path: Path) -> None:
    a, b = (processes.haproxy_dir(Settings(data_dir=tmp_path / name)) for name in ("a", "b"))
    assert a != b
    assert len(f"{a}/{'f' * 56}/metrics.sock") <= 97  # HAProxy's limit; Serve adds the node id
    assert stray_marks(Settings(data_dir=tmp_path / "a")) == [f"{(tmp_path / 'a').resolve()}/", f"{a}/"]
