"""Utilisation by tier of the site (host, leaf-spine, spine-core, storage), for the report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.topology import LINK_TIERS, Fabric

TIERS = LINK_TIERS[:4]  # host, leaf-spine, spine-core, storage: the tiers the report describes


@dataclass(frozen=True)
class TierIndex:
    """The links of the site's tiers grouped by tier (``order``), where each present tier's run starts,
    which tiers those are, and every tier's link count (0: the site has no such tier)."""

    order: np.ndarray
    starts: np.ndarray
    present: np.ndarray
    counts: np.ndarray


def tier_index(fab: Fabric) -> TierIndex:
    """The directed links of each tier (``Fabric.link_tier``), grouped for one gather per look."""
    tier = fab.link_tier
    keep = np.flatnonzero(tier < len(TIERS))
    order = keep[np.argsort(tier[keep], kind="stable")]
    counts = np.bincount(tier[keep], minlength=len(TIERS))
    present = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[present]
    return TierIndex(order, starts, present, counts)


def tier_utilization(util: np.ndarray, index: TierIndex) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max utilisation per tier (zeros for a tier the site does not have)."""
    means, maxes = np.zeros(len(TIERS)), np.zeros(len(TIERS))
    if len(index.order):
        grouped = util[index.order]
        means[index.present] = np.add.reduceat(grouped, index.starts) / index.counts[index.present]
        maxes[index.present] = np.maximum.reduceat(grouped, index.starts)
    return means, maxes
