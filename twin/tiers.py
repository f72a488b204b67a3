"""Which tier of the site each link belongs to, for utilisation by tier (report and HUD)."""

from __future__ import annotations

import numpy as np

from twin.topology import CORE, FABRIC, HOST, STORAGE_LINK, Fabric

TIERS = ("host", "leaf-spine", "spine-core", "storage")


def link_tiers(fab: Fabric) -> np.ndarray:
    """Tier index (into ``TIERS``) of every directed link; -1 for gateway and virtual links.

    Host links join servers to leaves; switch-to-switch links touching a core switch are the spine-core
    tier (fat-tree aggregation-core too), the others leaf-spine; storage links carry arrays' traffic."""
    tier = np.full(fab.n_links, -1, np.int8)
    kind = fab.link_kind
    tier[kind == HOST] = 0
    fabric = kind == FABRIC
    core = (fab.kind[fab.link_src] == CORE) | (fab.kind[fab.link_dst] == CORE)
    tier[fabric & ~core] = 1
    tier[fabric & core] = 2
    tier[kind == STORAGE_LINK] = 3
    return tier


def tier_members(fab: Fabric) -> tuple[np.ndarray, ...]:
    """The directed links of each tier, as index arrays in ``TIERS`` order."""
    tier = link_tiers(fab)
    return tuple(np.flatnonzero(tier == k) for k in range(len(TIERS)))


def tier_utilization(util: np.ndarray, members: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max utilisation per tier (zeros for a tier the site does not have)."""
    means = np.array([util[m].mean() if len(m) else 0.0 for m in members])
    maxes = np.array([util[m].max() if len(m) else 0.0 for m in members])
    return means, maxes
