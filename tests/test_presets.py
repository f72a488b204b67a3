"""Workload presets calibrated on Helios: the fitted distributions, the shipped cluster scenarios, and a
simulated week of Earth against the published table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, site
from twin.cli import main
from twin.errors import ScenarioError
from twin.presets import HELIOS, PRESETS, PresetSampler, rhythm, runtime_mixture, size_distribution
from twin.report import build_report
from twin.scenario import load_scenario, scenario_from_dict
from twin.simulation import Simulation
from twin.workload import WorkloadGenerator

SUMMARY = ROOT.parent / "shared" / "data" / "helios" / "helios_cluster_summary.csv"
EARTH = ROOT / "scenarios" / "helios-earth.toml"


@pytest.mark.skipif(not SUMMARY.exists(), reason="../shared/ is not here")
def test_preset_figures_are_the_published_table() -> None:
    rows = {r["id"].lower(): r for r in csv.DictReader(SUMMARY.open())}
    for key, c in HELIOS.items():
        r = rows[key]
        assert c.gpus == int(r["gpu_num"]) and c.gpu_jobs == int(r["gpu_job_num"])
        assert c.mean_runtime_s == float(r["avg_run_time_gpu"])
        assert c.median_runtime_s == float(r["med_run_time_gpu"])
        assert c.mean_gpus == float(r["avg_gpu_num"])
        rates = (c.complete_rate, c.cancel_rate, c.fail_rate)
        assert rates == tuple(float(r[f"{k}_rate_gpu"]) for k in ("complete", "cancel", "fail"))


@pytest.mark.parametrize("key", list(HELIOS))
def test_fitted_distributions_have_the_table_summary(key: str) -> None:
    c = HELIOS[key]
    mix = runtime_mixture(c.median_runtime_s, c.mean_runtime_s)
    median, mean = mix.median_mean()
    assert median == pytest.approx(c.median_runtime_s, rel=1e-6)
    assert mean == pytest.approx(c.mean_runtime_s, rel=1e-6)
    sizes, p = size_distribution(c.mean_gpus, c.gpus)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    assert float(sizes @ p) == pytest.approx(c.mean_gpus, rel=1e-6)
    assert p[0] >= 0.5, "the median job has one GPU"
    assert sizes.max() <= min(2048, c.gpus)


def test_draws_follow_the_fit_over_many_jobs() -> None:
    rng = np.random.default_rng(3)
    sampler = PresetSampler("helios-earth", 1000)
    c = sampler.cluster
    n = 200_000
    runtimes = np.array([sampler.duration(rng) for _ in range(n)])
    assert np.median(runtimes) == pytest.approx(c.median_runtime_s, rel=0.03)
    assert runtimes.mean() == pytest.approx(c.mean_runtime_s, rel=0.03)
    gpus = np.array([sampler.gpus(rng) for _ in range(50_000)])
    assert gpus.mean() == pytest.approx(c.mean_gpus, rel=0.05)
    assert set(np.unique(gpus)) <= {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
    outcomes = [sampler.outcome(rng) for _ in range(50_000)]
    assert outcomes.count("cancelled") / len(outcomes) == pytest.approx(c.cancel_rate, abs=0.01)


def test_daily_rhythm_shapes_arrivals() -> None:
    assert rhythm(15 * 3600, 0.4) == pytest.approx(1.4)
    assert rhythm(3 * 3600, 0.4) == pytest.approx(0.6)
    data = site(**{"workload.preset": "helios-earth", "workload.daily_rhythm": 0.5})
    del data["workload"]["mix"]
    del data["workload"]["arrival"]
    scenario = scenario_from_dict(data)
    gen = WorkloadGenerator(scenario.workload, 32, 8, np.random.default_rng(1))
    t, hours = 0.0, np.zeros(24)
    while t < 60 * 86400:
        t += gen.next_arrival_gap(t)
        hours[int(t % 86400 // 3600)] += 1
    assert hours[13:17].sum() > 2.5 * hours[1:5].sum(), "afternoons are busier than nights"
    expected = gen.jobs_per_hour * 24 * 60
    assert hours.sum() == pytest.approx(expected, rel=0.05), "the mean rate is kept"


def test_preset_rate_scales_with_the_site() -> None:
    data = site(**{"workload.preset": "helios-earth"})
    del data["workload"]["mix"]
    del data["workload"]["arrival"]
    gen = WorkloadGenerator(scenario_from_dict(data).workload, 32, 8, np.random.default_rng(1))
    c = HELIOS["earth"]
    assert gen.jobs_per_hour == pytest.approx(c.gpu_jobs / (183 * 24) * 32 / c.gpus)


def test_unknown_preset_is_named() -> None:
    data = site(**{"workload.preset": "helios-mars"})
    with pytest.raises(ScenarioError, match=r"workload\.preset: expected one of helios-venus"):
        scenario_from_dict(data)


@pytest.mark.parametrize("preset", PRESETS)
def test_each_helios_cluster_has_a_scenario(preset: str) -> None:
    path = ROOT / "scenarios" / f"{preset}.toml"
    sc = load_scenario(path)
    c = HELIOS[preset.removeprefix("helios-")]
    assert sc.workload.preset == preset
    assert abs(sc.gpus - c.gpus) <= 8, "the site has the cluster's GPUs, in whole 8-GPU nodes"
    assert sc.node.gpus == 8 and sc.gpu.model.startswith("V100") and sc.node.nic_gbps == 100
    sim = Simulation(sc)
    sim.run(3 * 3600)
    sim.check_invariants()
    assert sim.totals.cancelled + sim.totals.failed > 0


@pytest.fixture(scope="module")
def earth_week() -> dict:
    sim = Simulation(load_scenario(EARTH))
    sim.run(7 * 86400)
    sim.check_invariants()
    return build_report(sim)


WORKLOAD_KEYS = ("mean_gpus_per_job", "median_gpu_job_runtime_s", "mean_gpu_job_runtime_s")
RATE_KEYS = ("complete_rate", "cancel_rate", "fail_rate")


@pytest.mark.parametrize("key", WORKLOAD_KEYS + RATE_KEYS)
def test_a_week_of_earth_reproduces_the_table(earth_week: dict, key: str) -> None:
    w = earth_week["workload"]
    assert w["preset"] == "helios-earth"
    assert w["gpu_jobs"] > 10_000
    assert w[key] == pytest.approx(w["targets"][key], rel=0.10), key


def test_a_week_of_earth_accounts_for_every_job(earth_week: dict) -> None:
    r = earth_week
    ended = r["jobs_completed"] + r["jobs_cancelled"] + r["jobs_failed"]
    assert r["jobs_submitted"] == ended + r["jobs_running"] + r["jobs_queued"]
    assert r["jobs_cancelled"] > 0 and r["jobs_failed"] > 0


def test_simulate_report_has_the_workload_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["simulate", str(EARTH), "--hours", "6", "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Run time (median)" in printed and "table" in printed and "234 s" in printed
    w = json.loads(out.read_text())["workload"]
    keys = ("gpu_jobs", "mean_gpus_per_job", "median_gpu_job_runtime_s", "mean_gpu_job_runtime_s")
    assert set(keys) | {"complete_rate", "cancel_rate", "fail_rate"} <= set(w)
    assert w["targets"]["median_gpu_job_runtime_s"] == 234.0
    assert w["complete_rate"] + w["cancel_rate"] + w["fail_rate"] == pytest.approx(1.0)
