"""3D parallelism and the cost of a training step, worked out by hand for a 100B-parameter model on
4,096 A100-80GB GPUs (8 per server, one 200 Gb/s HDR NIC per GPU), and checked against the rule."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from conftest import site
from helpers import job, pinned
from twin.parallel import Layout, hidden_size, layout_for, step_plan
from twin.routing import Router
from twin.scenario import scenario_from_dict
from twin.simulation import Simulation
from twin.topology import LEAF, SPINE
from twin.traffic import _between, work_flows
from twin.workload import JobSpec

P = 100e9
GPUS = 4096
A100_PEAK_TFLOPS = 312
HDR_BYTES_S = 200e9 / 8  # 25 GB/s
TOKENS = 1024 * GPUS  # a global batch of about 4M tokens


def test_the_layout_of_a_100b_model_on_4096_a100s() -> None:
    # 100e9 x 16 B = 1.6 TB of training state; 75% of 80 GB = 60 GB per GPU holds it: 26.7 -> 27 GPUs.
    # TP = 8 (a whole server), PP = ceil(27 / 8) = 4 servers per replica, DP = 4096 / 32 = 128 replicas.
    assert layout_for(P, GPUS, 8, 80) == Layout(tp=8, pp=4, dp=128)


def test_small_models_need_no_model_parallelism_and_tiny_jobs_do_their_best() -> None:
    assert layout_for(1e9, 64, 8, 80) == Layout(1, 1, 64)  # 16 GB of state fits on one GPU
    assert layout_for(7e9, 64, 8, 80) == Layout(2, 1, 32)  # 112 GB: two GPUs
    assert layout_for(7e9, 64, 8, 40) == Layout(4, 1, 16)  # half the memory: four
    assert layout_for(P, 16, 8, 80) == Layout(8, 2, 1), "on 16 GPUs it can only split as far as it has GPUs"


def test_bytes_and_time_of_one_step() -> None:
    plan = step_plan(P, Layout(8, 4, 128), TOKENS, A100_PEAK_TFLOPS, mfu=0.45, nic_bytes_per_s=HDR_BYTES_S)
    # Each GPU holds P / 32 parameters; their fp16 gradients are 6.25 GB; a ring of 128 sends 2 x 127/128 of it.
    assert plan.dp_bytes == pytest.approx(2 * 127 / 128 * 2 * P / 32) == pytest.approx(12.40234375e9)
    # Activations: 32,768 tokens per replica x hidden 10,217 x 2 bytes, forward and backward, split over TP 8.
    h = (P * 128 / 12) ** (1 / 3)
    assert hidden_size(P) == pytest.approx(h) and 10_200 < h < 10_230
    assert plan.pp_bytes == pytest.approx(2 * 32_768 * h * 2 / 8)
    # 6 x 100e9 x 4,194,304 FLOPs over 4,096 x 312 TFLOPS x 45%: 4.376 s of compute.
    assert plan.compute_s == pytest.approx(6 * P * TOKENS / (GPUS * 312e12 * 0.45)) == pytest.approx(4.3761, abs=1e-3)
    # Exposed communication at 25 GB/s: (12.40 + 0.17) GB -> 0.503 s; the step takes 4.879 s alone.
    assert plan.comm_s == pytest.approx((plan.dp_bytes + plan.pp_bytes) / 25e9) == pytest.approx(0.5028, abs=1e-3)
    assert plan.step_s == pytest.approx(4.879, abs=2e-3)
    assert plan.compute_share() == pytest.approx(4.3761 / 4.879, abs=1e-3)


def test_overlap_hides_communication_and_one_replica_sends_no_gradients() -> None:
    alone = step_plan(P, Layout(8, 4, 128), TOKENS, 312, 0.45, HDR_BYTES_S)
    half = step_plan(P, Layout(8, 4, 128), TOKENS, 312, 0.45, HDR_BYTES_S, overlap=0.5)
    assert half.comm_s == pytest.approx(alone.comm_s / 2) and half.compute_s == alone.compute_s
    single = step_plan(P, Layout(8, 4, 1), TOKENS / 128, 312, 0.45, HDR_BYTES_S)
    assert single.dp_bytes == 0 and single.pp_bytes > 0


def hall(racks: int, oversubscription: float) -> dict:
    """A leaf-spine hall of A100-80GB servers (8 GPUs, 8 x 200 Gb/s HDR NICs), two servers a rack, one
    spine; each leaf has 16 ports down and 16 / ``oversubscription`` of 200 Gb/s up."""
    return site(
        **{
            "topology.racks": racks,
            "topology.spines": 1,
            "topology.oversubscription": oversubscription,
            "topology.leaf_radix": 40,
            "topology.spine_radix": 8192,
            "topology.port_gbps": 200,
            "node.nics": 8,
            "node.nic_gbps": 200,
            "gpu": {"model": "A100-SXM4-80GB", "peak_tflops": 312, "idle_watts": 60, "max_watts": 400, "memory_gb": 80},
        }
    )


def the_100b_job(id: int) -> JobSpec:
    return job(id, gpus=GPUS, duration=3600, kind="pretrain", params_b=100, tokens_per_gpu=1024)


def test_the_simulation_runs_a_100b_job_as_worked_out_by_hand() -> None:
    # Alone on 256 racks (512 servers, 4,096 GPUs) without oversubscription: nothing slows it.
    sim = Simulation(scenario_from_dict(hall(256, 1.0)))
    sim.submit(the_100b_job(0))
    sim.run(10.0)
    job0 = sim.running[0]
    assert job0.plan is not None and job0.plan.layout == Layout(tp=8, pp=4, dp=128)
    dp, pp = 12.40234375e9, 2 * 32_768 * hidden_size(P) * 2 / 8  # bytes per GPU per step, as above
    step = 6 * P * TOKENS / (GPUS * 312e12 * 0.45) + (dp + pp) / 25e9
    (view,) = sim.snapshot().jobs
    assert view.step_s == pytest.approx(step) == pytest.approx(4.879, abs=2e-3)
    assert job0.util == pytest.approx(4.3761 / 4.879, abs=1e-3)
    # Each server's link to its leaf carries its 8 GPUs' rails: stage 0 sends its ring share and
    # activations forward; a middle stage also sends gradients back; in bytes per step at this step time.
    nodes = job0.nodes
    load = sim.snapshot().link_load
    up = sim.fabric.host_up[:, 0]
    assert load[up[nodes[0]]] * step == pytest.approx(8 * (dp + pp / 2))
    assert load[up[nodes[200]]] * step == pytest.approx(8 * (dp + pp))
    sim.run(4000)
    assert sim.totals.jcts == [pytest.approx(3600)]


def test_two_100b_jobs_through_oversubscribed_leaves_slow_each_other_by_hand() -> None:
    # 512 racks; job 0 on the first server of every rack, job 1 on the second. Every ring hop and every
    # activation send leaves the rack, and the rack's single 200 Gb/s uplink (16:1) carries both jobs'
    # traffic. Worst are racks of middle stages: 2 jobs x 8 GPUs x (dp + pp) bytes per step.
    sim = Simulation(scenario_from_dict(hall(512, 16.0)))
    sim.policy = pinned([list(range(0, 1024, 2)), list(range(1, 1024, 2))])
    sim.submit(the_100b_job(0))
    sim.submit(the_100b_job(1))
    sim.run(10.0)
    dp, pp = 12.40234375e9, 2 * 32_768 * hidden_size(P) * 2 / 8
    step = 6 * P * TOKENS / (GPUS * 312e12 * 0.45) + (dp + pp) / 25e9
    speed = 25e9 / (2 * 8 * (dp + pp) / step)  # 25 GB/s shared by 41.2 GB/s of average demand
    assert speed == pytest.approx(0.6065, abs=1e-4)
    for view in sim.snapshot().jobs:
        assert view.speed == pytest.approx(speed)
        assert view.step_s == pytest.approx(step / speed) == pytest.approx(8.045, abs=2e-3)
    sim.check_invariants()
    sim.run(10_000)
    assert sim.totals.jcts == [pytest.approx(3600 / speed)] * 2
    assert sim.totals.step_slowdown == pytest.approx(1 / speed)


def test_sends_sharing_two_leaves_are_one_flow_that_loads_links_as_the_sends_would() -> None:
    # 100B on 128 GPUs of the hall: TP 8, PP 4, DP 4; a stage is 4 servers (two racks), and both servers
    # of a rack send their activations to the two servers of one rack of the next stage.
    sim = Simulation(scenario_from_dict(hall(8, 1.0)))
    fab, router = sim.fabric, sim.router
    spec = job(0, gpus=128, duration=3600, kind="pretrain", params_b=100, tokens_per_gpu=1024)
    gpus = np.arange(128)
    nodes = np.arange(16)
    plan = sim._plan(spec, 0.45)
    assert plan is not None and plan.layout == Layout(8, 4, 4)
    group = work_flows(spec, gpus, nodes, fab, router, plan)
    assert group is not None
    # Each send on its own: the ring within each stage and the activations between stages, both ways.
    per_nic = 8 / plan.step_s
    expected = np.zeros(fab.n_links)
    stages = np.array_split(nodes, 4)
    sends = [(a, b, plan.dp_bytes * per_nic) for st in stages for a, b in zip(st, np.roll(st, -1), strict=True)]
    for s1, s2 in pairwise(stages):
        for a, b in zip(s1, s2, strict=True):
            sends += [(a, b, plan.pp_bytes / 2 * per_nic), (b, a, plan.pp_bytes / 2 * per_nic)]
    for a, b, demand in sends:
        links, fracs = router.route(int(fab.node_gid[a]), int(fab.node_gid[b]), 0)
        np.add.at(expected, links, fracs * demand)
    got = np.zeros(fab.n_links)
    got[group.links] = group.load
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-3)
    assert len(group.demand) < len(sends), "activations between the same two racks share a flow"


def between_one_way_at_a_time(a, b, fab, router, first):
    """The reference for ``_between``: the flows sharing two leaves on a rail routed one at a time."""
    from twin.flows import merge_entries

    rails = fab.rails
    src, dst = np.repeat(a, rails), np.repeat(b, rails)
    rail = np.tile(np.arange(rails), len(a))
    up, down = fab.host_up[src, rail], fab.host_down[dst, rail]
    near = np.flatnonzero(fab.link_dst[up] == fab.link_src[down])
    k = len(near)
    parts = [(first + np.repeat(np.arange(k), 2), np.column_stack([up[near], down[near]]).ravel(), np.ones(2 * k))]
    far = np.flatnonzero(fab.link_dst[up] != fab.link_src[down])
    pair = (fab.link_dst[up[far]].astype(np.int64) * len(fab.kind) + fab.link_src[down[far]]) * rails + rail[far]
    _, group, counts = np.unique(pair, return_inverse=True, return_counts=True)
    members = far[np.argsort(group, kind="stable")]
    starts = np.concatenate(([0], np.cumsum(counts)))
    for g in range(len(counts)):
        these = members[starts[g] : starts[g + 1]]
        one = these[0]
        links, fracs = router.route(int(fab.node_gid[src[one]]), int(fab.node_gid[dst[one]]), int(rail[one]))
        flow = first + k + g
        if not len(links):
            parts.append((np.array([flow]), np.array([fab.dead_link]), np.ones(1)))
            continue
        inner = (links != up[one]) & (links != down[one])
        share = np.full(len(these), 1.0 / len(these))
        ls = np.concatenate([up[these], links[inner], down[these]])
        parts.append((np.full(len(ls), flow), ls, np.concatenate([share, fracs[inner], share])))
    heads = members[starts[:-1]]
    chosen = np.concatenate([near, heads])
    weight = np.concatenate([np.ones(k), counts]).astype(np.float64)
    return fab.node_gid[src[chosen]], fab.node_gid[dst[chosen]], weight, merge_entries(*parts)


@pytest.mark.parametrize("cut", [False, True])
def test_sends_between_leaves_are_the_flows_routed_one_way_at_a_time(cut: bool) -> None:
    # Pipeline sends of a 16-stage job over a hall of 64 racks, both ways, some within a leaf; with
    # ``cut`` the spine's links to half the leaves are down, so those flows have no path.
    sim = Simulation(scenario_from_dict(hall(64, 1.0)))
    fab = sim.fabric
    alive = np.ones(fab.n_links, bool)
    if cut:
        to_spine = np.flatnonzero((fab.kind[fab.link_src] == LEAF) & (fab.kind[fab.link_dst] == SPINE))
        alive[to_spine[: len(to_spine) // 2]] = False
    stages = np.array_split(np.arange(128), 16)
    a = np.concatenate([st[:8] for st in stages[:-1]] + [np.arange(0, 128, 2)])
    b = np.concatenate([st[:8] for st in stages[1:]] + [np.arange(1, 128, 2)])
    a, b = np.concatenate([a, b]), np.concatenate([b, a])
    mine = _between(a, b, fab, Router(fab, alive), 7)
    theirs = between_one_way_at_a_time(a, b, fab, Router(fab, alive), 7)
    for got, want in zip([*mine[:3], *mine[3]], [*theirs[:3], *theirs[3]], strict=True):
        np.testing.assert_array_equal(got, want)  # the same values in the same order (a dead link's id as int32)
    assert (mine[3][1] == fab.dead_link).any() == cut


def test_sends_between_the_same_servers_are_remembered_until_the_router_routes_again() -> None:
    """``_between`` keeps its flows per router and servers: a second job on the same servers gets the same
    values, numbered from its own first flow, in arrays no one can write; once the router routes again
    (a spine cut), the flows are those of a router that never saw the old routes."""
    sim = Simulation(scenario_from_dict(hall(64, 1.0)))
    fab, router = sim.fabric, Router(sim.fabric)
    a, b = np.arange(0, 64, 2), np.arange(33, 97, 2)  # racks apart: through the spine

    def values(made):
        return [*made[:3], *made[3]]

    first = _between(a, b, fab, router, 7)
    again = _between(a.copy(), b.copy(), fab, router, 30)
    for got, want in zip(values(again), values(between_one_way_at_a_time(a, b, fab, Router(fab), 30)), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(again[3][0], first[3][0] + 23)
    assert again[0] is first[0] and again[3][1] is first[3][1]  # remembered, not worked out again
    assert not any(array.flags.writeable for array in [*values(again)[:3], *values(again)[4:]])
    alive = np.ones(fab.n_links, bool)
    to_spine = np.flatnonzero((fab.kind[fab.link_src] == LEAF) & (fab.kind[fab.link_dst] == SPINE))
    alive[to_spine[: len(to_spine) // 2]] = False
    router.invalidate(alive)
    cut = _between(a, b, fab, router, 7)
    for got, want in zip(values(cut), values(between_one_way_at_a_time(a, b, fab, Router(fab, alive), 7)), strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(cut[3][1], first[3][1])  # the cut changed the routes


@pytest.mark.parametrize(("entries", "sets"), [(600, 1000), (10**6, 5)])
def test_the_sends_remembered_stay_within_their_bounds(monkeypatch, entries: int, sets: int) -> None:
    """However many sets of servers jobs get, a router keeps at most ``ENTRIES`` route entries and
    ``SERVER_SETS`` sets of them (each bound tested alone), and what it hands out is still right."""
    from twin.traffic import _BETWEEN, _Kept

    monkeypatch.setattr(_Kept, "ENTRIES", entries)
    monkeypatch.setattr(_Kept, "SERVER_SETS", sets)
    sim = Simulation(scenario_from_dict(hall(64, 1.0)))
    fab, router = sim.fabric, Router(sim.fabric)
    rng = np.random.default_rng(5)
    for _ in range(40):
        servers = rng.choice(128, int(rng.integers(2, 24)), replace=False)
        a, b = servers, np.roll(servers, -1)
        got = _between(a, b, fab, router, 3)
        want = between_one_way_at_a_time(a, b, fab, Router(fab), 3)
        for x, y in zip([*got[:3], *got[3]], [*want[:3], *want[3]], strict=True):
            np.testing.assert_array_equal(x, y)
        kept = _BETWEEN[router]
        assert len(kept.sends) <= sets
        assert kept.entries == sum(len(made[3][1]) for made in kept.sends.values())
        assert kept.entries <= entries or len(kept.sends) == 1  # one set larger than the bound is still kept


@pytest.mark.parametrize("gpus", [1, 2, 3, 8, 16, 48, 64, 128, 4096])
@pytest.mark.parametrize("params_b", [0.1, 7, 70, 100, 175])
def test_every_gpu_of_a_job_has_a_place_in_its_layout(gpus: int, params_b: float) -> None:
    """TP x PP x DP is the job's GPU count: a layout that left GPUs out would count them as computing
    (a 100B model on 48 GPUs once got TP 8, PP 4, DP 1: 32 GPUs, and 1.5 times its real FLOPs)."""
    layout = layout_for(params_b * 1e9, gpus, 8, 80)
    assert layout.gpus == gpus
    if params_b * 1e9 * 16 <= 60e9 * gpus:  # the model fits on the job: PP holds it
        assert layout.tp * layout.pp * 60e9 >= params_b * 1e9 * 16
