"""Storage traffic: the training data a job reads and the checkpoints it writes, as flows.

Pure functions of a job, the fabric and its routes, like ``twin.traffic``; kept apart because storage
has a network and a file system of its own to model (which arrays a file lives on, how a write is
limited).

Without a storage network (arrays plugged into compute switches) a job reads from one array
(``spec.id`` modulo the arrays) over the compute fabric, and a checkpoint writes at the servers' line
rate. With one (``Fabric.has_storage_fabric``) files are striped over every array of the file system, as
a parallel file system stripes them: each server reads and writes an equal share from and to every array
(one flow per server and array), over its storage NICs and the storage network only (server, its storage
leaf, ECMP over the storage spines that reach both, the array), never the compute fabric. A checkpoint's
demand per server is then what the file system and the server's storage NICs can take: stripes are
equal, so the slowest array sets the pace, ``min(storage NIC bandwidth, arrays x slowest write / servers)``;
the seconds at full rate are the bytes per server over that demand, so the bytes written are the
checkpoint's. Each array's read or write limit is its virtual link in both cases. Routes on the storage
network are computed here from the Fabric's flat arrays (a two-tier tree needs no search), avoiding the
links the router knows to be down.
"""

from __future__ import annotations

import weakref

import numpy as np

from twin.flows import CHECKPOINT, DATA, Entries, FlowGroup
from twin.routing import Router
from twin.topology import Fabric
from twin.workload import JobSpec

SAVE = 1  # the flow-group purpose of checkpoint writes (see ``twin.traffic``)


def striped(fab: Fabric, nodes: np.ndarray, alive: np.ndarray, write: bool, first: int = 0) -> Entries:
    """Entries of one flow per (server, array), flow ``first + i * arrays + a``: between server ``nodes[i]``
    and array ``a`` over the storage network, split equally over the storage spines whose cables to the
    server's leaf and to the array are up, plus the array's read (or write) limit. A flow with no way
    through (its storage NICs or every such spine down) is pinned to the dead link."""
    n, arrays = len(nodes), len(fab.storage_gid)
    leaf = fab.node_storage_leaf[nodes]
    leaf_up = fab.storage_leaf_up[leaf]  # (n, spines) leaf -> spine
    array_up = fab.storage_array_up  # (arrays, spines) array -> spine
    # Reads go array -> spine -> leaf -> server; writes the other way (a link's reverse is link ^ 1).
    a_link = (array_up ^ 1) if write else array_up
    l_link = leaf_up if write else (leaf_up ^ 1)
    nic = fab.storage_up[nodes] if write else fab.storage_down[nodes]
    leaf_ok = (leaf_up >= 0) & alive[np.maximum(l_link, 0)] & alive[nic][:, None]  # (n, spines)
    array_ok = (array_up >= 0) & alive[np.maximum(a_link, 0)]  # (arrays, spines)
    ok = leaf_ok[:, None, :] & array_ok[None, :, :]  # (n, arrays, spines): the spines a flow may cross
    ways = ok.sum(axis=2)
    flow = first + np.arange(n * arrays).reshape(n, arrays)
    i, a, sp = np.nonzero(ok)
    frac = 1.0 / ways[i, a]
    limit = fab.storage_write if write else fab.storage_read
    dead = ways == 0
    fi, fa = np.nonzero(~dead)
    one = np.ones(len(fi))
    parts = (
        (flow[i, a], a_link[a, sp], frac),
        (flow[i, a], l_link[i, sp], frac),
        (flow[fi, fa], nic[fi], one),
        (flow[fi, fa], limit[fa], one),
        (flow[dead], np.full(int(dead.sum()), fab.dead_link), np.ones(int(dead.sum()))),
    )
    owner = np.concatenate([p[0] for p in parts])
    order = np.argsort(owner, kind="stable")
    links = np.concatenate([p[1] for p in parts]).astype(np.int32)
    return owner[order].astype(np.int32), links[order], np.concatenate([p[2] for p in parts])[order]


def _striped_reads(
    spec: JobSpec, nodes: np.ndarray, per_node: np.ndarray, fab: Fabric, router: Router, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Entries]:
    arrays = len(fab.storage_gid)
    src = np.tile(fab.storage_gid, len(nodes))
    dst = np.repeat(fab.node_gid[nodes], arrays)
    demand = np.repeat(spec.read_mbs_per_gpu * 1e6 * np.asarray(per_node, np.float64) / arrays, arrays)
    return src, dst, demand, striped(fab, nodes, router.alive, write=False, first=first)


def read_parts(
    spec: JobSpec, nodes: np.ndarray, per_node: np.ndarray, fab: Fabric, router: Router, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Entries]:
    """The job's data reads, one flow per server (per server and array, striped, with a storage network):
    (src, dst, demand, entries), flows numbered from ``first``."""
    if fab.has_storage_fabric:
        return _striped_reads(spec, nodes, per_node, fab, router, first)
    idx = spec.id % len(fab.storage_gid)
    gid = fab.node_gid[nodes]
    rails = (nodes + spec.id) % fab.rails
    store = np.full(len(nodes), fab.storage_gid[idx])
    demand = spec.read_mbs_per_gpu * 1e6 * per_node
    limit = int(fab.storage_read[idx])
    flow, link, frac = router.routes(store, gid, rails, fab.dead_link, via=limit)
    return store, gid, demand, (flow + first, link, frac)


def reads_of_one_server(
    spec: JobSpec, gpus: int, node: int, fab: Fabric, router: Router, key: tuple[int, int]
) -> FlowGroup:
    """The common case on a research cluster (most jobs fit in a server): one flow of training data (one
    per array, striped, with a storage network), built directly; the same group the general path builds,
    with less bookkeeping. Without a storage network the group's arrays but its demand and load depend only
    on the route (the array, the server, its rail), so they are worked out once per route and shared, and
    its demand and load once per route and rate."""
    if fab.has_storage_fabric:
        src, dst, demand, entries = _striped_reads(spec, np.array([node]), np.array([gpus]), fab, router, 0)
        return FlowGroup.build(key, np.full(len(src), DATA), src, dst, demand, entries)
    idx = spec.id % len(fab.storage_gid)
    store, dst = fab.storage_gid.item(idx), fab.node_gid.item(node)
    rail = (node + spec.id) % fab.rails
    route = router.route(store, dst, rail)
    routes = _ONE_SERVER.get(router)
    if routes is None:
        routes = _ONE_SERVER[router] = {}
    found = routes.get((store, dst, rail))
    if found is None or found[0] is not route:  # new, or the router has routed again since (a fault)
        if len(routes) >= 65_536:
            routes.clear()
        found = routes[(store, dst, rail)] = _one_read(route, int(fab.storage_read[idx]), fab.dead_link, store, dst)
    _, entry_link, entry_frac, links, where, src_a, dst_a, flow, by_demand = found
    rate = spec.read_mbs_per_gpu * 1e6 * gpus
    shared = by_demand.get(rate)  # the demand and load for this rate (a few: one per GPU count), read-only
    if shared is None:
        demand = np.array([rate])
        weighted = entry_frac * demand[0]  # what ``FlowGroup.build`` computes: fraction x the flow's demand
        load = weighted if where is None else np.bincount(where, weights=weighted, minlength=len(links))
        demand.flags.writeable = load.flags.writeable = False
        shared = (demand, load)
        if len(by_demand) < 64:
            by_demand[rate] = shared
    demand, load = shared
    return FlowGroup(key, _DATA_KIND, src_a, dst_a, demand, flow, entry_link, entry_frac, links, load)


_DATA_KIND = np.array([DATA], np.int8)
_DATA_KIND.flags.writeable = False
_ONE_SERVER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # router -> route -> parts of a group


def _one_read(route: tuple[np.ndarray, np.ndarray], limit: int, dead_link: int, store: int, dst: int) -> tuple:
    """The parts of a one-server read group that depend on its route alone (``reads_of_one_server``)."""
    links, fracs = route
    if len(links):  # the array's read limit after the route
        links, fracs = np.append(links, limit), np.append(fracs, 1.0)
    else:  # no path: pinned to the dead link, so the job stalls rather than vanishing
        links, fracs = np.array([dead_link], np.int32), np.ones(1)
    entry_link = links.astype(np.int32)
    if len(entry_link) < 2 or bool((entry_link[1:] > entry_link[:-1]).all()):  # each link once already
        group_links, where = entry_link, None
    else:
        group_links, where = np.unique(entry_link, return_inverse=True)
        group_links = group_links.astype(np.int32)
    parts = (entry_link, fracs, group_links)
    for a in parts:
        a.flags.writeable = False
    src_a, dst_a, flow = np.array([store], np.int32), np.array([dst], np.int32), np.zeros(len(entry_link), np.int32)
    src_a.flags.writeable = dst_a.flags.writeable = flow.flags.writeable = False
    return route, entry_link, fracs, group_links, where, src_a, dst_a, flow, {}


def checkpoint_flows(spec: JobSpec, nodes: np.ndarray, fab: Fabric, router: Router) -> tuple[FlowGroup, float]:
    """Every server writes its shard of the checkpoint; also returns seconds of writing at full rate."""
    if fab.has_storage_fabric:
        return _striped_checkpoint(spec, nodes, fab, router)
    idx = spec.id % len(fab.storage_gid)
    store, limit = int(fab.storage_gid[idx]), int(fab.storage_write[idx])
    rails = (nodes + spec.id) % fab.rails
    src = fab.node_gid[nodes]
    entries = router.routes(src, np.full(len(nodes), store), rails, fab.dead_link, via=limit)
    demands = fab.link_cap[fab.host_up[nodes, rails]]
    n = len(nodes)
    group = FlowGroup.build((spec.id, SAVE), np.full(n, CHECKPOINT), src, np.full(n, store), demands, entries)
    return group, float(spec.checkpoint_bytes / n / demands.min())


def checkpoint_rate(fab: Fabric, nodes: np.ndarray) -> float:
    """Bytes/s each server writes a striped checkpoint at: its share of what the arrays absorb (equal
    stripes: the slowest array sets the pace) or its storage NICs' bandwidth, whichever is less."""
    arrays = fab.link_cap[fab.storage_write]
    nic = fab.link_cap[fab.storage_up[nodes]].min()
    return float(min(nic, len(arrays) * arrays.min() / len(nodes)))


def _striped_checkpoint(spec: JobSpec, nodes: np.ndarray, fab: Fabric, router: Router) -> tuple[FlowGroup, float]:
    arrays, n = len(fab.storage_gid), len(nodes)
    rate = checkpoint_rate(fab, nodes)
    src = np.repeat(fab.node_gid[nodes], arrays)
    dst = np.tile(fab.storage_gid, n)
    entries = striped(fab, nodes, router.alive, write=True)
    demand = np.full(n * arrays, rate / arrays)
    group = FlowGroup.build((spec.id, SAVE), np.full(n * arrays, CHECKPOINT), src, dst, demand, entries)
    return group, float(spec.checkpoint_bytes / n / rate)
