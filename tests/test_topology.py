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
