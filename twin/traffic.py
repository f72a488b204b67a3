"""The traffic a job makes, as flow groups: pure functions of a job, the fabric and its routes.

A training job runs a hierarchical all-reduce (NVLink inside each server, then a ring across servers on
every rail) and reads its data from a storage array; an inference service exchanges requests with the
gateway; an evaluation job reads. Every so often a training job stops to write a checkpoint: every
server writes its shard to storage at its NIC's line rate, through the array's write limit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin.flows import CHECKPOINT, DATA, GRADIENT, INFERENCE, Entries, FlowGroup, merge_entries, route_entries
from twin.topology import Fabric
from twin.workload import JobSpec, ring_allreduce_bytes

WORK, SAVE = 0, 1  # flow-group purposes: the job's running traffic, and its checkpoint writes
Route = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]  # (src, dst, rail) -> (links, fractions)


def group_key(job_id: int, saving: bool) -> tuple[int, int]:
    return (job_id, SAVE if saving else WORK)


def _through(route: Route, src: int, dst: int, rail: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A fabric route, plus a virtual link (a storage array's read or write limit) if given."""
    links, fracs = route(src, dst, rail)
    if limit is not None and len(links):
        links, fracs = np.append(links, limit), np.append(fracs, 1.0)
    return links, fracs


def work_flows(spec: JobSpec, gpus: np.ndarray, nodes: np.ndarray, fab: Fabric, route: Route) -> FlowGroup | None:
    """The traffic a running job makes: all-reduce rings, data reads, or inference requests."""
    if len(nodes) == 1 and spec.kind != "inference" and spec.read_mbs_per_gpu > 0:
        return _reads_of_one_server(spec, len(gpus), int(nodes[0]), fab, route)
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

    def routed(src: np.ndarray, dst: np.ndarray, rail: np.ndarray, limit: int | None = None) -> Entries:
        flows = count + np.arange(len(src))
        routes = [_through(route, int(a), int(b), int(r), limit) for a, b, r in zip(src, dst, rail, strict=True)]
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
        idx = spec.id % len(fab.storage_gid)
        store = np.full(n, fab.storage_gid[idx])
        demand = spec.read_mbs_per_gpu * 1e6 * per_node
        add(DATA, store, gid, demand, routed(store, gid, rails, int(fab.storage_read[idx])))
    if not count:
        return None
    cat = np.concatenate
    return FlowGroup.build(
        group_key(spec.id, False), cat(kinds), cat(srcs), cat(dsts), cat(demands), merge_entries(*parts)
    )


def _reads_of_one_server(spec: JobSpec, gpus: int, node: int, fab: Fabric, route: Route) -> FlowGroup:
    """The common case on a research cluster (most jobs fit in a server): one flow of training data,
    built directly; the same group the general path builds, with less bookkeeping."""
    idx = spec.id % len(fab.storage_gid)
    store, dst = int(fab.storage_gid[idx]), int(fab.node_gid[node])
    links, fracs = _through(route, store, dst, int((node + spec.id) % fab.rails), int(fab.storage_read[idx]))
    if not len(links):  # no path: pinned to the dead link, so the job stalls rather than vanishing
        links, fracs = np.array([fab.dead_link], np.int32), np.ones(1)
    entries = (np.zeros(len(links), np.int32), links.astype(np.int32), fracs)
    demand = np.array([spec.read_mbs_per_gpu * 1e6 * gpus])
    return FlowGroup.build(
        group_key(spec.id, False), np.array([DATA]), np.array([store]), np.array([dst]), demand, entries
    )


def checkpoint_flows(spec: JobSpec, nodes: np.ndarray, fab: Fabric, route: Route) -> tuple[FlowGroup, float]:
    """Every server writes its shard of the checkpoint; also returns seconds of writing at full rate."""
    idx = spec.id % len(fab.storage_gid)
    store, limit = int(fab.storage_gid[idx]), int(fab.storage_write[idx])
    rails = (nodes + spec.id) % fab.rails
    src = fab.node_gid[nodes]
    routes = [_through(route, int(g), store, int(r), limit) for g, r in zip(src, rails, strict=True)]
    demands = fab.link_cap[fab.host_up[nodes, rails]]
    n = len(nodes)
    entries = route_entries(routes, np.arange(n), fab.dead_link)
    group = FlowGroup.build(group_key(spec.id, True), np.full(n, CHECKPOINT), src, np.full(n, store), demands, entries)
    return group, float(spec.checkpoint_bytes / n / demands.min())
