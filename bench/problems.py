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
