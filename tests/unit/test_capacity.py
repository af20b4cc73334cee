"""The capacity arithmetic (load/capacity.py) that docs/capacity.md quotes."""
from __future__ import annotations

import pytest

from load.capacity import Costs, Load, Node, plan

COSTS = Costs(cpu_ms_per_socket_second=0.01, cpu_ms_per_pushed_unlock=2.0, cpu_ms_per_read=2.0,
              replica_kib_per_socket=40.0, idle_cores=0.2)


def test_the_seeds_rates_follow_from_players_online() -> None:
    load = Load(100_000)
    assert load.unlocks_per_s == pytest.approx(10_000 / 60)  # 10,000 unlocks a minute
    assert load.reads_per_s == pytest.approx(100_000 / 30)


def test_cpu_bound_plan_counts_every_unit_cost_and_the_idle_cost_per_node() -> None:
    load = Load(100_000)
    node = Node("n", cores=8, memory_gib=32)
    p = plan(COSTS, load, node)
    busy = (100_000 * 0.01 + load.unlocks_per_s * 2.0 + load.reads_per_s * 2.0) / 1000
    assert p.cores_needed == pytest.approx(busy)
    assert p.nodes_for_cpu == -(-busy // (8 * 0.5 - 0.2))
    assert p.memory_gib_needed == pytest.approx(100_000 * 40 / 2**20)
    assert p.nodes == max(p.nodes_for_cpu, p.nodes_for_memory)


def test_memory_can_be_the_bound() -> None:
    fat = Costs(0.0, 0.0, 0.0, replica_kib_per_socket=1024.0, idle_cores=0.0)
    p = plan(fat, Load(100_000, read_every_s=1e9), Node("n", cores=64, memory_gib=16))
    assert p.nodes_for_cpu == 0 and p.nodes == p.nodes_for_memory == -(-p.memory_gib_needed // (16 * 0.6 - 4))


def test_a_node_too_small_for_its_own_fixed_costs_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing for players"):
        plan(COSTS, Load(1_000), Node("tiny", cores=1, memory_gib=4))
