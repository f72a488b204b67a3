"""Faults, each kind on the small test site with known answers, random faults, and bad fault specs.

The test site: two racks (leaf-000, leaf-001) of two 8-GPU servers (node-0000..0003), two spines, one
storage array "store" (10 GB/s read, 5 GB/s write) on the spines. Every leaf has one 100 Gb/s cable to
each spine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, site
from helpers import job, pinned, ring_tokens
from twin.cli import main
from twin.errors import ScenarioError
from twin.report import build_report
from twin.scenario import load_scenario, scenario_from_dict
from twin.scheduler import POLICIES
from twin.simulation import BLOCKED, Simulation
from twin.topology import GBIT

STORM = ROOT / "scenarios" / "failure-storm.toml"


def faulty(*events: dict[str, Any], max_retries: int = 3) -> Simulation:
    data = site()
    data["faults"] = {"event": list(events), "max_retries": max_retries}
    return Simulation(scenario_from_dict(data))


def accounted(sim: Simulation) -> None:
    r = build_report(sim)
    ended = r["jobs_completed"] + r["jobs_failed"] + r["jobs_cancelled"]
    assert r["jobs_submitted"] == ended + r["jobs_running"] + r["jobs_queued"]
    sim.check_invariants()


def test_a_failed_server_costs_the_work_since_the_last_checkpoint() -> None:
    # Checkpoints every 30 min of progress; writing one takes 0.028 s (0.07 GB shards at 2.5 GB/s each).
    write_s = 0.01e9 * 14 / 2 / (5e9 / 2)
    fail_at = 1800 + write_s + 600  # ten minutes of work after the checkpoint
    sim = faulty({"at": fail_at, "target": "node-0000"})
    sim.policy = pinned([[0, 2], [1, 3]])
    sim.submit(job(0, gpus=16, duration=3000, params_b=0.01, checkpoint_s=1800))
    sim.run(fail_at + 1)
    assert sim.totals.lost_gpu_s / 3600 == pytest.approx(600 * 16 / 3600)
    assert sim.totals.restarted == 1 and sim.totals.faults == 1
    assert (sim.alloc.owner[0] == BLOCKED).all(), "the failed server is out of service"
    accounted(sim)
    sim.run(10_000)
    # It resumed at once on the other two servers from progress 1800 and had 1200 s of work left.
    assert sim.totals.jcts == [pytest.approx(fail_at + 1200)]
    assert sim.totals.completed == 1
    report = build_report(sim)
    assert report["jobs_restarted"] == 1 and report["lost_gpu_hours"] == pytest.approx(16 * 600 / 3600)
    assert report["faults"] == 1
    assert "node-0000 down: 1 job restarting, 8 GPUs idle" in [a[1] for a in sim.alerts]


def test_repair_returns_the_server_and_without_checkpoints_all_work_is_lost() -> None:
    sim = faulty({"at": 1000, "target": "node-0000", "minutes": 10})
    sim.submit(job(0, gpus=16, duration=3000))  # packed under leaf-000: node-0000 and node-0001
    sim.run(999)
    assert sorted(sim.running[0].nodes) == [0, 1]
    sim.run(1001)
    assert sim.totals.lost_gpu_s == pytest.approx(1000 * 16)
    assert sorted(sim.running[0].nodes) == [2, 3], "restarted at once on the healthy rack"
    assert (sim.alloc.owner[0] == BLOCKED).all()
    sim.run(1000 + 600 + 1)
    assert (sim.alloc.owner != BLOCKED).all() and sim.alloc.free[0] == 8
    assert [a[1] for a in sim.alerts][-1] == "node-0000 back up"
    sim.run(10_000)
    assert sim.totals.jcts == [pytest.approx(1000 + 3000)], "from scratch: no checkpoint to resume from"
    accounted(sim)


def test_a_job_fails_for_good_after_too_many_restarts() -> None:
    sim = faulty({"at": 100, "target": "node-0000", "minutes": 1}, max_retries=0)
    sim.policy = pinned([[0, 2]])
    sim.submit(job(0, gpus=16, duration=3000))
    sim.run(5000)
    assert sim.totals.failed == 1 and sim.totals.restarted == 0 and sim.totals.completed == 0
    accounted(sim)


def test_a_failed_gpu_takes_only_itself_out() -> None:
    sim = faulty({"at": 100, "target": "node-0001", "gpu": 3})
    sim.submit(job(0, gpus=8, duration=3000))  # fills node-0000 (first fit)
    sim.submit(job(1, gpus=4, duration=3000))  # GPUs 0-3 of node-0001
    sim.run(101)
    assert sim.alloc.owner[1, 3] == BLOCKED
    assert 0 in sim.running, "the job on another server carries on"
    assert sim.totals.restarted == 1 and 1 in sim.running, "the hit job restarted on healthy GPUs"
    assert 3 not in sim.running[1].gpus % 8 or sim.running[1].nodes[0] != 1
    assert sim.alloc.free.sum() == 32 - 8 - 4 - 1
    accounted(sim)


def two_cross_jobs(sim: Simulation) -> None:
    """Jobs 0 (node-0000 + node-0002) and 1 (node-0001 + node-0003) each send 75 Gb/s each way between
    the racks: 150 Gb/s over each leaf's two 100 Gb/s uplinks, which carry it at full speed."""
    sim.policy = pinned([[0, 2], [1, 3]])
    sim.submit(job(0, gpus=16, duration=6000, tokens_per_gpu=ring_tokens(75 * GBIT)))
    sim.submit(job(1, gpus=16, duration=6000, tokens_per_gpu=ring_tokens(75 * GBIT)))


def speeds(sim: Simulation) -> list[float]:
    return sorted(j.speed for j in sim.running.values())


def test_a_dead_cable_is_routed_around_and_the_survivor_is_shared() -> None:
    sim = faulty({"at": 100, "target": "leaf-000--spine-00", "minutes": 10})
    two_cross_jobs(sim)
    sim.run(50)
    assert speeds(sim) == pytest.approx([1.0, 1.0])
    sim.run(101)
    assert speeds(sim) == pytest.approx([2 / 3, 2 / 3]), "150 Gb/s through the one uplink left"
    dead = np.flatnonzero(sim.link_down)
    assert len(dead) == 2 and (sim.flows.link_load[dead] == 0).all(), "nothing on the dead cable"
    assert sim.totals.restarted == 0 and "leaf-000--spine-00 down: traffic rerouted" in sim.alerts[-1][1]
    accounted(sim)
    sim.run(100 + 600 + 1)
    assert speeds(sim) == pytest.approx([1.0, 1.0])
    sim.run(20_000)
    # 100 s at full speed, 600 s at 2/3 (400 s of work), then the remaining 5500 s: 6200 s in all.
    assert sim.totals.jcts == [pytest.approx(6200), pytest.approx(6200)]


def test_a_dead_spine_removes_its_bandwidth() -> None:
    sim = faulty({"at": 100, "target": "spine-00", "minutes": 10})
    two_cross_jobs(sim)
    sim.run(101)
    assert speeds(sim) == pytest.approx([2 / 3, 2 / 3])
    assert sim.snapshot().down[sim.fabric.names.index("spine-00")]
    assert sim.alerts[-1][1] == "spine-00 down: traffic rerouted"
    accounted(sim)


def test_a_dead_leaf_takes_its_rack_off_the_fabric() -> None:
    sim = faulty({"at": 100, "target": "leaf-000", "minutes": 30})
    two_cross_jobs(sim)
    sim.run(1)
    sim.policy = POLICIES["topology"]
    sim.submit(job(2, gpus=1, duration=5000, arrival=1, read_mbs_per_gpu=100))  # the site is full: it waits
    sim.run(101)
    assert sim.totals.restarted == 2, "both jobs had a server under leaf-000"
    assert (sim.alloc.owner[[0, 1]] == BLOCKED).all(), "rack 1 is out of service while its leaf is down"
    assert "leaf-000 down: 2 jobs restarting, 16 GPUs idle" in sim.alerts[-1][1]
    assert sim.totals.lost_gpu_s == pytest.approx(2 * 16 * 100)
    accounted(sim)
    sim.run(100 + 1800 + 1)
    assert len(sim.running) >= 2 and (sim.alloc.owner != BLOCKED).all()
    accounted(sim)


def test_a_job_cut_off_from_storage_stalls_until_it_is_back() -> None:
    sim = faulty({"at": 1000, "target": "store", "minutes": 20})
    sim.submit(job(0, gpus=8, duration=3000, read_mbs_per_gpu=100))
    sim.run(1001)
    assert sim.running[0].speed == 0.0 and sim.running[0].util == 0.0, "no data: no progress"
    assert "store lost" in sim.alerts[-1][1]
    accounted(sim)
    sim.run(10_000)
    assert sim.totals.jcts == [pytest.approx(3000 + 1200)], "late by exactly the outage"
    assert sim.totals.restarted == 0 and sim.totals.lost_gpu_s == 0


def test_a_degraded_array_shares_what_is_left() -> None:
    # 16 GPUs reading 400 MB/s each need 6.4 GB/s; the array degraded to 25% gives 2.5 GB/s.
    sim = faulty({"at": 100, "target": "store", "action": "degrade", "factor": 0.25, "minutes": 10})
    sim.submit(job(0, gpus=16, duration=3000, read_mbs_per_gpu=400))
    sim.run(101)
    assert sim.running[0].speed == pytest.approx(2.5 / 6.4)
    assert "store degraded to 25% of its bandwidth" in sim.alerts[-1][1]
    sim.run(701)
    assert sim.running[0].speed == pytest.approx(1.0)
    accounted(sim)


def test_random_faults_keep_every_invariant_and_repeat_with_the_seed() -> None:
    def run(seed: int) -> tuple:
        data = site(**{"workload.arrival": "poisson", "workload.jobs_per_hour": 12, "workload.initial_load": 0.5})
        data["faults"] = {
            "random": {
                "gpu_mtbf_hours": 200,
                "node_mtbf_hours": 100,
                "link_mtbf_hours": 60,
                "switch_mtbf_hours": 100,
                "storage_mtbf_hours": 100,
                "node_repair_minutes": 30,
            }
        }
        sim = Simulation(scenario_from_dict(data), seed=seed)
        for _ in range(48):
            sim.advance(1800)
            accounted(sim)
        return sim.totals.faults, sim.totals.restarted, round(sim.totals.lost_gpu_s, 6), sim.totals.completed

    a, b = run(3), run(3)
    assert a == b
    faults = a[0]
    # 32 GPUs / 200 h + 4 / 100 + 8 cables / 60 + 5 switches / 100 + 1 / 100 = 0.393 an hour; 24 h -> ~9.4
    assert 2 <= faults <= 22
    assert run(4) != a


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"at": 10, "target": "spine-09"}, "expected a component of this site (node-0000, spine-00"),
        ({"at": 10, "target": "leaf-000--leaf-001"}, "expected a cable that exists"),
        ({"at": 10, "target": "spine-00", "action": "degrade"}, "expected a storage array to degrade"),
        ({"at": 10, "target": "node-0000", "gpu": 8}, "expected a GPU index below 8"),
        ({"at": 10, "target": "gateway"}, "the gateway cannot fail"),
        ({"at": "25:99", "target": "spine-00"}, "faults.event[0].at: expected seconds, or a time"),
    ],
)
def test_bad_fault_specs_are_named(event: dict[str, Any], expected: str) -> None:
    with pytest.raises(ScenarioError) as err:
        faulty(event)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_fault_times_read_as_clock_times() -> None:
    sim = faulty({"at": "1+02:30", "target": "spine-00"})
    assert sim.scenario.faults.events[0].at_s == 86400 + 2.5 * 3600


def test_bad_target_in_a_file_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "scenarios" / "small-lab.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text + '\n[[faults.event]]\nat = "01:00"\ntarget = "spine-7"\n')
    assert main(["simulate", str(bad), "--hours", "1"]) == 2
    err = capsys.readouterr().err
    line = len(text.splitlines()) + 4
    assert f"bad.toml: line {line}: faults.event[0].target: expected a component" in err


def test_failure_storm_shows_every_kind_within_minutes(tmp_path: Path) -> None:
    sim = Simulation(load_scenario(STORM))
    kinds: set[str] = set()
    for _ in range(60):
        sim.advance(60)
        accounted(sim)
        kinds |= {text.split(" ")[0] for _, text, _ in sim.alerts}
    names = " ".join(text for _, text, _ in sim.alerts)
    for word in ("spine", "leaf", "node", "degraded", "lost", "back up"):
        assert word in names, word
    assert sim.totals.restarted > 0 and sim.totals.lost_gpu_s > 0
    out = tmp_path / "r.json"
    assert main(["simulate", str(STORM), "--hours", "1", "--report", str(out)]) == 0
    r = json.loads(out.read_text())
    assert {"faults", "jobs_restarted", "jobs_failed", "lost_gpu_hours", "jobs_cancelled"} <= set(r)
    assert r["jobs_submitted"] == (
        r["jobs_completed"] + r["jobs_failed"] + r["jobs_cancelled"] + r["jobs_running"] + r["jobs_queued"]
    )


def test_a_failed_switch_is_drawn_red_and_the_ticker_says_so() -> None:
    import os

    os.environ["SDL_VIDEODRIVER"] = "dummy"
    import pygame

    from twin.render.app import Frame

    pygame.display.init()
    pygame.display.set_mode((320, 240))
    sim = Simulation(load_scenario(STORM))
    sim.run(6 * 60)  # spine-00 failed at 00:04
    frame = Frame(sim, (1600, 900), "hall")
    frame.refresh(0.0, force=True)
    surface = pygame.Surface((1600, 900)).convert()
    frame.draw(surface, 0.0)
    gid = sim.fabric.names.index("spine-00")
    x, y, w, h = frame.site.layout.rect[gid]
    sx, sy = frame.site.camera.to_screen(np.array([x + w / 2, y + h * 0.8]))
    r, g, b = surface.get_at((round(sx), round(sy)))[:3]
    assert r > g + 40 and r > b + 20, "a failed switch is red"
    healthy = sim.fabric.names.index("spine-01")
    x, y, w, h = frame.site.layout.rect[healthy]
    sx, sy = frame.site.camera.to_screen(np.array([x + w / 2, y + h * 0.8]))
    r, g, b = surface.get_at((round(sx), round(sy)))[:3]
    assert b > r, "a healthy one is not"
    assert frame.snap.alerts[-1][1].startswith("spine-00 down")
    pygame.display.quit()


def test_the_inspector_says_a_component_failed() -> None:
    from twin.render.inspector import describe_vertex

    sim = faulty({"at": 10, "target": "spine-00", "minutes": 5})
    sim.run(20)
    snap = sim.snapshot()
    fab = sim.fabric
    title, lines = describe_vertex(fab.names.index("spine-00"), fab, snap)
    assert title == "spine switch spine-00" or title.endswith("spine-00")
    assert lines[0].startswith("FAILED")
    _, healthy = describe_vertex(fab.names.index("spine-01"), fab, snap)
    assert not healthy[0].startswith("FAILED")
