"""The traffic a job makes, as flow groups: pure functions of a job, the fabric and its routes.

A training job is laid out by ``twin.parallel`` (tensor, pipeline and data parallel): each step it
all-reduces its shard's gradients in a ring over its pipeline stage's servers on every rail (NVLink inside
a server) and sends activations between neighbouring stages; it reads its data from storage. An inference service
exchanges requests with the gateway; an evaluation job reads. Reads and checkpoint writes are built in ``twin.storage``.
"""

from __future__ import annotations

import weakref

import numpy as np

from twin.flows import DATA, GRADIENT, INFERENCE, Entries, FlowGroup, merge_entries
from twin.parallel import StepPlan
from twin.routing import Router
from twin.storage import checkpoint_flows, read_parts, reads_of_one_server
from twin.topology import Fabric
from twin.workload import JobSpec

__all__ = ["SAVE", "WORK", "checkpoint_flows", "group_key", "work_flows"]

WORK, SAVE = 0, 1  # flow-group purposes: the job's running traffic, and its checkpoint writes


def group_key(job_id: int, saving: bool) -> tuple[int, int]:
    return (job_id, SAVE if saving else WORK)


def work_flows(
    spec: JobSpec, gpus: np.ndarray, nodes: np.ndarray, fab: Fabric, router: Router, plan: StepPlan | None = None
) -> FlowGroup | None:
    """The traffic a running job makes: its training step's collectives (from ``plan``), data reads, or
    inference requests. Demands are averages over a step at full speed (bytes per step / step time)."""
    if len(nodes) == 1 and spec.kind != "inference" and spec.read_mbs_per_gpu > 0:
        return reads_of_one_server(spec, len(gpus), int(nodes[0]), fab, router, group_key(spec.id, False))
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
        flow, link, frac = router.routes(src, dst, rail, fab.dead_link)
        return flow + count, link, frac

    if spec.trains and n > 1 and plan is not None:
        # Megatron's rank order (tensor, then data, then pipeline): a pipeline stage is a block of
        # consecutive servers; its data-parallel ring runs over them on every rail, and each server sends
        # activations to the server in the same place of the next stage (gradients come back).
        per_nic = fab.gpus_per_node / fab.rails / plan.step_s  # bytes per GPU per step -> bytes/s on a NIC
        stages = np.array_split(nodes, min(plan.layout.pp, n))
        ring = [st for st in stages if len(st) > 1]
        if ring and plan.dp_bytes > 0:
            a, b = np.concatenate(ring), np.concatenate([np.roll(st, -1) for st in ring])
            src, dst, sends, entries = _between(a, b, fab, router, count)
            add(GRADIENT, src, dst, sends * plan.dp_bytes * per_nic, entries)
        if len(stages) > 1 and plan.pp_bytes > 0:
            m = min(len(st) for st in stages)
            a, b = np.concatenate([st[:m] for st in stages[:-1]]), np.concatenate([st[:m] for st in stages[1:]])
            src, dst, sends, entries = _between(np.concatenate([a, b]), np.concatenate([b, a]), fab, router, count)
            add(GRADIENT, src, dst, sends * plan.pp_bytes / 2 * per_nic, entries)
    if spec.kind == "inference" and spec.serve_mbs_per_gpu > 0:
        gw = np.full(n, fab.gateway_gid)
        demand = spec.serve_mbs_per_gpu * 1e6 * per_node
        add(INFERENCE, gw, gid, demand, routed(gw, gid, rails))
        add(INFERENCE, gid, gw, demand, routed(gid, gw, rails))
    elif spec.kind != "inference" and spec.read_mbs_per_gpu > 0:
        add(DATA, *read_parts(spec, nodes, per_node, fab, router, count))
    if not count:
        return None
    cat = np.concatenate
    return FlowGroup.build(
        group_key(spec.id, False), cat(kinds), cat(srcs), cat(dsts), cat(demands), merge_entries(*parts)
    )


def _between(
    a: np.ndarray, b: np.ndarray, fab: Fabric, router: Router, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Entries]:
    """``_sends_between`` with its flows numbered from ``first``, remembered per router (until it routes
    again) for the same servers: first-fit placement gives many jobs the same servers (over 40% of the
    multi-server starts of a Helios-style replay), and working the flows out costs dozens of numpy calls."""
    kept = _BETWEEN.get(router)
    if kept is None or kept.epoch != router.epoch:
        kept = _BETWEEN[router] = _Kept(router.epoch)
    key = (a.dtype.str, a.tobytes(), b.tobytes())
    made = kept.sends.get(key)
    if made is None:
        made = _sends_between(a, b, fab, router)
        for array in (*made[:3], *made[3]):
            array.flags.writeable = False  # shared by every job on these servers
        kept.keep(key, made)
    src, dst, sends, (flow, link, frac) = made
    return src, dst, sends, (flow + first, link, frac)


class _Kept:
    """Sends worked out for one router's routes (its ``epoch``), by servers; bounded by the route entries
    they hold (a 4,096-GPU job's sends hold tens of thousands) and by their number, so a long show's memory
    stays flat."""

    ENTRIES = 1_000_000  # route entries kept per router, at most (about 20 MB)
    SERVER_SETS = 4096  # and sets of servers

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.sends: dict[tuple[str, bytes, bytes], tuple] = {}
        self.entries = 0

    def keep(self, key: tuple[str, bytes, bytes], made: tuple) -> None:
        size = len(made[3][1])
        if self.entries + size > self.ENTRIES or len(self.sends) >= self.SERVER_SETS:
            self.sends.clear()
            self.entries = 0
        self.sends[key] = made
        self.entries += size


_BETWEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # router -> _Kept


def _sends_between(
    a: np.ndarray, b: np.ndarray, fab: Fabric, router: Router
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Entries]:
    """Flows from server ``a[i]`` to server ``b[i]`` on every rail (each GPU to its peer on the other
    server): source and destination gids, how many sends each flow carries, and route entries (flows
    numbered from 0). Servers under the same leaf need no routing: up to the leaf and down again. Sends
    between the same two leaves on one rail share their way through the fabric, so they are one flow:
    each server's link to and from its leaf carries its own share (a pipeline stage's activations go
    from every server of a unit to the same unit of the next stage), and a 16,384-GPU job's tens of
    thousands of sends across a three-tier fabric stay a few hundred routes."""
    rails = fab.rails
    src, dst = np.repeat(a, rails), np.repeat(b, rails)
    rail = np.tile(np.arange(rails), len(a))
    up, down = fab.host_up[src, rail], fab.host_down[dst, rail]
    near = np.flatnonzero(fab.link_dst[up] == fab.link_src[down])
    k = len(near)
    parts: list[Entries] = [
        (np.repeat(np.arange(k), 2), np.column_stack([up[near], down[near]]).ravel(), np.ones(2 * k))
    ]
    far = np.flatnonzero(fab.link_dst[up] != fab.link_src[down])
    pair = (fab.link_dst[up[far]].astype(np.int64) * len(fab.kind) + fab.link_src[down[far]]) * rails + rail[far]
    _, group, counts = np.unique(pair, return_inverse=True, return_counts=True)
    members = far[np.argsort(group, kind="stable")]
    heads = members[np.cumsum(counts) - counts]
    ways = router.routes(fab.node_gid[src[heads]], fab.node_gid[dst[heads]], rail[heads])
    parts.append(_shared_ways(ways, k, members, counts, heads, (up, down), fab.dead_link))
    chosen = np.concatenate([near, heads])
    weight = np.concatenate([np.ones(k), counts]).astype(np.float64)
    return fab.node_gid[src[chosen]], fab.node_gid[dst[chosen]], weight, merge_entries(*parts)


def _shared_ways(
    ways: Entries,
    first: int,
    members: np.ndarray,
    counts: np.ndarray,
    heads: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray],
    dead: int,
) -> Entries:
    """Route entries of flows that each carry ``counts`` sends between two leaves on a rail, numbered from
    ``first``: ``members`` lists the sends of flow 0, then of flow 1, ...; ``ways`` are the routes of
    each flow's first send (its ``heads``); ``ends`` each send's link up to its leaf and down from the
    other. A flow's entries are its sends' uplinks (an equal share each), its route inside the fabric,
    then their downlinks, as one flow at a time would list them; a flow with no path has one entry on
    the dead link, so its job stalls rather than vanishing."""
    up, down = ends
    n = len(counts)
    way, links, fracs = ways
    inner = (links != up[heads][way]) & (links != down[heads][way])
    has_path = np.bincount(way, minlength=n) > 0
    flow = np.repeat(np.arange(n), counts)
    routed = has_path[flow]
    sent, share, stalled = flow[routed], (1.0 / counts)[flow][routed], np.flatnonzero(~has_path)
    entry_flow = np.concatenate([sent, way[inner], sent, stalled])
    entry_link = np.concatenate(
        [up[members[routed]], links[inner], down[members[routed]], np.full(len(stalled), dead, up.dtype)]
    )
    entry_frac = np.concatenate([share, fracs[inner], share, np.ones(len(stalled))])
    order = np.argsort(entry_flow, kind="stable")  # within a flow: up, inside, down, as listed
    return first + entry_flow[order], entry_link[order], entry_frac[order]
