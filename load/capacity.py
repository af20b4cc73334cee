"""How many nodes serve N players online: the arithmetic of docs/capacity.md,
from the unit costs load/unit_costs.py measured (its --json output).

    .venv/bin/python -m load.capacity costs.json            # the doc's tables
    .venv/bin/python -m load.capacity costs.json --online 250000 --cores 16 --memory-gib 64

Every assumption is a field of `Load` or `Node`, printed with the answer."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class Costs:
    """What one unit of work costs the cluster (load/unit_costs.py)."""

    cpu_ms_per_socket_second: float  # an open player socket, pinging every 30 s
    cpu_ms_per_pushed_unlock: float  # an unlock journaled, ranked and pushed to its player's socket
    cpu_ms_per_read: float  # an HTTP read (rank / top page / around-me mix)
    replica_kib_per_socket: float
    idle_cores: float  # a node's Ray daemons, the replica and the shards with nothing to do

    @classmethod
    def load(cls, path: Path) -> Costs:
        unit = orjson.loads(path.read_bytes())["unit"]
        return cls(**{k: unit[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Load:
    online: int  # players with a push socket open
    unlocks_per_minute_per_1k_online: float = 100.0  # the seeds: 10,000 unlocks/min for 100,000 online
    read_every_s: float = 30.0  # each online player reads (rank, a page) every this many seconds, over HTTP

    @property
    def unlocks_per_s(self) -> float:
        return self.online / 1000 * self.unlocks_per_minute_per_1k_online / 60

    @property
    def reads_per_s(self) -> float:
        return self.online / self.read_every_s


@dataclass(frozen=True)
class Node:
    name: str
    cores: int
    memory_gib: float
    cpu_target: float = 0.5  # busy share to plan for: p99 stays low only with headroom (docs/capacity.md)
    memory_target: float = 0.6  # of the node's memory, for the replicas' sockets
    fixed_memory_gib: float = 4.0  # Ray's daemons, the shards' boards, the OS


@dataclass(frozen=True)
class Plan:
    cores_needed: float
    memory_gib_needed: float
    nodes_for_cpu: int
    nodes_for_memory: int

    @property
    def nodes(self) -> int:
        return max(self.nodes_for_cpu, self.nodes_for_memory, 1)


def plan(costs: Costs, load: Load, node: Node) -> Plan:
    """Nodes needed so neither CPU nor memory passes its target share; each node pays its idle cost."""
    busy = (load.online * costs.cpu_ms_per_socket_second + load.unlocks_per_s * costs.cpu_ms_per_pushed_unlock
            + load.reads_per_s * costs.cpu_ms_per_read) / 1000  # cores
    memory = load.online * costs.replica_kib_per_socket / 2**20  # GiB
    usable_cores = node.cores * node.cpu_target - costs.idle_cores
    usable_memory = node.memory_gib * node.memory_target - node.fixed_memory_gib
    if usable_cores <= 0 or usable_memory <= 0:
        raise ValueError(f"{node.name}: its fixed costs leave nothing for players")
    return Plan(busy, memory, math.ceil(busy / usable_cores), math.ceil(memory / usable_memory))


def table(costs: Costs, loads: list[Load], nodes: list[Node]) -> str:
    lines = ["| players online | unlocks/s | reads/s | node | cores busy | socket memory GiB | nodes (CPU) | "
             "nodes (memory) | nodes |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for load in loads:
        for node in nodes:
            p = plan(costs, load, node)
            lines.append(f"| {load.online:,} | {load.unlocks_per_s:,.0f} | {load.reads_per_s:,.0f} | {node.name} | "
                         f"{p.cores_needed:.1f} | {p.memory_gib_needed:.1f} | {p.nodes_for_cpu} | "
                         f"{p.nodes_for_memory} | **{p.nodes}** |")
    return "\n".join(lines)


NODES = [Node("2 cores, 24 GiB (this box)", 2, 24), Node("8 cores, 32 GiB", 8, 32), Node("16 cores, 64 GiB", 16, 64)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("costs", type=Path, help="load/unit_costs.py --json output")
    ap.add_argument("--online", type=int, action="append", help="players online (repeatable)")
    ap.add_argument("--cores", type=int)
    ap.add_argument("--memory-gib", type=float)
    ap.add_argument("--read-every-s", type=float, default=30.0)
    args = ap.parse_args()
    costs = Costs.load(args.costs)
    loads = [Load(n, read_every_s=args.read_every_s) for n in (args.online or [100_000, 1_000_000])]
    nodes = [Node(f"{args.cores} cores, {args.memory_gib:g} GiB", args.cores, args.memory_gib)] \
        if args.cores and args.memory_gib else NODES
    print(costs)
    print(table(costs, loads, nodes))


if __name__ == "__main__":
    main()
