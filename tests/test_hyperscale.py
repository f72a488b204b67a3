"""The 100,000-GPU site: its three tiers counted, routed and drawn. The site is built once for the module
(an idle copy of ``scenarios/hyperscale-100k.toml``, so nothing runs that the tests do not start)."""

from __future__ import annotations

import tomllib

import numpy as np
import pygame
import pytest

from conftest import ROOT
from helpers import job
from twin.cli import main
from twin.render import style
from twin.render.app import Frame
from twin.render.camera import Camera
from twin.render.scene import CHASSIS
from twin.routing import Router
from twin.scenario import scenario_from_dict, site_size
from twin.simulation import Simulation
from twin.site import describe
from twin.topology import CORE, HOST, LEAF, NODE, SPINE

PATH = ROOT / "scenarios" / "hyperscale-100k.toml"
TIER_KIND = {"leaf": LEAF, "spine": SPINE, "core": CORE}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    data = tomllib.loads(PATH.read_text())
    data["workload"].update(arrival="none", initial_load=0.0)
    return Simulation(scenario_from_dict(data, source=str(PATH)))


def test_validate_describes_the_site_without_building_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(PATH)]) == 0
    out = capsys.readouterr().out
    assert "12,544 nodes, 100,352 x H100" in out and "8,320 switches" in out
    assert "301,056 cables (100,352 server-to-leaf, 100,352 leaf-to-spine, 100,352 spine-to-core)" in out
    assert "leaf    3,136 x 64 ports: 200,704 of 200,704 used (busiest switch 64)" in out
    assert "spine   3,136 x 64 ports: 200,704 of 200,704 used (busiest switch 64)" in out
    # A core: a cable from each of the 49 pods, the gateway's on the first of each group, storage ports.
    assert "core    2,048 x 64 ports: 102,464 of 131,072 used (busiest switch 51)" in out
    assert "bisection bandwidth 20,070.4 Tb/s, oversubscription 1:1" in out


def test_the_built_site_is_the_described_one_and_no_switch_is_over_its_radix(sim: Simulation) -> None:
    scenario, fab = sim.scenario, sim.fabric
    d = describe(scenario)
    ports = np.zeros(len(fab.kind), np.int64)
    for u, v, e in fab.graph.edges(data=True):
        ports[[u, v]] += e["ports"]
    for tier in d.tiers:
        mine = ports[fab.kind == TIER_KIND[tier.name]]
        assert (tier.switches, tier.ports_used, tier.busiest) == (len(mine), mine.sum(), mine.max()), tier.name
        assert mine.max() <= tier.radix == 64
    size = site_size(scenario)
    assert (size.servers, size.gpus, size.switches, size.cables) == (12_544, 100_352, 8_320, fab.n_edges)
    assert fab.switch_gids.size == 8_320 and fab.n_gpus == 100_352
    assert len(np.unique(fab.node_pod)) == 49 and len(np.unique(fab.node_domain)) == 392


def test_servers_reach_each_other_on_every_rail_and_ecmp_fractions_add_up(sim: Simulation) -> None:
    fab = sim.fabric
    router = Router(fab)
    rng = np.random.default_rng(13)
    for a, b in rng.integers(0, fab.n_nodes, size=(12, 2)).tolist():
        for rail in range(fab.rails):
            src, dst = int(fab.node_gid[a]), int(fab.node_gid[b])
            if src == dst:
                continue
            links, fracs = router.route(src, dst, rail)
            assert fracs[fab.link_src[links] == src].sum() == pytest.approx(1.0)
            assert fracs[fab.link_dst[links] == dst].sum() == pytest.approx(1.0)
            for sw in np.unique(fab.link_src[links][fab.kind[fab.link_src[links]] != NODE]).tolist():
                assert fracs[fab.link_dst[links] == sw].sum() == pytest.approx(fracs[fab.link_src[links] == sw].sum())
    # Across pods, a flow spreads over the 8 spines of its pod and rail and the 256 cores of its rail.
    a, b = 0, fab.n_nodes - 1
    assert fab.node_pod[a] != fab.node_pod[b]
    links, fracs = router.route(int(fab.node_gid[a]), int(fab.node_gid[b]), 3)
    into_core = fab.kind[fab.link_dst[links]] == CORE
    assert into_core.sum() == 256 and fracs[into_core] == pytest.approx(np.full(256, 1 / 256))
    assert {fab.graph.nodes[int(v)]["rail"] for v in fab.link_dst[links[into_core]]} == {3}


def test_storage_and_the_gateway_reach_every_rail(sim: Simulation) -> None:
    fab = sim.fabric
    router = Router(fab)
    node = int(fab.node_gid[fab.n_nodes // 2])
    for rail in range(fab.rails):
        for src in (int(fab.storage_gid[rail]), fab.gateway_gid):
            links, fracs = router.route(src, node, rail)
            assert fracs[fab.link_dst[links] == node].sum() == pytest.approx(1.0)
            assert fracs[fab.link_src[links] == src].sum() == pytest.approx(1.0)
    # An array's ports are spread over every rail and every core group: its reads cross every spine of a pod.
    links, _ = router.route(int(fab.storage_gid[0]), node, 0)
    spines = fab.link_src[links][fab.kind[fab.link_src[links]] == SPINE]
    assert len(np.unique(spines)) == 8


@pytest.fixture(scope="module")
def frame(sim: Simulation) -> Frame:
    pygame.display.init()
    pygame.display.set_mode((1920, 1080))
    sim.submit(job(1, 2048, 3600.0, kind="pretrain", params_b=70.0))
    sim.advance(60.0)
    frame = Frame(sim, (1920, 1080))
    frame.refresh(0.0, force=True)
    return frame


def test_the_hall_groups_units_into_pods_under_the_cores(frame: Frame) -> None:
    lay, fab = frame.site.layout, frame.source.fabric

    def inside(inner: np.ndarray, outer: np.ndarray) -> bool:
        return bool(
            (inner[:, 0] >= outer[:, 0]).all()
            and (inner[:, 1] >= outer[:, 1]).all()
            and (inner[:, 0] + inner[:, 2] <= outer[:, 0] + outer[:, 2]).all()
            and (inner[:, 1] + inner[:, 3] <= outer[:, 1] + outer[:, 3]).all()
        )

    assert len(lay.pods) == 49 and len(lay.blocks) == 392 and lay.pod_labels[-1] == "pod 49"
    assert inside(lay.rect[fab.node_gid], lay.blocks[fab.node_domain])
    block_pod = np.zeros(len(lay.blocks), int)
    block_pod[fab.node_domain] = fab.node_pod
    assert inside(lay.blocks, lay.pods[block_pod])
    spines = np.flatnonzero(fab.kind == SPINE)
    pods = np.array([fab.graph.nodes[int(v)]["pod"] for v in spines])
    assert inside(lay.rect[spines], lay.pods[pods])
    assert (lay.rect[fab.kind == CORE, 1] + lay.rect[fab.kind == CORE, 3] < lay.pods[:, 1].min()).all()
    assert [t for t, _, _ in lay.tier_labels] == [f"rail {r} cores" for r in range(1, 9)]
    # The site is a few thousand cable trays; the 100,352 host links are drawn zoomed in.
    seg = lay.segments
    assert (~seg.detail).sum() < 3_000 and (seg.kind[seg.detail] == HOST).all() and seg.detail.sum() == 100_352


def test_bundled_sums_are_the_sums_over_each_segments_links(frame: Frame) -> None:
    seg, fab = frame.site.layout.segments, frame.source.fabric
    values = np.random.default_rng(5).random(fab.n_links)
    sums = seg.bundles.sums(values)
    n = len(seg)
    for d, (ptr, members) in enumerate(((seg.fwd_ptr, seg.fwd), (seg.rev_ptr, seg.rev))):
        want = np.add.reduceat(values[members], ptr[:-1]) * (np.diff(ptr) > 0)
        np.testing.assert_allclose(sums[d * n : (d + 1) * n], want, rtol=1e-9, atol=1e-6)


def test_drawn_legibly_from_the_site_down_to_one_gpu(frame: Frame) -> None:
    site, fab = frame.site, frame.source.fabric
    surface = pygame.Surface((1920, 1080)).convert()
    frame.draw(surface, 0.0)  # the whole site: trays only, no host link is drawn or moved
    active = site._active_segments()
    assert 0 < len(active) < 3_000 and not site.layout.segments.detail[active].any()
    # Down to a server of the job: a dark chassis in the job's colour, and its 8 GPUs lit in it.
    n = int(np.flatnonzero(frame.snap.node_job == 1)[0])
    x, y, w, h = site.layout.rect[fab.node_gid[n]]
    site.set_camera(Camera.fit((x - 0.2, y - 0.2, x + w + 0.2, y + h + 0.2), site.camera.viewport))
    for i in range(3):
        frame.draw(surface, 1.0 + i / 60)
    sx, sy = site.camera.to_screen(np.array([[x, y]]))[0]
    gpu_w = w * site.camera.zoom / 8
    job_rgb = style.job_colors(np.array([1]))[0].astype(int)
    for g in range(8):  # the middle of each GPU has the job's colour; the edge of the server is darker
        px = np.array(surface.get_at((int(sx + (g + 0.5) * gpu_w), int(sy + h * site.camera.zoom / 2))))[:3]
        assert np.abs(px.astype(int) - job_rgb).max() <= 2, g
    edge = np.array(surface.get_at((int(sx + 1), int(sy + h * site.camera.zoom / 2))))[:3].astype(int)
    want = style.node_colors(frame.snap.node_job[n : n + 1], frame.snap.node_util[n : n + 1])[0] * CHASSIS
    assert np.abs(edge - want.astype(int)).max() <= 2 and edge.sum() < job_rgb.sum()
    assert site.layout.segments.detail[site._active_segments()].any()  # zoomed in: its host links are there


def test_routes_of_many_flows_at_once_are_each_flow_s_route(sim: Simulation) -> None:
    """``Router.routes`` (a job's flows routed in one call) gives exactly the entries of routing each flow
    alone and numbering them (``route_entries``), a flow without a path pinned to the dead link."""
    from twin.flows import route_entries

    fab = sim.fabric
    rng = np.random.default_rng(5)
    nodes = rng.integers(0, fab.n_nodes, 40)
    src = np.r_[fab.node_gid[nodes[:20]], np.full(10, fab.storage_gid[1]), fab.node_gid[nodes[30:]]]
    dst = np.r_[fab.node_gid[nodes[20:40]], fab.node_gid[nodes[:10]], np.full(10, fab.gateway_gid)]
    rail = rng.integers(0, fab.rails, len(src))
    alive = np.ones(fab.n_links, bool)
    alive[fab.host_up[nodes[0]]] = False  # the first server is cut off on every rail: no path
    router, alone = Router(fab, alive), Router(fab, alive)
    got = router.routes(src, dst, rail, fab.dead_link)
    want = route_entries(
        [alone.route(int(a), int(b), int(r)) for a, b, r in zip(src, dst, rail, strict=True)],
        np.arange(len(src)),
        fab.dead_link,
    )
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert (got[1][got[0] == 0] == fab.dead_link).all()
    assert [len(a) for a in router.routes(src[:0], dst[:0], rail[:0])] == [0, 0, 0]
    # Through a storage array's limit (a virtual link after the route, as reads and writes go), or not pinned.
    limit = int(fab.storage_read[1])
    got = router.routes(src, dst, rail, fab.dead_link, via=limit)
    through = [alone.route(int(a), int(b), int(r)) for a, b, r in zip(src, dst, rail, strict=True)]
    through = [(np.append(lk, limit), np.append(fr, 1.0)) if len(lk) else (lk, fr) for lk, fr in through]
    want = route_entries(through, np.arange(len(src)), fab.dead_link)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    flow = router.routes(src, dst, rail)[0]
    assert 0 not in flow and len(np.unique(flow)) == len(src) - 1  # the cut-off server's flow has no entries
