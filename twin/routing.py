"""ECMP routing: which links a flow crosses, and what fraction of it each one carries.

Switches split traffic equally over every next hop that is one step closer to the destination (per-hop
ECMP, as hashing spreads many flows in a real Clos fabric). A route is therefore a set of (link,
fraction) pairs rather than one path. Servers, storage and the gateway are endpoints only, never transit.
Routes are computed on demand and cached; ``invalidate()`` drops the cache when links change.

The switch graph is held as flat arrays (each switch's outgoing switch links, contiguous), so a
breadth-first search or a spread of fractions down the levels of a three-tier fabric is a few numpy
operations per level, not a Python loop over thousands of neighbours. Caches are bounded by what they
hold, so the largest site's routes fit in memory however long it runs.
"""

from __future__ import annotations

import numpy as np

from twin.topology import NODE, SWITCH_KINDS, Fabric

Route = tuple[np.ndarray, np.ndarray]  # (link ids, fractions)
_EMPTY: Route = (np.empty(0, np.int32), np.empty(0, np.float64))
ROUTES_KEPT = 200_000  # cached routes, at most
ROUTE_ENTRIES_KEPT = 4_000_000  # (link, fraction) pairs in cached routes, at most
DISTANCES_KEPT = 16_384  # cached distance arrays (one per destination switch set), at most


class Router:
    """Routes between graph vertices over the alive links of a fabric."""

    def __init__(self, fabric: Fabric, alive: np.ndarray | None = None) -> None:
        self.fabric = fabric
        self.alive = np.ones(fabric.n_links, bool) if alive is None else alive
        # Switches get local indices 0..S-1; their switch-to-switch links are grouped by source (CSR).
        is_switch = np.isin(fabric.kind, SWITCH_KINDS)
        self._local = np.full(len(fabric.kind), -1, np.int64)
        self._local[is_switch] = np.arange(int(is_switch.sum()))
        self._gid = np.flatnonzero(is_switch)  # local index -> vertex
        cables = np.arange(2 * fabric.n_edges)
        src, dst = fabric.link_src[cables], fabric.link_dst[cables]
        mine = cables[is_switch[src] & is_switch[dst]]
        mine = mine[np.argsort(self._local[fabric.link_src[mine]], kind="stable")]
        self._nb_link = mine.astype(np.int64)
        self._nb_dst = self._local[fabric.link_dst[mine]]
        self._nb_ptr = np.searchsorted(self._local[fabric.link_src[mine]], np.arange(int(is_switch.sum()) + 1))
        self._dist: dict[tuple[int, ...], np.ndarray] = {}
        self._up_ends: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._down_ends: dict[int, tuple[tuple[int, ...], dict[int, list[int]]]] = {}
        self._parts: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple | None] = {}
        self._part_entries = 0
        self._routes: dict[tuple[int, int, int | None], Route] = {}
        self._route_entries = 0
        self.epoch = 0  # grows whenever routes may change (``invalidate``): what caches of routes check

    def invalidate(self, alive: np.ndarray) -> None:
        """Links changed (failed or repaired): forget every cached distance and route."""
        self.alive = alive
        self.epoch += 1
        self._dist.clear()
        self._parts.clear()
        self._up_ends.clear()
        self._down_ends.clear()
        self._routes.clear()
        self._part_entries = self._route_entries = 0

    def route(self, src: int, dst: int, rail: int | None = None) -> Route:
        """Links and fractions from vertex ``src`` to vertex ``dst``; empty if there is no path. The arrays
        are shared with the cache: read them, never write to them."""
        key = (src, dst, rail)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = self._route(src, dst, rail)
            self._route_entries += len(found[0])
            if len(self._routes) > ROUTES_KEPT or self._route_entries > ROUTE_ENTRIES_KEPT:
                self._route_entries = _drop_oldest_half(self._routes, lambda r: len(r[0]))
        return found

    def routes(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        rail: np.ndarray | None = None,
        dead_link: int | None = None,
        via: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The routes of n flows at once, as entries (flow 0..n-1, link, fraction) in flow order: each
        flow's part is ``route(src[i], dst[i], rail[i])``, then ``(via, 1.0)`` if given and the flow has a
        path (a storage array's read or write limit, a virtual link). A flow with no path has no entries,
        or one on ``dead_link`` (capacity zero) if given, so its group stalls rather than vanishing."""
        n = len(src)
        rails = [None] * n if rail is None else np.asarray(rail).tolist()
        pairs = zip(np.asarray(src).tolist(), np.asarray(dst).tolist(), rails, strict=True)
        found = [self.route(a, b, r) for a, b, r in pairs]
        lengths = np.fromiter((len(r[0]) for r in found), np.int64, n)
        routed = lengths > 0
        tail = np.full(n, -1, np.int64)  # the one entry a flow gets after its route: via, or dead_link
        if via is not None:
            tail[routed] = via
        if dead_link is not None:
            tail[~routed] = dead_link
        extra = tail >= 0
        counts = lengths + extra
        ends = np.cumsum(counts)
        link = np.empty(int(ends[-1]) if n else 0, np.int32)
        frac = np.empty(len(link))
        if lengths.any():
            owner = np.repeat(np.arange(n), lengths)
            step = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            at = (ends - counts)[owner] + step
            link[at] = np.concatenate([r[0] for r in found])
            frac[at] = np.concatenate([r[1] for r in found])
        link[ends[extra] - 1] = tail[extra]
        frac[ends[extra] - 1] = 1.0
        return np.repeat(np.arange(n, dtype=np.int32), counts), link, frac

    def _route(self, src: int, dst: int, rail: int | None) -> Route:
        ups, starts = self._entries(src, rail)
        targets, down_of = self._exits(dst, rail)
        if not ups or not targets:
            return _EMPTY
        part = self._across(starts, targets)
        if part is None:
            return _EMPTY
        chosen, links, fracs, arrive = part
        ends: dict[int, float] = {}  # the links into and out of the fabric
        for i in chosen:
            ends[ups[i]] = ends.get(ups[i], 0.0) + 1.0 / len(chosen)
        # Leave the fabric from whichever target switches the traffic reached.
        for sw, frac in arrive.items():
            for down in down_of[sw]:
                ends[down] = ends.get(down, 0.0) + frac / len(down_of[sw])
        links = np.concatenate([links, np.fromiter(ends.keys(), np.int64, len(ends))])
        fracs = np.concatenate([fracs, np.fromiter(ends.values(), np.float64, len(ends))])
        order = np.argsort(links)
        return links[order].astype(np.int32), fracs[order]

    def _entries(self, gid: int, rail: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Where a vertex enters the fabric: its alive uplinks and their switches (cached for storage and
        the gateway, which reach thousands of switches on the largest site; a server uses its rail)."""
        if self.fabric.kind[gid] == NODE:
            return _alive_ends(self.fabric.endpoints(gid, rail), self.alive, 1)
        found = self._up_ends.get(gid)
        if found is None:
            found = self._up_ends[gid] = _alive_ends(self.fabric.endpoints(gid, rail), self.alive, 1)
        return found

    def _exits(self, gid: int, rail: int | None) -> tuple[tuple[int, ...], dict[int, list[int]]]:
        """Where a vertex leaves the fabric: the sorted switches with an alive downlink to it, and those
        downlinks per switch (cached as ``_entries``)."""
        found = None if self.fabric.kind[gid] == NODE else self._down_ends.get(gid)
        if found is None:
            links, switches = _alive_ends(self.fabric.endpoints(gid, rail), self.alive, 2)
            down_of: dict[int, list[int]] = {}
            for sw, down in zip(switches, links, strict=True):
                down_of.setdefault(sw, []).append(down)
            found = (tuple(sorted(down_of)), down_of)
            if self.fabric.kind[gid] != NODE:
                self._down_ends[gid] = found
        return found

    def _across(
        self, starts: tuple[int, ...], targets: tuple[int, ...]
    ) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, dict[int, float]] | None:
        """The part of a route inside the fabric, shared by every endpoint on the same switches: which of
        the source's switches ``starts`` it enters by (those nearest the targets, equally), the switch
        links with their fractions, and the share arriving at each target switch. None if no target can
        be reached. Cached."""
        key = (starts, targets)
        if key in self._parts:
            return self._parts[key]
        dist = self._distances(targets)
        reach = dist[self._local[list(starts)]]
        best = int(reach[reach >= 0].min()) if (reach >= 0).any() else -1
        if best < 0:
            self._parts[key] = None
            return None
        chosen = np.flatnonzero(reach == best)
        # Down the distances level by level from every chosen switch at once (all are equally far from the
        # targets), each switch splitting what reaches it equally over its closer next hops.
        nodes, where = np.unique(self._local[[starts[i] for i in chosen]], return_inverse=True)
        share = np.bincount(where, minlength=len(nodes)) / len(chosen)
        links: list[np.ndarray] = []
        fracs: list[np.ndarray] = []
        for level in range(best, 0, -1):
            idx, owner = self._expand(nodes)
            lk, v = self._nb_link[idx], self._nb_dst[idx]
            ok = self.alive[lk] & (dist[v] == level - 1)
            lk, v, owner = lk[ok], v[ok], owner[ok]
            part = share[owner] / np.bincount(owner, minlength=len(nodes))[owner]
            links.append(lk)
            fracs.append(part)
            nodes, where = np.unique(v, return_inverse=True)
            share = np.bincount(where, weights=part, minlength=len(nodes))
        # A link is crossed at one level only (the distance drops by one at each), so none repeats.
        found = (
            tuple(chosen.tolist()),
            np.concatenate(links) if links else np.empty(0, np.int64),
            np.concatenate(fracs) if fracs else np.empty(0),
            dict(zip(self._gid[nodes].tolist(), share.tolist(), strict=True)),
        )
        self._parts[key] = found
        self._part_entries += len(found[1])
        if self._part_entries > ROUTE_ENTRIES_KEPT:
            self._part_entries = _drop_oldest_half(self._parts, lambda r: len(r[1]) if r else 0)
        return found

    def _distances(self, targets: tuple[int, ...]) -> np.ndarray:
        """Hops from every switch (by local index) to the nearest of ``targets`` over alive switch links,
        -1 where none is reachable: a breadth-first search walking the links backwards."""
        found = self._dist.get(targets)
        if found is not None:
            return found
        dist = np.full(len(self._nb_ptr) - 1, -1, np.int8)  # no fabric is 127 switches deep
        frontier = np.unique(self._local[list(targets)])
        dist[frontier] = 0
        level = 0
        while len(frontier):
            level += 1
            idx, _ = self._expand(frontier)
            # v reaches u through the link v->u, which is the link u->v ^ 1.
            v = self._nb_dst[idx]
            v = np.unique(v[self.alive[self._nb_link[idx] ^ 1] & (dist[v] < 0)])
            dist[v] = level
            frontier = v
        if len(self._dist) >= DISTANCES_KEPT:
            _drop_oldest_half(self._dist, lambda _: 0)
        self._dist[targets] = dist
        return dist

    def _expand(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of every outgoing switch link of ``nodes`` in the flat arrays, and which of the
        nodes each belongs to."""
        first, count = self._nb_ptr[nodes], self._nb_ptr[nodes + 1] - self._nb_ptr[nodes]
        owner = np.repeat(np.arange(len(nodes)), count)
        ends = np.cumsum(count)
        return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - count - first, count), owner


def _alive_ends(ends: list[tuple[int, int, int]], alive: np.ndarray, which: int) -> tuple[tuple[int, ...], ...]:
    """The alive links of (switch, uplink, downlink) attachments, ``which`` 1 for up or 2 for down, and
    their switches."""
    kept = [e for e in ends if alive[e[which]]]
    return tuple(e[which] for e in kept), tuple(e[0] for e in kept)


def _drop_oldest_half(cache: dict, size) -> int:
    """Forget the older half of a cache (dicts keep insertion order); returns what the rest holds."""
    for old in list(cache)[: len(cache) // 2 + 1]:
        del cache[old]
    return sum(size(v) for v in cache.values())
