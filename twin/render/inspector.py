"""What the inspector says about the thing under the cursor: pure functions of the snapshot."""

from __future__ import annotations

import numpy as np

from twin.flows import TRAFFIC_KINDS
from twin.names import job_kind_word
from twin.render.hud import fmt_duration, model_size
from twin.render.layout import Layout
from twin.snapshot import JobView, Snapshot
from twin.topology import GBIT, LINK_KINDS, NODE, STORAGE, VERTEX_KINDS, Fabric

Info = tuple[str, tuple[str, ...]]


def _gbps(bytes_per_s: float) -> str:
    gb = bytes_per_s / GBIT
    return f"{gb / 1000:,.2f} Tb/s" if gb >= 1000 else f"{gb:,.1f} Gb/s"


def _share(load: float, cap: float) -> str:
    return f"{load / cap:.0%}" if cap else "-"


def describe_job(job: JobView, fab: Fabric, snap: Snapshot) -> Info:
    leaves = len(np.unique(fab.node_domain[job.nodes]))
    flows = snap.flows
    mine = flows["job"] == job.id if len(flows.get("job", ())) else np.zeros(0, bool)
    rate = float(flows["rate"][mine].sum()) if mine.any() else 0.0
    kinds = sorted({TRAFFIC_KINDS[k] for k in flows["kind"][mine]}) if mine.any() else []
    lines = (
        f"{job.gpus:,} GPU{'s' * (job.gpus != 1)} on {len(job.nodes):,} server{'s' * (len(job.nodes) != 1)} "
        f"under {leaves} leaf domain{'s' * (leaves != 1)}",
        f"model {f'{job.params_b:,.1f}B' if job.params_b >= 1 else model_size(job.params_b)} parameters",
        f"phase {job.phase}, {job.progress:.0%} done",
        f"fabric gives it {job.speed:.0%} of its demand, {_gbps(rate)} in {int(mine.sum()):,} flows",
        f"traffic: {', '.join(kinds) if kinds else 'none on the fabric'}",
        f"waited {fmt_duration(job.start_s - job.arrival_s)}, running {fmt_duration(snap.time_s - job.start_s)}",
    )
    return f"{job_kind_word(job.kind)} job #{job.id}", lines


def describe_vertex(gid: int, fab: Fabric, snap: Snapshot) -> Info:
    kind = VERTEX_KINDS[fab.kind[gid]]
    name = fab.names[gid]
    out_links = np.flatnonzero(fab.link_src == gid)
    in_links = np.flatnonzero(fab.link_dst == gid)
    sent = float(snap.link_load[out_links].sum())
    received = float(snap.link_load[in_links].sum())
    if fab.kind[gid] == NODE:
        n = int(np.flatnonzero(fab.node_gid == gid)[0])
        owners = snap.gpu_owner[n]
        jobs = [int(j) for j in np.unique(owners[owners >= 0])]
        lines = [
            f"rack {fab.node_rack[n] + 1}, leaf domain {fab.node_domain[n] + 1}",
            f"{(owners >= 0).sum()} of {len(owners)} GPUs busy, utilisation {snap.node_util[n]:.0%}",
            f"sends {_gbps(sent)}, receives {_gbps(received)}",
        ]
        views = {j.id: j for j in snap.jobs}
        lines += [f"{job_kind_word(views[j].kind)} #{j}: {int((owners == j).sum())} GPUs" for j in jobs if j in views]
        if len(snap.down) and snap.down[gid]:
            lines.insert(0, "FAILED: out of service until repaired")
        return f"server {name}", tuple(lines)
    ports = fab.graph.degree(gid)
    util = snap.link_util[out_links]
    lines = [
        f"{ports} links, hottest at {util.max() if len(util) else 0:.0%}",
        f"out {_gbps(sent)}, in {_gbps(received)}",
    ]
    if fab.kind[gid] == STORAGE:
        i = int(np.flatnonzero(fab.storage_gid == gid)[0])
        r, w = int(fab.storage_read[i]), int(fab.storage_write[i])
        cap = fab.graph.nodes[gid].get("capacity_pb", 0)
        lines = [
            f"{cap:g} PB parallel file system",
            f"reads {snap.link_load[r] / 1e9:,.1f} of {fab.link_cap[r] / 1e9:,.0f} GB/s",
            f"writes {snap.link_load[w] / 1e9:,.1f} of {fab.link_cap[w] / 1e9:,.0f} GB/s",
            *lines,
        ]
    if len(snap.down) and snap.down[gid]:
        lines.insert(0, "FAILED: out of service until repaired")
    return f"{kind} {name}", tuple(lines)


def describe_segment(s: int, layout: Layout, fab: Fabric, snap: Snapshot) -> Info:
    seg = layout.segments
    fwd = seg.fwd[seg.fwd_ptr[s] : seg.fwd_ptr[s + 1]]
    rev = seg.rev[seg.rev_ptr[s] : seg.rev_ptr[s + 1]]
    members = np.concatenate([fwd, rev])
    cap = float(fab.link_cap[fwd].sum())
    load_f, load_r = float(snap.link_load[fwd].sum()), float(snap.link_load[rev].sum())
    flows = snap.flows
    on = np.unique(flows["entry_flow"][np.isin(flows["entry_link"], members)]) if len(members) else []
    names = {fab.names[int(v)] for v in np.concatenate([fab.link_src[fwd], fab.link_dst[fwd]])}
    title = f"{LINK_KINDS[seg.kind[s]]} link" if len(fwd) == 1 else f"cable tray: {len(fwd)} links"
    ends = " - ".join(sorted(names)) if len(names) <= 2 else f"{len(names)} switches and servers"
    dead = int(snap.dead_links[members].sum()) if len(snap.dead_links) and len(members) else 0
    lines = (
        *((f"FAILED: {dead // 2 or 1} of {len(fwd)} cables down",) if dead else ()),
        ends,
        f"capacity {_gbps(cap)} each way",
        f"load {_gbps(load_f)} ({_share(load_f, cap)}) and {_gbps(load_r)} ({_share(load_r, cap)})",
        f"hottest member at {snap.link_util[members].max() if len(members) else 0:.0%}",
        f"{len(on):,} flows",
    )
    return title, lines
