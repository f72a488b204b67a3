"""Bandwidth-sharing problems for benchmarks: a leaf-spine fabric carrying many elastic flows."""

from __future__ import annotations

import numpy as np


def leaf_spine_problem(
    flows: int = 10_000, leaves: int = 50, spines: int = 10, hosts_per_leaf: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(var, link, weight, capacity, cap) for ``flows`` flows between random hosts on different leaves.

    Links: every host's up and down link, and every leaf-spine pair in both directions; with the
    defaults that is 1,000 + 1,000 = 2,000 links. Each flow is split by ECMP over all spines, so it has
    2 + 2 * spines entries. Half the flows are elastic (no cap), half capped at a random demand, and host
    links are faster than spine links so that both tiers have bottlenecks.
    """
    rng = np.random.default_rng(seed)
    hosts = leaves * hosts_per_leaf
    up = np.arange(hosts)
    down = hosts + np.arange(hosts)
    fabric_base = 2 * hosts
    leaf_up = lambda lf, s: fabric_base + lf * spines + s  # noqa: E731
    leaf_down = lambda lf, s: fabric_base + leaves * spines + lf * spines + s  # noqa: E731
    n_links = fabric_base + 2 * leaves * spines
    src = rng.integers(0, hosts, flows)
    dst = (src + hosts_per_leaf * rng.integers(1, leaves, flows) + rng.integers(0, hosts_per_leaf, flows)) % hosts
    var, link, weight = [], [], []
    s_idx = np.arange(spines)
    for f in range(flows):
        a, b = src[f] // hosts_per_leaf, dst[f] // hosts_per_leaf
        ls = np.r_[up[src[f]], leaf_up(a, s_idx), leaf_down(b, s_idx), down[dst[f]]]
        ws = np.r_[1.0, np.full(2 * spines, 1.0 / spines), 1.0]
        var.append(np.full(len(ls), f))
        link.append(ls)
        weight.append(ws)
    capacity = np.r_[np.full(2 * hosts, 400.0), np.full(2 * leaves * spines, 100.0)]
    cap = np.where(rng.random(flows) < 0.5, rng.uniform(1.0, 60.0, flows), np.inf)
    assert n_links == len(capacity)
    return np.concatenate(var), np.concatenate(link), np.concatenate(weight), capacity, cap


def ring_problem(
    jobs: int = 1_250, ring: int = 8, leaves: int = 50, spines: int = 10, hosts_per_leaf: int = 10, seed: int = 0
):
    """10,000 flows as the simulator sees them: ``jobs`` ring all-reduces of ``ring`` servers each on the
    fabric of :func:`leaf_spine_problem` (server i sends to server i + 1 of its ring, split by ECMP over
    all spines). Half the jobs are elastic (a 400 Gb/s NIC's worth of demand), half want 1 to 60.

    Returns the arguments of ``twin.flows.group_speeds``: (n_groups, flow_group, demand, (flow, link,
    fraction), (group, link, load), capacity).
    """
    rng = np.random.default_rng(seed)
    hosts = leaves * hosts_per_leaf
    fabric_base = 2 * hosts
    n_links = fabric_base + 2 * leaves * spines
    capacity = np.r_[np.full(2 * hosts, 400.0), np.full(2 * leaves * spines, 100.0)]
    s_idx = np.arange(spines)
    var, link, weight = [], [], []
    flow_group, demand = [], []
    for j in range(jobs):
        members = rng.choice(hosts, ring, replace=False)
        want = 400.0 if rng.random() < 0.5 else float(rng.uniform(1.0, 60.0))
        for i in range(ring):
            a, b = members[i], members[(i + 1) % ring]
            la, lb = a // hosts_per_leaf, b // hosts_per_leaf
            if la == lb:
                ls, ws = np.r_[a, hosts + b], np.ones(2)
            else:
                up = fabric_base + la * spines + s_idx
                down = fabric_base + leaves * spines + lb * spines + s_idx
                ls = np.r_[a, up, down, hosts + b]
                ws = np.r_[1.0, np.full(2 * spines, 1.0 / spines), 1.0]
            var.append(np.full(len(ls), len(demand)))
            link.append(ls)
            weight.append(ws)
            flow_group.append(j)
            demand.append(want)
    var, link, weight = np.concatenate(var), np.concatenate(link), np.concatenate(weight)
    demand, flow_group = np.array(demand), np.array(flow_group)
    key, where = np.unique(flow_group[var] * n_links + link, return_inverse=True)
    load = np.bincount(where, weights=weight * demand[var], minlength=len(key))
    group_entries = (key // n_links, key % n_links, load)
    return jobs, flow_group, demand, (var, link, weight), group_entries, capacity
