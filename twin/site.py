"""A site described per tier from the scenario's numbers alone: switches, physical cables, ports used of
available, bisection bandwidth, oversubscription and IT power at full load.

Nothing is built, so the largest site is described at once (``validate``) and a scenario whose switches
cannot take their cables is refused before anything is allocated (:func:`check_ports`). The counts follow
``build_fabric`` exactly (a test builds every shipped site and compares), but count physical cables: a
merged graph edge of k cables (a leaf's parallel uplinks to one spine, a storage array's ports on one
switch) counts k. Tiers and cable groups carry the network they belong to (``compute`` today; a separate
storage network adds tiers named ``storage-leaf`` and the like), so the description extends as the site
does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from twin.errors import ScenarioError
from twin.scenario import Scenario


@dataclass(frozen=True)
class Tier:
    """One tier of switches and how full their ports are."""

    network: str  # "compute" (later also "storage")
    name: str  # "leaf", "spine", "core"
    field: str  # the scenario field that sets its radix
    switches: int
    radix: int  # ports per switch
    ports_used: int  # over the whole tier
    busiest: int  # ports used on its fullest switch

    @property
    def ports(self) -> int:
        return self.switches * self.radix


@dataclass(frozen=True)
class Cables:
    """Physical cables of one kind (server-to-leaf, leaf-to-spine, ...), each of ``gbps``."""

    network: str
    name: str
    count: int
    gbps: float


@dataclass(frozen=True)
class SiteDescription:
    tiers: tuple[Tier, ...]
    cables: tuple[Cables, ...]
    bisection_gbps: float  # the least bandwidth across any cut of the servers into two equal halves
    oversubscription: float  # server bandwidth over the thinnest tier's uplink bandwidth (1: non-blocking)
    it_kw_full_load: float  # every GPU at max watts, plus servers, switches and storage

    def cables_in(self, network: str) -> int:
        return sum(c.count for c in self.cables if c.network == network)


def _spread(total: int, bins: int) -> np.ndarray:
    """``total`` ports over ``bins`` switches as evenly as possible (as the builder spreads them)."""
    base, extra = divmod(total, bins)
    return base + (np.arange(bins) < extra).astype(np.int64)


def _storage_ports(s: Scenario, tier: str, switches: int) -> np.ndarray:
    """Ports each switch of a tier gives to storage arrays, placed as ``build_fabric`` places them."""
    used = np.zeros(switches, np.int64)
    for i, st in enumerate(s.storage):
        if st.attach != tier or switches == 0:
            continue
        offset = (i * st.ports) % switches
        used += np.roll(_spread(st.ports, switches), offset)
    return used


def describe(s: Scenario) -> SiteDescription:
    """The site per tier (see the module docstring)."""
    topo, node = s.topology, s.node
    servers = s.nodes
    rails = node.nics if topo.kind == "rail-optimized" else 1
    host_cables = servers * node.nics
    host_gbps = servers * node.nics * node.nic_gbps
    port = topo.port_gbps
    tiers: list[Tier] = []
    if topo.kind == "fat-tree":
        k, half = topo.k, topo.k // 2
        edges = aggs = k * half
        cores = half * half
        edge_down = topo.nodes_per_rack * node.nics
        edge_used = np.full(edges, edge_down + half) + _storage_ports(s, "leaf", edges)
        agg_used = np.full(aggs, 2 * half) + _storage_ports(s, "spine", aggs)
        core_used = np.full(cores, k + 1) + _storage_ports(s, "core", cores)  # a port per pod and the gateway
        # Cores have the spine tier's radix: in a fat-tree both upper tiers are "spine" switches.
        tiers += [
            _tier("leaf", "leaf_radix", topo.leaf_radix, edge_used),
            _tier("spine", "spine_radix", topo.spine_radix, agg_used),
            _tier("core", "spine_radix", topo.spine_radix, core_used),
        ]
        up = [("leaf-to-spine", edges * half), ("spine-to-core", aggs * half)]
        gateway = cores
        top = "core"
    else:
        leaves = topo.racks if topo.kind == "leaf-spine" else (servers // topo.nodes_per_unit) * rails
        per_rail_leaves = leaves // rails
        spines = topo.spines * rails
        ups = s.leaf_uplinks
        leaf_used = np.full(leaves, s.leaf_downlinks + ups) + _storage_ports(s, "leaf", leaves)
        per_spine = per_rail_leaves * _spread(ups, topo.spines)  # every leaf spreads alike
        # In the order build_fabric attaches storage: spine s of every rail, then spine s + 1.
        spine_used = np.repeat(per_spine, rails) + 1 + _storage_ports(s, "spine", spines)  # + the gateway
        tiers += [
            _tier("leaf", "leaf_radix", topo.leaf_radix, leaf_used),
            _tier("spine", "spine_radix", topo.spine_radix, spine_used),
        ]
        up = [("leaf-to-spine", leaves * ups)]
        gateway = spines
        top = "spine"
    cables = [Cables("compute", "server-to-leaf", host_cables, node.nic_gbps)]
    cables += [Cables("compute", name, count, port) for name, count in up]
    for tier in ("leaf", "spine", "core"):
        count = sum(st.ports for st in s.storage if st.attach == tier)
        if count:
            cables.append(Cables("storage", f"storage-to-{tier}", count, port))
    cables.append(Cables("gateway", f"gateway-to-{top}", gateway, port))
    # Bisection: half the servers talk to the other half; every tier's uplinks carry half of that cut.
    thinnest = min([host_gbps] + [count * port for _, count in up])
    switches = sum(t.switches for t in tiers)
    gpu = s.gpu
    it_w = (
        s.gpus * gpu.max_watts
        + servers * node.overhead_watts
        + switches * s.power.switch_watts
        + len(s.storage) * s.power.storage_watts
    )
    return SiteDescription(
        tiers=tuple(tiers),
        cables=tuple(cables),
        bisection_gbps=thinnest / 2,
        oversubscription=host_gbps / thinnest if thinnest > 0 else float("inf"),
        it_kw_full_load=it_w / 1000.0,
    )


def _tier(name: str, field: str, radix: int, used: np.ndarray, network: str = "compute") -> Tier:
    return Tier(network, name, field, len(used), radix, int(used.sum()), int(used.max()) if len(used) else 0)


def check_ports(s: Scenario, fail: Callable[[str, str], NoReturn] | None = None) -> None:
    """Refuse a site whose busiest switch in some tier needs more ports than it has: ``fail(field,
    expected)`` (the scenario reader's, which names the file and line), else a ScenarioError naming the
    tier's radix field, the count and what takes the ports."""
    for tier in describe(s).tiers:
        if tier.busiest > tier.radix:
            expected = (
                f"at least {tier.busiest} ports on a {tier.name} switch (its links down and up, storage and the "
                f"gateway), got {tier.radix}-port {tier.name} switches"
            )
            if fail is not None:
                fail(tier.field, expected)
            raise ScenarioError(s.source, f"topology.{tier.field}", expected)


def describe_lines(d: SiteDescription) -> list[str]:
    """The description as console lines (``validate`` prints them)."""
    lines = []
    for network in dict.fromkeys(c.network for c in d.cables):
        mine = [c for c in d.cables if c.network == network]
        parts = ", ".join(f"{c.count:,} {c.name}" for c in mine)
        tiers = [t for t in d.tiers if t.network == network]
        head = f"  {network}: "  # storage and gateway cables plug into the compute switches until they have their own
        if tiers:
            head = f"  {network} network: {sum(t.switches for t in tiers):,} switches, "
        lines.append(f"{head}{d.cables_in(network):,} cables ({parts})")
        for t in tiers:
            lines.append(
                f"    {t.name:<6} {t.switches:>6,} x {t.radix:,} ports: {t.ports_used:,} of {t.ports:,} used"
                f" (busiest switch {t.busiest:,})"
            )
    lines.append(
        f"  bisection bandwidth {d.bisection_gbps / 1000:,.1f} Tb/s, oversubscription {d.oversubscription:.3g}:1, "
        f"IT power at full load {d.it_kw_full_load / 1000:,.2f} MW"
    )
    return lines
