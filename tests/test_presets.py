"""Workload presets calibrated on Helios: the fitted joint distribution of size, run time and outcome
(its expectations against the published table, exactly), draws from it, the shipped cluster scenarios,
and a simulated week of Earth against the table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, site
from twin.cli import main
from twin.errors import ScenarioError
from twin.presets import HELIOS, MAX_JOB_GPUS, OUTCOMES, PRESETS, PresetSampler, fit_jobs, rhythm
from twin.report import build_report
from twin.scenario import load_scenario, scenario_from_dict
from twin.simulation import Simulation
from twin.workload import JobSpec, WorkloadGenerator

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
        gpu_time = (c.complete_gpu_time_s, c.cancel_gpu_time_s, c.fail_gpu_time_s)
        assert gpu_time == tuple(float(r[f"{k}_gpu_time"]) for k in ("complete", "cancel", "fail"))


def test_gpu_time_targets_follow_from_the_table() -> None:
    earth = HELIOS["earth"]
    assert earth.gpu_time_per_job_s == pytest.approx(26_780.4, abs=0.1)
    # Independent draws would give mean size x mean run time: 2.101 x 5,130.6 = 10,779 GPU-seconds.
    assert earth.gpu_time_per_job_s / (earth.mean_gpus * earth.mean_runtime_s) == pytest.approx(2.4844, abs=1e-4)
    assert earth.gpu_time_shares == pytest.approx([0.49943, 0.41907, 0.08150], abs=1e-5)
    # Little's law: 427,148 jobs over 183 days, 26,780 GPU-seconds each, on 997 GPUs.
    assert earth.load == pytest.approx(427_148 / (183 * 86_400) * earth.gpu_time_per_job_s / 997)
    assert 0.7 < earth.load < 0.75


@pytest.mark.parametrize("key", list(HELIOS))
def test_fitted_model_has_the_table_expectations(key: str) -> None:
    c = HELIOS[key]
    m = fit_jobs(f"helios-{key}", c.gpus)
    assert m.mean_gpus() == pytest.approx(c.mean_gpus, rel=1e-6)
    assert m.median_s() == pytest.approx(c.median_runtime_s, rel=1e-6)
    assert m.mean_s() == pytest.approx(c.mean_runtime_s, rel=1e-6)
    assert m.outcome_p == pytest.approx([c.complete_rate, c.cancel_rate, c.fail_rate], rel=1e-2)
    assert m.outcome_p.sum() == pytest.approx(1.0)
    assert m.gpu_time_per_job_s() == pytest.approx(c.gpu_time_per_job_s, rel=1e-6)
    assert m.gpu_time_shares() == pytest.approx(c.gpu_time_shares, rel=1e-6)
    assert m.size_p.sum() == pytest.approx(1.0) and (m.size_p >= 0).all()
    assert m.size_p[0] >= 0.5, "the median job has one GPU"
    assert m.sizes.max() <= min(MAX_JOB_GPUS, c.gpus)
    assert ((m.long_p >= 0) & (m.long_p <= 1)).all() and (m.long_median_s > 0).all()
    # Big jobs run longer: each size's mean run time grows with the size, and so GPU time per job is
    # more than mean size x mean run time.
    assert (np.diff(m.long_p * (m.long_median_s @ m.outcome_p)) >= -1e-9).all()
    assert m.gpu_time_per_job_s() > m.mean_gpus() * m.mean_s()


def test_fit_of_a_hand_made_model_is_exact() -> None:
    # The closed forms on a two-size model: 1 GPU short only, 4 GPUs long only, one outcome each.
    from twin.presets import LONG_SIGMA, SHORT_SIGMA, JobModel

    m = JobModel(
        sizes=np.array([1.0, 4.0]),
        size_p=np.array([0.5, 0.5]),
        outcome_p=np.array([0.5, 0.5, 0.0]),
        long_p=np.array([0.0, 1.0]),
        long_median_s=np.array([[1000.0, 3000.0, 1.0], [1000.0, 3000.0, 1.0]]),
        short_median_s=10.0,
    )
    short_mean, k = 10.0 * np.exp(SHORT_SIGMA**2 / 2), np.exp(LONG_SIGMA**2 / 2)
    assert m.mean_s() == pytest.approx(0.5 * short_mean + 0.5 * k * (0.5 * 1000 + 0.5 * 3000))
    by_outcome = m.gpu_time_by_outcome_s()
    assert by_outcome[0] == pytest.approx(0.5 * 0.5 * short_mean + 0.5 * 0.5 * 4 * 1000 * k)
    assert by_outcome[1] == pytest.approx(0.5 * 0.5 * short_mean + 0.5 * 0.5 * 4 * 3000 * k)
    assert by_outcome[2] == 0.0
    # Half the jobs are short with median 10 s; a quarter each long around 1,000 s and 3,000 s.
    assert m.cdf(10.0) == pytest.approx(0.25 + 0.25 * sum(_phi(np.log(10 / x) / LONG_SIGMA) for x in (1e3, 3e3)))


def _phi(x: float) -> float:
    import math

    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def draws(preset: str, n: int, seed: int = 3, running: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sampler = PresetSampler(preset, HELIOS[preset.removeprefix("helios-")].gpus)
    got = [sampler.draw(rng, running) for _ in range(n)]
    gpus = np.array([g for g, _, _ in got], float)
    runtime = np.array([t for _, t, _ in got])
    outcome = np.array([OUTCOMES.index(o) for _, _, o in got])
    return gpus, runtime, outcome


def test_draws_follow_the_fit_over_many_jobs() -> None:
    # Saturn: its GPU time per job has a coefficient of variation of 4.6 (see the model's second
    # moments), so over 100,000 jobs the standard error is 1.5%; 10% is more than six of them.
    c = HELIOS["saturn"]
    gpus, runtime, outcome = draws("helios-saturn", 100_000)
    assert np.median(runtime) == pytest.approx(c.median_runtime_s, rel=0.03)
    assert runtime.mean() == pytest.approx(c.mean_runtime_s, rel=0.03)
    assert gpus.mean() == pytest.approx(c.mean_gpus, rel=0.03)
    assert set(np.unique(gpus)) <= {1, 2, 4, 8, 16, 32, 64, 128}
    rates = np.bincount(outcome, minlength=3) / len(outcome)
    assert rates == pytest.approx([c.complete_rate, c.cancel_rate, c.fail_rate], abs=0.01)
    gpu_time = gpus * runtime
    assert gpu_time.mean() == pytest.approx(c.gpu_time_per_job_s, rel=0.10)
    shares = np.bincount(outcome, weights=gpu_time, minlength=3) / gpu_time.sum()
    assert shares == pytest.approx(c.gpu_time_shares, rel=0.10)


def test_running_jobs_are_length_biased() -> None:
    # A job found running has run time T with probability proportional to T: its mean is E[T^2] / E[T].
    from twin.presets import LONG_SIGMA, SHORT_SIGMA

    m = fit_jobs("helios-earth", HELIOS["earth"].gpus)
    w = m.size_p[:, None] * m.long_p[:, None] * m.outcome_p[None, :]
    second = m.short_share * m.short_median_s**2 * np.exp(2 * SHORT_SIGMA**2) + float(
        (w * m.long_median_s**2).sum()
    ) * np.exp(2 * LONG_SIGMA**2)
    _, runtime, _ = draws("helios-earth", 50_000, running=True)
    assert runtime.mean() == pytest.approx(second / m.mean_s(), rel=0.05)


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
    queued = np.zeros(24)
    for hour in range(7 * 24):
        sim.run((hour + 1) * 3600.0)
        queued[hour % 24] += len(sim.queue) / 7
    sim.check_invariants()
    return build_report(sim) | {"queued_by_hour": queued}


WORKLOAD_KEYS = ("mean_gpus_per_job", "median_gpu_job_runtime_s", "mean_gpu_job_runtime_s")
RATE_KEYS = ("complete_rate", "cancel_rate", "fail_rate")


@pytest.mark.parametrize("key", WORKLOAD_KEYS + RATE_KEYS)
def test_a_week_of_earth_reproduces_the_table(earth_week: dict, key: str) -> None:
    w = earth_week["workload"]
    assert w["preset"] == "helios-earth"
    assert w["gpu_jobs"] > 10_000
    assert w[key] == pytest.approx(w["targets"][key], rel=0.10), key


def test_a_week_of_earth_runs_at_the_load_the_table_implies(earth_week: dict) -> None:
    # Little's law: the GPUs busy on average are arrivals per second x GPU time per job, so the week's
    # allocation checks the joint fit where it matters (an independent draw would give 29%, not 73%).
    earth = HELIOS["earth"]
    assert earth_week["mean_gpu_allocation"] == pytest.approx(earth.load, rel=0.10)
    # Afternoons are busier (daily rhythm): jobs queue then, hardly at night.
    q = earth_week["queued_by_hour"]
    assert q[14:21].mean() > 3 * max(q[1:8].mean(), 0.1)
    assert earth_week["mean_wait_s"] > 0


def test_a_week_of_earth_has_the_gpu_time_of_the_table(earth_week: dict) -> None:
    # Within 25%, not 10%: a week counts only jobs that ended in it, so the longest, biggest ones are
    # missing (10% of the GPU time per job, in expectation), and Earth's GPU time per job varies so much
    # (coefficient of variation 11) that over 16,000 jobs its standard error is 9%. The shares of a few
    # giant jobs vary more; the draws test checks them over 100,000 jobs.
    w = earth_week["workload"]
    assert w["gpu_time_per_job_s"] == pytest.approx(w["targets"]["gpu_time_per_job_s"], rel=0.25)
    shares = [w[f"{k}_gpu_time_share"] for k in ("complete", "cancel", "fail")]
    assert sum(shares) == pytest.approx(1.0)


def test_the_report_counts_gpu_time_by_outcome() -> None:
    # Three jobs that start at once and run undisturbed: GPU time is GPUs x run time, split by outcome.
    data = site(
        **{"workload": {"arrival": "none", "mix": [{"kind": "eval", "share": 1, "gpus": [1, 1], "median_hours": 1}]}}
    )
    sim = Simulation(scenario_from_dict(data))
    for i, (gpus, run_s, outcome) in enumerate(
        ((8, 1000.0, "completed"), (16, 500.0, "cancelled"), (1, 2000.0, "failed"))
    ):
        spec = JobSpec(
            i,
            "eval",
            gpus,
            0.0,
            run_s,
            run_s,
            params_b=0.1,
            read_mbs_per_gpu=1.0,
            checkpoint_s=0.0,
            serve_mbs_per_gpu=0.0,
            outcome=outcome,
        )
        sim.submit(spec)
    sim.run(3000)
    w = build_report(sim)["workload"]
    assert w["gpu_jobs"] == 3
    assert w["gpu_time_per_job_s"] == pytest.approx((8000 + 8000 + 2000) / 3)
    assert w["complete_gpu_time_share"] == pytest.approx(8 / 18)
    assert w["cancel_gpu_time_share"] == pytest.approx(8 / 18)
    assert w["fail_gpu_time_share"] == pytest.approx(2 / 18)


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
    gpu_time = ("gpu_time_per_job_s", "complete_gpu_time_share", "cancel_gpu_time_share", "fail_gpu_time_share")
    assert set(gpu_time) <= set(w) and set(gpu_time) <= set(w["targets"])
    assert w["targets"]["gpu_time_per_job_s"] == pytest.approx(HELIOS["earth"].gpu_time_per_job_s)
