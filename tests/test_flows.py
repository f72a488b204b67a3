"""Max-min fair sharing: known answers, the defining property, and agreement with a slow reference."""

from __future__ import annotations

import numpy as np
import pytest

from twin.flows import max_min_fair


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
