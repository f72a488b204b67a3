"""Where everything is drawn, in world units: pure functions of the fabric, computed once per layout.

Two layouts. ``hall``: a data hall seen from above: the top tier of switches across the top, blocks of
racks below (a rail unit, a fat-tree pod or a rack with its leaf), each rack a column of server cells,
storage arrays in a column on the right (with a storage network of its own: a storage leaf row at the
foot of each block, and below the grid a band of storage spines over the arrays, fed by storage trays
down the left of each column of blocks). ``graph``: the site as a network graph (force-directed for
small sites, concentric shells for large ones), computed by networkx.

Links become *segments*: a line between two points that carries a set of directed links one way and
another set the other way. Small fabrics get a segment per cable. Large ones would be a smear of
thousands of lines, so their spine links are bundled into cable trays: a stub from each block to a
riser beside its column of blocks, risers up to a bus, and a drop from the bus to each spine. A site with a
core tier (leaf-spine or rail-optimized) is drawn in pods, with trays inside each pod and from each pod to
the cores (``_pod_hall``). ``Segments.bundles`` lets a renderer sum loads over trays of thousands of
cables per run of consecutive links rather than per cable.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from twin import names
from twin.topology import (
    CORE,
    FABRIC,
    GATEWAY,
    GATEWAY_LINK,
    HOST,
    LEAF,
    NODE,
    SPINE,
    STORAGE,
    STORAGE_FABRIC,
    STORAGE_LINK,
    STORAGE_NET,
    STORAGE_NIC,
    SWITCH_KINDS,
    Fabric,
)

CELL_W, CELL_H, CELL_GAP = 1.0, 0.36, 0.08
RACK_GAP = 0.3
SWITCH_H = 0.32
BUNDLE_ABOVE = 400  # more switch-to-switch cables than this (or blocks in rows) go in cable trays
BUNDLE_GRAPH_ABOVE = 5_000  # and in the graph layout, more than this go in bundles between switch groups


@dataclass(frozen=True)
class Bundles:
    """The segments' member links as runs, for sums over segments that cost per run, not per link.

    Row ``d * S + s`` is segment s in direction d (0 forward, 1 backward). A row of one link (a host
    link) is summed directly. The links of the other rows are put in an order (``order``, ``tray``
    long) where the members of the biggest bundles are next to each other: each link is keyed by the
    biggest row it belongs to, then the next biggest, so a drop to a rail's cores is one run and a pod's
    lane one run per rail; a tray of thousands of cables costs a handful of runs. The inverse
    (``link_ptr``, ``link_rows``) gives the rows each link belongs to.
    """

    rows: int
    single_row: np.ndarray  # rows of one link, and that link
    single_link: np.ndarray
    order: np.ndarray  # the links of the other rows, bundle members together
    run_row: np.ndarray
    run_start: np.ndarray  # position in ``order``
    run_stop: np.ndarray
    link_ptr: np.ndarray
    link_rows: np.ndarray

    def sums(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Per row, the sum of ``values`` (..., links) over its member links: (..., rows). With a mask
        ``rows``, only those rows are summed (the others are 0)."""
        lead = values.shape[:-1]
        flat = values.reshape(-1, values.shape[-1])
        out = np.zeros((len(flat), self.rows))
        single, runs = slice(None), slice(None)
        if rows is not None:
            single, runs = rows[self.single_row], rows[self.run_row]
        out[:, self.single_row[single]] = flat[:, self.single_link[single]]
        if len(self.order):
            csum = np.zeros((len(flat), len(self.order) + 1))
            np.cumsum(flat[:, self.order], axis=1, out=csum[:, 1:])
            run = csum[:, self.run_stop[runs]] - csum[:, self.run_start[runs]]
            for i in range(len(flat)):
                out[i] += np.bincount(self.run_row[runs], weights=run[i], minlength=self.rows)
        return out.reshape(*lead, self.rows)

    @staticmethod
    def of(seg: Segments) -> Bundles:
        n = len(seg)
        row = np.concatenate(
            [np.repeat(np.arange(n) + d * n, np.diff(ptr)) for d, ptr in enumerate((seg.fwd_ptr, seg.rev_ptr))]
        ).astype(np.int64)
        link = np.concatenate([seg.fwd, seg.rev]).astype(np.int64)
        n_links = int(link.max()) + 1 if len(link) else 0
        size = np.bincount(row, minlength=2 * n)
        # The inverse: entries grouped by link, each link's biggest rows first (by member count, then row).
        g = np.lexsort((row, -size[row], link))
        g_link, g_row = link[g], row[g]
        one = size[row] == 1
        # Bundled links in order of their biggest row, then their next biggest.
        rank = np.arange(len(g)) - np.searchsorted(g_link, g_link)
        biggest = np.full(n_links, -1, np.int64)
        biggest[g_link[rank == 0]] = g_row[rank == 0]
        next_biggest = np.full(n_links, -1, np.int64)
        next_biggest[g_link[rank == 1]] = g_row[rank == 1]
        bundled = np.unique(link[~one])
        order = bundled[np.lexsort((bundled, next_biggest[bundled], biggest[bundled]))]
        where = np.full(n_links, -1, np.int64)
        where[order] = np.arange(len(order))
        r, at = row[~one], where[link[~one]]
        by_row = np.lexsort((at, r))
        r, at = r[by_row], at[by_row]
        starts = np.ones(len(at), bool)
        starts[1:] = (r[1:] != r[:-1]) | (at[1:] != at[:-1] + 1)
        first = np.flatnonzero(starts)
        last = np.append(first[1:], len(at))[: len(first)] - 1
        return Bundles(
            rows=2 * n,
            single_row=row[one],
            single_link=link[one],
            order=order,
            run_row=r[first],
            run_start=at[first],
            run_stop=at[last] + 1,
            link_ptr=np.searchsorted(g_link, np.arange(n_links + 1)),
            link_rows=g_row,
        )


@dataclass(frozen=True)
class Segments:
    """Drawable links. Row s runs from ``a[s]`` to ``b[s]``; its forward traffic is the directed links
    ``fwd[fwd_ptr[s]:fwd_ptr[s + 1]]``, its backward traffic likewise in ``rev``."""

    a: np.ndarray  # (S, 2)
    b: np.ndarray
    fwd_ptr: np.ndarray
    fwd: np.ndarray
    rev_ptr: np.ndarray
    rev: np.ndarray
    kind: np.ndarray  # link kind code
    detail: np.ndarray  # bool: only drawn when zoomed in

    def __len__(self) -> int:
        return len(self.a)

    @functools.cached_property
    def bundles(self) -> Bundles:
        """The member links as runs (computed once, on first use)."""
        return Bundles.of(self)


@dataclass(frozen=True)
class Layout:
    name: str
    pos: np.ndarray  # (V, 2) anchor of every vertex
    rect: np.ndarray  # (V, 4) x, y, w, h of every vertex's box (servers: their cell)
    racks: np.ndarray  # (R, 4) rack outlines
    blocks: np.ndarray  # (B, 4) block outlines
    block_labels: tuple[str, ...]
    segments: Segments
    bus: np.ndarray  # (K, 4) static cable-tray lines x0, y0, x1, y1
    bounds: tuple[float, float, float, float]  # x0, y0, x1, y1
    pods: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (P, 4) pod outlines (three tiers)
    pod_labels: tuple[str, ...] = ()
    tier_labels: tuple[tuple[str, float, float], ...] = ()  # (text, x, y): what a row of switches is

    @property
    def cell_w(self) -> float:
        """Width of a server cell, in world units."""
        return float(self.rect[0, 2]) if len(self.rect) else CELL_W


class _SegmentList:
    """Segments in the order they are added, one at a time or many alike at once (a server's host links)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, ...]] = []

    def add(self, a, b, fwd, rev, kind: int, detail: bool = False) -> None:
        fwd, rev = np.asarray(fwd, np.int64), np.asarray(rev, np.int64)
        one = np.ones(1, np.int64)
        self.chunks.append(
            (
                np.array([a], float).reshape(1, 2),
                np.array([b], float).reshape(1, 2),
                one * len(fwd),
                fwd,
                one * len(rev),
                rev,
                np.full(1, kind, np.int8),
                np.full(1, detail, bool),
            )
        )

    def add_many(self, a: np.ndarray, b: np.ndarray, fwd: np.ndarray, rev: np.ndarray, kind: int, detail: bool) -> None:
        """Segments of one link each way: row i runs from a[i] to b[i] and carries fwd[i] and rev[i]."""
        n = len(a)
        one = np.ones(n, np.int64)
        self.chunks.append(
            (
                np.asarray(a, float).reshape(n, 2),
                np.asarray(b, float).reshape(n, 2),
                one,
                np.asarray(fwd, np.int64),
                one,
                np.asarray(rev, np.int64),
                np.full(n, kind, np.int8),
                np.full(n, detail, bool),
            )
        )

    def build(self) -> Segments:
        if not self.chunks:
            z = np.zeros((0, 2))
            e = np.zeros(1, np.int64)
            return Segments(
                z, z, e, np.zeros(0, np.int64), e, np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, bool)
            )
        a, b, nf, fwd, nr, rev, kind, detail = (np.concatenate(c) for c in zip(*self.chunks, strict=True))
        return Segments(
            a=a,
            b=b,
            fwd_ptr=np.r_[0, np.cumsum(nf)].astype(np.int64),
            fwd=fwd.astype(np.int64),
            rev_ptr=np.r_[0, np.cumsum(nr)].astype(np.int64),
            rev=rev.astype(np.int64),
            kind=kind,
            detail=detail,
        )


def _edges_by_vertex(fab: Fabric) -> dict[int, list[int]]:
    """Directed links leaving each vertex, in link order."""
    order = np.argsort(fab.link_src[: 2 * fab.n_edges], kind="stable")
    src = fab.link_src[order]
    cuts = np.flatnonzero(np.diff(src)) + 1
    return {int(src[start]): links.tolist() for start, links in zip(np.r_[0, cuts], np.split(order, cuts), strict=True)}


def hall_layout(fab: Fabric, aspect: float = 1.5) -> Layout:
    """The data-hall view: switches on top, blocks of racks in a grid, storage on the right."""
    if fab.tiers == 3 and fab.topology != "fat-tree":
        return _pod_hall(fab, aspect)
    n_vertices = len(fab.kind)
    pos = np.zeros((n_vertices, 2))
    rect = np.zeros((n_vertices, 4))
    g = fab.graph
    rack_of = fab.node_rack
    n_racks = int(rack_of.max()) + 1
    per_rack = np.bincount(rack_of, minlength=n_racks)
    fat_tree = fab.topology == "fat-tree"
    rails = fab.rails
    # Blocks: a rail unit, a fat-tree pod, or one rack with its leaf.
    block_of_rack = np.zeros(n_racks, int)
    first_node = np.searchsorted(rack_of, np.arange(n_racks))
    if rails > 1:
        block_of_rack = fab.node_domain[first_node]
    elif fat_tree:
        block_of_rack = fab.node_pod[first_node]
    else:
        block_of_rack = np.arange(n_racks)
    n_blocks = int(block_of_rack.max()) + 1
    racks_in_block = [np.flatnonzero(block_of_rack == b) for b in range(n_blocks)]
    rack_h = per_rack.max() * (CELL_H + CELL_GAP) - CELL_GAP
    max_racks = max(len(r) for r in racks_in_block)
    pad = 0.3
    tiers = 2 if fat_tree else 1  # switch rows inside a block: edge (+ aggregation)
    storage_net = fab.has_storage_fabric
    block_w = max_racks * (CELL_W + RACK_GAP) - RACK_GAP + 2 * pad
    block_h = rack_h + (tiers + storage_net) * (SWITCH_H + 0.35) + 2 * pad
    gap_x, gap_y = 1.4, 1.0
    cols = _grid_columns(n_blocks, block_w + gap_x, block_h + gap_y, aspect)
    blocks = np.zeros((n_blocks, 4))
    racks = np.zeros((n_racks, 4))
    labels = []
    leaves_of_block: list[list[int]] = [[] for _ in range(n_blocks)]
    for b in range(n_blocks):
        row, col = divmod(b, cols)
        bx, by = col * (block_w + gap_x), row * (block_h + gap_y)
        blocks[b] = (bx, by, block_w, block_h)
        labels.append(_block_label(fab, b, rails, fat_tree))
        rack_top = by + pad + tiers * (SWITCH_H + 0.35)
        for i, r in enumerate(racks_in_block[b]):
            rx = bx + pad + i * (CELL_W + RACK_GAP)
            racks[r] = (rx - 0.06, rack_top - 0.06, CELL_W + 0.12, rack_h + 0.12)
            nodes = np.flatnonzero(rack_of == r)
            for j, n in enumerate(nodes):
                gid = fab.node_gid[n]
                rect[gid] = (rx, rack_top + j * (CELL_H + CELL_GAP), CELL_W, CELL_H)
        # Switches inside the block.
        block_switches = sorted(
            {
                int(sw)
                for n in np.flatnonzero(np.isin(rack_of, racks_in_block[b]))
                for sw, _, _ in fab.attachments[int(fab.node_gid[n])]
            }
        )
        leaves_of_block[b] = block_switches
        inner_w = block_w - 2 * pad
        if storage_net:  # the block's storage leaves in a row under its racks
            mine = _storage_leaves_of_block(fab, block_of_rack, b)
            w = inner_w / max(len(mine), 1)
            y_store = rack_top + rack_h + 0.35
            for i, sw in enumerate(mine):
                rect[sw] = (bx + pad + i * w + 0.04, y_store, w - 0.08, SWITCH_H)
        y_leaf = by + pad + (tiers - 1) * (SWITCH_H + 0.35)
        if rails > 1:  # one tile per rail leaf across the block
            w = inner_w / len(block_switches)
            for i, sw in enumerate(sorted(block_switches, key=lambda s: g.nodes[s]["rail"])):
                rect[sw] = (bx + pad + i * w + 0.04, y_leaf, w - 0.08, SWITCH_H)
        else:  # a leaf above its rack
            for i, r in enumerate(racks_in_block[b]):
                node0 = fab.node_gid[np.flatnonzero(rack_of == r)[0]]
                sw = fab.attachments[int(node0)][0][0]
                rx = bx + pad + i * (CELL_W + RACK_GAP)
                rect[sw] = (rx, y_leaf, CELL_W, SWITCH_H)
        if fat_tree:  # aggregation switches of the pod on the row above
            aggs = sorted(v for v in g.nodes if fab.kind[v] == SPINE and g.nodes[v].get("pod") == b)
            w = inner_w / max(len(aggs), 1)
            for i, sw in enumerate(aggs):
                rect[sw] = (bx + pad + i * w + 0.08, by + pad, w - 0.16, SWITCH_H)
                leaves_of_block[b].append(sw)
    grid_w = cols * (block_w + gap_x) - gap_x
    top_kind = CORE if fat_tree else SPINE
    tops = [v for v in range(n_vertices) if fab.kind[v] == top_kind and fab.network[v] != STORAGE_NET]
    if rails > 1:  # group spines by rail
        tops.sort(key=lambda v: (g.nodes[v]["rail"], g.nodes[v]["index"]))
    bus_y = -1.2
    top_h = SWITCH_H * (2.4 if len(tops) > 8 else 1.6)
    top_y = bus_y - 0.9 - top_h
    top_w = min(5.0, grid_w / max(len(tops), 1) * 0.8)
    for i, v in enumerate(tops):
        cx = (i + 0.5) * grid_w / len(tops)
        rect[v] = (cx - top_w / 2, top_y, top_w, top_h)
    gw = [v for v in range(n_vertices) if fab.kind[v] == GATEWAY]
    for v in gw:  # above the spines, in the middle
        rect[v] = (grid_w / 2 - 2.0, top_y - 1.2 - top_h, 4.0, top_h)
    stores = [v for v in range(n_vertices) if fab.kind[v] == STORAGE]
    store_x = grid_w + 2.6
    for i, v in enumerate(stores):
        rect[v] = (store_x, i * 1.6, 2.6, 1.0)
    rows = math.ceil(n_blocks / cols)
    grid_h = rows * (block_h + gap_y) - gap_y
    tier_labels: list[tuple[str, float, float]] = []
    storage_bus_y = grid_h + 1.2
    if storage_net:  # the storage band under the grid: storage spines, and the arrays under them
        spines, arrays = fab.storage_spines, fab.storage_gid
        sp_w = min(9.0, grid_w / len(spines) * 0.6)
        sp_y = storage_bus_y + 1.8
        for i, v in enumerate(spines.tolist()):
            rect[v] = ((i + 0.5) * grid_w / len(spines) - sp_w / 2, sp_y, sp_w, top_h)
        ar_w = min(2.6, grid_w / len(arrays) * 0.6)
        for i, v in enumerate(arrays.tolist()):
            rect[v] = ((i + 0.5) * grid_w / len(arrays) - ar_w / 2, sp_y + top_h + 2.2, ar_w, 1.0)
        tier_labels.append(("storage network", grid_w / 2, sp_y - 0.3))
    pos[:] = rect[:, :2] + rect[:, 2:] / 2
    segs = _SegmentList()
    bus: list[tuple[float, float, float, float]] = []
    out = _edges_by_vertex(fab)
    # Host links: server cell to its leaf(s); drawn only when zoomed in on a large site.
    many_hosts = fab.n_nodes > 64
    for n in range(fab.n_nodes):
        gid = int(fab.node_gid[n])
        x, y, w, _ = rect[gid]
        for sw, up, down in fab.attachments[gid]:
            sx, sy, sw_w, sh = rect[sw]
            segs.add((x + w / 2, y), (sx + sw_w / 2, sy + sh), [up], [down], HOST, detail=many_hosts)
    if storage_net:  # storage NICs: the foot of a server's cell to its storage leaf
        cell = rect[fab.node_gid]
        leaf = rect[fab.link_dst[fab.storage_up]]
        a = np.column_stack([cell[:, 0] + cell[:, 2] / 2, cell[:, 1] + cell[:, 3]])
        b = np.column_stack([leaf[:, 0] + leaf[:, 2] / 2, leaf[:, 1]])
        segs.add_many(a, b, fab.storage_up, fab.storage_down, STORAGE_NIC, detail=many_hosts)
    fabric_edges = int(np.isin(fab.link_kind[: 2 * fab.n_edges : 2], (FABRIC, STORAGE_FABRIC)).sum())
    top_set = set(tops)
    if fabric_edges <= BUNDLE_ABOVE and rows == 1:  # few cables and nothing in their way: draw each
        for lk in range(0, 2 * fab.n_edges, 2):
            if fab.link_kind[lk] in (FABRIC, STORAGE_LINK, GATEWAY_LINK, STORAGE_FABRIC):
                u, v = int(fab.link_src[lk]), int(fab.link_dst[lk])
                segs.add(_port(rect, u, v), _port(rect, v, u), [lk], [lk + 1], int(fab.link_kind[lk]))
    else:
        for lk in range(0, 2 * fab.n_edges, 2):  # cables inside a block (edge to aggregation) stay single
            u, v = int(fab.link_src[lk]), int(fab.link_dst[lk])
            if fab.link_kind[lk] == FABRIC and u not in top_set and v not in top_set:
                segs.add(_port(rect, u, v), _port(rect, v, u), [lk], [lk + 1], FABRIC)
        bus.append((-0.5, bus_y, max(grid_w, store_x + 2.6) + 0.5, bus_y))
        for v in tops:  # drops from the bus to each top switch
            x, y, w, h = rect[v]
            ups = [lk ^ 1 for lk in out.get(v, [])]
            segs.add((x + w / 2, bus_y), (x + w / 2, y + h), ups, [lk ^ 1 for lk in ups], FABRIC)
        for col in range(cols):
            members = [b for b in range(n_blocks) if b % cols == col]
            riser_x = blocks[members[0], 0] + block_w + gap_x / 2
            carried: list[int] = []
            for b in reversed(members):  # from the lowest block up, accumulating what the riser carries
                bx, by, bw, _ = blocks[b]
                stub_y = by + pad + SWITCH_H / 2
                ups = [lk for sw in leaves_of_block[b] for lk in out.get(sw, []) if int(fab.link_dst[lk]) in top_set]
                segs.add((bx + bw, stub_y), (riser_x, stub_y), ups, [lk ^ 1 for lk in ups], FABRIC)
                carried = carried + ups
                above = blocks[b - cols, 1] + pad + SWITCH_H / 2 if b - cols >= 0 else bus_y
                segs.add((riser_x, stub_y), (riser_x, above), carried, [lk ^ 1 for lk in carried], FABRIC)
        if storage_net:
            array_bus_y = storage_bus_y + 1.8 + top_h + 1.1
            bus.append((-0.5, storage_bus_y, grid_w + 0.5, storage_bus_y))
            bus.append((0.0, array_bus_y, grid_w, array_bus_y))
            _storage_trays(fab, rect, blocks, cols, gap_x, (storage_bus_y, array_bus_y), segs)
        for v in ([] if storage_net else stores) + gw:  # storage and gateway reach the bus directly
            x, y, w, h = rect[v]
            ups = [lk for lk in out.get(v, [])]
            kind = STORAGE_LINK if fab.kind[v] == STORAGE else GATEWAY_LINK
            if fab.kind[v] == STORAGE:
                segs.add((x, y + h / 2), (x - 0.8, y + h / 2), ups, [lk ^ 1 for lk in ups], kind)
                segs.add((x - 0.8, y + h / 2), (x - 0.8, bus_y), ups, [lk ^ 1 for lk in ups], kind)
            else:
                segs.add((x + w / 2, y + h), (x + w / 2, bus_y), ups, [lk ^ 1 for lk in ups], kind)
    x0 = min(rect[:, 0].min(), -0.5) - 0.5
    y0 = rect[:, 1].min() - 0.5
    x1 = (rect[:, 0] + rect[:, 2]).max() + 0.5
    y1 = (rect[:, 1] + rect[:, 3]).max() + 0.5
    return Layout(
        name="hall",
        pos=pos,
        rect=rect,
        racks=racks,
        blocks=blocks,
        block_labels=tuple(labels),
        segments=segs.build(),
        bus=np.array(bus).reshape(-1, 4),
        bounds=(float(x0), float(y0), float(x1), float(y1)),
        tier_labels=tuple(tier_labels),
    )


def _storage_leaves_of_block(fab: Fabric, block_of_rack: np.ndarray, block: int) -> list[int]:
    """The storage leaves drawn in a block: those whose first server is in it."""
    first = np.searchsorted(fab.node_storage_leaf, np.arange(len(fab.storage_leaves)))
    home = block_of_rack[fab.node_rack[first]]
    return fab.storage_leaves[home == block].tolist()


def _storage_band(
    fab: Fabric, rect: np.ndarray, width: float, y: float, segs: _SegmentList, bus: list
) -> tuple[str, float, float]:
    """The whole storage network in a band from ``y`` down (three-tier sites): a row of storage leaves, a
    bus, the storage spines, an array bus, the arrays; each server's storage NICs to its leaf are drawn
    zoomed in. Returns the band's label."""
    leaves, spines, arrays = fab.storage_leaves, fab.storage_spines, fab.storage_gid
    for row_y, verts, h, share in ((y, leaves, SWITCH_H, 0.9), (y + 2.0, spines, SWITCH_H * 2.4, 0.6)):
        w, n = width / len(verts), len(verts)
        x = np.arange(n) * w + w * (1 - share) / 2
        rect[verts] = np.column_stack([x, np.full(n, row_y), np.full(n, w * share), np.full(n, h)])
    ar_w = min(2.6, width / len(arrays) * 0.6)
    array_y = y + 2.0 + SWITCH_H * 2.4 + 2.2
    rect[arrays] = np.column_stack(
        [
            (np.arange(len(arrays)) + 0.5) * width / len(arrays) - ar_w / 2,
            np.full(len(arrays), array_y),
            np.full(len(arrays), ar_w),
            np.full(len(arrays), 1.0),
        ]
    )
    leaf_bus, array_bus = y + SWITCH_H + 0.8, array_y - 1.1
    bus += [(0.0, leaf_bus, width, leaf_bus), (0.0, array_bus, width, array_bus)]
    for i, v in enumerate(leaves.tolist()):  # each leaf down to the bus
        x, ly, w, h = rect[v]
        ups = [int(lk) for lk in fab.storage_leaf_up[i] if lk >= 0]
        segs.add((x + w / 2, ly + h), (x + w / 2, leaf_bus), ups, [lk ^ 1 for lk in ups], STORAGE_FABRIC)
    for j, v in enumerate(spines.tolist()):  # the bus to each spine, each spine to the array bus
        x, sy, w, h = rect[v]
        ups = [int(lk) for lk in fab.storage_leaf_up[:, j] if lk >= 0]
        segs.add((x + w / 2, leaf_bus), (x + w / 2, sy), ups, [lk ^ 1 for lk in ups], STORAGE_FABRIC)
        downs = [int(lk) ^ 1 for lk in fab.storage_array_up[:, j] if lk >= 0]
        segs.add((x + w / 2, sy + h), (x + w / 2, array_bus), downs, [lk ^ 1 for lk in downs], STORAGE_LINK)
    for a, v in enumerate(arrays.tolist()):
        x, ay, w, _ = rect[v]
        ups = [int(lk) for lk in fab.storage_array_up[a] if lk >= 0]
        segs.add((x + w / 2, ay), (x + w / 2, array_bus), ups, [lk ^ 1 for lk in ups], STORAGE_LINK)
    cell = rect[fab.node_gid]
    leaf = rect[fab.link_dst[fab.storage_up]]
    a_ = np.column_stack([cell[:, 0] + cell[:, 2] / 2, cell[:, 1] + cell[:, 3]])
    b_ = np.column_stack([leaf[:, 0] + leaf[:, 2] / 2, leaf[:, 1]])
    segs.add_many(a_, b_, fab.storage_up, fab.storage_down, STORAGE_NIC, detail=True)
    return "storage network", width / 2, y - 0.1


def _storage_trays(
    fab: Fabric,
    rect: np.ndarray,
    blocks: np.ndarray,
    cols: int,
    gap_x: float,
    buses: tuple[float, float],
    segs: _SegmentList,
) -> None:
    """Storage cables in trays: a stub from each block's storage leaves to a riser down the left of its
    column of blocks, risers down to the storage bus under the grid, a drop from the bus to each storage
    spine; under the spines an array bus, with a drop from each spine and a riser from each array."""
    bus_y, array_bus_y = buses
    leaf_up = fab.storage_leaf_up
    leaf_row = {int(g): i for i, g in enumerate(fab.storage_leaves.tolist())}
    block_of_leaf = {}
    for b in range(len(blocks)):  # which block draws each leaf: the one its tile lies in
        x, y, w, h = blocks[b]
        for g, i in leaf_row.items():
            if x <= rect[g, 0] <= x + w and y <= rect[g, 1] <= y + h:
                block_of_leaf[i] = b
    for col in range(min(cols, len(blocks))):
        members = list(range(col, len(blocks), cols))
        riser_x = blocks[members[0], 0] - gap_x * 0.3
        carried: list[int] = []
        for k, b in enumerate(members):  # from the top block down, accumulating what the riser carries
            mine = [i for i, home in block_of_leaf.items() if home == b]
            if not mine:
                continue
            ups = [int(lk) for lk in leaf_up[mine].ravel() if lk >= 0]
            stub_y = float(np.mean([rect[fab.storage_leaves[i], 1] for i in mine])) + SWITCH_H / 2
            bx = blocks[b, 0]
            segs.add((bx, stub_y), (riser_x, stub_y), ups, [lk ^ 1 for lk in ups], STORAGE_FABRIC)
            carried = carried + ups
            below = bus_y
            for nxt in members[k + 1 :]:
                below_leaves = [i for i, home in block_of_leaf.items() if home == nxt]
                if below_leaves:
                    below = float(rect[fab.storage_leaves[below_leaves[0]], 1]) + SWITCH_H / 2
                    break
            segs.add((riser_x, stub_y), (riser_x, below), carried, [lk ^ 1 for lk in carried], STORAGE_FABRIC)
    for j, v in enumerate(fab.storage_spines.tolist()):  # drops from the bus to each storage spine
        x, y, w, _ = rect[v]
        ups = [int(lk) for lk in leaf_up[:, j] if lk >= 0]
        segs.add((x + w / 2, bus_y), (x + w / 2, y), ups, [lk ^ 1 for lk in ups], STORAGE_FABRIC)
    array_up = fab.storage_array_up
    for j, v in enumerate(fab.storage_spines.tolist()):  # from each spine down to the array bus
        x, y, w, h = rect[v]
        downs = [int(lk) ^ 1 for lk in array_up[:, j] if lk >= 0]
        segs.add((x + w / 2, y + h), (x + w / 2, array_bus_y), downs, [lk ^ 1 for lk in downs], STORAGE_LINK)
    for a, v in enumerate(fab.storage_gid.tolist()):  # from each array up to the array bus
        x, y, w, _ = rect[v]
        ups = [int(lk) for lk in array_up[a] if lk >= 0]
        segs.add((x + w / 2, y), (x + w / 2, array_bus_y), ups, [lk ^ 1 for lk in ups], STORAGE_LINK)


def _pod_hall(fab: Fabric, aspect: float) -> Layout:
    """The hall of a three-tier leaf-spine or rail-optimized site: pods in a grid, each a frame of its
    blocks (rail units, or racks with their leaf) under a strip of the pod's spines, grouped by rail;
    the cores across the top in a strip per rail, a row per core group.

    Cables go in trays, so the largest site is a few thousand lines: inside a pod, a stub from each
    block's leaves to a riser beside its column of blocks, risers up to the pod's bus and a drop from it
    to each rail's spines; from each pod's spine strip, its own lane in the gutter beside its column of
    pods up to the site's bus under the cores, and a drop from that bus to each rail's cores. Host links
    (server to leaf) are drawn zoomed in.
    """
    n_vertices = len(fab.kind)
    g = fab.graph
    rect = np.zeros((n_vertices, 4))
    rails = fab.rails
    rail_of = np.array([g.nodes[v].get("rail", 0) for v in range(n_vertices)])
    index_of = np.array([g.nodes[v].get("index", 0) for v in range(n_vertices)])
    pod_of = np.array([g.nodes[v].get("pod", -1) for v in range(n_vertices)])
    rack_of = fab.node_rack
    n_racks = int(rack_of.max()) + 1
    per_rack = np.bincount(rack_of, minlength=n_racks)
    first_node = np.searchsorted(rack_of, np.arange(n_racks))
    block_of_rack = fab.node_domain[first_node]
    n_blocks = int(block_of_rack.max()) + 1
    racks_in_block = [np.flatnonzero(block_of_rack == b) for b in range(n_blocks)]
    pod_of_block = np.zeros(n_blocks, int)
    pod_of_block[fab.node_domain] = fab.node_pod
    n_pods = int(pod_of_block.max()) + 1
    blocks_in_pod = [np.flatnonzero(pod_of_block == p) for p in range(n_pods)]
    leaf_of = fab.link_dst[fab.host_up]  # (node, rail) -> leaf
    leaves_of_block = [np.unique(leaf_of[fab.node_domain == b]) for b in range(n_blocks)]
    # A block: a row of leaves (one per rail) over its racks.
    pad, gap_x, gap_y = 0.3, 0.8, 0.6
    rack_h = per_rack.max() * (CELL_H + CELL_GAP) - CELL_GAP
    block_w = max(len(r) for r in racks_in_block) * (CELL_W + RACK_GAP) - RACK_GAP + 2 * pad
    block_h = rack_h + SWITCH_H + 0.35 + 2 * pad
    # A pod: its spine strip, its bus, its blocks in a small grid with a riser right of each column.
    per_pod = max(len(b) for b in blocks_in_pod)
    pod_cols = _grid_columns(per_pod, block_w + gap_x, block_h + gap_y, 1.2)
    ppad, strip_h, strip_gap = 0.6, SWITCH_H * 1.6, 1.4
    pod_w = pod_cols * (block_w + gap_x) - gap_x + 2 * ppad
    pod_h = strip_h + strip_gap + math.ceil(per_pod / pod_cols) * (block_h + gap_y) - gap_y + 2 * ppad
    pgap_x, pgap_y = 2.4, 1.8
    cols = _even_columns(n_pods, pod_w + pgap_x, pod_h + pgap_y, aspect)
    rows = math.ceil(n_pods / cols)
    pods = np.zeros((n_pods, 4))
    blocks = np.zeros((n_blocks, 4))
    racks = np.zeros((n_racks, 4))
    spine_ids = np.flatnonzero((fab.kind == SPINE) & (fab.network != STORAGE_NET))
    spine_ids = spine_ids[np.lexsort((index_of[spine_ids], rail_of[spine_ids], pod_of[spine_ids]))]
    spines_of_pod = np.split(spine_ids, np.searchsorted(pod_of[spine_ids], np.arange(1, n_pods)))
    segs = _SegmentList()
    out = _edges_by_vertex(fab)
    is_spine, is_core = fab.kind == SPINE, fab.kind == CORE
    bus: list[tuple[float, float, float, float]] = []
    for p in range(n_pods):
        row, col = divmod(p, cols)
        px, py = col * (pod_w + pgap_x), row * (pod_h + pgap_y)
        pods[p] = (px, py, pod_w, pod_h)
        mine = spines_of_pod[p]
        _tile_row(rect, mine, rail_of[mine], rails, (px + ppad, py + ppad, pod_w - 2 * ppad, strip_h))
        pod_bus = py + ppad + strip_h + strip_gap / 2
        carried: dict[int, list[int]] = {}  # what each column's riser carries, from the lowest block up
        for i, b in reversed(list(enumerate(blocks_in_pod[p]))):
            brow, bcol = divmod(i, pod_cols)
            bx = px + ppad + bcol * (block_w + gap_x)
            by = py + ppad + strip_h + strip_gap + brow * (block_h + gap_y)
            blocks[b] = (bx, by, block_w, block_h)
            rack_top = by + pad + SWITCH_H + 0.35
            for j, rk in enumerate(racks_in_block[b]):
                rx = bx + pad + j * (CELL_W + RACK_GAP)
                racks[rk] = (rx - 0.06, rack_top - 0.06, CELL_W + 0.12, rack_h + 0.12)
                cells = fab.node_gid[np.flatnonzero(rack_of == rk)]
                rect[cells, 0] = rx
                rect[cells, 1] = rack_top + np.arange(len(cells)) * (CELL_H + CELL_GAP)
                rect[cells, 2:] = (CELL_W, CELL_H)
            leaves = leaves_of_block[b][np.argsort(rail_of[leaves_of_block[b]], kind="stable")]
            _tile_row(rect, leaves, np.zeros(len(leaves), int), 1, (bx + pad, by + pad, block_w - 2 * pad, SWITCH_H))
            # The block's uplinks: a stub to its column's riser, and the riser up to the block above.
            ups = [lk for leaf in leaves.tolist() for lk in out.get(leaf, []) if is_spine[fab.link_dst[lk]]]
            riser_x = bx + block_w + min(gap_x, ppad) / 2
            stub_y = by + pad + SWITCH_H / 2
            segs.add((bx + block_w, stub_y), (riser_x, stub_y), ups, [lk ^ 1 for lk in ups], FABRIC)
            carried[bcol] = carried.get(bcol, []) + ups
            above = by - gap_y - block_h + pad + SWITCH_H / 2 if brow else pod_bus
            segs.add((riser_x, stub_y), (riser_x, above), carried[bcol], [lk ^ 1 for lk in carried[bcol]], FABRIC)
        bus.append((px + ppad, pod_bus, px + pod_w - ppad / 2, pod_bus))
        # From the pod's bus up to each rail's spines; from its spine strip to the site's bus.
        for r in range(rails):
            group = mine[rail_of[mine] == r]
            x = (rect[group, 0].min() + (rect[group, 0] + rect[group, 2]).max()) / 2
            into = [lk ^ 1 for v in group.tolist() for lk in out.get(v, []) if not is_core[fab.link_dst[lk]]]
            segs.add((x, pod_bus), (x, py + ppad + strip_h), into, [lk ^ 1 for lk in into], FABRIC)
    grid_w = cols * (pod_w + pgap_x) - pgap_x
    # The cores: a strip per rail across the top, a row per core group (the cores that spine s of every
    # pod reaches).
    core_ids = np.flatnonzero(is_core)
    core_ids = core_ids[np.lexsort((index_of[core_ids], rail_of[core_ids]))]
    groups = len(spines_of_pod[0]) // rails
    per_rail = len(core_ids) // rails
    per_group = math.ceil(per_rail / groups)
    bus_y = -1.4
    row_h, row_gap, rail_gap = SWITCH_H, 0.1, 1.2
    band_h = groups * (row_h + row_gap) - row_gap
    band_y = bus_y - 1.0 - band_h
    strip_w = (grid_w - (rails - 1) * rail_gap) / rails
    w = strip_w / per_group
    rail, at = np.divmod(np.arange(len(core_ids)), per_rail)
    grp, k = np.divmod(at, per_group)
    rect[core_ids, 0] = rail * (strip_w + rail_gap) + k * w + 0.02
    rect[core_ids, 1] = band_y + grp * (row_h + row_gap)
    rect[core_ids, 2:] = (max(w - 0.04, 0.01), row_h)
    tier_labels = [
        (f"rail {r + 1} cores" if rails > 1 else "cores", r * (strip_w + rail_gap) + strip_w / 2, band_y)
        for r in range(rails)
    ]
    stores = [] if fab.has_storage_fabric else np.flatnonzero(fab.kind == STORAGE).tolist()
    store_x = grid_w + 2.6
    gw = np.flatnonzero(fab.kind == GATEWAY).tolist()
    if fab.has_storage_fabric:  # the storage network in a band under the pods
        grid_h = rows * (pod_h + pgap_y) - pgap_y
        tier_labels.append(_storage_band(fab, rect, grid_w, grid_h + 1.6, segs, bus))
    for v in gw:  # beside the cores, above the storage: the cores' labels keep the space over them
        rect[v] = (store_x, band_y + band_h - SWITCH_H * 2.4, 2.6, SWITCH_H * 2.4)
    for i, v in enumerate(stores):
        rect[v] = (store_x, i * 1.6, 2.6, 1.0)
    # Each pod's own lane beside its column of pods, the top pod's nearest: lanes never cross a stub.
    lane_gap = min(0.3, 0.6 * pgap_x / max(rows, 1))
    for p in range(n_pods):
        row, col = divmod(p, cols)
        x, y, w_, _ = pods[p]
        lane_x = x + w_ + 0.2 * pgap_x + row * lane_gap
        stub_y = y + ppad + strip_h / 2
        ups = [lk for v in spines_of_pod[p].tolist() for lk in out.get(v, []) if is_core[fab.link_dst[lk]]]
        segs.add((x + w_ - ppad / 2, stub_y), (lane_x, stub_y), ups, [lk ^ 1 for lk in ups], FABRIC)
        segs.add((lane_x, stub_y), (lane_x, bus_y), ups, [lk ^ 1 for lk in ups], FABRIC)
    for r in range(rails):
        x = r * (strip_w + rail_gap) + strip_w / 2
        into = [lk ^ 1 for v in core_ids[r * per_rail : (r + 1) * per_rail].tolist() for lk in out.get(v, [])]
        segs.add((x, bus_y), (x, band_y + band_h), into, [lk ^ 1 for lk in into], FABRIC)
    for v in stores + gw:  # storage and the gateway reach the bus directly
        x, y, w_, h = rect[v]
        ups = list(out.get(v, []))
        if fab.kind[v] == STORAGE:
            segs.add((x, y + h / 2), (x - 0.8, y + h / 2), ups, [lk ^ 1 for lk in ups], STORAGE_LINK)
            segs.add((x - 0.8, y + h / 2), (x - 0.8, bus_y), ups, [lk ^ 1 for lk in ups], STORAGE_LINK)
        else:
            segs.add((x + w_ / 2, y + h), (x + w_ / 2, bus_y), ups, [lk ^ 1 for lk in ups], GATEWAY_LINK)
    # Host links, all at once: each server's cell to its leaf on each rail (drawn zoomed in).
    cell = rect[fab.node_gid]
    for r in range(rails):
        leaf = leaf_of[:, r]
        top = np.column_stack([cell[:, 0] + cell[:, 2] / 2, cell[:, 1]])
        under = np.column_stack([rect[leaf, 0] + rect[leaf, 2] / 2, rect[leaf, 1] + rect[leaf, 3]])
        segs.add_many(top, under, fab.host_up[:, r], fab.host_down[:, r], HOST, detail=True)
    bus.append((-0.5, bus_y, max(grid_w, store_x + 2.6) + 0.5, bus_y))
    return Layout(
        name="hall",
        pos=rect[:, :2] + rect[:, 2:] / 2,
        rect=rect,
        racks=racks,
        blocks=blocks,
        block_labels=tuple(_block_label(fab, b, rails, False) for b in range(n_blocks)),
        segments=segs.build(),
        bus=np.array(bus),
        bounds=_bounds(rect),
        pods=pods,
        pod_labels=tuple(f"pod {p + 1}" for p in range(n_pods)),
        tier_labels=tuple(tier_labels),
    )


def _even_columns(n: int, cell_w: float, cell_h: float, aspect: float) -> int:
    """Columns for n pods near ``aspect`` (as ``_grid_columns``), preferring a grid without a ragged
    last row among those almost as close."""

    def err(cols: int) -> float:
        return abs(math.log((cols * cell_w) / (math.ceil(n / cols) * cell_h + 3.0) / aspect))

    best = min(range(1, n + 1), key=err)
    near = [c for c in range(1, n + 1) if err(c) <= err(best) + 0.15]
    return min(near, key=lambda c: (math.ceil(n / c) * c - n, err(c)))


def _tile_row(rect: np.ndarray, verts: np.ndarray, group: np.ndarray, groups: int, box: tuple) -> None:
    """Switches side by side in a box, in ``groups`` equal groups (by ``group``) with gaps between."""
    x, y, w, h = box
    gap = 0.25 if groups > 1 else 0.0
    gw = (w - (groups - 1) * gap) / groups
    for gi in range(groups):
        mine = verts[group == gi]
        if not len(mine):
            continue
        tw = gw / len(mine)
        rect[mine] = np.column_stack(
            [
                x + gi * (gw + gap) + np.arange(len(mine)) * tw + 0.03,
                np.full(len(mine), y),
                np.full(len(mine), max(tw - 0.06, 0.01)),
                np.full(len(mine), h),
            ]
        )


def _bounds(rect: np.ndarray) -> tuple[float, float, float, float]:
    x0 = min(rect[:, 0].min(), -0.5) - 0.5
    y0 = rect[:, 1].min() - 0.5
    x1 = (rect[:, 0] + rect[:, 2]).max() + 0.5
    y1 = (rect[:, 1] + rect[:, 3]).max() + 0.5
    return float(x0), float(y0), float(x1), float(y1)


def graph_layout(fab: Fabric, seed: int = 7) -> Layout:
    """The site as a graph: force-directed for small sites, concentric shells for large ones. On a fabric
    of more than BUNDLE_GRAPH_ABOVE switch-to-switch cables, switches are grouped (by tier, pod and rail),
    each group is an arc of its shell, and the cables between two groups are one bundle."""
    g = fab.graph
    n_vertices = len(fab.kind)
    group = _switch_groups(fab)
    fabric_edges = int((fab.link_kind[: 2 * fab.n_edges : 2] == FABRIC).sum())
    bundled = fabric_edges > BUNDLE_GRAPH_ABOVE
    if n_vertices <= 400:
        coords = nx.spring_layout(g, seed=seed, iterations=200, k=1.6 / math.sqrt(n_vertices))
    else:
        shells = [
            [v for v in g.nodes if fab.kind[v] in (GATEWAY,)],
            [v for v in g.nodes if fab.kind[v] in (CORE,)] or [v for v in g.nodes if fab.kind[v] == SPINE],
            [v for v in g.nodes if fab.kind[v] in (SPINE,) and (fab.kind == CORE).any()]
            + [v for v in g.nodes if fab.kind[v] in (STORAGE,)],
            [v for v in g.nodes if fab.kind[v] == LEAF],
            [v for v in g.nodes if fab.kind[v] == NODE],
        ]
        if bundled:  # a group's switches side by side on their shell
            shells = [sorted(shell, key=lambda v: (group.get(v, (v,)), v)) for shell in shells]
        coords = nx.shell_layout(g, [s for s in shells if s])
    scale = 3.2 * math.sqrt(n_vertices)
    pos = np.array([coords[v] for v in range(n_vertices)], float) * scale
    size = np.where(np.isin(fab.kind, SWITCH_KINDS), 0.9, 0.55)
    size[fab.kind == STORAGE] = 1.4
    size[fab.kind == GATEWAY] = 1.4
    cell = max(0.25, min(1.0, scale * 0.9 / math.sqrt(n_vertices)))
    size = size * cell
    rect = np.column_stack([pos[:, 0] - size / 2, pos[:, 1] - size / 2, size, size])
    segs = _SegmentList()
    many_hosts = fab.n_nodes > 64
    if bundled:
        _bundled_graph_segments(fab, pos, group, segs)
    else:
        for lk in range(0, 2 * fab.n_edges, 2):
            u, v = int(fab.link_src[lk]), int(fab.link_dst[lk])
            kind = int(fab.link_kind[lk])
            segs.add(pos[u], pos[v], [lk], [lk + 1], kind, detail=kind in (HOST, STORAGE_NIC) and many_hosts)
    pad = 2 * cell
    return Layout(
        name="graph",
        pos=pos,
        rect=rect,
        racks=np.zeros((0, 4)),
        blocks=np.zeros((0, 4)),
        block_labels=(),
        segments=segs.build(),
        bus=np.zeros((0, 4)),
        bounds=(
            float(pos[:, 0].min() - pad),
            float(pos[:, 1].min() - pad),
            float(pos[:, 0].max() + pad),
            float(pos[:, 1].max() + pad),
        ),
    )


def _switch_groups(fab: Fabric) -> dict[int, tuple[int, int, int]]:
    """Each switch's group: its tier, pod and rail (-1 where it has none)."""
    g = fab.graph
    return {int(v): (int(fab.kind[v]), g.nodes[v].get("pod", -1), g.nodes[v].get("rail", -1)) for v in fab.switch_gids}


def _bundled_graph_segments(
    fab: Fabric, pos: np.ndarray, group: dict[int, tuple[int, int, int]], segs: _SegmentList
) -> None:
    """Host links one by one (drawn zoomed in); every other cable in a bundle between the middles of its
    ends' groups (a server, storage array or the gateway is a group of its own)."""
    members: dict[object, list[int]] = {}
    for v in range(len(fab.kind)):
        members.setdefault(group.get(v, v), []).append(v)
    middle = {key: pos[vs].mean(axis=0) for key, vs in members.items()}
    order = {key: i for i, key in enumerate(members)}
    kinds = fab.link_kind[: 2 * fab.n_edges : 2]
    host = np.isin(kinds, (HOST, STORAGE_NIC))  # a server's own cables, compute and storage
    up = np.flatnonzero(host) * 2
    a, b = fab.link_src[up], fab.link_dst[up]
    for kind in (HOST, STORAGE_NIC):
        mine = kinds[up // 2] == kind
        if mine.any() or kind == HOST:
            segs.add_many(pos[a[mine]], pos[b[mine]], up[mine], up[mine] + 1, kind, detail=fab.n_nodes > 64)
    bundles: dict[tuple[object, object], tuple[list[int], list[int], int]] = {}
    for lk in (np.flatnonzero(~host) * 2).tolist():
        gu, gv = (
            group.get(int(fab.link_src[lk]), int(fab.link_src[lk])),
            group.get(int(fab.link_dst[lk]), int(fab.link_dst[lk])),
        )
        if order[gu] > order[gv]:
            gu, gv, lk = gv, gu, lk + 1
        fwd, rev, _ = bundles.setdefault((gu, gv), ([], [], int(fab.link_kind[lk & ~1])))
        fwd.append(lk)
        rev.append(lk ^ 1)
    for (gu, gv), (fwd, rev, kind) in bundles.items():
        segs.add(middle[gu], middle[gv], fwd, rev, kind)


LAYOUTS = dict(zip(names.LAYOUTS, (hall_layout, graph_layout), strict=True))


def _grid_columns(n: int, cell_w: float, cell_h: float, aspect: float) -> int:
    """Columns for n blocks so that the grid's width/height is closest to ``aspect``."""
    best, best_err = 1, float("inf")
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        err = abs(math.log((cols * cell_w) / (rows * cell_h + 3.0) / aspect))
        if err < best_err:
            best, best_err = cols, err
    return best


def _port(rect: np.ndarray, u: int, v: int) -> tuple[float, float]:
    """Where a cable leaves box u towards box v: the middle of the facing edge."""
    x, y, w, h = rect[u]
    vx, vy, _, vh = rect[v]
    if vy + vh <= y:
        return x + w / 2, y
    if vy >= y + h:
        return x + w / 2, y + h
    return (x + w, y + h / 2) if vx > x else (x, y + h / 2)


def _block_label(fab: Fabric, block: int, rails: int, fat_tree: bool) -> str:
    if rails > 1:
        return f"unit {block + 1}"
    if fat_tree:
        return f"pod {block + 1}"
    return f"rack {block + 1}"
