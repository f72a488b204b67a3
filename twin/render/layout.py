"""Where everything is drawn, in world units: pure functions of the fabric, computed once per layout.

Two layouts. ``hall``: a data hall seen from above: the top tier of switches across the top, blocks of
racks below (a rail unit, a fat-tree pod or a rack with its leaf), each rack a column of server cells,
storage arrays in a column on the right. ``graph``: the site as a network graph (force-directed for
small sites, concentric shells for large ones), computed by networkx.

Links become *segments*: a line between two points that carries a set of directed links one way and
another set the other way. Small fabrics get a segment per cable. Large ones would be a smear of
thousands of lines, so their spine links are bundled into cable trays: a stub from each block to a
riser beside its column of blocks, risers up to a bus, and a drop from the bus to each spine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    STORAGE_LINK,
    SWITCH_KINDS,
    Fabric,
)

CELL_W, CELL_H, CELL_GAP = 1.0, 0.36, 0.08
RACK_GAP = 0.3
SWITCH_H = 0.32
BUNDLE_ABOVE = 400  # more switch-to-switch cables than this (or blocks in rows) go in cable trays


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

    @property
    def cell_w(self) -> float:
        """Width of a server cell, in world units."""
        return float(self.rect[0, 2]) if len(self.rect) else CELL_W


class _SegmentList:
    def __init__(self) -> None:
        self.rows: list[tuple[tuple[float, float], tuple[float, float], np.ndarray, np.ndarray, int, bool]] = []

    def add(self, a, b, fwd, rev, kind: int, detail: bool = False) -> None:
        self.rows.append(
            (
                (float(a[0]), float(a[1])),
                (float(b[0]), float(b[1])),
                np.asarray(fwd, np.int64),
                np.asarray(rev, np.int64),
                kind,
                detail,
            )
        )

    def build(self) -> Segments:
        rows = self.rows
        if not rows:
            z = np.zeros((0, 2))
            e = np.zeros(1, np.int64)
            return Segments(
                z, z, e, np.zeros(0, np.int64), e, np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, bool)
            )
        fwd = [r[2] for r in rows]
        rev = [r[3] for r in rows]
        return Segments(
            a=np.array([r[0] for r in rows]),
            b=np.array([r[1] for r in rows]),
            fwd_ptr=np.r_[0, np.cumsum([len(f) for f in fwd])].astype(np.int64),
            fwd=np.concatenate(fwd).astype(np.int64),
            rev_ptr=np.r_[0, np.cumsum([len(r) for r in rev])].astype(np.int64),
            rev=np.concatenate(rev).astype(np.int64),
            kind=np.array([r[4] for r in rows], np.int8),
            detail=np.array([r[5] for r in rows], bool),
        )


def _edges_by_vertex(fab: Fabric) -> dict[int, list[int]]:
    """Directed links leaving each vertex."""
    out: dict[int, list[int]] = {}
    for lk in range(2 * fab.n_edges):
        out.setdefault(int(fab.link_src[lk]), []).append(lk)
    return out


def hall_layout(fab: Fabric, aspect: float = 1.5) -> Layout:
    """The data-hall view: switches on top, blocks of racks in a grid, storage on the right."""
    n_vertices = len(fab.kind)
    pos = np.zeros((n_vertices, 2))
    rect = np.zeros((n_vertices, 4))
    g = fab.graph
    rack_of = fab.node_rack
    n_racks = int(rack_of.max()) + 1
    per_rack = np.bincount(rack_of, minlength=n_racks)
    fat_tree = bool((fab.kind == CORE).any())
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
    block_w = max_racks * (CELL_W + RACK_GAP) - RACK_GAP + 2 * pad
    block_h = rack_h + tiers * (SWITCH_H + 0.35) + 2 * pad
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
    tops = [v for v in range(n_vertices) if fab.kind[v] == top_kind]
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
    fabric_edges = int((fab.link_kind[: 2 * fab.n_edges : 2] == FABRIC).sum())
    top_set = set(tops)
    rows = math.ceil(n_blocks / cols)
    if fabric_edges <= BUNDLE_ABOVE and rows == 1:  # few cables and nothing in their way: draw each
        for lk in range(0, 2 * fab.n_edges, 2):
            if fab.link_kind[lk] in (FABRIC, STORAGE_LINK, GATEWAY_LINK):
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
        for v in stores + gw:  # storage and gateway reach the bus directly
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
    )


def graph_layout(fab: Fabric, seed: int = 7) -> Layout:
    """The site as a graph: force-directed for small sites, concentric shells for large ones."""
    g = fab.graph
    n_vertices = len(fab.kind)
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
    for lk in range(0, 2 * fab.n_edges, 2):
        u, v = int(fab.link_src[lk]), int(fab.link_dst[lk])
        kind = int(fab.link_kind[lk])
        segs.add(pos[u], pos[v], [lk], [lk + 1], kind, detail=kind == HOST and many_hosts)
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
