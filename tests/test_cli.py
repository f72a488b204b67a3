"""The command line: report fields, errors as one line with exit code 2, nothing overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from twin.cli import main

SMALL = ROOT / "scenarios" / "small-lab.toml"
REPORT_FIELDS = [
    "site",
    "gpus",
    "nodes",
    "switches",
    "links",
    "peak_pflops",
    "simulated_hours",
    "jobs_submitted",
    "jobs_completed",
    "jobs_running",
    "jobs_queued",
    "mean_gpu_allocation",
    "mean_pflops_in_use",
    "mean_wait_s",
    "p95_wait_s",
    "mean_jct_s",
    "mean_link_utilization",
    "max_link_utilization",
    "energy_mwh",
    "mean_facility_mw",
]


def test_simulate_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["simulate", str(SMALL), "--hours", "2", "--seed", "5", "--report", str(out)]) == 0
    report = json.loads(out.read_text())
    for field in REPORT_FIELDS:
        assert field in report, field
    assert report["simulated_hours"] == 2
    assert report["gpus"] == 128 and report["seed"] == 5
    assert 0 <= report["mean_gpu_allocation"] <= 1
    assert report["jobs_submitted"] == report["jobs_completed"] + report["jobs_running"] + report["jobs_queued"]
    assert report["energy_mwh"] == pytest.approx(report["mean_facility_mw"] * 2)
    printed = capsys.readouterr().out
    assert "GPU allocation (mean)" in printed and "Small AI Lab" in printed


def test_report_into_missing_folder_fails_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(SMALL), "--hours", "1000", "--report", str(tmp_path / "no" / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_never_overwrites_the_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL.read_text())
    assert main(["simulate", str(scenario), "--hours", "1", "--report", str(scenario)]) == 2
    assert scenario.read_text() == SMALL.read_text()


def test_validate_describes_the_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "scenarios" / "lingang.toml")]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "12,000" in out and "3,744 PFLOPS" in out


def test_bad_flag_value_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "main.py", "simulate", str(SMALL), "--hours", "-1"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "expected a positive number" in proc.stderr and "Traceback" not in proc.stderr


def test_main_py_runs_as_a_script(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "main.py", "simulate", str(SMALL), "--hours", "0.5", "--report", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["simulated_hours"] == 0.5
