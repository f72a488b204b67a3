"""Golden outputs: small-lab's metrics at fixed times, kept in a file, catch unintended behaviour changes.

Regenerate on purpose only, after a change that is meant to alter behaviour:
    TWIN_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import ROOT
from twin.report import build_report
from twin.scenario import load_scenario
from twin.simulation import Simulation

GOLDEN = Path(__file__).parent / "golden" / "small-lab.json"
FIELDS = (
    "pflops",
    "pflops_delivered",
    "gpu_allocation",
    "jobs_running",
    "jobs_queued",
    "jobs_done",
    "facility_mw",
    "max_link_util",
)
REPORT = (
    "jobs_submitted",
    "jobs_completed",
    "mean_gpu_allocation",
    "mean_wait_s",
    "mean_jct_s",
    "energy_mwh",
    "pflops_delivered_mean",
    "mfu_mean",
    "mean_step_slowdown",
)


def current() -> dict:
    sim = Simulation(load_scenario(ROOT / "scenarios" / "small-lab.toml"))
    rows = []
    for hour in range(1, 7):
        sim.run(hour * 3600.0)
        latest = sim.series.latest()
        rows.append({"hour": hour, **{f: latest[f] for f in FIELDS}})
    report = build_report(sim)
    return {"rows": rows, "report": {k: report[k] for k in REPORT}}


def test_small_lab_matches_golden() -> None:
    got = current()
    if os.environ.get("TWIN_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2) + "\n")
        pytest.skip("golden file regenerated")
    want = json.loads(GOLDEN.read_text())
    for g, w in zip(got["rows"], want["rows"], strict=True):
        for key in w:
            assert g[key] == pytest.approx(w[key], rel=1e-9, abs=1e-12), (g["hour"], key)
    for key, value in want["report"].items():
        assert got["report"][key] == pytest.approx(value, rel=1e-9), key
