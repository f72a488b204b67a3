"""Fluid flows and how the fabric shares its bandwidth among them.

A *flow* moves bytes between two vertices over a route (links with fractions). Flows come in *groups*
that progress together: the gradient and data flows of one training job all run at the job's speed
``x`` in [0, 1], and a flow's rate is ``x * demand``. The bandwidth is shared as flow-level network
simulators share it (:func:`group_speeds`): max-min fair over flows in bytes, each capped at its demand;
a group then runs at its slowest flow's rate / demand (the slowest ring link holds back the whole job),
its flows carry only that speed x demand, and what they give back goes to the groups that can use it.
Rates only change when the set of groups changes, so the simulator re-solves on events, not on a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.records import quick_init
from twin.routing import Route

# Kinds of traffic.
GRADIENT, DATA, CHECKPOINT, INFERENCE = range(4)
TRAFFIC_KINDS = ("gradient", "data", "checkpoint", "inference")

_EPS = 1e-9


def max_min_fair(
    var: np.ndarray,
    link: np.ndarray,
    weight: np.ndarray,
    capacity: np.ndarray,
    cap: np.ndarray,
) -> np.ndarray:
    """Max-min fair values of variables subject to link capacities.

    Entry ``e`` says variable ``var[e]`` puts ``weight[e] * x[var[e]]`` on link ``link[e]``; link ``l``
    carries at most ``capacity[l]``; ``x[v] <= cap[v]`` (caps are >= 0; a variable capped at 0 is left
    out). Entries must be sorted by ``var``, with at most one entry per (variable, link): add up the
    weights of a variable's flows on a link first.

    Progressive filling, made cheap in three ways. Links that could not be overloaded even if every
    variable on them reached its cap are dropped first (in a healthy fabric, most of them). Links whose
    columns are identical (ECMP spreads a flow evenly over parallel uplinks) count once. Then each step
    raises the common level to the lowest link share: the variables on every link at that share are fixed
    there, or, if some caps lie below it, all those variables are fixed at their caps (shares only grow
    as variables are fixed below them, so both are safe). A step is a fixed handful of numpy calls on
    link-sized arrays and on the entries of the variables it fixes (each variable's entries are a row of
    a padded table, so they are gathered in one call, and one bincount updates every link sum), so the
    cost is steps x links, not steps x entries.
    """
    return _max_min_fair(var, link, weight, capacity, cap)[0]


def _max_min_fair(
    var: np.ndarray, link: np.ndarray, weight: np.ndarray, capacity: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`max_min_fair`, and a mask of the links it solved on (the others could not bind: never
    overloaded, or the same column as one of them with no less capacity)."""
    n_vars = len(cap)
    x = cap.astype(np.float64).copy()
    solved = np.zeros(len(capacity), bool)
    if len(var) == 0:
        return x, solved
    used = None
    if 8 * len(link) < len(capacity):  # a small problem on a large fabric: number its links 0..k-1 first
        used, link = np.unique(link, return_inverse=True)
        capacity = capacity[used]
    n_links = len(capacity)
    at_cap = weight * cap[var]  # an entry's load with its variable at its cap
    load_at_cap = np.bincount(link, weights=at_cap, minlength=n_links)
    tight = load_at_cap > capacity * (1 + _EPS) + _EPS
    # Entries of zero weight or of variables capped at zero take nothing from their links.
    useful = at_cap > 0
    if not tight.all():
        useful &= tight[link]
    if not useful.all():
        keep = np.flatnonzero(useful)
        if len(keep) == 0:
            return x, solved
        var, link, weight = var[keep], link[keep], weight[keep]
    keep, wsum = _distinct_constraints(var, link, weight, capacity, n_vars)
    if len(keep) < len(link):
        var, link, weight = var[keep], link[keep], weight[keep]
    solved[link if used is None else used[link]] = True
    return _fill(x, var, link, weight, capacity, wsum, cap), solved


# A padded table of every variable's entries is used while it is at most this many times the entries.
_PAD_LIMIT = 4


def _fill(
    x: np.ndarray,
    var: np.ndarray,
    link: np.ndarray,
    weight: np.ndarray,
    capacity: np.ndarray,
    wsum: np.ndarray,
    cap: np.ndarray,
) -> np.ndarray:
    """Progressive filling of :func:`max_min_fair` on entries already reduced (every link may bind);
    ``wsum`` is each link's sum of weights. Writes the values of the variables fixed by links into ``x``
    (which holds the caps)."""
    # Number the links that remain 0..n-1, so every per-link array is small; link n is a dummy.
    count = np.bincount(link, minlength=len(capacity))
    used = count > 0
    if not used.all():
        link = (np.cumsum(used) - 1)[link]
        capacity, wsum, count = capacity[used], wsum[used], count[used]
    n = len(capacity)
    m = n + 1
    # Number the variables 0..k-1 too (entries are sorted by var), with each one's run of entries.
    starts = np.flatnonzero(np.r_[True, var[1:] != var[:-1]])
    lengths = np.diff(np.r_[starts, len(var)])
    k = len(starts)
    names = var[starts]
    vcap = cap[names].astype(np.float64)
    # Per variable, its entries' indices into the stacked link sums [remaining, weight sum, entries], and
    # what fixing it at 1 takes off each: a padded table when degrees are even (ECMP makes them so).
    deg = int(lengths.max())
    even = k * deg == len(var)
    if even or k * deg <= _PAD_LIMIT * len(var) + 64:
        if even:
            table, wt = link, weight
        else:
            pos = np.arange(len(var)) + np.repeat(np.arange(0, k * deg, deg) - starts, lengths)
            table = np.full(k * deg, n, link.dtype)
            table[pos] = link
            wt = np.zeros(k * deg)
            wt[pos] = weight
        index = np.empty((3, k * deg), np.int64)
        index[0] = table
        np.add(table, m, out=index[1])
        np.add(table, 2 * m, out=index[2])
        take = np.empty((3, k * deg))
        take[0] = take[1] = wt
        np.less(table, n, out=take[2])
        index, take = index.reshape(3, k, deg), take.reshape(3, k, deg)
        ragged = None
    else:  # a few variables on very many links: gather by ranges instead
        index = np.concatenate([link, link + m, link + 2 * m]).reshape(3, -1)
        take = np.concatenate([weight, weight, np.ones(len(var))]).reshape(3, -1)
        ragged = np.r_[starts, len(var)]
    sums = np.zeros(3 * m)
    sums[:n] = capacity
    sums[m : m + n] = wsum
    sums[2 * m : 2 * m + n] = count
    remaining, weights, active = sums[:m], sums[m : 2 * m], sums[2 * m :]
    # The variables on each link (link-major), as ranges.
    by_link = np.argsort(link.astype(np.uint16) if n < 1 << 16 else link, kind="stable")
    by_link = by_link // deg if even else np.repeat(np.arange(k), lengths)[by_link]
    link_start = np.r_[0, np.cumsum(count)]
    link_bounds = link_start.tolist()
    free = np.ones(k, bool)
    at_level: list[np.ndarray] = []  # the variables fixed at each link step, and that step's level
    levels: list[float] = []
    # Variables with a finite cap in the order of their caps (an infinite cap never stops one).
    by_cap = np.flatnonzero(vcap < np.inf)
    by_cap = by_cap[np.argsort(vcap[by_cap])]
    sorted_caps = vcap[by_cap]
    n_caps = len(by_cap)
    next_cap = 0
    next_value = float(sorted_caps[0]) if n_caps else np.inf

    def fix(vs: np.ndarray, values: np.ndarray | float) -> None:
        free[vs] = False
        if ragged is None:
            idx, w = index.take(vs, axis=1), take.take(vs, axis=1)
            w[0] *= values[:, None] if isinstance(values, np.ndarray) else values
        else:
            e = _ragged(ragged, vs)
            idx, w = index.take(e, axis=1), take.take(e, axis=1)
            w[0] *= np.repeat(np.broadcast_to(values, len(vs)), lengths[vs])
        np.subtract(sums, np.bincount(idx.ravel(), w.ravel(), minlength=3 * m), out=sums)

    with np.errstate(divide="ignore", invalid="ignore"):
        while True:
            share = np.where(active > 0.5, np.maximum(remaining, 0.0) / weights, np.inf)
            at = int(share.argmin())
            level = float(share[at])
            if next_cap < n_caps and next_value <= level:
                upto = int(sorted_caps.searchsorted(level, side="right"))
                batch = by_cap[next_cap:upto]
                next_cap = upto
                next_value = float(sorted_caps[upto]) if upto < n_caps else np.inf
                batch = batch[free[batch]]
                if len(batch):
                    fix(batch, vcap[batch])
                continue
            if level == np.inf:
                break
            links = (share <= level * (1 + 1e-12)).nonzero()[0]
            if len(links) == 1:
                vs = by_link[link_bounds[at] : link_bounds[at + 1]]
                vs = vs[free[vs]]
            else:
                vs = by_link[_ragged(link_start, links)]
                vs = np.unique(vs[free[vs]])  # a variable has one entry per link, so it may repeat here
            fix(vs, level)
            at_level.append(vs)
            levels.append(level)
    # Variables fixed at their caps (or never fixed) keep x = cap; the rest are at their step's level.
    if at_level:
        x[names[np.concatenate(at_level)]] = np.repeat(levels, [len(vs) for vs in at_level])
    return x


def group_speeds(
    n_groups: int,
    flow_group: np.ndarray,
    demand: np.ndarray,
    entries: Entries,
    group_entries: Entries,
    capacity: np.ndarray,
) -> np.ndarray:
    """Each group's speed in [0, 1] when the fabric is shared fairly among flows.

    ``flow_group`` (sorted) and ``demand`` (bytes/s at speed 1) are per flow; ``entries`` are (flow,
    link, fraction) sorted by flow; ``group_entries`` are (group, link, bytes/s at speed 1), one per
    (group, link), sorted by group. Three steps:

    1. max-min fair rates over flows in bytes, each capped at its demand (progressive filling): a 2 GB/s
       and a 40 GB/s flow on a 25 GB/s link get 2 and 23;
    2. a group's speed is the smallest rate / demand over its flows, and its flows carry only that
       speed x demand (a job cannot use more on one ring link than on its slowest);
    3. the bandwidth so given back is shared among the groups still below full speed, max-min fair over
       their speeds on what is left of each link. Afterwards every group is at full speed or crosses a
       full link, so none can go faster without slowing another.

    Rates only go down in step 2 and step 3 fills only spare capacity, so no link is ever over capacity.
    """
    flow, link, frac = entries
    g_var, g_link, g_load = group_entries
    if 8 * (len(link) + len(g_link)) < len(capacity):  # a few groups on a large fabric: only their links
        used, where = np.unique(np.concatenate([link, g_link]), return_inverse=True)
        link, g_link, capacity = where[: len(link)], where[len(link) :], capacity[used]
    rate, solved = _max_min_fair(flow, link, frac, capacity, demand)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(demand > 0, rate / demand, np.inf)
    speed = np.ones(n_groups)
    if len(flow_group):
        starts = np.flatnonzero(np.r_[True, flow_group[1:] != flow_group[:-1]])
        speed[flow_group[starts]] = np.minimum(np.minimum.reduceat(ratio, starts), 1.0)
    slow = speed < 1.0
    # Nothing given back (every flow already at its group's speed): step 1's full links still hold every
    # slow group back, so step 3 has nothing to share.
    if not slow.any() or bool((ratio[demand > 0] <= speed[flow_group[demand > 0]] * (1 + 1e-12)).all()):
        return speed
    # Only the links step 1 solved on can bind now: a link never overloaded in step 1 is not now (speeds
    # stay at most 1), and one whose flows, fractions and so loads equal another's with no less
    # capacity has no less spare. Every entry of such a link is kept, so its sums are whole.
    keep = np.flatnonzero(solved[g_link])
    g_var, g_link, g_load = g_var[keep], g_link[keep], g_load[keep]
    used = np.bincount(g_link, weights=g_load * speed[g_var], minlength=len(capacity))
    spare = np.maximum(capacity - used, 0.0)
    # A group crossing a link that is still full cannot gain: leave it out before solving (most are).
    full = solved & (spare <= capacity * 1e-9)
    blocked = np.zeros(n_groups, bool)
    blocked[g_var[full[g_link] & (g_load > 0)]] = True
    slow &= ~blocked
    if not slow.any():
        return speed
    # The others are capped at zero, which leaves their entries out of the solve.
    extra = max_min_fair(g_var, g_link, g_load, spare, np.where(slow, 1.0 - speed, 0.0))
    return np.minimum(speed + extra, 1.0)


def _ragged(start: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Concatenated ranges ``start[r]:start[r + 1]`` for each row r, without a Python loop."""
    lo, hi = start[rows], start[rows + 1]
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(lo - (ends - lengths), lengths)
    return offsets + np.arange(total)


Entries = tuple[np.ndarray, np.ndarray, np.ndarray]  # flow index, link, fraction; sorted by flow


def route_entries(routes: list[Route], flows: list[int] | np.ndarray, dead_link: int) -> Entries:
    """Entries for the given flow indices from one route each. A flow with no route is pinned to the
    dead link (capacity zero), so its group stalls rather than vanishing."""
    links, fracs, owners = [], [], []
    for flow, (ls, fs) in zip(flows, routes, strict=True):
        if len(ls) == 0:
            ls, fs = np.array([dead_link], np.int32), np.ones(1)
        links.append(ls)
        fracs.append(fs)
        owners.append(np.full(len(ls), flow, np.int32))
    if not links:
        return np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0)
    return np.concatenate(owners), np.concatenate(links).astype(np.int32), np.concatenate(fracs)


def merge_entries(*parts: Entries) -> Entries:
    """Entries of several sets of flows, in flow order."""
    flow = np.concatenate([p[0] for p in parts])
    order = np.argsort(flow, kind="stable")
    return flow[order], np.concatenate([p[1] for p in parts])[order], np.concatenate([p[2] for p in parts])[order]


_PROJECTIONS: dict[int, np.ndarray] = {}  # by number of variables (flows, groups)


def _distinct_constraints(
    var: np.ndarray, link: np.ndarray, weight: np.ndarray, capacity: np.ndarray, n_vars: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the entries to keep so that links with identical columns count once, and each link's
    sum of weights (over all its entries: a kept link keeps them all).

    ECMP makes this common: every flow leaving a leaf crosses all of its spine uplinks with the same
    fraction, so those links carry the same variables with the same weights and only the one with the
    least capacity can bind. Columns are compared through a random projection and their sums of weights
    (identical columns sum in the same order, so they match exactly; different ones collide with a
    chance of about 2**-50 per pair); the fixed seed keeps runs reproducible.
    """
    if n_vars not in _PROJECTIONS:
        rng = np.random.default_rng(0x7717)
        if len(_PROJECTIONS) >= 4:
            _PROJECTIONS.clear()
        _PROJECTIONS[n_vars] = rng.random(n_vars) + 0.5
    r1 = _PROJECTIONS[n_vars]
    n_links = len(capacity)
    h1 = np.bincount(link, weights=r1[var] * weight, minlength=n_links)
    wsum = np.bincount(link, weights=weight, minlength=n_links)
    used = np.flatnonzero(wsum)
    order = used[np.lexsort((used, capacity[used], wsum[used], h1[used]))]
    h1, ws = h1[order], wsum[order]
    same = (h1[1:] == h1[:-1]) & (ws[1:] == ws[:-1])
    representative = np.zeros(n_links, bool)
    representative[order[np.concatenate(([True], ~same))]] = True  # first of each run has the least capacity
    if len(order) and same.any():
        return np.flatnonzero(representative[link]), wsum
    return np.arange(len(link)), wsum


@quick_init
@dataclass(frozen=True)
class FlowGroup:
    """Flows that run at one shared speed. ``demand`` is each flow's rate at speed 1, in bytes/s."""

    key: tuple[int, int]  # (job id, purpose)
    kind: np.ndarray  # traffic kind per flow
    src: np.ndarray  # vertex gid
    dst: np.ndarray
    demand: np.ndarray
    entry_flow: np.ndarray  # local flow index per entry, sorted
    entry_link: np.ndarray
    entry_frac: np.ndarray
    links: np.ndarray  # distinct links the group loads, sorted
    load: np.ndarray  # bytes/s the group puts on each of them at speed 1

    @staticmethod
    def build(
        key: tuple[int, int],
        kinds: list[int] | np.ndarray,
        srcs: list[int] | np.ndarray,
        dsts: list[int] | np.ndarray,
        demands: list[float] | np.ndarray,
        entries: Entries,
    ) -> FlowGroup:
        """Assemble a group from its flows and their route entries (flow, link, fraction)."""
        demand = np.asarray(demands, np.float64)
        entry_flow, entry_link, entry_frac = entries
        # What the solver sees: one weight per (group, link), however many of its flows share the link.
        if len(entry_link) < 2 or bool((entry_link[1:] > entry_link[:-1]).all()):  # each link once already
            group_links, load = entry_link, entry_frac * demand[entry_flow]
        else:
            group_links, where = np.unique(entry_link, return_inverse=True)
            load = np.bincount(where, weights=entry_frac * demand[entry_flow], minlength=len(group_links))
        return FlowGroup(
            key=key,
            kind=np.asarray(kinds, np.int8),
            src=np.asarray(srcs, np.int32),
            dst=np.asarray(dsts, np.int32),
            demand=demand,
            entry_flow=entry_flow,
            entry_link=entry_link,
            entry_frac=entry_frac,
            links=group_links.astype(np.int32),
            load=load,
        )


class FlowTable:
    """All active flow groups and their solved speeds.

    The speeds depend only on the groups that cross an overloaded link (one whose load with every group at
    full speed exceeds its capacity): every other group runs at full speed whatever the rest do. So the
    table keeps each link's load at full speed up to date on every change, and a solve flattens and solves
    (:func:`group_speeds`) only the groups crossing an overloaded link. Each group's per-link loads are
    also kept in flat arrays (:class:`GroupStore`: appended on add, zeroed on remove), so an exact solve,
    every ``RESYNC_EVERY`` changes, recomputes every sum from scratch without re-concatenating the groups.

    Fast path: adding a group that overloads none of its links, or removing one that crossed none, changes
    no other speed (the new one runs at full speed); the loads are updated in place and the solve is
    skipped. Most events take this path. Between exact solves a solve updates the link loads only for the
    groups whose speed changed, were added or left.

    While every group runs at full speed (from an exact solve that found no overloaded link until a change
    off the fast path) the loads are the loads at full speed, value for value: then ``link_load`` *is* the
    array of loads at full speed, updated once per change instead of twice (``SHARE``).
    """

    SHARE = True  # off: the two arrays are always kept apart (the reference the tests compare with)

    RESYNC_EVERY = 500  # changes (fast updates and solves) between exact solves

    def __init__(self, capacity: np.ndarray) -> None:
        self.groups: dict[tuple[int, int], FlowGroup] = {}
        self.speed: dict[tuple[int, int], float] = {}  # of every group whose load is in link_load
        self.link_load = np.zeros(len(capacity))
        self.kind_rate = np.zeros(len(TRAFFIC_KINDS))
        self._store = GroupStore()
        # Groups added since the store was last brought up to date (newer than every group in it, so
        # appending them in this order keeps the store in table order), with their per-kind demand.
        self._pending: dict[tuple[int, int], tuple[FlowGroup, list[float]]] = {}
        self._flat: dict[str, np.ndarray] = {}
        self._flat_flows = FlatFlows()
        self._flat_at: tuple[int, int] = (-1, -1)  # (version, solves) the flat arrays were built at
        self._at_full = np.zeros(len(capacity))  # each link's load with every group at full speed
        self._involved: set[tuple[int, int]] = set()  # groups crossing an overloaded link in the last solve
        self._left: list[tuple[FlowGroup, float]] = []  # groups removed since the last solve, at their speed
        self._changes = 0  # since the last exact solve
        self.solves = 0
        self.version = 0  # bumps on every change of the flows, solved or not (renderers watch it)
        self.set_capacity(capacity)
        self.version = 0

    def add(self, group: FlowGroup) -> None:
        if group.key in self.groups:
            self.remove(group.key)
        self.groups[group.key] = group
        kinds = _kind_demand(group)
        self._pending[group.key] = (group, kinds)
        self.version += 1
        links, load = _plain(group)
        limit = self._limit_list if isinstance(links, list) else self._limit
        at_full = _raised(self._at_full, links, load)
        if not self._dirty and self._changes < self.RESYNC_EVERY and _within(at_full, limit, links):
            _put(self._at_full, links, at_full)
            if self.link_load is not self._at_full:
                _put(self.link_load, links, _raised(self.link_load, links, load))
            _raise_kinds(self.kind_rate, kinds)
            self.speed[group.key] = 1.0
            self._changes += 1
        else:
            self._unshare()
            _put(self._at_full, links, at_full)
            self._dirty = True

    def remove(self, key: tuple[int, int]) -> None:
        group = self.groups.pop(key, None)
        if group is None:
            return
        pending = self._pending.pop(key, None)
        kinds = self._store.remove(key) if pending is None else pending[1]
        self.version += 1
        speed = self.speed.pop(key, None)
        links, load = _plain(group)
        if not self._dirty and self._changes < self.RESYNC_EVERY and key not in self._involved:
            _lower(self._at_full, links, load)
            if self.link_load is not self._at_full:
                _lower(self.link_load, links, load)
            _lower_kinds(self.kind_rate, kinds)
            self._changes += 1
        else:
            self._unshare()
            _lower(self._at_full, links, load)
            self._dirty = True
            if speed is not None:  # its load is in link_load: take it out at the next solve
                self._left.append((group, speed))

    def _unshare(self) -> None:
        """The loads are about to part from the loads at full speed: give them an array of their own."""
        if self.link_load is self._at_full:
            self.link_load = self._at_full.copy()

    def set_capacity(self, capacity: np.ndarray) -> None:
        self.capacity = capacity
        self._limit = capacity * (1 + _EPS) + _EPS  # a link is overloaded above this (as in max_min_fair)
        self._limit_list = self._limit.tolist()
        self._changes = self.RESYNC_EVERY  # solve exactly
        self._dirty = True
        self.version += 1

    @property
    def dirty(self) -> bool:
        return self._dirty

    def solve(self) -> dict[tuple[int, int], float]:
        """Re-share the bandwidth; returns each group's speed. A no-op unless something changed."""
        if not self._dirty:
            return self.speed
        self._dirty = False
        self.solves += 1
        store = self._store
        for group, kinds in self._pending.values():
            store.add(group, kinds)
        self._pending.clear()
        slot, link, load = store.entries()
        n_links = len(self.capacity)
        exact = self._changes >= self.RESYNC_EVERY
        if exact:
            self._at_full = np.bincount(link, weights=load, minlength=n_links).astype(np.float64, copy=False)
            self._changes = 0
        else:
            self._changes += 1
        over = self._at_full > self._limit
        tight = np.flatnonzero(over)
        speed = dict.fromkeys(self.groups, 1.0)
        slot_speed = np.ones(store.n_slots)
        keys: list[tuple[int, int]] = []
        if len(tight):
            # Entries on an overloaded link (a few links: compare with each; many: look every entry up).
            hit = np.isin(link, tight) if len(tight) <= 8 else over[link]
            hit &= load > 0
            slots = np.unique(slot[hit])  # slot order is the order groups were added
            keys = [store.keys[s] for s in slots.tolist()]
            if keys:
                x = _solve_groups([self.groups[k] for k in keys], self.capacity)
                slot_speed[slots] = x
                speed.update(zip(keys, x.tolist(), strict=True))
        if exact and not keys and self.SHARE:  # every group at full speed: the same sums as at full speed
            self.link_load = self._at_full
        elif exact:
            self.link_load = np.bincount(link, weights=load * slot_speed[slot], minlength=n_links).astype(
                np.float64, copy=False
            )
        else:
            self._unshare()
            self._update_loads(speed)
        self._left.clear()
        self.speed = speed
        self._involved = set(keys)
        self.kind_rate = (store.kind_demand() * slot_speed[:, None]).sum(axis=0)
        return self.speed

    def _update_loads(self, speed: dict[tuple[int, int], float]) -> None:
        """Link loads after a solve, changed in place for the groups that left, arrived or changed speed."""
        load = self.link_load
        old = self.speed
        for group, was in self._left:
            load[group.links] = np.maximum(load[group.links] - was * group.load, 0.0)
        for key, now in speed.items():
            was = old.get(key, 0.0)
            if now != was:
                links = self.groups[key].links
                load[links] = np.maximum(load[links] + (now - was) * self.groups[key].load, 0.0)

    def flat(self) -> dict[str, np.ndarray]:
        """Every flow of every group in flat arrays with its rate at its group's speed (for snapshots and
        renderers), brought up to date when first asked for after a change (see ``FlatFlows``: flows of
        groups removed since the arrays were last compacted are still there, with job and group -1 and
        rate and demand 0). The arrays are read-only and never written again, so snapshots share them
        instead of copying millions of entries."""
        at = (self.version, self.solves)
        if self._flat_at != at:
            self._flat_at = at
            self._flat = self._flat_flows.update(self.groups, self.speed)
        return self._flat


def _mask(index: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[index] = True
    return mask


def _kind_demand(group: FlowGroup) -> list[float]:
    """Bytes/s a group carries per traffic kind at full speed."""
    if len(group.kind) == 1:
        out = [0.0] * len(TRAFFIC_KINDS)
        out[group.kind.item(0)] = group.demand.item(0)
        return out
    return np.bincount(group.kind, weights=group.demand, minlength=len(TRAFFIC_KINDS)).tolist()


# Groups on at most this many links are added and taken out link by link in plain Python (their links
# and loads as lists, ``_plain``): on so few, numpy's cost per call outweighs the work. Either way every
# value gets the same arithmetic.
_FEW_LINKS = 16

Links = np.ndarray | list[int]
Values = np.ndarray | list[float]


def _plain(group: FlowGroup) -> tuple[Links, Values]:
    """A group's links and loads: lists when they are few, else its arrays."""
    if len(group.links) > _FEW_LINKS:
        return group.links, group.load
    return group.links.tolist(), group.load.tolist()


def _raised(values: np.ndarray, links: Links, load: Values) -> Values:
    """``values[links] + load``."""
    if isinstance(links, list):
        cells = memoryview(values)  # element access without numpy's per-call cost; the same floats
        return [cells[link] + x for link, x in zip(links, load, strict=True)]
    return values[links] + load


def _within(new: Values, limit: Values, links: Links) -> bool:
    """``(new <= limit[links]).all()`` (``limit`` a list when the links are)."""
    if isinstance(links, list):  # a loop, not all() over a generator: half the cost on a few links
        for v, link in zip(new, links, strict=True):  # noqa: SIM110
            if not v <= limit[link]:  # (NaN is not within)
                return False
        return True
    return bool((new <= limit[links]).all())


def _put(values: np.ndarray, links: Links, new: Values) -> None:
    """``values[links] = new``."""
    if isinstance(links, list):
        cells = memoryview(values)
        for link, v in zip(links, new, strict=True):
            cells[link] = v
    else:
        values[links] = new


def _lower(values: np.ndarray, links: Links, load: Values) -> None:
    """``values[links] = np.maximum(values[links] - load, 0.0)`` (the links are distinct)."""
    if not isinstance(links, list):
        values[links] = np.maximum(values[links] - load, 0.0)
        return
    cells = memoryview(values)
    for link, x in zip(links, load, strict=True):
        v = cells[link] - x
        cells[link] = 0.0 if v <= 0.0 else v  # np.maximum's answer, -0.0 and NaN included


def _raise_kinds(rates: np.ndarray, kinds: list[float]) -> None:
    """``rates += kinds``, where a kind's term is not 0 (adding 0 to a rate, never -0, leaves it as it is)."""
    cells = memoryview(rates)
    for i, x in enumerate(kinds):
        if x:
            cells[i] = cells[i] + x


def _lower_kinds(rates: np.ndarray, kinds: list[float]) -> None:
    """``rates[:] = np.maximum(rates - kinds, 0.0)`` (the same for a kind whose term is 0: rates are >= 0)."""
    cells = memoryview(rates)
    for i, x in enumerate(kinds):
        if x:
            v = cells[i] - x
            cells[i] = 0.0 if v <= 0.0 else v


def _solve_groups(groups: list[FlowGroup], capacity: np.ndarray) -> np.ndarray:
    """:func:`group_speeds` over the given groups alone."""
    flat = _flatten([g.key for g in groups], groups, np.ones(len(groups)))
    var = np.repeat(np.arange(len(groups)), [len(g.links) for g in groups])
    var_link = np.concatenate([g.links for g in groups])
    var_load = np.concatenate([g.load for g in groups])
    return group_speeds(
        len(groups),
        flat["group"],
        flat["demand"],
        (flat["entry_flow"], flat["entry_link"], flat["entry_frac"]),
        (var, var_link, var_load),
        capacity,
    )


def _flatten(keys: list[tuple[int, int]], groups: list[FlowGroup], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every flow of the groups in flat arrays, with its rate at its group's speed x."""
    n_flows = np.array([len(g.demand) for g in groups], np.int64)
    n_entries = np.array([len(g.entry_link) for g in groups], np.int64)
    flow_base = np.r_[0, np.cumsum(n_flows)[:-1]].astype(np.int64)
    cat = np.concatenate
    if groups:
        flow_group = np.repeat(np.arange(len(groups)), n_flows)
        demand = cat([g.demand for g in groups])
        kind = cat([g.kind for g in groups])
        src = cat([g.src for g in groups])
        dst = cat([g.dst for g in groups])
        entry_flow = cat([g.entry_flow for g in groups]) + np.repeat(flow_base, n_entries)
        entry_link = cat([g.entry_link for g in groups])
        entry_frac = cat([g.entry_frac for g in groups])
    else:
        flow_group = entry_flow = entry_link = np.empty(0, np.int64)
        demand = entry_frac = np.empty(0)
        kind = np.empty(0, np.int8)
        src = dst = np.empty(0, np.int32)
    return {
        "group": flow_group,
        "kind": kind,
        "src": src,
        "dst": dst,
        "rate": x[flow_group] * demand,
        "demand": demand,
        "entry_flow": entry_flow,
        "entry_link": entry_link,
        "entry_frac": entry_frac,
        "job": np.array([k[0] for k in keys], np.int64)[flow_group] if groups else np.empty(0, np.int64),
    }


class FlatFlows:
    """The flat arrays of ``FlowTable.flat``, kept up to date rather than built afresh on every change
    (on a 100,000-GPU site, 1.6 million route entries: concatenating them took 15 to 50 ms a change).

    A group added since the last update is appended at the end; a removed one's flows and entries stay
    where they are, and its flows get job and group -1 and rate and demand 0, so every sum weighted by
    rate or demand is what it would be without them; once the removed entries outnumber the live ones,
    everything is built afresh, compact (or once removed groups outnumber the live ones twice over: many
    small groups gone beside a large one still running). Each flow's kind, ends and route entries are written once into
    buffers that grow at the end: the arrays handed out are views of what was written before, never
    written again, and the per-flow rate, demand, job and group are new arrays each update.
    """

    PER_FLOW = ("kind", "src", "dst", "demand")
    SPARE_SLOTS = 256  # removed groups kept beyond twice the live ones before building afresh
    PER_ENTRY = ("entry_flow", "entry_link", "entry_frac")

    def __init__(self) -> None:
        self.rebuilds = 0  # times built afresh, compact (after the first)
        self._reset()

    def _reset(self) -> None:
        self._buf: dict[str, np.ndarray] = {}
        self._flows = self._entries = self._dead_entries = 0
        self._owner = np.empty(0, np.int64)  # per flow: its slot
        self._slots: list[FlowGroup | None] = []  # per slot, None once its group was removed
        self._slot_of: dict[tuple[int, int], int] = {}

    def update(self, groups: dict[tuple[int, int], FlowGroup], speed: dict[tuple[int, int], float]) -> dict:
        """The arrays for the table's groups at their speeds."""
        for key, slot in list(self._slot_of.items()):
            group = self._slots[slot]
            if groups.get(key) is not group:  # removed (or replaced: the new one is appended)
                self._slots[slot] = None
                del self._slot_of[key]
                self._dead_entries += len(group.entry_link)
        live_slots = len(self._slot_of)
        many_dead = len(self._slots) - live_slots > 2 * live_slots + self.SPARE_SLOTS
        if self._dead_entries > self._entries - self._dead_entries or many_dead:
            self._reset()
            self.rebuilds += 1
        new = [g for k, g in groups.items() if k not in self._slot_of]
        if new:
            self._append(new)
        if not self._flows:
            out = _flatten([], [], np.ones(0))
        else:
            position = {k: i for i, k in enumerate(groups)}
            slots = self._slots
            alive = np.array([g is not None for g in slots], bool)
            slot_speed = np.array([speed.get(g.key, 1.0) if g is not None else 0.0 for g in slots], float)
            slot_job = np.array([g.key[0] if g is not None else -1 for g in slots], np.int64)
            slot_group = np.array([position[g.key] if g is not None else -1 for g in slots], np.int64)
            owner, demand = self._owner[: self._flows], self._buf["demand"][: self._flows]
            out = {name: self._buf[name][: self._entries] for name in self.PER_ENTRY}
            out |= {name: self._buf[name][: self._flows] for name in ("kind", "src", "dst")}
            out |= {
                "group": slot_group[owner],
                "rate": slot_speed[owner] * demand,
                "demand": demand * alive[owner],
                "job": slot_job[owner],
            }
        for array in out.values():
            array.flags.writeable = False
        return out

    def _append(self, groups: list[FlowGroup]) -> None:
        block = _flatten([g.key for g in groups], groups, np.ones(len(groups)))
        block["entry_flow"] = block["entry_flow"] + self._flows
        first = len(self._slots)
        for i, g in enumerate(groups):
            self._slot_of[g.key] = first + i
            self._slots.append(g)
        owner = first + block["group"]
        self._owner = _grown(self._owner, self._flows, owner)
        for name in self.PER_FLOW:
            self._buf[name] = _grown(self._buf.get(name), self._flows, block[name])
        for name in self.PER_ENTRY:
            self._buf[name] = _grown(self._buf.get(name), self._entries, block[name])
        self._flows += len(owner)
        self._entries += len(block["entry_link"])


def _grown(buf: np.ndarray | None, used: int, values: np.ndarray) -> np.ndarray:
    """``values`` written after the first ``used`` items of ``buf``; a larger buffer (used items copied)
    when they do not fit, so that what was handed out of the old one is never written."""
    need = used + len(values)
    if buf is None or need > len(buf):
        bigger = np.empty(max(need, 2 * (len(buf) if buf is not None else 0), 1024), values.dtype)
        if used:
            bigger[:used] = buf[:used]
        buf = bigger
    buf[used:need] = values
    return buf


class GroupStore:
    """Every group's (link, load at full speed) pairs in flat arrays, in the order the groups were added.

    A group is appended to the end when added and its loads zeroed when removed (its slot is dead); the
    arrays are compacted, order kept, once a quarter of the entries are dead. ``entries()`` then always
    equals the concatenation of the live groups' ``links`` and ``load`` (with zero-load dead entries
    between them), so sums over it are those of a fresh concatenation.
    """

    def __init__(self) -> None:
        self._slot = np.empty(0, np.int64)
        self._link = np.empty(0, np.int64)
        self._load = np.empty(0)
        self._kind = np.empty((0, len(TRAFFIC_KINDS)))
        self.size = 0  # entries used, live or dead
        self.dead = 0  # entries of removed groups
        self.keys: list[tuple[int, int] | None] = []  # per slot, None once removed
        self._where: dict[tuple[int, int], tuple[int, int, int]] = {}  # key -> (slot, first entry, end)

    @property
    def n_slots(self) -> int:
        return len(self.keys)

    def add(self, group: FlowGroup, kinds: list[float]) -> None:
        """Append a group (replacing one of the same key), with its bytes/s per kind at full speed."""
        if group.key in self._where:
            self.remove(group.key)
        n = len(group.links)
        if self.size + n > len(self._link):
            grow = max(2 * len(self._link), self.size + n, 1024)
            self._slot = np.resize(self._slot, grow)
            self._link = np.resize(self._link, grow)
            self._load = np.resize(self._load, grow)
        if len(self.keys) == len(self._kind):
            self._kind = np.resize(self._kind, (max(2 * len(self._kind), 64), len(TRAFFIC_KINDS)))
        slot, start = len(self.keys), self.size
        self._slot[start : start + n] = slot
        self._link[start : start + n] = group.links
        self._load[start : start + n] = group.load
        self._kind[slot] = kinds
        self.keys.append(group.key)
        self._where[group.key] = (slot, start, start + n)
        self.size += n

    def remove(self, key: tuple[int, int]) -> list[float]:
        """Zero a group's entries; returns its bytes/s per kind at full speed."""
        slot, start, end = self._where.pop(key)
        self._load[start:end] = 0.0
        kinds = self._kind[slot].tolist()
        self._kind[slot] = 0.0
        self.keys[slot] = None
        self.dead += end - start
        if self.dead > max(self.size // 4, 4096) or len(self.keys) > 4 * len(self._where) + 4096:
            self._compact()
        return kinds

    def _compact(self) -> None:
        """Drop dead entries and slots, keeping the order."""
        n = self.size
        alive = np.array([k is not None for k in self.keys], bool)
        renumber = np.cumsum(alive) - 1
        keep = alive[self._slot[:n]]
        self._slot = renumber[self._slot[:n][keep]]
        self._link = self._link[:n][keep]
        self._load = self._load[:n][keep]
        self._kind = self._kind[: len(self.keys)][alive]
        self.keys = [k for k in self.keys if k is not None]
        self.size, self.dead = len(self._link), 0
        counts = np.bincount(self._slot, minlength=len(self.keys)).tolist()
        start = 0
        for slot, (key, count) in enumerate(zip(self.keys, counts, strict=True)):
            self._where[key] = (slot, start, start + count)
            start += count

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(slot, link, load at full speed) of every entry; dead ones carry zero load."""
        n = self.size
        return self._slot[:n], self._link[:n], self._load[:n]

    def kind_demand(self) -> np.ndarray:
        """Bytes/s per traffic kind at full speed, one row per slot (zero for dead slots)."""
        return self._kind[: len(self.keys)]
