"""Wiring that adds up: every switch port counted, over-subscribed switches refused, and the per-tier site
description checked against the fabric that is really built."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_ops import toml_text
from test_topology import THREE_TIER as TOPOLOGY_THREE_TIER

from conftest import ROOT, SCENARIOS, site
from twin.cli import main
from twin.errors import ScenarioError
from twin.power import it_watts
from twin.scenario import load_scenario, scenario_from_dict, site_size
from twin.site import describe
from twin.topology import CORE, LEAF, NETWORKS, SPINE, build_fabric

TIER_KIND = {"leaf": LEAF, "spine": SPINE, "core": CORE}


def built_ports(scenario, fab=None) -> tuple[dict[int, int], dict[str, int]]:
    """Ports used per switch and physical cables per kind, counted on the built graph. A merged edge of k
    cables has ``ports`` k; a server's NICs share one edge on leaf-spine and fat-tree sites."""
    fab = build_fabric(scenario) if fab is None else fab
    nics = scenario.node.nics if scenario.topology.kind != "rail-optimized" else 1
    used: dict[int, int] = {}
    cables: dict[str, int] = {}
    for u, v, d in fab.graph.edges(data=True):
        count = d["ports"] * (nics if d["kind"] == "host" else 1)
        for end in (u, v):
            used[end] = used.get(end, 0) + count
        cables[d["kind"]] = cables.get(d["kind"], 0) + count
    return {g: used.get(g, 0) for g in fab.switch_gids.tolist()}, cables


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_description_counts_what_is_built(path: Path) -> None:
    scenario = load_scenario(path)
    d = describe(scenario)
    fab = build_fabric(scenario)
    used, cables = built_ports(scenario, fab)
    for tier in d.tiers:
        gids = np.flatnonzero((fab.kind == TIER_KIND[tier.name]) & (fab.network == NETWORKS.index(tier.network)))
        mine = [used[int(g)] for g in gids]
        assert tier.switches == len(gids), tier.name
        assert tier.ports_used == sum(mine), tier.name
        assert tier.busiest == max(mine) <= tier.radix, tier.name
    storage = sum(cables.get(k, 0) for k in ("storage", "storage-nic", "storage-fabric"))
    by_kind = {"compute": cables.get("host", 0) + cables.get("fabric", 0), "storage": storage}
    assert d.cables_in("compute") == by_kind["compute"]
    assert d.cables_in("storage") == by_kind["storage"]
    assert d.cables_in("gateway") == cables.get("gateway", 0)
    switches = sum(t.switches for t in d.tiers)
    assert d.it_kw_full_load * 1000 == pytest.approx(it_watts(scenario, scenario.gpus, switches))


def test_lingang_has_24000_compute_cables() -> None:
    d = describe(load_scenario(ROOT / "scenarios" / "lingang.toml"))
    counts = {c.name: c.count for c in d.cables}
    assert counts["server-to-leaf"] == 12_000 and counts["leaf-to-spine"] == 12_000
    assert d.cables_in("compute") == 24_000
    # The storage network: 1,500 servers x 2 storage NICs, 150 leaves x 20 uplinks, 8 arrays x 16 ports.
    assert counts["server-to-storage-leaf"] == 3_000 and counts["storage-leaf-to-spine"] == 3_000
    assert counts["array-to-storage-spine"] == 128 and d.cables_in("storage") == 6_128
    leaf, spine, storage_leaf, storage_spine = d.tiers
    assert (leaf.switches, leaf.ports_used, leaf.ports) == (600, 24_000, 24_000)
    # A spine of a rail: 75 leaves x 10 uplinks and the gateway; storage has a network of its own.
    assert spine.switches == 16 and spine.busiest == 750 + 1
    assert (storage_leaf.network, storage_leaf.switches, storage_leaf.busiest) == ("storage", 150, 40)
    # A storage spine: 150 leaves x 5 uplinks and 8 arrays x 4 ports.
    assert (storage_spine.switches, storage_spine.busiest, storage_spine.ports) == (4, 750 + 32, 3_200)
    assert d.oversubscription == pytest.approx(1.0)
    assert d.bisection_gbps == pytest.approx(12_000 * 200 / 2)
    assert leaf.down_gbps == leaf.up_gbps == spine.down_gbps == 12_000 * 200.0 and spine.oversubscription is None


def test_oversubscription_and_bisection_of_a_2_to_1_site() -> None:
    # 2 racks x 2 servers x 100 Gb/s = 400 Gb/s of servers; each leaf has 1 uplink of 100 Gb/s at 2:1.
    scenario = scenario_from_dict(site(**{"topology.oversubscription": 2.0}))
    d = describe(scenario)
    assert d.oversubscription == pytest.approx(2.0)
    assert d.bisection_gbps == pytest.approx(2 * 100 / 2)
    leaf, spine = d.tiers
    assert (leaf.down_gbps, leaf.up_gbps, leaf.oversubscription) == (400.0, 200.0, 2.0)
    # IT power at full load: 32 GPUs x 350 W, 4 servers x 1,000 W, 4 switches x 100 W, 1 array x 1,000 W.
    assert dict(d.power_kw) == pytest.approx({"GPUs": 11.2, "servers": 4.0, "switches": 0.4, "storage": 1.0})
    assert leaf.kw + spine.kw == pytest.approx(0.4)


def test_fat_tree_counts() -> None:
    data = site(**{"topology": {"kind": "fat-tree", "k": 4, "port_gbps": 100, "spine_radix": 8}})
    data["storage"][0].update(attach="core", ports=2)
    d = describe(scenario_from_dict(data))
    edge, agg, core = d.tiers
    assert (edge.switches, agg.switches, core.switches) == (8, 8, 4)
    assert edge.busiest == 4 and agg.busiest == 4
    assert core.busiest == 4 + 1 + 1  # a port per pod, the gateway, one storage port
    counts = {c.name: c.count for c in d.cables}
    assert counts == THREE_TIER_CABLES
    assert d.oversubscription == pytest.approx(1.0)


def test_a_switch_with_too_few_ports_is_refused_with_its_tier_and_count() -> None:
    # 100 storage ports on 2 leaves: 50 each, plus 2 servers and 2 uplinks, on 16-port leaves.
    data = site()
    data["storage"][0].update(attach="leaf", ports=100)
    with pytest.raises(ScenarioError, match=r"topology\.leaf_radix: expected at least 54 ports on a leaf switch"):
        scenario_from_dict(data)
    # Leaves fill the one spine's 16 ports; the gateway and both storage ports need 3 more.
    data = site(**{"topology.nodes_per_rack": 8, "topology.leaf_radix": 32, "topology.spines": 1})
    with pytest.raises(ScenarioError, match=r"spine_radix: expected at least 19 ports on a spine switch"):
        scenario_from_dict(data)


def test_fat_tree_cores_need_ports_for_the_gateway_and_storage() -> None:
    # A k-ary fat-tree uses every port of every switch; the gateway and storage need more on the cores.
    data = site(**{"topology": {"kind": "fat-tree", "k": 4, "port_gbps": 100}})
    data["storage"][0].update(attach="core", ports=4)
    with pytest.raises(ScenarioError, match=r"at least 6 ports on a core switch.*got 4-port core"):
        scenario_from_dict(data)


def test_cli_rejects_an_over_subscribed_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "scenarios" / "fat-tree-campus.toml").read_text()
    bad = tmp_path / "ft.toml"
    bad.write_text(text.replace("spine_radix = 16", "spine_radix = 8"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(bad) in err and "spine_radix" in err and "at least 10 ports on a core switch" in err


def test_validate_describes_every_tier(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "scenarios" / "lingang.toml")]) == 0
    out = capsys.readouterr().out
    assert "24,000 cables (12,000 server-to-leaf, 12,000 leaf-to-spine)" in out
    assert "leaf" in out and "24,000 of 24,000 used" in out and "12,016 of 12,800 used" in out
    assert "storage network: 154 switches, 6,128 cables (3,000 server-to-storage-leaf" in out
    assert "3,128 of 3,200 used" in out and "bisection bandwidth 1,200.0 Tb/s" in out
    assert "oversubscription 1:1" in out and "IT power at full load" in out


@pytest.mark.parametrize("attach", ["spine", "leaf"])
def test_uneven_uplinks_and_storage_are_counted_where_they_are_plugged(attach: str) -> None:
    # 4 uplinks per rail leaf over 3 spines (2, 1, 1), and 5 storage ports spread over the tier.
    data = site(
        **{
            "topology": {
                "kind": "rail-optimized",
                "racks": 4,
                "nodes_per_rack": 2,
                "nodes_per_unit": 4,
                "spines": 3,
                "leaf_radix": 16,
                "spine_radix": 16,
                "port_gbps": 100,
            },
            "node.nics": 2,
        }
    )
    data["storage"][0].update(attach=attach, ports=5)
    scenario = scenario_from_dict(data)
    d = describe(scenario)
    used, _ = built_ports(scenario)
    fab = build_fabric(scenario)
    for tier in d.tiers:
        mine = [used[int(g)] for g in np.flatnonzero(fab.kind == TIER_KIND[tier.name])]
        assert (tier.ports_used, tier.busiest) == (sum(mine), max(mine)), tier.name


# --- three tiers ---------------------------------------------------------------------------------------------

THREE_TIER = TOPOLOGY_THREE_TIER["topology"]  # the small three-tier site of test_topology
# Worked out by hand: 8 servers x 2 NICs, every leaf and spine 1:1, one storage array with two ports, and
# the gateway on the first core of each of the 2 core groups of both rails.
THREE_TIER_CABLES = {
    "server-to-leaf": 16,
    "leaf-to-spine": 16,
    "spine-to-core": 16,
    "storage-to-core": 2,
    "gateway-to-core": 4,
}


def three_tier(**topology: object) -> dict:
    data = site(**{"topology": {**THREE_TIER, **topology}, "node.nics": 2})
    data["storage"][0].update(attach="core", ports=2)
    return data


def test_three_tier_counts_by_hand() -> None:
    """4 units of 2 servers with 2 NICs (2 rails), pods of 2 units with 2 spines per rail, 4 cores per rail."""
    scenario = scenario_from_dict(three_tier())
    d = describe(scenario)
    leaf, spine, core = d.tiers
    assert (leaf.switches, spine.switches, core.switches) == (8, 8, 8)
    # A leaf: 2 servers down, 2 up (1:1 at 100 Gb/s). A spine: a cable from each of its pod's 2 leaves of
    # its rail, 2 up, one to each core of its group. A core: a cable from each of the 2 pods; the first core of
    # each group takes the gateway (4 of 8 cores); the 2 storage ports go on the first two cores.
    assert (leaf.ports_used, leaf.busiest) == (32, 4)
    assert (spine.ports_used, spine.busiest) == (32, 4)
    assert (core.ports_used, core.busiest) == (8 * 2 + 4 + 2, 4)
    assert (leaf.ports, spine.ports, core.ports) == (64, 64, 64)
    counts = {c.name: c.count for c in d.cables}
    assert counts == THREE_TIER_CABLES
    # 16 NICs x 100 Gb/s = 1.6 Tb/s through every tier: non-blocking, bisection 0.8 Tb/s.
    assert leaf.down_gbps == leaf.up_gbps == spine.up_gbps == core.down_gbps == 1600.0
    assert (leaf.oversubscription, spine.oversubscription, core.oversubscription) == (1.0, 1.0, None)
    assert d.bisection_gbps == pytest.approx(800.0) and d.oversubscription == pytest.approx(1.0)
    assert dict(d.power_kw)["switches"] == pytest.approx(24 * 0.1)
    size = site_size(scenario)
    assert (size.switches, size.cables) == (24, 16 + 16 + 16 + 2 + 4)


def test_three_tier_oversubscribed_spines() -> None:
    # At 2:1 a spine has 1 uplink: 8 spine-to-core cables, 1 core per group, bisection halved.
    scenario = scenario_from_dict(three_tier(spine_oversubscription=2.0, cores=2))
    d = describe(scenario)
    leaf, spine, core = d.tiers
    assert spine.oversubscription == pytest.approx(2.0) and leaf.oversubscription == pytest.approx(1.0)
    assert {c.name: c.count for c in d.cables}["spine-to-core"] == 8
    assert d.bisection_gbps == pytest.approx(400.0) and d.oversubscription == pytest.approx(2.0)
    assert core.switches == 4 and core.busiest == 2 + 1 + 1  # 2 pods, the gateway, a storage port


@pytest.mark.parametrize(
    "topology",
    [{}, {"spine_oversubscription": 2.0, "cores": 2}, {"kind": "leaf-spine", "nodes_per_unit": 1, "cores": 2}],
    ids=["rail", "rail-2to1", "leaf-spine"],
)
def test_three_tier_description_counts_what_is_built(topology: dict) -> None:
    data = three_tier(**topology)
    if topology.get("kind") == "leaf-spine":
        data["topology"].pop("nodes_per_unit")
        data["node"]["nics"] = 1
    scenario = scenario_from_dict(data)
    d = describe(scenario)
    fab = build_fabric(scenario)
    used, cables = built_ports(scenario, fab)
    for tier in d.tiers:
        mine = [used[int(g)] for g in np.flatnonzero(fab.kind == TIER_KIND[tier.name])]
        assert (tier.switches, tier.ports_used, tier.busiest) == (len(mine), sum(mine), max(mine)), tier.name
        assert tier.busiest <= tier.radix
    assert d.cables_in("compute") == cables["host"] + cables["fabric"]
    assert d.cables_in("storage") == cables["storage"] and d.cables_in("gateway") == cables["gateway"]
    size = site_size(scenario)
    assert (size.switches, size.cables) == (fab.switch_gids.size, fab.n_edges)


BAD_THREE_TIER = [
    ({"leaves_per_pod": 3}, "topology.leaves_per_pod", "a divisor of the 4 leaves of a rail, got 3"),
    ({"cores": 3}, "topology.cores", "a multiple of spines (2: a core group per spine of a pod), got 3"),
    ({"cores": 6}, "topology.cores", "at most 4 (a spine has 2 uplinks, one to each core of its group)"),
    ({"spines": 4}, "topology.spines", "at most a leaf's 2 uplinks"),
    ({"cores": 0}, "topology.leaves_per_pod", "cores (a core tier) for leaves_per_pod to apply"),
    ({"core_radix": 3}, "topology.core_radix", "at least 4 ports on a core switch"),
]


@pytest.mark.parametrize(
    ("change", "field", "expected"), BAD_THREE_TIER, ids=[c[1] + str(c[0]) for c in BAD_THREE_TIER]
)
def test_bad_three_tier_sites_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, field: str, expected: str
) -> None:
    data = three_tier(**change)
    path = tmp_path / "three.toml"
    path.write_text(toml_text(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and field in err and expected in err, err


def test_cores_belong_to_three_tier_sites_only() -> None:
    with pytest.raises(ScenarioError, match=r"topology\.cores: expected no cores on a fat-tree"):
        scenario_from_dict(site(**{"topology": {"kind": "fat-tree", "k": 4, "port_gbps": 100, "cores": 4}}))
    data = site()
    data["storage"][0]["attach"] = "core"
    with pytest.raises(ScenarioError, match=r"storage\[0\]\.attach: expected 'spine' or 'leaf'"):
        scenario_from_dict(data)


def test_validate_describes_the_core_tier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "three.toml"
    path.write_text(toml_text(three_tier()))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "24 switches, 48 cables (16 server-to-leaf, 16 leaf-to-spine, 16 spine-to-core)" in out
    assert "core        8 x 8 ports: 22 of 64 used (busiest switch 4)" in out
    assert "bisection bandwidth 0.8 Tb/s, oversubscription 1:1" in out
