"""Fabric building and ECMP routing on small sites with known shapes."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import site
from twin.routing import Router
from twin.scenario import scenario_from_dict
from twin.topology import CORE, FABRIC, HOST, LEAF, NODE, SPINE, build_fabric


def fabric_of(**changes: object):
    return build_fabric(scenario_from_dict(site(**changes)))


def test_leaf_spine_counts_and_oversubscription() -> None:
    fab = fabric_of(
        **{"topology.racks": 4, "topology.nodes_per_rack": 4, "topology.spines": 2, "topology.oversubscription": 2.0}
    )
    assert fab.n_nodes == 16 and fab.n_gpus == 128
    assert (fab.kind == LEAF).sum() == 4 and (fab.kind == SPINE).sum() == 2
    up = (fab.link_kind == FABRIC) & (fab.kind[fab.link_src] == LEAF)
    down = (fab.link_kind == HOST) & (fab.kind[fab.link_src] == LEAF)
    # Per leaf: 4 x 100 Gb/s down, 200 Gb/s up at 2:1.
    assert fab.link_cap[down].sum() / fab.link_cap[up].sum() == pytest.approx(2.0)
    assert nx_connected(fab)


def nx_connected(fab) -> bool:
    import networkx as nx

    return nx.is_connected(fab.graph)


def test_route_between_racks_splits_over_spines() -> None:
    fab = fabric_of(**{"topology.spines": 2})
    r = Router(fab)
    a, b = int(fab.node_gid[0]), int(fab.node_gid[2])  # racks 0 and 1
    links, fracs = r.route(a, b)
    spine_hops = fab.kind[fab.link_dst[links]] == SPINE
    assert fracs[spine_hops] == pytest.approx([0.5, 0.5])
    assert fab.link_src[links[fab.link_src[links] == a]].size == 1
    assert fracs[fab.link_dst[links] == b] == pytest.approx([1.0])
    # Flow conservation at every switch on the way.
    for sw in set(fab.link_src[links]) - {a}:
        inflow = fracs[fab.link_dst[links] == sw].sum()
        outflow = fracs[fab.link_src[links] == sw].sum()
        assert inflow == pytest.approx(outflow)


def test_route_inside_a_rack_stays_under_its_leaf() -> None:
    fab = fabric_of()
    links, fracs = Router(fab).route(int(fab.node_gid[0]), int(fab.node_gid[1]))
    assert len(links) == 2 and fracs == pytest.approx([1.0, 1.0])


def test_fat_tree_shape_and_core_paths() -> None:
    fab = fabric_of(**{"topology": {"kind": "fat-tree", "k": 4, "port_gbps": 100, "spine_radix": 8}, "node.nics": 1})
    k = 4
    assert fab.n_nodes == k**3 // 4
    assert fab.switch_gids.size == 5 * k * k // 4
    r = Router(fab)
    a, b = int(fab.node_gid[0]), int(fab.node_gid[fab.n_nodes - 1])  # different pods
    links, fracs = r.route(a, b)
    core_in = fab.kind[fab.link_dst[links]] == CORE
    assert core_in.sum() == (k // 2) ** 2  # every core carries an equal share
    assert fracs[core_in] == pytest.approx(np.full((k // 2) ** 2, 1 / (k // 2) ** 2))


def test_rail_optimized_keeps_each_rail_on_its_leaf() -> None:
    fab = fabric_of(
        **{
            "topology": {
                "kind": "rail-optimized",
                "racks": 4,
                "nodes_per_rack": 2,
                "nodes_per_unit": 4,
                "spines": 1,
                "leaf_radix": 16,
                "spine_radix": 16,
                "port_gbps": 100,
            },
            "node.nics": 4,
        }
    )
    assert fab.rails == 4
    r = Router(fab)
    for rail in range(4):
        links, _ = r.route(int(fab.node_gid[0]), int(fab.node_gid[7]), rail)  # different units
        rails = {fab.graph.edges[int(fab.link_src[lk]), int(fab.link_dst[lk])]["rail"] for lk in links}
        assert rails == {rail}


def test_dead_link_is_routed_around_and_no_path_is_empty() -> None:
    fab = fabric_of(**{"topology.spines": 2})
    alive = np.ones(fab.n_links, bool)
    r = Router(fab)
    a, b = int(fab.node_gid[0]), int(fab.node_gid[2])
    links, _ = r.route(a, b)
    spine_links = links[fab.kind[fab.link_dst[links]] == SPINE]
    alive[spine_links[0]] = False
    r.invalidate(alive)
    links2, fracs2 = r.route(a, b)
    assert spine_links[0] not in links2
    assert fracs2[fab.kind[fab.link_dst[links2]] == SPINE] == pytest.approx([1.0])
    alive[fab.host_up[0, 0]] = False
    r.invalidate(alive)
    assert len(r.route(a, b)[0]) == 0


def test_every_vertex_is_typed() -> None:
    fab = fabric_of()
    kinds = {d["kind"] for _, d in fab.graph.nodes(data=True)}
    assert kinds == {"node", "leaf", "spine", "storage", "gateway"}
    assert (fab.kind == NODE).sum() == fab.n_nodes
    for _, _, d in fab.graph.edges(data=True):
        assert d["capacity"] > 0 and d["kind"] in {"host", "fabric", "storage", "gateway"}


# --- three tiers ---------------------------------------------------------------------------------------------

# A three-tier rail-optimized site small enough to count by hand: 4 units of 2 servers (2 NICs, so 2 rails),
# pods of 2 units, 2 spines per pod and rail, 4 cores per rail in 2 groups of 2.
THREE_TIER = {
    "topology": {
        "kind": "rail-optimized",
        "racks": 4,
        "nodes_per_rack": 2,
        "nodes_per_unit": 2,
        "leaves_per_pod": 2,
        "spines": 2,
        "cores": 4,
        "leaf_radix": 8,
        "spine_radix": 8,
        "port_gbps": 100,
    },
    "node.nics": 2,
}


def three_tier(**changes: object):
    return fabric_of(**{**THREE_TIER, **changes})


def test_three_tier_switches_and_names() -> None:
    fab = three_tier()
    assert fab.tiers == 3 and fab.rails == 2 and fab.n_nodes == 8
    assert ((fab.kind == LEAF).sum(), (fab.kind == SPINE).sum(), (fab.kind == CORE).sum()) == (8, 8, 8)
    names = set(fab.names)
    assert {"leaf-u00-r0", "spine-p00-r0-00", "spine-p01-r1-01", "core-r0-000", "core-r1-003"} <= names
    assert fab.node_domain.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # a unit each
    assert fab.node_pod.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # pods of two units


def test_three_tier_cables_by_hand() -> None:
    fab = three_tier()
    g = fab.graph
    kinds = {v: fab.kind[v] for v in g.nodes}
    leaf_spine = [(u, v) for u, v, d in g.edges(data=True) if {kinds[u], kinds[v]} == {LEAF, SPINE}]
    spine_core = [(u, v) for u, v, d in g.edges(data=True) if {kinds[u], kinds[v]} == {SPINE, CORE}]
    # A leaf has 2 uplinks at 1:1 (2 servers down), one to each spine of its pod and rail; a spine has those
    # 2 leaves' cables down and 2 up, one to each core of its group.
    assert len(leaf_spine) == 16 and len(spine_core) == 16
    for u, v in leaf_spine + spine_core:
        assert g.nodes[u]["rail"] == g.nodes[v]["rail"]  # each rail is a plane of its own
    for u, v in leaf_spine:
        leaf, spine = (u, v) if kinds[u] == LEAF else (v, u)
        assert g.nodes[leaf]["pod"] == g.nodes[spine]["pod"]
    for v in np.flatnonzero(fab.kind == SPINE):
        cores = sorted(g.nodes[c]["index"] for c in g.neighbors(v) if kinds[c] == CORE)
        s = g.nodes[v]["index"]
        assert cores == [2 * s, 2 * s + 1]  # core group s
    for v in np.flatnonzero(fab.kind == CORE):
        pods = sorted(g.nodes[s]["pod"] for s in g.neighbors(v) if kinds[s] == SPINE)
        assert pods == [0, 1]  # a core joins every pod


def test_three_tier_every_server_reaches_every_other_on_every_rail() -> None:
    fab = three_tier()
    r = Router(fab)
    for a in range(fab.n_nodes):
        for b in range(fab.n_nodes):
            if a == b:
                continue
            for rail in range(fab.rails):
                src, dst = int(fab.node_gid[a]), int(fab.node_gid[b])
                links, fracs = r.route(src, dst, rail)
                assert len(links), (a, b, rail)
                assert fracs[fab.link_src[links] == src].sum() == pytest.approx(1.0)
                assert fracs[fab.link_dst[links] == dst].sum() == pytest.approx(1.0)
                for sw in set(fab.link_src[links].tolist()) - {src}:  # flow is conserved at every switch
                    assert fracs[fab.link_dst[links] == sw].sum() == pytest.approx(
                        fracs[fab.link_src[links] == sw].sum()
                    )
                rails = {fab.graph.edges[int(fab.link_src[k]), int(fab.link_dst[k])]["rail"] for k in links}
                assert rails == {rail}


def test_three_tier_ecmp_spreads_over_spines_and_cores() -> None:
    fab = three_tier()
    links, fracs = Router(fab).route(int(fab.node_gid[0]), int(fab.node_gid[7]), 1)  # pod 0 to pod 1
    into = fab.kind[fab.link_dst[links]]
    out_of = fab.kind[fab.link_src[links]]
    # Up: 1/2 to each spine of the pod, 1/4 to each of the 4 cores; down: 1/4 from each core, 1/2 per spine.
    assert sorted(fracs[(out_of == LEAF) & (into == SPINE)]) == pytest.approx([0.5, 0.5])
    assert sorted(fracs[into == CORE]) == pytest.approx([0.25] * 4)
    assert sorted(fracs[out_of == CORE]) == pytest.approx([0.25] * 4)
    assert sorted(fracs[(out_of == SPINE) & (into == LEAF)]) == pytest.approx([0.5, 0.5])
    # Inside a pod, traffic turns at the spines and never reaches a core.
    links, _ = Router(fab).route(int(fab.node_gid[0]), int(fab.node_gid[3]), 0)
    assert not (fab.kind[fab.link_dst[links]] == CORE).any()


def test_three_tier_oversubscribed_spines_have_fewer_uplinks() -> None:
    # At 2:1 a spine has 1 uplink, so a core group is 1 core: spine s of every pod goes to core s.
    topo = {**THREE_TIER["topology"], "spine_oversubscription": 2.0, "cores": 2}
    fab = three_tier(topology=topo)
    g = fab.graph
    for v in np.flatnonzero(fab.kind == SPINE):
        cores = [g.nodes[c]["index"] for c in g.neighbors(v) if fab.kind[c] == CORE]
        assert cores == [g.nodes[v]["index"]]
    links, fracs = Router(fab).route(int(fab.node_gid[0]), int(fab.node_gid[7]), 0)
    assert sorted(fracs[fab.kind[fab.link_dst[links]] == CORE]) == pytest.approx([0.5, 0.5])


def test_three_tier_leaf_spine_groups_racks_into_pods() -> None:
    topo = {"kind": "leaf-spine", "racks": 4, "nodes_per_rack": 2, "leaves_per_pod": 2, "spines": 2, "cores": 2}
    fab = fabric_of(**{"topology": {**topo, "leaf_radix": 8, "spine_radix": 8, "port_gbps": 100}})
    assert ((fab.kind == LEAF).sum(), (fab.kind == SPINE).sum(), (fab.kind == CORE).sum()) == (4, 4, 2)
    assert "spine-p01-01" in fab.names and "core-001" in fab.names
    links, fracs = Router(fab).route(int(fab.node_gid[0]), int(fab.node_gid[7]))
    assert sorted(fracs[fab.kind[fab.link_dst[links]] == CORE]) == pytest.approx([0.5, 0.5])


def test_two_tier_sites_are_built_as_before() -> None:
    """A site without cores keeps its names and its flat spines (the default is two tiers)."""
    topo = {k: v for k, v in THREE_TIER["topology"].items() if k not in ("cores", "leaves_per_pod")}
    fab = three_tier(topology=topo)
    assert fab.tiers == 2 and not (fab.kind == CORE).any()
    assert "spine-r1-01" in fab.names and "leaf-u03-r1" in fab.names
    assert fab.node_pod.tolist() == [0] * 8
