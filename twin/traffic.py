"""The traffic a job makes, as flow groups: pure functions of a job, the fabric and its routes.

A training job runs a hierarchical all-reduce (NVLink inside each server, then a ring across servers on
every rail) and reads its data from storage; an inference service exchanges requests with the gateway;
an evaluation job reads. Reads and checkpoint writes are built in ``twin.storage``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin.flows import DATA, GRADIENT, INFERENCE, Entries, FlowGroup, merge_entries, route_entries
from twin.storage import checkpoint_flows, read_parts, reads_of_one_server
from twin.topology import Fabric
from twin.workload import JobSpec, ring_allreduce_bytes

__all__ = ["SAVE", "WORK", "checkpoint_flows", "group_key", "work_flows"]

WORK, SAVE = 0, 1  # flow-group purposes: the job's running traffic, and its checkpoint writes
Route = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]  # (src, dst, rail) -> (links, fractions)


def group_key(job_id: int, saving: bool) -> tuple[int, int]:
    return (job_id, SAVE if saving else WORK)


def work_flows(spec: JobSpec, gpus: np.ndarray, nodes: np.ndarray, fab: Fabric, route: Route) -> FlowGroup | None:
    """The traffic a running job makes: all-reduce rings, data reads, or inference requests."""
    if len(nodes) == 1 and spec.kind != "inference" and spec.read_mbs_per_gpu > 0:
        return reads_of_one_server(spec, len(gpus), int(nodes[0]), fab, route, group_key(spec.id, False))
    kinds: list[np.ndarray] = []
    srcs: list[np.ndarray] = []
    dsts: list[np.ndarray] = []
    demands: list[np.ndarray] = []
    parts: list[Entries] = []
    count = 0
    gid = fab.node_gid[nodes]
    per_node = np.bincount(gpus // fab.gpus_per_node, minlength=fab.n_nodes)[nodes]
    rails = (nodes + spec.id) % fab.rails
    n = len(gid)

    def add(kind: int, src: np.ndarray, dst: np.ndarray, demand: np.ndarray, entries: Entries) -> None:
        nonlocal count
        kinds.append(np.full(len(src), kind, np.int8))
        srcs.append(src)
        dsts.append(dst)
        demands.append(demand)
        parts.append(entries)
        count += len(src)

    def routed(src: np.ndarray, dst: np.ndarray, rail: np.ndarray) -> Entries:
        flows = count + np.arange(len(src))
        routes = [route(int(a), int(b), int(r)) for a, b, r in zip(src, dst, rail, strict=True)]
        return route_entries(routes, flows, fab.dead_link)

    if spec.trains and n > 1:
        # Hierarchical all-reduce: NVLink inside each server, then a ring across servers on every rail.
        per_rail = ring_allreduce_bytes(spec.gradient_bytes, n) / fab.rails / spec.iteration_s
        a = np.repeat(nodes, fab.rails)
        b = np.repeat(np.roll(nodes, -1), fab.rails)
        rail = np.tile(np.arange(fab.rails), n)
        up, down = fab.host_up[a, rail], fab.host_down[b, rail]
        # Ring neighbours under the same leaf need no routing: up to the leaf and down again.
        near = fab.link_dst[up] == fab.link_src[down]
        i = np.flatnonzero(near)
        fast = (np.repeat(i, 2), np.column_stack([up[i], down[i]]).ravel(), np.ones(2 * len(i)))
        far = np.flatnonzero(~near)
        slow = [route(int(fab.node_gid[a[k]]), int(fab.node_gid[b[k]]), int(rail[k])) for k in far]
        entries = merge_entries(fast, route_entries(slow, far, fab.dead_link))
        add(GRADIENT, fab.node_gid[a], fab.node_gid[b], np.full(len(a), per_rail), entries)
    if spec.kind == "inference" and spec.serve_mbs_per_gpu > 0:
        gw = np.full(n, fab.gateway_gid)
        demand = spec.serve_mbs_per_gpu * 1e6 * per_node
        add(INFERENCE, gw, gid, demand, routed(gw, gid, rails))
        add(INFERENCE, gid, gw, demand, routed(gid, gw, rails))
    elif spec.kind != "inference" and spec.read_mbs_per_gpu > 0:
        add(DATA, *read_parts(spec, nodes, per_node, fab, route, count))
    if not count:
        return None
    cat = np.concatenate
    return FlowGroup.build(
        group_key(spec.id, False), cat(kinds), cat(srcs), cat(dsts), cat(demands), merge_entries(*parts)
    )
