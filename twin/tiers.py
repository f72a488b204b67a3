"""Utilisation by tier of the site (host, leaf-spine, spine-core, storage), for the report."""

from __future__ import annotations

import numpy as np

from twin.topology import LINK_TIERS, Fabric

TIERS = LINK_TIERS[:4]  # host, leaf-spine, spine-core, storage: the tiers the report describes


def tier_members(fab: Fabric) -> tuple[np.ndarray, ...]:
    """The directed links of each tier (``Fabric.link_tier``), as index arrays in ``TIERS`` order."""
    return tuple(np.flatnonzero(fab.link_tier == k) for k in range(len(TIERS)))


def tier_utilization(util: np.ndarray, members: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max utilisation per tier (zeros for a tier the site does not have)."""
    means = np.array([util[m].mean() if len(m) else 0.0 for m in members])
    maxes = np.array([util[m].max() if len(m) else 0.0 for m in members])
    return means, maxes
