"""The simulation: invariants over whole runs, determinism, conservation, and known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, site
from helpers import job, pinned, ring_tokens
from twin.flows import CHECKPOINT, GRADIENT, TRAFFIC_KINDS
from twin.power import facility_watts
from twin.report import build_report, format_report
from twin.scenario import load_scenario, scenario_from_dict
from twin.simulation import Simulation
from twin.topology import GBIT

HOURS = {"lingang": 3.0, "hyperscale-100k": 0.5}  # the largest sites: a shorter run (benchmarks go in bench/)


def test_invariants_hold_over_whole_runs(shipped: Path) -> None:
    sim = Simulation(load_scenario(shipped))
    hours = HOURS.get(shipped.stem, 8.0)
    seen_running = seen_done = 0
    for _ in range(int(hours * 4)):
        sim.advance(900)
        sim.check_invariants()
        seen_running = max(seen_running, len(sim.running))
        seen_done = sim.totals.completed
    assert seen_running > 0 and seen_done > 0, "the run should have done something"
    alloc = sim.totals.gpu_alloc_s / sim.now / sim.fabric.n_gpus
    assert 0.0 < alloc <= 1.0


def test_lingang_keeps_the_site_busy() -> None:
    sim = Simulation(load_scenario(Path(__file__).parent.parent / "scenarios" / "lingang.toml"))
    sim.advance(6 * 3600)
    alloc = sim.totals.gpu_alloc_s / sim.now / sim.fabric.n_gpus
    assert 0.70 <= alloc <= 0.90, alloc
    kinds = {j.spec.kind for j in sim.running.values()}
    assert {"pretrain", "finetune", "inference"} <= kinds
    big = [j for j in sim.running.values() if j.spec.kind == "pretrain"]
    assert all(512 <= j.spec.gpus <= 4096 for j in big) and big


def test_same_seed_same_run_whatever_the_caller_steps() -> None:
    sc = scenario_from_dict(
        site(**{"workload.arrival": "poisson", "workload.jobs_per_hour": 20, "workload.initial_load": 0.5})
    )
    a, b = Simulation(sc, seed=3), Simulation(sc, seed=3)
    a.advance(4 * 3600)
    for _ in range(4 * 3600 // 7):  # uneven frame steps, like a frame loop
        b.advance(7.0)
    b.run(4 * 3600)
    for field in a.series.fields:
        np.testing.assert_array_equal(a.series.column(field), b.series.column(field), err_msg=field)
    assert a.totals.energy_j == pytest.approx(b.totals.energy_j, rel=1e-12)
    c = Simulation(sc, seed=4)
    c.advance(4 * 3600)
    assert not np.array_equal(a.series.column("gpu_allocation"), c.series.column("gpu_allocation"))


def test_energy_and_work_add_up() -> None:
    sim = Simulation(load_scenario(Path(__file__).parent.parent / "scenarios" / "small-lab.toml"))
    sim.advance(5 * 3600)
    sc, t = sim.scenario, sim.totals
    static = facility_watts(sc, 0.0, sim.n_switches, 0.0)
    per_busy_gpu = facility_watts(sc, 1.0, sim.n_switches, 1.0) - static  # computing
    per_waiting_gpu = facility_watts(sc, 0.0, sim.n_switches, 1.0) - static  # allocated, waiting
    waiting_gpu_s = t.gpu_alloc_s - t.busy_gpu_s
    assert 0 < per_waiting_gpu < per_busy_gpu and waiting_gpu_s > 0
    assert t.energy_j == pytest.approx(static * sim.now + per_busy_gpu * t.busy_gpu_s + per_waiting_gpu * waiting_gpu_s)
    # Work: the site-wide integral equals what the jobs themselves account for.
    running = 0.0
    for j in sim.running.values():
        running += (j.work_s + j.util * (sim.now - j.mark_s)) * len(j.gpus)
    assert t.busy_gpu_s == pytest.approx(t.finished_work_gpu_s + running, rel=1e-9)
    # Bounds: between an idle site and one flat out.
    assert static * sim.now <= t.energy_j <= facility_watts(sc, sc.gpus, sim.n_switches, sc.gpus) * sim.now
    # Delivered FLOPs never exceed what the computing GPUs could do, nor the allocated ones.
    assert 0 < t.flops_gpu_s < t.busy_gpu_s <= t.gpu_alloc_s


def quiet_site(**changes: object) -> Simulation:
    """A test site with no synthetic arrivals: only what the test submits runs."""
    return Simulation(scenario_from_dict(site(**changes)))


def test_two_node_allreduce_moves_the_formula_bytes() -> None:
    # A 1B finetune on 16 GPUs (two servers of the test site: 8 GPUs of 100 TFLOPS, one 100 Gb/s NIC).
    # Layout: 16 GB of state fits in one GPU's 60 GB, so TP = PP = 1, DP = 16. Each server reduces over
    # NVLink, then its NIC carries the ring of two servers: 2 x (2 - 1) / 2 x 2 bytes x 1e9 = 2 GB per step.
    # A step: 6 x 1e9 x 2,048 tokens at 35 TFLOPS (MFU 35%) = 0.351086 s of compute, then 2 GB at
    # 12.5 GB/s = 0.16 s exposed: 0.511086 s.
    sim = quiet_site()
    duration = 1000.0
    sim.submit(job(0, gpus=16, duration=duration, params_b=1.0))
    sim.run(1.0)
    (view,) = sim.snapshot().jobs
    compute_s = 6 * 1e9 * 2048 / 35e12
    step_s = compute_s + 2e9 / 12.5e9
    assert view.step_s == pytest.approx(step_s) == pytest.approx(0.511086, abs=1e-6)
    assert view.comm_share == pytest.approx(0.16 / step_s)
    assert view.step_phase == pytest.approx(1.0 / step_s % 1.0)  # 1.957 steps done: in the second's talk
    assert sim.running[0].util == pytest.approx(compute_s / step_s)
    sim.run(duration + 10)
    assert sim.totals.completed == 1
    expected = 2 * 2e9 * duration / step_s  # two servers, each sending 2 GB per step
    assert sim.totals.traffic_bytes[GRADIENT] == pytest.approx(expected, rel=1e-9)
    assert sim.totals.jcts == [pytest.approx(duration)]
    # MFU and delivered FLOPs: 35% of the time the GPUs compute, nothing while they wait.
    assert sim.totals.flops_gpu_s == pytest.approx(16 * duration * 0.35 * compute_s / step_s)
    # By tier: 4 of the 8 directed host links carry 2 GB per step (u of their 12.5 GB/s) while the job runs.
    u = 2e9 / step_s / 12.5e9
    tiers = build_report(sim)["link_utilization_by_tier"]
    assert set(tiers) == {"host", "leaf-spine", "storage"}, "a two-tier site has no spine-core links"
    assert tiers["host"]["max"] == pytest.approx(u)
    assert tiers["host"]["mean"] == pytest.approx(4 / 8 * u * duration / sim.now)
    assert tiers["storage"] == {"mean": 0.0, "max": 0.0}


def congested_site() -> Simulation:
    # Two racks of two nodes, one spine, 2:1 oversubscribed: each leaf has 100 Gb/s up.
    return quiet_site(**{"topology.spines": 1, "topology.oversubscription": 2.0})


def test_two_jobs_sharing_a_bottleneck_each_get_their_share() -> None:
    sim = congested_site()
    # Each job spans both racks; its ring sends 75 Gb/s each way across the single spine link.
    sim.policy = pinned([[0, 2], [1, 3]])
    tokens = ring_tokens(75 * GBIT)
    sim.submit(job(0, gpus=16, duration=600, tokens_per_gpu=tokens))
    sim.submit(job(1, gpus=16, duration=600, tokens_per_gpu=tokens))
    sim.advance(1)
    speeds = sorted(j.speed for j in sim.running.values())
    assert speeds == pytest.approx([2 / 3, 2 / 3])  # 100 Gb/s shared by 150 Gb/s of demand
    # Their steps stretch by 3/2: the exposed communication grows, the compute does not.
    ideal = 2e9 / (75 * GBIT)  # seconds per step at full speed (2 GB per NIC per step at 75 Gb/s)
    compute = ideal - 2e9 / 12.5e9
    for view in sim.snapshot().jobs:
        assert view.step_s == pytest.approx(ideal * 3 / 2)
        assert view.comm_share == pytest.approx(1 - compute / (ideal * 3 / 2))
    sim.check_invariants()
    sim.run(2000)
    assert sim.totals.jcts == [pytest.approx(900), pytest.approx(900)]  # 600 s of work at 2/3 speed
    assert sim.totals.step_slowdown == pytest.approx(3 / 2)


def test_a_lone_job_runs_at_full_speed() -> None:
    sim = congested_site()
    sim.policy = pinned([[0, 2]])
    sim.submit(job(0, gpus=16, duration=600, tokens_per_gpu=ring_tokens(75 * GBIT)))
    sim.run(1000)
    assert sim.totals.jcts == [pytest.approx(600)]
    assert sim.totals.step_slowdown == pytest.approx(1.0)


def test_checkpoints_pause_training_for_the_write_time() -> None:
    sim = quiet_site()
    params_b = 1.0
    sim.submit(job(0, gpus=16, duration=1000, params_b=params_b, checkpoint_s=300))
    sim.run(1100)
    # Each node writes half of 14 bytes/param; both NICs (12.5 GB/s each) share the 5 GB/s write limit.
    shard = params_b * 1e9 * 14 / 2
    write_s = shard / (5e9 / 2)
    assert sim.totals.jcts == [pytest.approx(1000 + 3 * write_s)]
    assert sim.totals.traffic_bytes[CHECKPOINT] == pytest.approx(3 * 2 * shard)
    assert [e.what for e in sim.log].count("checkpoint") == 3


@pytest.mark.parametrize("fault", [False, True])
def test_a_job_resumes_after_a_checkpoint_with_its_traffic_as_built_afresh(
    fault: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's running traffic is put back as it was when its checkpoint is done, not built again (for a
    4,096-GPU job that took 15 to 20 ms): it is what building it afresh gives, value for value. A fault
    that reroutes the fabric while the job saves makes it build afresh, over the routes of then."""
    from twin import simulation as simulation_module
    from twin.traffic import WORK, work_flows

    data = site(**{"topology.spines": 2})
    if fault:  # during the first checkpoint (progress 300 s, then 2.8 s of writing)
        data["faults"] = {"event": [{"at": 301, "target": "spine-00", "minutes": 0}]}
    sim = Simulation(scenario_from_dict(data))
    built: list[object] = []

    def counted(*args, **kwargs):
        built.append(work_flows(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(simulation_module, "work_flows", counted)
    sim.policy = pinned([[0, 2]])  # across the racks: its ring crosses the spines
    sim.submit(job(0, gpus=16, duration=1000, checkpoint_s=300))
    sim.run(700)  # two checkpoints done, computing
    assert [e.what for e in sim.log].count("checkpoint-done") == 2
    running = sim.running[0]
    assert running.phase == "compute"
    now = sim.flows.groups[(0, WORK)]
    assert (now is built[0]) == (not fault) and len(built) == (2 if fault else 1)
    fresh = work_flows(running.spec, running.gpus, running.nodes, sim.fabric, sim.router, running.plan)
    for name in ("kind", "src", "dst", "demand", "entry_flow", "entry_link", "entry_frac", "links", "load"):
        np.testing.assert_array_equal(getattr(now, name), getattr(fresh, name), err_msg=name)
    if fault:  # the routes of then avoid the failed spine
        spine = sim.fabric.names.index("spine-00")
        assert not np.isin(now.entry_link, np.flatnonzero(sim.fabric.link_src == spine)).any()


def test_backfill_starts_a_small_job_without_delaying_the_blocked_head() -> None:
    sim = quiet_site(**{"topology.racks": 2, "topology.nodes_per_rack": 1})
    sim.submit(job(0, gpus=8, duration=1000, arrival=0))  # A: one of the two nodes
    sim.submit(job(1, gpus=16, duration=500, arrival=1))  # B: needs both, waits for A
    sim.submit(job(2, gpus=8, duration=400, arrival=2))  # C: fits now, ends before A: backfilled
    sim.submit(job(3, gpus=8, duration=5000, arrival=3))  # D: fits after C, but would delay B
    sim.run(4000)
    starts = {e.job_id: e.time_s for e in sim.log if e.what == "start"}
    assert starts[2] == 2  # backfilled at once
    assert starts[1] == pytest.approx(1000)  # B starts exactly when A ends: not delayed
    assert starts[3] == pytest.approx(1500)  # D waits for B


def test_fifo_does_not_backfill() -> None:
    sim = quiet_site(**{"topology.racks": 2, "topology.nodes_per_rack": 1, "scheduler": {"policy": "fifo"}})
    sim.submit(job(0, gpus=8, duration=1000, arrival=0))
    sim.submit(job(1, gpus=16, duration=500, arrival=1))
    sim.submit(job(2, gpus=8, duration=400, arrival=2))
    sim.run(3000)
    starts = {e.job_id: e.time_s for e in sim.log if e.what == "start"}
    assert starts[1] == pytest.approx(1000) and starts[2] == pytest.approx(1500)


def test_every_job_accounted_for_and_traffic_kinds_reported() -> None:
    sim = Simulation(load_scenario(Path(__file__).parent.parent / "scenarios" / "small-lab.toml"))
    sim.advance(6 * 3600)
    t = sim.totals
    assert t.submitted == t.completed + len(sim.running) + len(sim.queue)
    assert len(t.jcts) == t.completed
    assert set(TRAFFIC_KINDS) == {"gradient", "data", "checkpoint", "inference"}
    assert (t.traffic_bytes > 0).all(), t.traffic_bytes  # all four kinds of traffic happened


def test_snapshot_is_consistent_with_state() -> None:
    sim = Simulation(load_scenario(Path(__file__).parent.parent / "scenarios" / "small-lab.toml"))
    sim.advance(3600)
    snap = sim.snapshot()
    assert snap.time_s == sim.now
    assert snap.gpu_owner.shape == (sim.fabric.n_nodes, sim.fabric.gpus_per_node)
    for view in snap.jobs:
        assert np.all(np.isin(view.nodes, np.flatnonzero((snap.gpu_owner == view.id).any(axis=1))))
        assert 0 <= view.progress <= 1
    busy = snap.node_job >= 0
    assert np.array_equal(busy, (snap.gpu_owner >= 0).any(axis=1))
    assert np.all(snap.node_util[~busy] == 0)
    f = snap.flows
    assert len(f["rate"]) == len(f["src"]) == len(f["kind"])
    assert np.all(f["rate"] <= f["demand"] * (1 + 1e-12))
    snap.gpu_owner[:] = -7  # a copy: the renderer cannot disturb the simulation
    sim.check_invariants()


def test_a_training_job_stalled_throughout_has_no_step_slowdown_figure() -> None:
    """Its steps never end: the report says so (None, "stalled") rather than "never slowed" (1.0)."""
    data = site(**{"topology.spines": 1})
    data["faults"] = {"event": [{"at": 0, "target": "spine-00", "minutes": 0}]}
    sim = Simulation(scenario_from_dict(data))
    sim.policy = pinned([[0, 2]])  # across the racks, whose only link was the spine
    sim.submit(job(0, gpus=16, duration=600))
    sim.run(1000)
    assert sim.running[0].speed == 0.0
    report = build_report(sim)
    assert report["mean_step_slowdown"] is None and report["mfu_mean"] == 0.0
    assert "Step slowdown (mean)     stalled" in format_report(report)


@pytest.mark.parametrize("name", ["helios-earth", "small-lab", "lingang", "fat-tree-campus"])
def test_link_meter_gives_the_plain_figures_bit_for_bit(name: str) -> None:
    """The simulation measures its links with ``LinkMeter`` (one gather, slices for runs of links); after
    any sequence of loads its figures are exactly those of ``link_stats`` and ``tier_utilization``."""
    from twin.stats import LinkMeter, link_stats
    from twin.tiers import tier_utilization

    sim = Simulation(load_scenario(Path(__file__).parent.parent / "scenarios" / f"{name}.toml"))
    meter = LinkMeter(sim._inv_cap, sim.physical, sim.fabric_links, sim._tiers)
    rng = np.random.default_rng(7)
    load = sim.flows.link_load.copy()
    n = len(load)
    for step in range(40):
        hit = rng.choice(n, size=int(rng.integers(1, 12)), replace=False)
        load[hit] = rng.choice([0.0, 1e6, 3e9, 12.5e9, 40e9], len(hit)) * rng.random(len(hit))
        if step % 10 == 9:
            load[:] = 0.0
        got = meter.measure(load)
        want = link_stats(load, sim._inv_cap, sim.physical, sim.fabric_links)
        means, maxes = tier_utilization(want.util, sim._tiers)
        assert np.array_equal(got.util, want.util)
        assert (got.mean_fabric, got.max, got.fabric_load, got.p99) == (
            want.mean_fabric,
            want.max,
            want.fabric_load,
            want.p99,
        )
        assert np.array_equal(got.tier_mean, means) and np.array_equal(got.tier_max, maxes)


def test_a_snapshot_keeps_its_flows_while_the_simulation_goes_on() -> None:
    """Snapshots share the flow table's flat arrays rather than copy them: they must never change later."""
    sim = Simulation(load_scenario(ROOT / "scenarios" / "small-lab.toml"))
    sim.run(600)
    first = sim.snapshot()
    kept = {k: v.copy() for k, v in first.flows.items()}
    assert len(kept["entry_link"]) > 0
    assert all(not v.flags.writeable for v in first.flows.values())
    version = sim.flows.version
    sim.run(3 * 3600)
    assert sim.flows.version > version  # flows came and went
    later = sim.snapshot()
    assert any(len(later.flows[k]) != len(kept[k]) or not np.array_equal(later.flows[k], kept[k]) for k in kept)
    for key, values in kept.items():
        np.testing.assert_array_equal(first.flows[key], values)


@pytest.mark.parametrize("name", ["helios-earth", "small-lab", "lingang", "fat-tree-campus"])
def test_link_batch_gives_the_meter_s_figures_bit_for_bit(name: str) -> None:
    """The simulation records its links' states in a ``LinkBatch`` and works out their figures a batch at
    a time, on 2-D arrays: row by row they are exactly ``LinkMeter.measure``'s, and the batch's maxima per
    tier the largest of the rows'; a restarted batch carries its last state over as row 0, with the
    figures it had (its maxima already counted)."""
    from twin.stats import LinkBatch

    sim = Simulation(load_scenario(Path(__file__).parent.parent / "scenarios" / f"{name}.toml"))
    meter = sim._meter
    rng = np.random.default_rng(11)
    load = sim.flows.link_load.copy()
    n = len(load)
    batch = LinkBatch(meter, n, rows=9)
    states, carried = [np.zeros(n)], False
    for step in range(40):
        if batch.full or rng.random() < 0.1:  # a batch worked out, and restarted from one of its states
            row = int(rng.integers(0, len(states)))
            asked = sorted(rng.choice(len(states), int(rng.integers(0, len(states) + 1)), replace=False).tolist())
            assert batch.restart(row, batch.figures(asked)) == 0
            assert np.array_equal(batch.util(0), meter.measure(states[row]).util)
            states, carried = [states[row]], True
        hit = rng.choice(n, size=int(rng.integers(1, 12)), replace=False)
        load[hit] = rng.choice([0.0, 1e6, 3e9, 12.5e9, 40e9], len(hit)) * rng.random(len(hit))
        if step % 10 == 9:
            load[:] = 0.0
        assert batch.record(load) == len(states)
        states.append(load.copy())
        asked = sorted(rng.choice(len(states), int(rng.integers(0, len(states) + 1)), replace=False).tolist())
        got = batch.figures(asked)
        want = [meter.measure(s) for s in states]
        assert got.mean_fabric == [w.mean_fabric for w in want]
        assert got.fabric_load == [w.fabric_load for w in want]
        assert got.max == [w.max for w in want]
        assert got.tier_mean == [list(w.tier_mean) for w in want]
        counted = want[1:] if carried else want
        assert got.tier_max == np.max([w.tier_max for w in counted], axis=0).tolist()
        assert got.p99 == {r: want[r].p99 for r in asked}
        for r, w in enumerate(want):
            assert np.array_equal(batch.util(r), w.util)
