"""Max-min fair sharing: known answers, the defining property, and agreement with a slow reference."""

from __future__ import annotations

import numpy as np
import pytest

from twin.flows import FlowGroup, FlowTable, GroupStore, group_speeds, max_min_fair


def solve(routes: list[list[tuple[int, float]]], capacity: list[float], caps: list[float] | None = None) -> np.ndarray:
    var, link, weight = [], [], []
    for v, entries in enumerate(routes):
        for lk, w in entries:
            var.append(v)
            link.append(lk)
            weight.append(w)
    cap = np.array(caps if caps is not None else [np.inf] * len(routes), float)
    return max_min_fair(np.array(var), np.array(link), np.array(weight, float), np.array(capacity, float), cap)


def reference(var, link, weight, capacity, cap) -> np.ndarray:
    """Textbook progressive filling: raise all unfrozen variables together, one bottleneck at a time."""
    n = len(cap)
    x = np.zeros(n)
    frozen = np.zeros(n, bool)
    while not frozen.all():
        act = ~frozen[var]
        wsum = np.bincount(link[act], weights=weight[act], minlength=len(capacity))
        used = np.bincount(link, weights=weight * x[var], minlength=len(capacity))
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(wsum > 0, (capacity - used) / wsum, np.inf)
        step = min(room.min(), (cap - x)[~frozen].min())
        x[~frozen] += step
        used = np.bincount(link, weights=weight * x[var], minlength=len(capacity))
        full = used >= capacity * (1 - 1e-9) - 1e-12
        frozen |= x >= cap * (1 - 1e-12)
        hit = np.zeros(n, bool)
        hit[var[full[link] & (weight > 0)]] = True
        frozen |= hit
        # variables with no links and no cap never freeze by links; cap them explicitly
        frozen |= ~np.isin(np.arange(n), var) & np.isinf(cap)
    return x


def test_two_flows_sharing_one_link_get_half_each() -> None:
    x = solve([[(0, 1.0)], [(0, 1.0)]], [10.0])
    assert x == pytest.approx([5.0, 5.0])


def test_parking_lot() -> None:
    # Flow 0 crosses links 0 and 1; flows 1 and 2 use one link each. All links carry 1.
    x = solve([[(0, 1.0), (1, 1.0)], [(0, 1.0)], [(1, 1.0)]], [1.0, 1.0])
    assert x == pytest.approx([0.5, 0.5, 0.5])


def test_leftover_goes_to_the_unconstrained() -> None:
    # Link 0 (capacity 1) shared by flows 0, 1; flow 1 also on link 1 (capacity 10) with flow 2.
    x = solve([[(0, 1.0)], [(0, 1.0), (1, 1.0)], [(1, 1.0)]], [1.0, 10.0])
    assert x == pytest.approx([0.5, 0.5, 9.5])


def test_caps_and_weights() -> None:
    # Demand-weighted: a variable at speed x puts weight * x on the link.
    x = solve([[(0, 4.0)], [(0, 1.0)]], [10.0], caps=[1.0, 1.0])
    assert x == pytest.approx([1.0, 1.0])  # 4 + 1 <= 10: both at full speed
    x = solve([[(0, 8.0)], [(0, 4.0)]], [6.0], caps=[1.0, 1.0])
    assert x == pytest.approx([0.5, 0.5])  # equal speeds, rates 4 and 2


def test_dead_link_stalls_only_its_flows() -> None:
    x = solve([[(0, 1.0), (1, 1.0)], [(1, 1.0)]], [0.0, 10.0], caps=[5.0, 8.0])
    assert x == pytest.approx([0.0, 8.0])


def test_ecmp_fractions() -> None:
    # One flow split half and half over two parallel links of capacity 1: it gets 2.
    x = solve([[(0, 0.5), (1, 0.5)]], [1.0, 1.0])
    assert x == pytest.approx([2.0])


@pytest.mark.parametrize("seed", range(12))
def test_matches_reference_on_random_problems(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_vars, n_links = int(rng.integers(5, 60)), int(rng.integers(3, 25))
    var, link, weight = [], [], []
    for v in range(n_vars):
        ls = rng.choice(n_links, size=int(rng.integers(1, 5)), replace=False)
        for lk in sorted(ls):
            var.append(v)
            link.append(lk)
            weight.append(rng.uniform(0.2, 3.0))
    var, link, weight = np.array(var), np.array(link), np.array(weight)
    capacity = rng.uniform(1.0, 20.0, n_links)
    cap = np.where(rng.random(n_vars) < 0.5, rng.uniform(0.1, 5.0, n_vars), np.inf)
    got = max_min_fair(var, link, weight, capacity, cap)
    want = reference(var, link, weight, capacity, cap)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    # Feasible, and max-min: every variable is at its cap or crosses a saturated link where it is
    # among the largest, so it cannot grow without shrinking one that is no larger.
    load = np.bincount(link, weights=weight * got[var], minlength=n_links)
    assert np.all(load <= capacity * (1 + 1e-9))
    sat = load >= capacity * (1 - 1e-7)
    for v in range(n_vars):
        if got[v] >= cap[v] * (1 - 1e-9):
            continue
        mine = link[var == v]
        assert any(sat[lk] and got[v] >= got[var[link == lk]].max() * (1 - 1e-7) for lk in mine), v


def ecmp_problem(rng: np.random.Generator):
    """A random small leaf-spine problem in the shape the solver's shortcuts are for, with the cases
    where they could go wrong: ECMP's identical columns (on parallel links of different capacities),
    round numbers (ties), a dead link (capacity zero), zero caps, infinite caps, and a few variables
    with many links (uneven degrees)."""
    leaves, spines, hosts = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    n_hosts = leaves * hosts
    up = lambda lf, s: 2 * n_hosts + lf * spines + s  # noqa: E731
    down = lambda lf, s: 2 * n_hosts + (leaves + lf) * spines + s  # noqa: E731
    dead = 2 * n_hosts + 2 * leaves * spines
    capacity = np.r_[rng.choice([2.0, 4.0, 10.0], 2 * n_hosts), rng.choice([1.0, 3.0, 5.0], 2 * leaves * spines), 0.0]
    capacity[: 2 * n_hosts] += np.where(rng.random(2 * n_hosts) < 0.3, rng.uniform(0, 1, 2 * n_hosts), 0.0)
    var, link, weight = [], [], []
    n_vars = int(rng.integers(1, 40))
    for v in range(n_vars):
        a, b = rng.integers(0, n_hosts, 2)
        la, lb = a // hosts, b // hosts
        route = {int(a): 1.0, int(n_hosts + b): 1.0}
        if la != lb:
            for s in range(spines):
                route[up(la, s)] = route[down(lb, s)] = 1.0 / spines
        if rng.random() < 0.1:
            route[dead] = 1.0
        if rng.random() < 0.05:  # a variable on many links
            route.update({int(lk): 0.5 for lk in rng.choice(dead, size=min(dead, 12), replace=False)})
        for lk in sorted(route):
            var.append(v)
            link.append(lk)
            weight.append(route[lk])
    cap = rng.choice([0.0, 0.5, 1.0, 2.5, np.inf, np.inf], n_vars)
    cap = np.where(rng.random(n_vars) < 0.3, rng.uniform(0.1, 3.0, n_vars), cap)
    return np.array(var), np.array(link), np.array(weight), capacity, cap


@pytest.mark.parametrize("seed", range(40))
def test_padded_and_ragged_paths_match_the_reference_on_ecmp_problems(seed: int, monkeypatch) -> None:
    """Each step gathers a variable's entries from a padded table, or by ranges when degrees are very
    uneven: both give the textbook answer, with ties, dead links, zero and infinite caps."""
    import twin.flows

    var, link, weight, capacity, cap = ecmp_problem(np.random.default_rng(seed))
    padded = max_min_fair(var, link, weight, capacity, cap)
    monkeypatch.setattr(twin.flows, "_PAD_LIMIT", -(10**9))
    ragged = max_min_fair(var, link, weight, capacity, cap)
    np.testing.assert_allclose(ragged, padded, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(padded, reference(var, link, weight, capacity, cap), rtol=1e-7, atol=1e-9)
    load = np.bincount(link, weights=weight * padded[var], minlength=len(capacity))
    assert np.all(load <= capacity * (1 + 1e-9) + 1e-12)


def grouped(flows: list[tuple[int, float, list[tuple[int, float]]]], capacity: list[float]) -> np.ndarray:
    """group_speeds on flows given as (group, demand, [(link, fraction), ...]), groups numbered from 0."""
    group = np.array([g for g, _, _ in flows])
    demand = np.array([d for _, d, _ in flows], float)
    var = np.array([f for f, (_, _, route) in enumerate(flows) for _ in route])
    link = np.array([lk for _, _, route in flows for lk, _ in route])
    frac = np.array([w for _, _, route in flows for _, w in route], float)
    return group_speeds(
        int(group.max()) + 1,
        group,
        demand,
        (var, link, frac),
        group_loads(group, demand, var, link, frac),
        np.array(capacity, float),
    )


def group_loads(group, demand, var, link, frac) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, link, bytes/s at speed 1), one entry per (group, link), sorted by group."""
    n_links = int(link.max()) + 1
    key, where = np.unique(group[var] * n_links + link, return_inverse=True)
    return key // n_links, key % n_links, np.bincount(where, weights=frac * demand[var])


def test_flows_share_in_bytes_not_in_slowdowns() -> None:
    # A 2 GB/s and a 40 GB/s job on a 25 GB/s link: 2 and 23 GB/s (flow-level max-min), not 1.19 and 23.8.
    x = grouped([(0, 2.0, [(0, 1.0)]), (1, 40.0, [(0, 1.0)])], [25.0])
    assert x * [2.0, 40.0] == pytest.approx([2.0, 23.0])


def test_the_slowest_ring_link_holds_back_the_job_and_the_rest_is_given_back() -> None:
    # Job 0 is a ring of two 10 GB/s flows, on links 0 and 1; job 1 (10 GB/s) shares link 1 (10 GB/s), and
    # job 2 (10 GB/s) shares link 0 (16 GB/s). Flow-level: link 1 gives 5 and 5, link 0 gives 8 and 8;
    # job 0 runs at 5 / 10 = 0.5, so its flow on link 0 carries 5 and gives 3 back to job 2 (8 + 3 = 11 > 10:
    # job 2 runs at full speed).
    x = grouped(
        [(0, 10.0, [(0, 1.0)]), (0, 10.0, [(1, 1.0)]), (1, 10.0, [(1, 1.0)]), (2, 10.0, [(0, 1.0)])], [16.0, 10.0]
    )
    assert x == pytest.approx([0.5, 0.5, 1.0])


def test_equal_demands_still_split_evenly() -> None:
    # Known answers of demand-weighted sharing that hold for flows of equal demand: half each, and 2/3 on a 2:1 spine.
    assert grouped([(0, 10.0, [(0, 1.0)]), (1, 10.0, [(0, 1.0)])], [10.0]) == pytest.approx([0.5, 0.5])
    x = grouped([(0, 3.0, [(0, 1.0)]), (1, 3.0, [(0, 1.0)])], [4.0])
    assert x == pytest.approx([2 / 3, 2 / 3])


def reference_speeds(group, demand, var, link, frac, capacity) -> np.ndarray:
    """The three steps of group_speeds with the textbook filling: flow max-min, slowest flow, top-up."""
    rate = reference(var, link, frac, capacity, demand)
    n = int(group.max()) + 1
    speed = np.ones(n)
    for f in range(len(demand)):
        speed[group[f]] = min(speed[group[f]], rate[f] / demand[f])
    g_var, g_link, g_load = group_loads(group, demand, var, link, frac)
    spare = np.maximum(capacity - np.bincount(g_link, weights=g_load * speed[g_var], minlength=len(capacity)), 0.0)
    extra = reference(g_var, g_link, g_load, spare, 1.0 - speed)
    return speed + extra, rate


@pytest.mark.parametrize("seed", range(12))
def test_group_speeds_match_the_reference_and_are_max_min(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n_groups, n_links = int(rng.integers(2, 12)), int(rng.integers(3, 15))
    group = np.sort(rng.integers(0, n_groups, int(rng.integers(n_groups, 4 * n_groups))))
    group = np.unique(group, return_inverse=True)[1]  # no empty groups
    demand = rng.uniform(0.5, 10.0, len(group))
    var, link, frac = [], [], []
    for f in range(len(group)):
        for lk in sorted(rng.choice(n_links, size=int(rng.integers(1, 4)), replace=False)):
            var.append(f)
            link.append(lk)
            frac.append(rng.choice([1.0, 0.5, 0.25]))
    var, link, frac = np.array(var), np.array(link), np.array(frac)
    capacity = rng.uniform(1.0, 20.0, n_links)
    loads = group_loads(group, demand, var, link, frac)
    got = group_speeds(int(group.max()) + 1, group, demand, (var, link, frac), loads, capacity)
    want, rate = reference_speeds(group, demand, var, link, frac, capacity)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    assert ((got >= 0) & (got <= 1 + 1e-12)).all()
    # Feasible: flows carry speed x demand and no link is over capacity.
    load = np.bincount(link, weights=frac * (got[group] * demand)[var], minlength=n_links)
    assert np.all(load <= capacity * (1 + 1e-9))
    # No group can go faster alone: each is at full speed or crosses a full link.
    full = load >= capacity * (1 - 1e-7)
    for g in range(len(got)):
        mine = link[group[var] == g]
        assert got[g] >= 1 - 1e-9 or full[mine].any(), g
    # Step 1 is max-min over flows in bytes: a flow below its demand crosses a full link where it is among
    # the largest.
    step_load = np.bincount(link, weights=frac * rate[var], minlength=n_links)
    sat = step_load >= capacity * (1 - 1e-7)
    for f in range(len(rate)):
        if rate[f] < demand[f] * (1 - 1e-9):
            assert any(sat[lk] and rate[f] >= rate[var[link == lk]].max() * (1 - 1e-7) for lk in link[var == f]), f


@pytest.mark.parametrize("seed", range(30))
def test_group_speeds_match_the_reference_on_ecmp_problems(seed: int) -> None:
    """Jobs of ECMP-split flows (identical columns, round numbers, a dead link): the second phase solves
    only on the links the first one solved on, and still gives the textbook speeds."""
    rng = np.random.default_rng(500 + seed)
    var, link, frac, capacity, _ = ecmp_problem(rng)
    n_flows = int(var.max()) + 1
    group = np.sort(rng.integers(0, max(1, n_flows // 3), n_flows))
    group = np.unique(group, return_inverse=True)[1]
    demand = rng.choice([0.5, 1.0, 2.0, 4.0], n_flows)
    demand = np.where(rng.random(n_flows) < 0.3, rng.uniform(0.1, 6.0, n_flows), demand)
    loads = group_loads(group, demand, var, link, frac)
    got = group_speeds(int(group.max()) + 1, group, demand, (var, link, frac), loads, capacity)
    want, _ = reference_speeds(group, demand, var, link, frac, capacity)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    load = np.bincount(link, weights=frac * (got[group] * demand)[var], minlength=len(capacity))
    assert np.all(load <= capacity * (1 + 1e-9) + 1e-12)


def random_group(rng: np.random.Generator, key: int, n_links: int) -> FlowGroup:
    """A job of 1 to 4 flows, each over 1 to 3 links with ECMP-like fractions."""
    n = int(rng.integers(1, 5))
    rows = [
        (f, int(lk), float(rng.choice([1.0, 0.5, 0.25])))
        for f in range(n)
        for lk in sorted(rng.choice(n_links, size=int(rng.integers(1, 4)), replace=False))
    ]
    var, link, frac = (np.array(col) for col in zip(*rows, strict=True))
    return FlowGroup.build(
        (key, key % 2),
        rng.integers(0, 4, n),
        np.arange(n),
        np.arange(n) + 50,
        rng.uniform(0.5, 10.0, n),
        (var, link, frac.astype(float)),
    )


def churn(rng: np.random.Generator, table: FlowTable, n_links: int, steps: int):
    """Random changes to ``table``, one a step: a group there (keys 0 to 24) removed half the time, else
    one added (replacing any with its key). Yields (step, key, the group added or None when removed), so
    that a test can make the same change elsewhere before it draws anything more from ``rng``."""
    for step in range(steps):
        key = int(rng.integers(0, 25))
        if (key, key % 2) in table.groups and rng.random() < 0.5:
            table.remove((key, key % 2))
            yield step, (key, key % 2), None
        else:
            group = random_group(rng, key, n_links)
            table.add(group)
            yield step, group.key, group


def solve_from_scratch(groups: list[FlowGroup], capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every group flattened and solved together, as the table did before it kept its arrays: speeds, link
    loads and rates per traffic kind."""
    flows = np.array([len(g.demand) for g in groups])
    base = np.r_[0, np.cumsum(flows)[:-1]]
    flow_group = np.repeat(np.arange(len(groups)), flows)
    demand = np.concatenate([g.demand for g in groups])
    entry_flow = np.concatenate([g.entry_flow + b for g, b in zip(groups, base, strict=True)])
    entry_link = np.concatenate([g.entry_link for g in groups])
    entry_frac = np.concatenate([g.entry_frac for g in groups])
    g_var = np.repeat(np.arange(len(groups)), [len(g.links) for g in groups])
    g_link = np.concatenate([g.links for g in groups])
    g_load = np.concatenate([g.load for g in groups])
    x = group_speeds(
        len(groups), flow_group, demand, (entry_flow, entry_link, entry_frac), (g_var, g_link, g_load), capacity
    )
    rate = x[flow_group] * demand
    load = np.bincount(entry_link, weights=entry_frac * rate[entry_flow], minlength=len(capacity))
    kinds = np.bincount(np.concatenate([g.kind for g in groups]), weights=rate, minlength=4)
    return x, load, kinds


@pytest.mark.parametrize("seed", range(20))
def test_the_table_s_kept_arrays_equal_a_fresh_flatten_after_random_adds_and_removes(seed: int) -> None:
    """FlowTable keeps each group's link loads in flat arrays (appended on add, zeroed on remove, compacted
    now and then), updates loads in place between exact solves and solves only the groups that cross an
    overloaded link: after any sequence of adds, replacements and removes its speeds, link loads, per-kind
    rates and flat flows are those of flattening every group and solving them all from scratch."""
    rng = np.random.default_rng(seed)
    n_links = int(rng.integers(3, 12))
    capacity = rng.uniform(5.0, 40.0, n_links)
    table = FlowTable(capacity)
    table.RESYNC_EVERY = int(rng.choice([3, 500]))  # exact solves often, or incremental ones between
    store = GroupStore()
    for step, key, group in churn(rng, table, n_links, int(rng.integers(20, 300))):
        if group is None:
            store.remove(key)
        else:
            store.add(group, np.bincount(group.kind, weights=group.demand, minlength=4))
        if rng.random() < 0.7 or step % 10 == 0:
            table.solve()
        # The store's live entries are always the concatenation of the live groups', in table order.
        slot, link, load = store.entries()
        live = load > 0
        groups = list(table.groups.values())
        want_link = np.concatenate([g.links for g in groups]) if groups else np.empty(0)
        np.testing.assert_array_equal(
            link[live], want_link[np.concatenate([g.load for g in groups]) > 0] if groups else want_link
        )
        assert [store.keys[s] for s in np.unique(slot[live])] == [g.key for g in groups if (g.load > 0).any()]
    speed = table.solve()
    groups = list(table.groups.values())
    if not groups:
        return
    x, load, kinds = solve_from_scratch(groups, capacity)
    assert list(speed) == [g.key for g in groups]
    np.testing.assert_allclose([speed[g.key] for g in groups], x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(table.link_load, load, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(table.kind_rate, kinds, rtol=1e-9, atol=1e-9)
    flat = table.flat()
    np.testing.assert_allclose(flat["rate"], x[flat["group"]] * flat["demand"], rtol=1e-12)
    assert flat["job"].tolist() == [g.key[0] for g in groups for _ in g.demand]


@pytest.mark.parametrize("seed", range(6))
def test_a_small_problem_on_a_large_fabric_solves_as_on_its_own_links(seed: int) -> None:
    """With far more links than entries the solvers number the used links 0..k-1 first: the answers are
    exactly those on a fabric of just those links."""
    rng = np.random.default_rng(seed)
    n_links = 6
    groups = [random_group(rng, key, n_links) for key in range(5)]
    capacity = rng.uniform(2.0, 12.0, n_links)
    spread = np.sort(rng.choice(5000, n_links, replace=False))  # the same links among 5,000
    wide = np.full(5000, 1e-3)
    wide[spread] = capacity
    for i, g in enumerate(groups):
        groups[i] = FlowGroup.build(
            g.key, g.kind, g.src, g.dst, g.demand, (g.entry_flow, spread[g.entry_link], g.entry_frac)
        )
    narrow, _, _ = solve_from_scratch(
        [
            FlowGroup.build(
                g.key,
                g.kind,
                g.src,
                g.dst,
                g.demand,
                (g.entry_flow, np.searchsorted(spread, g.entry_link), g.entry_frac),
            )
            for g in groups
        ],
        capacity,
    )
    got, _, _ = solve_from_scratch(groups, wide)
    np.testing.assert_array_equal(got, narrow)
    assert (narrow < 1).any() or seed > 2


@pytest.mark.parametrize("seed", range(20))
def test_loads_changed_link_by_link_are_the_array_arithmetic_bit_for_bit(seed: int) -> None:
    """A group on a few links is added to and taken out of the loads element by element in plain Python
    (numpy's cost per call outweighs the work on so few): the values, and whether they fit, are exactly
    those of the array expressions the general path evaluates, zeros and clamping included."""
    from twin.flows import _lower, _lower_kinds, _put, _raise_kinds, _raised, _within

    rng = np.random.default_rng(seed)
    n = 40
    values = rng.choice([0.0, 1e6, 3e9, 12.5e9], n) * rng.random(n)
    limit = values + rng.choice([-1.0, 0.0, 1e9], n) * rng.random(n)
    for _ in range(50):
        links = np.sort(rng.choice(n, int(rng.integers(1, 17)), replace=False)).astype(np.int32)
        load = rng.choice([0.0, 1e3, 2e9, 25e9], len(links)) * rng.random(len(links))
        want = values.copy()
        new = want[links] + load
        want[links] = new
        got = _raised(values, links.tolist(), load.tolist())
        assert _within(got, limit.tolist(), links.tolist()) == bool((new <= limit[links]).all())
        _put(values, links.tolist(), got)
        assert values.tobytes() == want.tobytes()
        load = load * rng.choice([0.5, 1.0, 2.0])  # sometimes more than is there: clamped at zero
        want[links] = np.maximum(want[links] - load, 0.0)
        _lower(values, links.tolist(), load.tolist())
        assert values.tobytes() == want.tobytes()
        rates = rng.choice([0.0, 1e9], 4) * rng.random(4)
        kinds = (rng.choice([0.0, 1.0], 4) * rng.random(4) * 2e9).tolist()
        want_rates = rates + np.array(kinds)
        _raise_kinds(rates, kinds)
        assert rates.tobytes() == want_rates.tobytes()
        want_rates = np.maximum(rates - 1.5 * np.array(kinds), 0.0)
        _lower_kinds(rates, [1.5 * k for k in kinds])
        assert rates.tobytes() == want_rates.tobytes()


@pytest.mark.parametrize("few_links", [16, 0])
@pytest.mark.parametrize("seed", range(30))
def test_loads_shared_with_the_loads_at_full_speed_are_the_loads_kept_apart(
    seed: int, few_links: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While every group runs at full speed the table keeps one array for the loads and the loads at full
    speed: after any sequence of adds, removes and solves (overloads included) its loads, loads at full
    speed, speeds and rates per kind are bit for bit those of a table that keeps the two apart (groups
    changed link by link in plain Python, or all in numpy)."""
    monkeypatch.setattr("twin.flows._FEW_LINKS", few_links)
    rng = np.random.default_rng(seed)
    n_links = int(rng.integers(3, 12))
    capacity = rng.uniform(5.0, 40.0, n_links) * rng.choice([1.0, 10.0])  # often nothing overloads
    shared, apart = FlowTable(capacity), FlowTable(capacity)
    apart.SHARE = False
    shared.RESYNC_EVERY = apart.RESYNC_EVERY = int(rng.choice([3, 10, 500]))
    for step, key, group in churn(rng, shared, n_links, int(rng.integers(20, 300))):
        if group is None:
            apart.remove(key)
        else:
            apart.add(group)
        if rng.random() < 0.7 or step % 10 == 0:
            assert shared.solve() == apart.solve()
        assert shared.link_load.tobytes() == apart.link_load.tobytes()
        assert shared._at_full.tobytes() == apart._at_full.tobytes()
        assert shared.kind_rate.tobytes() == apart.kind_rate.tobytes()
        assert apart.link_load is not apart._at_full


def compacted(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The live flows of kept-up-to-date flat arrays (removed groups' flows dropped), in table order."""
    live = np.flatnonzero(flat["group"] >= 0)
    flows = live[np.argsort(flat["group"][live], kind="stable")]
    new_index = np.full(len(flat["group"]), -1)
    new_index[flows] = np.arange(len(flows))
    at = new_index[flat["entry_flow"]]
    entries = np.flatnonzero(at >= 0)
    entries = entries[np.argsort(at[entries], kind="stable")]
    out = {k: flat[k][flows] for k in ("group", "kind", "src", "dst", "rate", "demand", "job")}
    out |= {"entry_flow": at[entries], "entry_link": flat["entry_link"][entries]}
    return out | {"entry_frac": flat["entry_frac"][entries]}


@pytest.mark.parametrize("seed", range(12))
def test_flat_flows_kept_up_to_date_are_a_fresh_flatten_and_never_change_once_handed_out(seed: int) -> None:
    """``FlowTable.flat`` appends new groups' flows and zeroes removed ones' in fresh per-flow arrays,
    building afresh when the removed outnumber the live: its live flows are always exactly a fresh
    flatten of the table's groups at their speeds, removed flows carry no rate, demand, job or group,
    and arrays handed out earlier (snapshots share them) keep their values whatever happens later."""
    from twin.flows import _flatten

    rng = np.random.default_rng(seed)
    n_links = int(rng.integers(3, 12))
    table = FlowTable(rng.uniform(5.0, 40.0, n_links))
    table._flat_flows.SPARE_SLOTS = int(rng.choice([0, 256]))  # built afresh for many removed groups too
    handed: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
    for _ in churn(rng, table, n_links, 250):
        if rng.random() < 0.5:
            table.solve()
        if rng.random() < 0.6:
            flat = table.flat()
            handed.append((flat, {k: v.copy() for k, v in flat.items()}))
            keys = list(table.groups)
            speeds = np.array([table.speed.get(k, 1.0) for k in keys])
            fresh = _flatten(keys, [table.groups[k] for k in keys], speeds)
            got = compacted(flat)
            for name, values in fresh.items():
                np.testing.assert_array_equal(got[name], values, err_msg=name)
            dead = flat["group"] < 0
            assert (flat["job"][dead] == -1).all() and not flat["rate"][dead].any()
            assert not flat["demand"][dead].any()
            assert all(not v.flags.writeable for v in flat.values())
    assert table._flat_flows.rebuilds > 0  # the compacting rebuild was exercised
    for flat, copy in handed:
        for name, values in copy.items():
            np.testing.assert_array_equal(flat[name], values, err_msg=name)
