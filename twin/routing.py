"""ECMP routing: which links a flow crosses, and what fraction of it each one carries.

Switches split traffic equally over every next hop that is one step closer to the destination (per-hop
ECMP, as hashing spreads many flows in a real Clos fabric). A route is therefore a set of (link,
fraction) pairs rather than one path. Servers, storage and the gateway are endpoints only, never transit.
Routes are computed on demand and cached; ``invalidate()`` drops the cache when links change.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from twin.topology import Fabric

Route = tuple[np.ndarray, np.ndarray]  # (link ids, fractions)
_EMPTY: Route = (np.empty(0, np.int32), np.empty(0, np.float64))
ROUTES_KEPT = 200_000  # cached routes, at most


class Router:
    """Routes between graph vertices over the alive links of a fabric."""

    def __init__(self, fabric: Fabric, alive: np.ndarray | None = None) -> None:
        self.fabric = fabric
        self.alive = np.ones(fabric.n_links, bool) if alive is None else alive
        self._dist: dict[tuple[int, ...], dict[int, int]] = {}
        self._core: dict[tuple[tuple[int, ...], tuple[int, ...]], dict[int, float]] = {}
        self._routes: dict[tuple[int, int, int | None], Route] = {}

    def invalidate(self, alive: np.ndarray) -> None:
        """Links changed (failed or repaired): forget every cached distance and route."""
        self.alive = alive
        self._dist.clear()
        self._core.clear()
        self._routes.clear()

    def route(self, src: int, dst: int, rail: int | None = None) -> Route:
        """Links and fractions from vertex ``src`` to vertex ``dst``; empty if there is no path. The arrays
        are shared with the cache: read them, never write to them."""
        key = (src, dst, rail)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = self._route(src, dst, rail)
            if len(self._routes) > ROUTES_KEPT:  # a bounded cache: the oldest half goes
                for old in list(self._routes)[: ROUTES_KEPT // 2]:
                    del self._routes[old]
        return found

    def _route(self, src: int, dst: int, rail: int | None) -> Route:
        fab = self.fabric
        ups = [(sw, up) for sw, up, _ in fab.endpoints(src, rail) if self.alive[up]]
        downs = [(sw, down) for sw, _, down in fab.endpoints(dst, rail) if self.alive[down]]
        if not ups or not downs:
            return _EMPTY
        targets = tuple(sorted({sw for sw, _ in downs}))
        dist = self._distances(targets)
        best = min((dist.get(sw, -1) for sw, _ in ups), key=lambda d: d if d >= 0 else 1 << 30)
        if best < 0:
            return _EMPTY
        first = [(sw, up) for sw, up in ups if dist.get(sw) == best]
        out: dict[int, float] = {}
        starts: dict[int, float] = {}
        for sw, up in first:
            out[up] = out.get(up, 0.0) + 1.0 / len(first)
            starts[sw] = starts.get(sw, 0.0) + 1.0 / len(first)
        for sw, frac in starts.items():
            for link, f in self._switch_route(sw, targets).items():
                out[link] = out.get(link, 0.0) + frac * f
        # Leave the fabric from whichever target switches the traffic reached.
        arrive = self._arrivals(starts, targets)
        down_of = {}
        for sw, down in downs:
            down_of.setdefault(sw, []).append(down)
        for sw, frac in arrive.items():
            for down in down_of[sw]:
                out[down] = out.get(down, 0.0) + frac / len(down_of[sw])
        links = np.fromiter(out.keys(), np.int32, len(out))
        fracs = np.fromiter(out.values(), np.float64, len(out))
        order = np.argsort(links)
        return links[order], fracs[order]

    def _distances(self, targets: tuple[int, ...]) -> dict[int, int]:
        """Hop count from every switch to the nearest of ``targets`` (BFS over alive switch links)."""
        if targets in self._dist:
            return self._dist[targets]
        nbrs = self.fabric.switch_nbrs
        dist = dict.fromkeys(targets, 0)
        todo = deque(targets)
        while todo:
            u = todo.popleft()
            for v, link in nbrs[u]:
                # Walking backwards: v reaches u through link v->u, which is link ^ 1.
                if v not in dist and self.alive[link ^ 1]:
                    dist[v] = dist[u] + 1
                    todo.append(v)
        self._dist[targets] = dist
        return dist

    def _switch_route(self, start: int, targets: tuple[int, ...]) -> dict[int, float]:
        """Fractions on switch-to-switch links from ``start`` to the target set (cached)."""
        key = ((start,), targets)
        if key in self._core:
            return self._core[key]
        dist = self._distances(targets)
        nbrs = self.fabric.switch_nbrs
        out: dict[int, float] = {}
        level = {start: 1.0}
        while level:
            nxt: dict[int, float] = {}
            for u, frac in level.items():
                d = dist[u]
                if d == 0:
                    continue
                hops = [(v, link) for v, link in nbrs[u] if self.alive[link] and dist.get(v, -1) == d - 1]
                for v, link in hops:
                    share = frac / len(hops)
                    out[link] = out.get(link, 0.0) + share
                    nxt[v] = nxt.get(v, 0.0) + share
            level = nxt
        self._core[key] = out
        return out

    def _arrivals(self, starts: dict[int, float], targets: tuple[int, ...]) -> dict[int, float]:
        """How much of the flow reaches each target switch."""
        if len(targets) == 1:
            return {targets[0]: 1.0}
        fab = self.fabric
        reach: dict[int, float] = {}
        tset = set(targets)
        for sw, frac in starts.items():
            if sw in tset:
                reach[sw] = reach.get(sw, 0.0) + frac
        for sw, frac in starts.items():
            for link, f in self._switch_route(sw, targets).items():
                end = int(fab.link_dst[link])
                if end in tset:
                    reach[end] = reach.get(end, 0.0) + frac * f
        return reach
