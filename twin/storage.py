"""Storage traffic: the training data a job reads and the checkpoints it writes, as flows.

Pure functions of a job, the fabric and its routes, like ``twin.traffic``; kept apart because storage
has a network and a file system of its own to model (which arrays a file lives on, how a write is
limited).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin.flows import CHECKPOINT, DATA, Entries, FlowGroup, route_entries
from twin.topology import Fabric
from twin.workload import JobSpec

SAVE = 1  # the flow-group purpose of checkpoint writes (see ``twin.traffic``)
Route = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]  # (src, dst, rail) -> (links, fractions)


def through(route: Route, src: int, dst: int, rail: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A fabric route, plus a virtual link (a storage array's read or write limit) if given."""
    links, fracs = route(src, dst, rail)
    if limit is not None and len(links):
        links, fracs = np.append(links, limit), np.append(fracs, 1.0)
    return links, fracs


def read_parts(
    spec: JobSpec, nodes: np.ndarray, per_node: np.ndarray, fab: Fabric, route: Route, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Entries]:
    """The job's data reads, one flow per server: (src, dst, demand, entries), flows numbered from ``first``."""
    idx = spec.id % len(fab.storage_gid)
    gid = fab.node_gid[nodes]
    rails = (nodes + spec.id) % fab.rails
    store = np.full(len(nodes), fab.storage_gid[idx])
    demand = spec.read_mbs_per_gpu * 1e6 * per_node
    limit = int(fab.storage_read[idx])
    routes = [through(route, int(a), int(b), int(r), limit) for a, b, r in zip(store, gid, rails, strict=True)]
    return store, gid, demand, route_entries(routes, first + np.arange(len(nodes)), fab.dead_link)


def reads_of_one_server(
    spec: JobSpec, gpus: int, node: int, fab: Fabric, route: Route, key: tuple[int, int]
) -> FlowGroup:
    """The common case on a research cluster (most jobs fit in a server): one flow of training data,
    built directly; the same group the general path builds, with less bookkeeping."""
    idx = spec.id % len(fab.storage_gid)
    store, dst = int(fab.storage_gid[idx]), int(fab.node_gid[node])
    links, fracs = through(route, store, dst, int((node + spec.id) % fab.rails), int(fab.storage_read[idx]))
    if not len(links):  # no path: pinned to the dead link, so the job stalls rather than vanishing
        links, fracs = np.array([fab.dead_link], np.int32), np.ones(1)
    entries = (np.zeros(len(links), np.int32), links.astype(np.int32), fracs)
    demand = np.array([spec.read_mbs_per_gpu * 1e6 * gpus])
    return FlowGroup.build(key, np.array([DATA]), np.array([store]), np.array([dst]), demand, entries)


def checkpoint_flows(spec: JobSpec, nodes: np.ndarray, fab: Fabric, route: Route) -> tuple[FlowGroup, float]:
    """Every server writes its shard of the checkpoint; also returns seconds of writing at full rate."""
    idx = spec.id % len(fab.storage_gid)
    store, limit = int(fab.storage_gid[idx]), int(fab.storage_write[idx])
    rails = (nodes + spec.id) % fab.rails
    src = fab.node_gid[nodes]
    routes = [through(route, int(g), store, int(r), limit) for g, r in zip(src, rails, strict=True)]
    demands = fab.link_cap[fab.host_up[nodes, rails]]
    n = len(nodes)
    entries = route_entries(routes, np.arange(n), fab.dead_link)
    group = FlowGroup.build((spec.id, SAVE), np.full(n, CHECKPOINT), src, np.full(n, store), demands, entries)
    return group, float(spec.checkpoint_bytes / n / demands.min())
