"""Tests written to kill named mutants: each docstring says which fault it catches and why it would.

Every fault named here was applied by hand to a copy of the repository and seen to fail its test (and
the test seen to pass on the original). The sites are the small hand-made ones of ``conftest.site``:
two (or four) racks of 8-GPU servers on a leaf-spine, with no synthetic arrivals, so only the jobs a
test submits run and every answer can be worked out on paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import site
from helpers import job, pinned
from twin.events import EventQueue
from twin.jobs import CHECKPOINT_GPU_UTIL, Job
from twin.scenario import scenario_from_dict
from twin.scheduler import POLICIES, Allocation, place_first_fit, place_topology_aware
from twin.simulation import BLOCKED, Simulation
from twin.topology import GBIT, build_fabric

GPN = 8  # GPUs per server on the test sites


def allocation(racks: int = 4, per_rack: int = 4) -> Allocation:
    """An empty allocation on ``racks`` leaf domains of ``per_rack`` servers (node n is in rack n // per_rack)."""
    data = site(**{"topology.racks": racks, "topology.nodes_per_rack": per_rack, "topology.leaf_radix": 32})
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
