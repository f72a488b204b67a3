"""Tests written to kill named mutants: each docstring says which faults it catches and why it would.

Each fault named in a docstring was applied to a copy of the repository (by hand, or by ``make mutants``)
and seen to fail the test, which passes on the original. The sites are the small hand-made ones of
``conftest.site``: two (or four) racks of 8-GPU servers on a leaf-spine, with no synthetic arrivals, so
only the jobs a test submits run and every answer can be worked out on paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import site
from helpers import job, pinned, ring_tokens
from twin.errors import ScenarioError
from twin.events import EventQueue
from twin.faults import FAULT_KINDS, KINDS, Component, FaultState, RandomFaultProcess, resolve
from twin.flows import CHECKPOINT, DATA, GRADIENT, INFERENCE, FlowGroup, FlowTable
from twin.jobs import CHECKPOINT_GPU_UTIL, Job
from twin.report import build_report
from twin.scenario import FaultEvent, RandomFaults, scenario_from_dict
from twin.scheduler import POLICIES, Allocation, Running, easy_backfill, place_first_fit, place_topology_aware
from twin.simulation import BLOCKED, Simulation
from twin.topology import GBIT, Fabric, build_fabric

GPN = 8  # GPUs per server on the test sites


def allocation(racks: int = 4, per_rack: int = 4) -> Allocation:
    """An empty allocation on ``racks`` leaf domains of ``per_rack`` servers (node n is in rack n // per_rack)."""
    data = site(**{"topology.racks": racks, "topology.nodes_per_rack": per_rack, "topology.leaf_radix": 32})
    data["workload"]["mix"][0]["gpus"] = [1, 1]  # a workload any site can run
    return Allocation(build_fabric(scenario_from_dict(data)))


def occupy(alloc: Allocation, used: dict[int, int]) -> None:
    """Give node n's first ``used[n]`` GPUs to a job of their own (ids 1000 + n)."""
    for n, count in used.items():
        alloc.assign(1000 + n, n * GPN + np.arange(count))


def quiet(**changes: Any) -> Simulation:
    """A simulation of the test site with no synthetic arrivals: only what the test submits runs."""
    return Simulation(scenario_from_dict(site(**changes)))


# --- (a) best fit, not first fit, for small jobs -----------------------------------------------------------


def test_topology_policy_puts_a_small_job_on_the_fullest_server_that_fits() -> None:
    """Kills: best-fit replaced by first-fit in ``place_topology_aware`` (the lexsort on free GPUs dropped,
    or ``fits[0]`` taken), and the ``topology`` policy wired to ``place_first_fit``.

    Node 0 has 6 free GPUs, node 1 has 3, the rest 8. A 2-GPU job belongs on node 1, where it strands
    nothing: first fit would split node 0 instead. A 4-GPU job does not fit node 1 and goes to node 0,
    the next fullest, not to an empty server.
    """
    alloc = allocation()
    occupy(alloc, {0: 2, 1: 5})
    place = POLICIES["topology"].place
    assert place(alloc, 2).tolist() == [1 * GPN + 5, 1 * GPN + 6]
    assert place(alloc, 4).tolist() == [2, 3, 4, 5]
    assert place_first_fit(alloc, 2).tolist() == [2, 3], "the baseline differs here, or this test proves nothing"


def test_among_equally_full_servers_the_busier_leaf_wins() -> None:
    """Kills: the leaf-domain tie-break of best fit dropped or reversed (``domain_empty`` key).

    Nodes 0 (rack 0) and 4 (rack 1) both have 4 free GPUs. Rack 1 also has node 5 fully busy, so it has
    fewer empty servers left; the job goes there, keeping rack 0's three empty servers whole.
    """
    alloc = allocation()
    occupy(alloc, {0: 4, 4: 4, 5: 8})
    assert place_topology_aware(alloc, 4).tolist() == [4 * GPN + 4, 4 * GPN + 5, 4 * GPN + 6, 4 * GPN + 7]


def test_a_multi_node_job_takes_the_smallest_leaf_that_holds_it_whole() -> None:
    """Kills: ``argmin`` -> ``argmax`` over whole domains, and first fit for multi-node jobs.

    Rack 0 is empty (4 servers), rack 1 has 2 empty servers (6, 7), racks 2 and 3 are full. A 2-server
    job fits whole under either leaf; best fit takes rack 1 and leaves rack 0 whole for a 4-server job.
    """
    alloc = allocation()
    occupy(alloc, {4: 8, 5: 8, **{n: 8 for n in range(8, 16)}})
    gpus = place_topology_aware(alloc, 16)
    assert np.unique(gpus // GPN).tolist() == [6, 7]
    assert np.unique(place_first_fit(alloc, 16) // GPN).tolist() == [0, 1]


def test_a_job_no_leaf_holds_spans_the_emptiest_leaves_first() -> None:
    """Kills: the largest-domains-first order of a spanning placement reversed (``-domain_empty`` sign).

    Empty servers: rack 0 has 1 (node 3), rack 1 has 3 (5, 6, 7), rack 2 has 2 (10, 11), rack 3 none. A
    4-server job fits under no single leaf; taking the emptiest leaves first spans two leaves (5, 6, 7,
    10), where smallest-first would span three.
    """
    alloc = allocation()
    occupy(alloc, {0: 8, 1: 8, 2: 8, 4: 8, 8: 8, 9: 8, 12: 8, 13: 8, 14: 8, 15: 8})
    gpus = place_topology_aware(alloc, 32)
    assert np.unique(gpus // GPN).tolist() == [5, 6, 7, 10]
    assert len(gpus) == 32


# --- (b) a serving job's GPUs follow its bandwidth ---------------------------------------------------------


def test_job_rates_per_phase() -> None:
    """Kills: any constant changed in ``Job.rates``: serving progress no longer 1 (a service's lifetime
    does not stretch), serving utilisation no longer the bandwidth share, training no longer slowed,
    a checkpoint no longer stopping progress."""
    spec = job(0, gpus=8, duration=100)
    j = Job.start(spec, 0.0, np.arange(8), GPN, warm=False)
    assert j.phase == "compute" and j.rates(0.4) == (0.4, 0.4)
    j.phase = "serving"
    assert j.rates(0.4) == (1.0, 0.4)
    j.phase = "evaluating"
    assert j.rates(0.4) == (0.4, 0.4)
    j.phase = "checkpoint"
    assert j.rates(0.4) == (0.0, CHECKPOINT_GPU_UTIL)


def test_serving_jobs_on_a_congested_gateway_run_their_gpus_at_their_bandwidth_share() -> None:
    """Kills: serving (inference) jobs no longer slowed by bandwidth (``Job.rates`` returning utilisation 1
    for ``serving``), and serving progress tied to the bandwidth (``return speed, speed``).

    One spine, so the gateway has a single 100 Gb/s (12.5 GB/s) cable. Two services on servers of
    different racks each exchange 8 x 1,000 MB/s = 8 GB/s with the gateway each way: 16 GB/s of demand
    on 12.5 GB/s, 6.25 GB/s each, a speed of 0.78125. Their GPUs work at that share (16 GPUs x 0.78125
    = 12.5 busy GPUs = 1.25 PFLOPS at 100 TFLOPS each), while each service still ends after its
    lifetime, 600 s.
    """
    sim = quiet(**{"topology.spines": 1, "topology.oversubscription": 2.0})
    sim.policy = pinned([[0], [2]])
    for i in range(2):
        sim.submit(job(i, gpus=8, duration=600, kind="inference", serve_mbs_per_gpu=1000))
    sim.advance(1)
    speed = 100 * GBIT / 16e9
    assert speed == pytest.approx(0.78125)
    for j in sim.running.values():
        assert j.phase == "serving"
        assert j.speed == pytest.approx(speed)
        assert j.util == pytest.approx(speed)
        assert j.rate == 1.0
    assert sim.pflops_in_use == pytest.approx(16 * speed * 100 / 1000)
    sim.check_invariants()
    sim.run(1000)
    assert sim.totals.jcts == [pytest.approx(600), pytest.approx(600)]
    assert sim.totals.busy_gpu_s == pytest.approx(16 * speed * 600)


def test_a_job_shows_its_progress_between_events() -> None:
    """Kills: mistakes in ``Job.progress_at`` (``rate * dt`` -> ``rate / dt`` and the like): progress is kept
    lazily, so between two events what the view shows is worked out from the rate. A lone 1,000 s job
    started at t = 100 and seen at 350 is a quarter done; two jobs at 2/3 speed over a shared spine, a
    sixth at t = 250."""
    sim = quiet()
    sim.submit(job(0, gpus=8, duration=1000, arrival=100))
    sim.run(350)
    (view,) = sim.snapshot().jobs
    assert view.progress == pytest.approx(0.25)
    sim = quiet(**{"topology.spines": 1, "topology.oversubscription": 2.0})
    sim.policy = pinned([[0, 2], [1, 3]])
    for i in range(2):
        sim.submit(job(i, gpus=16, duration=1000, tokens_per_gpu=ring_tokens(75 * GBIT)))
    sim.run(250)
    assert [v.progress for v in sim.snapshot().jobs] == [pytest.approx(250 * 2 / 3 / 1000)] * 2


# --- (c) GPUs of a cut-off server stay held out when its job leaves -----------------------------------------


def test_a_job_leaving_a_cut_off_server_does_not_hand_its_gpus_to_the_scheduler() -> None:
    """Kills: ``self._reblock()`` deleted from ``Simulation._leave``.

    leaf-000 dies at t = 10 for an hour, cutting off servers 0 and 1. A single-server job with no traffic
    on server 0 is not evicted (it needs no fabric) and finishes at t = 1000. Its GPUs must then be held
    out (BLOCKED), not offered: the queued 8-GPU job has nowhere else to go (servers 2 and 3 are busy)
    and must wait for the repair at t = 3610 instead of starting on a server with no network at 1000.
    """
    data = site(**{"simulation.step_s": 600})
    data["faults"] = {"event": [{"at": 10, "target": "leaf-000", "minutes": 60}]}
    sim = Simulation(scenario_from_dict(data))
    sim.policy = pinned([[0], [2], [3]])
    sim.submit(job(0, gpus=8, duration=1000))
    sim.submit(job(1, gpus=8, duration=20_000))
    sim.submit(job(2, gpus=8, duration=20_000))
    sim.run(1)
    sim.policy = POLICIES["backfill"]
    sim.submit(job(3, gpus=8, duration=100, arrival=20))
    sim.run(1001)
    assert sim.totals.completed == 1 and sim.totals.restarted == 0
    assert (sim.alloc.owner[[0, 1]] == BLOCKED).all(), "cut-off servers are out of service"
    assert [s.id for s in sim.queue] == [3]
    sim.check_invariants()
    sim.run(4000)
    starts = {e.job_id: e.time_s for e in sim.log if e.what == "start"}
    assert starts[3] == pytest.approx(10 + 3600)
    sim.check_invariants()


# --- EASY backfill's reservation -----------------------------------------------------------------------------


def test_backfill_spends_the_spare_servers_once_and_lets_a_job_end_exactly_at_the_shadow_time() -> None:
    """Kills: the spare-server count not decremented after a long job is backfilled onto it (``spare -=
    nodes_used`` dropped), and ``<=`` -> ``<`` in the ends-in-time test against the shadow time.

    Five servers; a 3-server job holds servers 0-2 until t = 100. The 4-server head can start at 100,
    when 5 servers are free: 1 spare. Long job A (limit 1000) takes that spare server; long job B may not
    take another (the head would find only 3 free at 100); C, whose limit ends exactly at 100, may.
    """
    alloc = allocation(racks=1, per_rack=5)
    occupy_job = np.arange(3 * GPN)
    alloc.assign(0, occupy_job)
    head, a, b, c = job(1, 32, 500), job(2, 8, 1000), job(3, 8, 1000), job(4, 8, 100)
    queue = [head, a, b, c]
    started = easy_backfill(queue, alloc, [Running(occupy_job, 100.0)], 0.0, place_first_fit, 10)
    assert [spec.id for spec, _ in started] == [2, 4]
    assert [spec.id for spec in queue] == [1, 3]


def test_a_one_server_head_is_reserved_for_when_enough_gpus_come_free_on_one_server() -> None:
    """Kills: a one-server head's reservation counted in whole servers (``multi or True`` in ``_reservation``:
    its shadow time too late, so later jobs delay it) or needing no GPUs (``need`` 0: too early, so a job
    that could not delay it is kept waiting).

    One 8-GPU server: a 2-GPU job until t = 50, a 4-GPU job until 200, 2 GPUs free. A 4-GPU head fits
    at 50, so a 2-GPU job with a 150 s limit must wait. A 6-GPU head fits only at 200, so the same job
    may start now.
    """
    for head_gpus, started in [(4, []), (6, [2])]:
        alloc = allocation(racks=1, per_rack=1)
        alloc.assign(10, np.arange(2))
        alloc.assign(11, np.arange(2, 6))
        running = [Running(np.arange(2), 50.0), Running(np.arange(2, 6), 200.0)]
        queue = [job(1, head_gpus, 100), job(2, 2, 150)]
        got = easy_backfill(queue, alloc, running, 0.0, place_first_fit, 10)
        assert [spec.id for spec, _ in got] == started, head_gpus


def test_a_job_no_leaf_holds_stays_in_the_smallest_pod_that_holds_it() -> None:
    """Kills: the pod step of ``place_topology_aware`` lost (no pod chosen, ``>=`` -> ``>``, the first pod
    taken instead of the smallest that fits): on a fat-tree a job that no edge switch holds should still
    stay under one pod's aggregation switches.

    k = 4 fat-tree: 4 pods of 2 edge switches of 2 servers. Pod 0 is empty, pod 1 has 3 empty servers
    (5, 6, 7), pods 2 and 3 are full. A 3-server job fits no edge switch; pod 1 is the smallest pod that
    holds it, and there it takes the emptier edge switch first (6, 7), then 5.
    """
    data = site(**{"topology.kind": "fat-tree", "topology.k": 4, "topology.spine_radix": 16})
    for key in ("racks", "nodes_per_rack", "spines", "oversubscription", "leaf_radix"):
        del data["topology"][key]
    alloc = Allocation(build_fabric(scenario_from_dict(data)))
    assert alloc.pod.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    occupy(alloc, {n: 8 for n in [4, *range(8, 16)]})
    gpus = place_topology_aware(alloc, 24)
    assert np.unique(gpus // GPN).tolist() == [5, 6, 7]


def test_jobs_started_in_the_same_round_count_for_the_heads_reservation() -> None:
    """Guards EASY backfill's promise when jobs arrive together (a burst, a replay, a round after a job ends).

    Two servers, all three jobs queued at t = 0: A (1 server, 1000 s) starts; B (both servers) must wait
    for A and is reserved for t = 1000; D (1 server, 5000 s) fits now but would hold a server until 5000,
    so it must not jump ahead. B starts at 1000 and D after it, at 1500.
    """
    sim = quiet(**{"topology.racks": 2, "topology.nodes_per_rack": 1})
    sim.submit(job(0, gpus=8, duration=1000))
    sim.submit(job(1, gpus=16, duration=500))
    sim.submit(job(2, gpus=8, duration=5000))
    sim.run(10_000)
    starts = {e.job_id: e.time_s for e in sim.log if e.what == "start"}
    assert starts == {0: 0.0, 1: pytest.approx(1000), 2: pytest.approx(1500)}


# --- the clock -----------------------------------------------------------------------------------------


def _noop(_: object) -> None:
    """An event handler that does nothing."""


def test_events_come_out_by_time_then_priority_then_submission() -> None:
    """Kills: the heap key of ``EventQueue`` reordered or its sequence number dropped (a tie at the same time
    and priority must come out in push order, so a run is the same whatever order the heap keeps)."""
    q = EventQueue()
    for i, (t, prio) in enumerate([(5.0, 1), (2.0, 3), (5.0, 0), (2.0, 3), (2.0, 1)]):
        q.push(t, prio, _noop, i)
    assert q.peek_time() == 2.0
    order = []
    while len(q):
        order.append(q.pop()[2])
    assert order == [4, 1, 3, 2, 0]
    assert q.peek_time() == float("inf")


def test_a_checkpoint_with_no_route_to_storage_stalls_until_the_route_is_back() -> None:
    """Kills: a flow with no route not pinned to the dead link (``Router.routes(..., fab.dead_link)`` ->
    ``None``) and a storage limit added to an empty route (``tail[routed] = via`` for every flow): a
    checkpoint that cannot reach its array must make no progress, not vanish or run on.

    One server writes a 10 B-parameter checkpoint (140 GB) at the array's 5 GB/s: 28 s from t = 300.
    Both spines (the array's only way in) die at 310 for ten minutes: 18 s are left, written after the
    repair at 910, so the checkpoint ends at 928 and the job (400 s of work) at 1028.
    """
    data = site()
    data["faults"] = {"event": [{"at": 310, "target": f"spine-0{i}", "minutes": 10} for i in range(2)]}
    sim = Simulation(scenario_from_dict(data))
    sim.submit(job(0, gpus=8, duration=400, params_b=10, checkpoint_s=300))
    sim.run(311)
    assert sim.running[0].phase == "checkpoint" and sim.running[0].speed == 0.0
    sim.check_invariants()
    sim.run(5000)
    times = {e.what: e.time_s for e in sim.log if e.job_id == 0}
    assert times["checkpoint"] == pytest.approx(300)
    assert times["checkpoint-done"] == pytest.approx(928)
    assert times["finish"] == pytest.approx(1028)


# --- faults --------------------------------------------------------------------------------------------------
# The base test site: node-0000..0003 (8 GPUs each), spine-00/01, leaf-000/001, the gateway and "store".


def fault_fabric() -> Fabric:
    return build_fabric(scenario_from_dict(site()))


def fault_event(target: str, gpu: int = -1, action: str = "fail") -> FaultEvent:
    return FaultEvent(10.0, target, action, 0.0, 0.0, gpu, "faults.event[0].target")


def test_random_faults_draw_each_kind_at_its_rate_and_repair_after_its_minutes() -> None:
    """Kills: repair minutes not turned into seconds (``* 60`` -> ``/ 60``), a failure rate not scaled by
    the number of components (rate = components / MTBF) or not in hours, kinds without an MTBF drawn (or
    one with a short MTBF, or a single array, left out), and a drawn component of the wrong kind.

    The site has 32 GPUs, 4 servers, 12 cables (4 server, 4 leaf-spine, 2 gateway, 2 storage), 4
    switches and 1 array. With a GPU MTBF of 100 h, some GPU fails every 100 / 32 h on average: each gap
    is exactly the exponential draw of that mean from the process's own generator.
    """
    fab = fault_fabric()
    spec = RandomFaults(gpu_mtbf_hours=100.0, link_mtbf_hours=0.5, storage_mtbf_hours=1000.0)
    proc = RandomFaultProcess(spec, fab, np.random.default_rng(5))
    assert proc.population == {"gpu": 32, "node": 4, "link": 12, "switch": 4, "storage": 1}
    assert proc.kinds() == ["gpu", "link", "storage"]
    assert [proc.repair_s(k) for k in KINDS] == [7200.0, 3600.0, 1800.0, 2700.0, 5400.0]
    same = np.random.default_rng(5)
    for kind, mean_s in [("gpu", 100 * 3600 / 32), ("link", 0.5 * 3600 / 12), ("storage", 1000 * 3600)]:
        assert proc.next_gap(kind) == pytest.approx(same.exponential(mean_s), rel=1e-12)
    gaps = np.array([proc.next_gap("gpu") for _ in range(4000)])
    assert gaps.mean() == pytest.approx(100 * 3600 / 32, rel=0.06)
    for _ in range(50):
        gpu = proc.draw("gpu")
        assert gpu.kind == "gpu" and 0 <= gpu.node < 4 and 0 <= gpu.gpu < 8
        assert gpu.name == f"node-{gpu.node:04d} GPU {gpu.gpu}" and gpu.gid == fab.node_gid[gpu.node]
        cable = proc.draw("link")
        a, b = cable.links
        assert fab.link_src[a] == fab.link_dst[b] and fab.link_dst[a] == fab.link_src[b]
        assert cable.name == f"{fab.names[fab.link_src[a]]}--{fab.names[fab.link_dst[a]]}"
    assert proc.draw("storage") == Component("storage", "store", fab.names.index("store"), storage=0)


def test_a_gpu_and_a_cable_are_named_and_found_as_the_scenario_names_them() -> None:
    """Kills: the GPU index split wrongly (``divmod``), GPU 0 of a server taken for the whole server (``gpu
    >= 0`` -> ``> 0``), a cable that takes down one direction only, and the parts of a cable's name not
    stripped. Scripted and random faults must agree on what a name means."""
    fab = fault_fabric()
    gpu = FAULT_KINDS["gpu"].draw(fab, 11)
    assert gpu == Component("gpu", "node-0001 GPU 3", int(fab.node_gid[1]), 1, 3)
    assert resolve(fab, fault_event("node-0001", gpu=3), "s.toml") == gpu
    first = resolve(fab, fault_event("node-0001", gpu=0), "s.toml")
    assert first == Component("gpu", "node-0001 GPU 0", int(fab.node_gid[1]), 1, 0), "GPU 0 is a GPU, not the server"
    leaf, spine = fab.names.index("leaf-000"), fab.names.index("spine-00")
    up = int(np.flatnonzero((fab.link_src == leaf) & (fab.link_dst == spine))[0])
    down = int(np.flatnonzero((fab.link_src == spine) & (fab.link_dst == leaf))[0])
    cable = FAULT_KINDS["link"].draw(fab, up)
    assert cable == Component("link", "leaf-000--spine-00", links=(up, down))
    scripted = resolve(fab, fault_event(" leaf-000 -- spine-00 "), "s.toml")
    assert scripted.kind == "link" and sorted(scripted.links) == sorted((up, down))
    state = FaultState(fab)
    state.change(cable, 0.0, +1)
    assert state.link_down[[up, down]].tolist() == [1, 1] and state.link_down.sum() == 2


@pytest.mark.parametrize(
    ("target", "gpu", "action", "expected"),
    [
        (
            "spine-09",
            -1,
            "fail",
            "expected a component of this site (node-0000, spine-00, spine-01, store, ...) or a "
            "cable a--b, got 'spine-09'",
        ),
        (
            "leaf-000--leaf-009",
            -1,
            "fail",
            "expected a cable between two components of this site, like leaf-000--spine-00, got 'leaf-000--leaf-009'",
        ),
        (
            "leaf-000--leaf-001",
            -1,
            "fail",
            "expected a cable that exists (those two are not connected), got 'leaf-000--leaf-001'",
        ),
        (
            "gateway",
            -1,
            "fail",
            "expected a server, switch, storage array or cable (the gateway cannot fail), got 'gateway'",
        ),
        ("spine-00", 1, "fail", "expected a server for a GPU fault, got 'spine-00'"),
        ("node-0000", 8, "fail", "expected a GPU index below 8, got 8"),
        ("leaf-000", -1, "degrade", "expected a storage array to degrade, got 'leaf-000'"),
    ],
)
def test_a_bad_fault_target_says_exactly_what_was_expected(target: str, gpu: int, action: str, expected: str) -> None:
    """Kills: the checks on a scripted fault's target loosened (``>=`` -> ``>`` on the GPU index lets GPU 8
    of an 8-GPU server through) and the words of the one line a user reads changed or dropped."""
    with pytest.raises(ScenarioError) as err:
        resolve(fault_fabric(), fault_event(target, gpu, action), "s.toml")
    assert str(err.value) == f"s.toml: faults.event[0].target: {expected}"


def test_overlapping_storage_faults_mend_one_at_a_time() -> None:
    """Kills: mistakes in ``FaultState._storage``: the array runs at its worst outstanding fault (degraded
    to half, then lost: nothing; the loss repaired: half again; the degradation repaired: all of it), and
    its read and write limits scale with it while the picture counts two faults, then none."""
    fab = fault_fabric()
    state = FaultState(fab)
    store = resolve(fab, fault_event("store", action="degrade"), "s.toml")
    read, write = int(fab.storage_read[0]), int(fab.storage_write[0])
    factors = []
    for factor, sign in [(0.5, +1), (0.0, +1), (0.0, -1), (0.5, -1)]:
        state.change(store, factor, sign)
        factors.append(float(state.storage_factor[0]))
        cap = state.capacities()
        assert cap[read] == pytest.approx(fab.link_cap[read] * factors[-1])
        assert cap[write] == pytest.approx(fab.link_cap[write] * factors[-1])
    assert factors == [0.5, 0.0, 0.5, 1.0]
    assert state.vertex_down[store.gid] == 0


def test_with_two_arrays_a_fault_hits_only_the_one_named() -> None:
    """Kills: a storage component that does not carry its array's index (``storage=...`` dropped: -1 is the
    last array, which on a one-array site is the same one), and the arrays' faults kept in one list.
    Degrading the first of two arrays halves its read and write limits and leaves the second's whole;
    losing and mending the second leaves the first degraded."""
    data = site()
    data["storage"] = [
        {"name": "pfs-a", "capacity_pb": 1, "read_gbs": 10, "write_gbs": 5, "ports": 2},
        {"name": "pfs-b", "capacity_pb": 1, "read_gbs": 20, "write_gbs": 8, "ports": 2},
    ]
    fab = build_fabric(scenario_from_dict(data))
    state = FaultState(fab)
    state.change(resolve(fab, fault_event("pfs-a", action="degrade"), "s.toml"), 0.5, +1)
    assert state.storage_factor.tolist() == [0.5, 1.0]
    cap = state.capacities()
    assert cap[fab.storage_read].tolist() == [5e9, 20e9] and cap[fab.storage_write].tolist() == [2.5e9, 8e9]
    lost = resolve(fab, fault_event("pfs-b"), "s.toml")
    state.change(lost, 0.0, +1)
    assert state.storage_factor.tolist() == [0.5, 0.0]
    state.change(lost, 0.0, -1)
    assert state.storage_factor.tolist() == [0.5, 1.0], "each array keeps its own faults"


def test_failures_of_one_thing_overlap_and_are_shown_until_the_last_is_repaired() -> None:
    """Kills: a failed vertex's count set instead of added to (``+=`` -> ``=``), the first vertex (gid 0,
    node-0000) never shown as failed (``>= 0`` -> ``> 0``), and dead cables keeping their capacity
    (``cap * alive`` -> ``cap / alive``). A server that fails twice (the whole of it, then one of its
    GPUs) stays red until both are repaired; a failed switch's cables carry nothing."""
    fab = fault_fabric()
    state = FaultState(fab)
    server = resolve(fab, fault_event("node-0000"), "s.toml")
    gpu = resolve(fab, fault_event("node-0000", gpu=2), "s.toml")
    assert server.gid == gpu.gid == 0
    state.change(server, 0.0, +1)
    state.change(gpu, 0.0, +1)
    assert state.vertex_down[0] == 2 and state.gpu_down[0].tolist() == [1, 1, 2, 1, 1, 1, 1, 1]
    state.change(server, 0.0, -1)
    assert state.vertex_down[0] == 1 and state.unusable()[0].tolist() == [False] * 2 + [True] + [False] * 5
    state.change(gpu, 0.0, -1)
    assert state.vertex_down[0] == 0 and not state.unusable().any()
    spine = resolve(fab, fault_event("spine-00"), "s.toml")
    state.change(spine, 0.0, +1)
    cap = state.capacities()
    dead = np.array(spine.links)
    assert len(dead) == 2 * 4 and (cap[dead] == 0).all()  # two leaves, the gateway and the array: 4 cables
    alive = np.setdiff1d(np.arange(fab.n_links), dead)
    assert (cap[alive] == fab.link_cap[alive]).all()


def test_a_restart_before_the_first_checkpoint_starts_over_from_nothing() -> None:
    """Kills: the progress kept by a restart floored at 1 s instead of 0 (``max(0.0, ...)`` -> ``max(1.0,
    ...)``): a server failing 600 s into a job that checkpoints every 1,800 s costs all 600 s of its 8
    GPUs, and the job starts again from zero on another server: it ends 600 + 1,000 s after its start."""
    data = site()
    data["faults"] = {"event": [{"at": 600, "target": "node-0000"}]}
    sim = Simulation(scenario_from_dict(data))
    sim.submit(job(0, gpus=8, duration=1000, checkpoint_s=1800))
    sim.run(601)
    assert sim.totals.restarted == 1
    assert sim.totals.lost_gpu_s == pytest.approx(600 * 8)
    sim.run(5000)
    assert sim.totals.jcts == [pytest.approx(1600)]


def test_a_change_of_capacity_is_a_change_a_renderer_sees() -> None:
    """Kills: ``FlowTable.set_capacity`` and ``add`` not bumping ``version`` upwards (``+=`` -> ``=`` or ``-=``):
    the view redraws links only when the version grows, and a fault or a new job changes what they carry."""
    table = FlowTable(np.ones(3))
    before = table.version
    table.add(FlowGroup.build((1, 0), [0], [0], [1], [0.5], (np.array([0]), np.array([1]), np.array([1.0]))))
    assert table.version > before
    table.solve()
    before = table.version
    table.set_capacity(np.array([1.0, 0.25, 1.0]))
    assert table.version > before and table.dirty
    assert table.solve()[(1, 0)] == pytest.approx(0.5)


# --- traffic -------------------------------------------------------------------------------------------------


def test_a_training_job_on_a_two_rail_site_splits_its_ring_over_the_rails_and_writes_on_its_own() -> None:
    """Kills: the per-rail share of the all-reduce not divided by the rails (``/ fab.rails`` -> ``* fab.rails``),
    the rail of a job's reads and checkpoint writes not a whole rail number (``%`` -> ``/``), and routes
    asked without their rail (``rail`` -> ``None``). Every hand-made site elsewhere has one rail; Lingang
    has eight.

    Rail-optimised, two NICs per server (one per rail, 12.5 GB/s each). Job 1 (1 B parameters, 10 s
    steps) on servers 0 and 2: its 2-server ring sends the 2 GB gradient once per step, half on each
    rail: 100 MB/s up each of a server's two cables. It reads 10 MB/s per GPU on rail (server + job) %
    2 = 1. At t = 50 it checkpoints: each server writes on rail 1 only, sharing the 5 GB/s array.
    """
    data = site(**{"topology.kind": "rail-optimized", "topology.nodes_per_unit": 2, "topology.spines": 1})
    data["node"]["nics"] = 2
    sim = Simulation(scenario_from_dict(data))
    fab = sim.fabric
    assert fab.rails == 2
    sim.policy = pinned([[0, 2]])
    # A step of 10 s: 1e9 bytes per rail NIC (2 x 1/2 x 2 B x 1e9 / 2 rails), 0.08 s exposed at 25 GB/s
    # per server, the rest compute at 35 TFLOPS per GPU: 1e8 bytes/s on each rail.
    tokens = (10 - 0.08) * 35e12 / (6 * 1e9)
    sim.submit(job(1, gpus=16, duration=100, tokens_per_gpu=tokens, read_mbs_per_gpu=10, checkpoint_s=50))
    sim.run(10)
    load = sim.snapshot().link_load
    assert load[fab.host_up[[0, 2]]] == pytest.approx(np.full((2, 2), 1e8))
    assert load[fab.host_down[[0, 2]]] == pytest.approx(np.array([[1e8, 1e8 + 8 * 10e6]] * 2))
    sim.run(50.5)
    assert sim.running[1].phase == "checkpoint"
    assert sim.snapshot().link_load[fab.host_up[[0, 2]]].tolist() == [[0.0, 2.5e9]] * 2
    sim.check_invariants()


def test_small_reads_and_requests_move_exactly_their_bytes() -> None:
    """Kills: thresholds on a job's traffic moved off zero (``read_mbs_per_gpu > 0`` -> ``> 1``, on the one-
    server path and the general one, the same for ``serve_mbs_per_gpu``) and the MB/s unit off by a little
    (``1e6`` -> ``1000001.0``). Evaluation jobs on two servers (16 GPUs) and on one (8) reading 1 MB/s per
    GPU for 100 s read 2.4 GB; a service of 1 MB/s per GPU on 8 GPUs moves 800 MB each way. Also pins
    the phases the view shows for them."""
    sim = quiet()
    sim.submit(job(0, gpus=16, duration=100, kind="eval", read_mbs_per_gpu=1.0))
    sim.submit(job(1, gpus=8, duration=100, kind="eval", read_mbs_per_gpu=1.0))
    sim.submit(job(2, gpus=8, duration=100, kind="inference", serve_mbs_per_gpu=1.0))
    sim.run(1)
    assert {v.id: v.phase for v in sim.snapshot().jobs} == {0: "evaluating", 1: "evaluating", 2: "serving"}
    sim.run(200)
    assert sim.totals.completed == 3
    assert sim.totals.traffic_bytes[DATA] == pytest.approx(24e8, rel=1e-9)
    assert sim.totals.traffic_bytes[INFERENCE] == pytest.approx(2 * 8e8, rel=1e-9)
    assert sim.totals.traffic_bytes[GRADIENT] == 0 and sim.totals.traffic_bytes[CHECKPOINT] == 0


# --- what the view and the report count ----------------------------------------------------------------------


def test_fragmentation_counts_the_free_gpus_stranded_on_partly_used_servers() -> None:
    """Kills: the edge cases of ``Allocation.fragmentation`` (``total == 0`` -> ``== 1``, a server with one
    free GPU not counted as partly used). One GPU free on a busy server and nothing else: all stranded
    (1.0). One more server empty: 1 of 9. Nothing free: 0.0."""
    alloc = allocation(racks=1, per_rack=2)
    occupy(alloc, {0: 7, 1: 8})
    assert alloc.fragmentation() == 1.0
    alloc.release(1001)
    assert alloc.fragmentation() == pytest.approx(1 / 9)
    occupy(alloc, {1: 8})
    alloc.assign(7, np.array([7]))
    assert alloc.fragmentation() == 0.0


def test_jobs_found_running_at_the_start_are_not_counted_as_the_runs_workload() -> None:
    """Kills: ``Job.start`` not passing ``warm`` on: jobs found running at t = 0 (``initial_load``) would be
    summarised as if they had arrived in the run. Half of the 4-server site is busy at t = 0 with two
    evaluation jobs; both finish, and the workload block still counts no GPU job."""
    data = site(**{"workload.initial_load": 0.5})
    data["workload"]["mix"] = [{"kind": "eval", "share": 1, "gpus": [8, 8], "median_hours": 0.1}]
    sim = Simulation(scenario_from_dict(data))
    assert len(sim.running) == 2 and all(j.warm for j in sim.running.values())
    sim.run(20_000)
    report = build_report(sim)
    assert report["jobs_completed"] == 2 and report["workload"]["gpu_jobs"] == 0


def test_removing_a_job_s_flows_is_a_change_a_renderer_sees() -> None:
    """Kills: ``FlowTable.remove`` not bumping ``version`` upwards on the fast path, and the flattened flows
    a renderer reads not rebuilt after it (``_flat_stale`` left False): a finished job's flows would stay
    on screen."""
    table = FlowTable(np.ones(2))
    for key in (1, 2):
        table.add(FlowGroup.build((key, 0), [0], [0], [1], [0.25], (np.array([0]), np.array([key - 1]), np.ones(1))))
    table.solve()
    assert table.flat()["job"].tolist() == [1, 2]
    before = table.version
    table.remove((2, 0))
    assert table.version > before and not table.dirty, "a fast update: no solve needed"
    flat = table.flat()  # a removed job's flows stay in place until compacted, with no job and no rate
    assert flat["job"][flat["job"] >= 0].tolist() == [1] and flat["rate"][flat["job"] < 0].tolist() in ([], [0.0])
    assert table.link_load.tolist() == [0.25, 0.0]


def test_adding_a_job_s_flows_again_replaces_them() -> None:
    """Kills: ``FlowTable.add`` not removing the group it replaces (``in`` -> ``not in``, or removing nothing):
    on the fast path its load would be counted twice. Re-adding a job that runs at full speed leaves the
    link carrying its load once."""
    table = FlowTable(np.ones(1))
    group = FlowGroup.build((1, 0), [0], [0], [1], [0.25], (np.array([0]), np.array([0]), np.ones(1)))
    table.add(group)
    table.solve()
    table.add(group)
    assert not table.dirty, "a fast update: no solve needed"
    assert table.link_load.tolist() == [0.25] and table.speed == {(1, 0): 1.0}
    assert table.flat()["job"].tolist() == [1]
