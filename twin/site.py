"""A site described per tier from the scenario's numbers alone: switches, physical cables, ports used of
available, bisection bandwidth, oversubscription and IT power at full load.

Nothing is built, so the largest site is described at once (``validate``) and a scenario whose switches
cannot take their cables is refused before anything is allocated (:func:`check_ports`). The counts follow
``build_fabric`` exactly (a test builds every shipped site and compares), but count physical cables: a
merged graph edge of k cables (a leaf's parallel uplinks to one spine, a storage array's ports on one
switch) counts k. Tiers and cable groups carry the network they belong to: ``compute``, and ``storage``
(the storage network's leaves and spines when the site has a ``[storage_fabric]``, else only the arrays'
cables into compute switches).
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

    network: str  # "compute", or "storage" (a storage network of its own)
    name: str  # "leaf", "spine", "core"
    field: str  # the scenario field that sets its radix
    switches: int
    radix: int  # ports per switch
    ports_used: int  # over the whole tier
    busiest: int  # ports used on its fullest switch
    down_gbps: float  # bandwidth of the links into it from below (servers, or the tier below)
    up_gbps: float  # bandwidth of its links to the tier above (0 at the top)
    kw: float  # its switches' power

    @property
    def ports(self) -> int:
        return self.switches * self.radix

    @property
    def oversubscription(self) -> float | None:
        """Down over up bandwidth (1: non-blocking); None at the top tier."""
        return self.down_gbps / self.up_gbps if self.up_gbps > 0 else None


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
    power_kw: tuple[tuple[str, float], ...]  # IT power at full load by part: every GPU at max watts

    @property
    def it_kw_full_load(self) -> float:
        return sum(kw for _, kw in self.power_kw)

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
        up = [("leaf-to-spine", edges * half), ("spine-to-core", aggs * half)]
        edge_up, agg_up = (count * port for _, count in up)
        # Cores have the spine tier's radix unless core_radix says otherwise.
        tiers += [
            _tier(s, "leaf", "leaf_radix", topo.leaf_radix, edge_used, host_gbps, edge_up),
            _tier(s, "spine", "spine_radix", topo.spine_radix, agg_used, edge_up, agg_up),
            _tier(s, "core", _core_field(s), topo.core_ports, core_used, agg_up, 0.0),
        ]
        gateway = cores
        top = "core"
    else:
        leaves = topo.racks if topo.kind == "leaf-spine" else (servers // topo.nodes_per_unit) * rails
        per_rail_leaves = leaves // rails
        ups = s.leaf_uplinks
        leaf_used = np.full(leaves, s.leaf_downlinks + ups) + _storage_ports(s, "leaf", leaves)
        up = [("leaf-to-spine", leaves * ups)]
        leaf_up = leaves * ups * port
        tiers.append(_tier(s, "leaf", "leaf_radix", topo.leaf_radix, leaf_used, host_gbps, leaf_up))
        if not topo.cores:
            spines = topo.spines * rails
            per_spine = per_rail_leaves * _spread(ups, topo.spines)  # every leaf spreads alike
            # In the order build_fabric attaches storage: spine s of every rail, then spine s + 1.
            spine_used = np.repeat(per_spine, rails) + 1 + _storage_ports(s, "spine", spines)  # + the gateway
            tiers.append(_tier(s, "spine", "spine_radix", topo.spine_radix, spine_used, leaf_up, 0.0))
            gateway = spines
            top = "spine"
        else:
            pods = per_rail_leaves // topo.leaves_per_pod
            spine_up = np.array(s.spine_uplinks, np.int64)  # per spine of a pod
            spine_down = topo.leaves_per_pod * _spread(ups, topo.spines)
            # build_fabric's order: pod by pod, spine s of every rail, then spine s + 1.
            spine_used = np.tile(np.repeat(spine_down + spine_up, rails), pods)
            spine_used += _storage_ports(s, "spine", len(spine_used))
            group = topo.cores // topo.spines
            per_core = np.zeros(topo.cores, np.int64)  # links from the pods, alike on every rail
            for i, count in enumerate(spine_up.tolist()):  # spine i of pod p starts p x count cores on
                spread = _spread(count, group)
                for p in range(pods):
                    per_core[i * group : (i + 1) * group] += np.roll(spread, p * count % group)
            cores = topo.cores * rails
            # build_fabric's order: core i of every group and rail, then core i + 1; the gateway takes a
            # port on the first core of every group.
            first = np.arange(topo.cores).reshape(topo.spines, group).T.ravel()  # position -> core of a rail
            core_used = np.repeat(per_core[first], rails) + _storage_ports(s, "core", cores)
            core_used[: topo.spines * rails] += 1
            up.append(("spine-to-core", rails * pods * int(spine_up.sum())))
            spine_top = up[-1][1] * port
            tiers += [
                _tier(s, "spine", "spine_radix", topo.spine_radix, spine_used, leaf_up, spine_top),
                _tier(s, "core", _core_field(s), topo.core_ports, core_used, spine_top, 0.0),
            ]
            gateway = topo.spines * rails
            top = "core"
    storage_tiers, storage_cables = _storage_network(s)
    tiers += storage_tiers
    cables = [Cables("compute", "server-to-leaf", host_cables, node.nic_gbps)]
    cables += [Cables("compute", name, count, port) for name, count in up]
    for tier in ("leaf", "spine", "core"):
        count = sum(st.ports for st in s.storage if st.attach == tier)
        if count:
            cables.append(Cables("storage", f"storage-to-{tier}", count, port))
    cables += storage_cables
    cables.append(Cables("gateway", f"gateway-to-{top}", gateway, port))
    # Bisection: half the servers talk to the other half; every tier's uplinks carry half of that cut.
    thinnest = min([host_gbps] + [count * port for _, count in up])
    power = (
        ("GPUs", s.gpus * s.gpu.max_watts / 1000.0),
        ("servers", servers * node.overhead_watts / 1000.0),
        ("switches", sum(t.kw for t in tiers)),
        ("storage", len(s.storage) * s.power.storage_watts / 1000.0),
    )
    return SiteDescription(
        tiers=tuple(tiers),
        cables=tuple(cables),
        bisection_gbps=thinnest / 2,
        oversubscription=host_gbps / thinnest if thinnest > 0 else float("inf"),
        power_kw=power,
    )


def _storage_network(s: Scenario) -> tuple[list[Tier], list[Cables]]:
    """The storage network's leaves and spines and its cables (none without a ``[storage_fabric]``): every
    server's storage NICs to its leaf, each leaf's uplinks spread over the spines, the arrays' ports
    spread over the spines, as ``build_fabric`` wires them."""
    sf = s.storage_fabric
    if sf is None:
        return [], []
    leaves, ups = sf.leaves(s.nodes), sf.leaf_uplinks
    arrays = [st for st in s.storage if st.attach == "storage"]
    spine_used = leaves * _spread(ups, sf.spines) + _storage_ports(s, "storage", sf.spines)
    down = s.nodes * sf.nics * sf.nic_gbps
    up = leaves * ups * sf.port_gbps
    tiers = [
        _tier(s, "leaf", "leaf_radix", sf.leaf_radix, np.full(leaves, sf.leaf_downlinks + ups), down, up, "storage"),
        _tier(s, "spine", "spine_radix", sf.spine_radix, spine_used, up, 0.0, "storage"),
    ]
    cables = [
        Cables("storage", "server-to-storage-leaf", s.nodes * sf.nics, sf.nic_gbps),
        Cables("storage", "storage-leaf-to-spine", leaves * ups, sf.port_gbps),
        Cables("storage", "array-to-storage-spine", sum(st.ports for st in arrays), sf.port_gbps),
    ]
    return tiers, cables


def _core_field(s: Scenario) -> str:
    """The field that sets the cores' radix: core_radix where given, else spine_radix."""
    return "core_radix" if s.topology.core_radix else "spine_radix"


def _tier(
    s: Scenario, name: str, field: str, radix: int, used: np.ndarray, down: float, up: float, network: str = "compute"
) -> Tier:
    busiest = int(used.max()) if len(used) else 0
    kw = len(used) * s.power.switch_watts / 1000.0
    return Tier(network, name, field, len(used), radix, int(used.sum()), busiest, down, up, kw)


def check_ports(
    s: Scenario,
    fail: Callable[[str, str], NoReturn] | None = None,
    storage_fail: Callable[[str, str], NoReturn] | None = None,
) -> None:
    """Refuse a site whose busiest switch in some tier needs more ports than it has: ``fail(field,
    expected)`` (the scenario reader's, which names the file and line; ``storage_fail`` for the storage
    network's tiers), else a ScenarioError naming the tier's radix field, the count and what takes the
    ports."""
    for tier in describe(s).tiers:
        if tier.busiest > tier.radix:
            storage = tier.network == "storage"
            what = f"storage {tier.name}" if storage else tier.name
            expected = (
                f"at least {tier.busiest} ports on a {what} switch (its links down and up, storage and the "
                f"gateway), got {tier.radix}-port {what} switches"
            )
            report = storage_fail if storage else fail
            if report is not None:
                report(tier.field, expected)
            raise ScenarioError(s.source, f"{'storage_fabric' if storage else 'topology'}.{tier.field}", expected)


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
            ratio = t.oversubscription
            up = f"{t.up_gbps / 1000:,.1f} Tb/s up ({ratio:.3g}:1)" if ratio is not None else "top tier"
            lines.append(
                f"    {t.name:<6} {t.switches:>6,} x {t.radix:,} ports: {t.ports_used:,} of {t.ports:,} used"
                f" (busiest switch {t.busiest:,}); {t.down_gbps / 1000:,.1f} Tb/s down, {up}; {t.kw:,.1f} kW"
            )
    parts = ", ".join(f"{what} {kw / 1000:,.2f}" for what, kw in d.power_kw)
    lines.append(
        f"  bisection bandwidth {d.bisection_gbps / 1000:,.1f} Tb/s, oversubscription {d.oversubscription:.3g}:1"
    )
    lines.append(f"  IT power at full load {d.it_kw_full_load / 1000:,.2f} MW ({parts} MW)")
    return lines
