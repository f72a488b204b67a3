"""The telemetry mirror: reading per-minute VC files (plain and gzipped), gaps shown as gaps, malformed
lines reported, the report a script reads, the picture, the simulated twin beside it, and the real
Helios files where ../shared/ is present."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pygame
import pytest

from conftest import ROOT
from twin.cli import main
from twin.errors import ScenarioError
from twin.mirror import Mirror
from twin.telemetry import load_telemetry, read_vc
from twin.trace import parse_time

HEADER = (
    "time,total_job_num,running_job_num,pending_job_num,total_gpujob_num,running_gpujob_num,pending_gpujob_num,"
    "total_gpu_num,running_gpu_num,pending_gpu_num,idle_gpu_num,gpu_utilization"
)
HELIOS = ROOT.parent / "shared" / "data" / "helios"
T0 = parse_time("2020-05-01 00:00:00")


def minute(t: float, gpus: int, running: int, jobs: int, pending: int) -> str:
    stamp = f"2020-05-{1 + int(t // 86400):02d} {int(t % 86400 // 3600):02d}:{int(t % 3600 // 60):02d}:00"
    counts = f"{jobs + pending},{jobs},{pending}"  # all jobs, then GPU jobs: the same here
    return f"{stamp},{counts},{counts},{gpus},{running},0,{gpus - running},{running / gpus:.3f}"


def write(path: Path, lines: list[str]) -> Path:
    text = "\n".join([HEADER, *lines]) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Two VCs over two hours: vcA (32 GPUs, plain CSV, with a 30-minute gap and a malformed line) and
    vcB (16 GPUs, gzipped, steady)."""
    a = [minute(m * 60, 32, min(32, m // 4), 1 + m // 30, m % 3) for m in range(120) if not 40 <= m < 70]
    a.insert(10, "2020-05-01 00:10:30,garbage")
    folder = tmp_path / "recording"  # its own folder: an output may not go inside an input folder
    folder.mkdir()
    write(folder / "earth_vcA_per_minute_2020-05.csv", a)
    write(folder / "earth_vcB_per_minute_2020-05.csv.gz", [minute(m * 60, 16, 12, 3, 1) for m in range(120)])
    return folder


def test_reading_plain_and_gzip_with_gaps_and_malformed_lines(recording: Path) -> None:
    t = load_telemetry(recording)
    assert [v.name for v in t.vcs] == ["vcA", "vcB"]
    a, b = t.vcs
    assert a.size == 32 and b.size == 16 and len(b.time) == 120
    assert a.malformed == [(12, "expected 12 fields, got 2")]
    assert a.gaps() == [(T0 + 40 * 60, T0 + 70 * 60)]
    assert a.at(T0 + 39 * 60 + 59) == {"gpus": 32, "running_gpus": 9, "running_jobs": 2, "pending_jobs": 0}
    assert a.at(T0 + 45 * 60) is None, "a gap is a gap, not the last value carried on"
    assert a.at(T0 + 70 * 60)["running_gpus"] == 17
    assert a.at(T0 - 1) is None and b.at(T0 + 120 * 60) is None
    notes = " | ".join(t.notes)
    assert "1 malformed lines skipped (first: line 12" in notes and "1 gaps in time" in notes


def test_problems_that_stop_the_mirror_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["mirror", str(tmp_path / "nowhere")]) == 2
    assert "folder not found" in capsys.readouterr().err
    assert main(["mirror", str(tmp_path)]) == 2
    assert "expected per-minute telemetry files" in capsys.readouterr().err
    (tmp_path / "vcX_per_minute_2020-05.csv").write_text(HEADER + "\n")
    assert main(["mirror", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "every file was empty (vcX)" in err
    (tmp_path / "vcY_per_minute_2020-05.csv").write_text("time,running_gpu_num\n2020-05-01 00:00:00,3\n")
    with pytest.raises(ScenarioError, match=r"vcY_per_minute_2020-05.csv: line 1: expected columns total_gpu_num"):
        read_vc(tmp_path / "vcY_per_minute_2020-05.csv")


def test_report_for_a_minute(recording: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.json"
    assert main(["mirror", str(recording), "--at", "2020-05-01 01:15", "--report", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report == {
        "time": "2020-05-01 01:15:00",
        "vcs": {
            "vcA": {"gpus": 32, "running_gpus": 18, "running_jobs": 3, "pending_jobs": 0},
            "vcB": {"gpus": 16, "running_gpus": 12, "running_jobs": 3, "pending_jobs": 1},
        },
    }
    assert main(["mirror", str(recording), "--at", "2020-05-01 00:50", "--report", str(out)]) == 0
    assert json.loads(out.read_text())["vcs"]["vcA"] is None
    assert "vcA        no data" in capsys.readouterr().out
    assert main(["mirror", str(recording), "--at", "2021-01-01 00:00", "--report", str(out)]) == 2
    assert "expected a time in the recording, 2020-05-01 00:00:00 to 2020-05-01 02:00:00" in capsys.readouterr().err
    assert main(["mirror", str(recording), "--at", "teatime", "--report", str(out)]) == 2


@pytest.fixture
def display() -> None:
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    pygame.display.init()
    pygame.display.set_mode((320, 240))
    yield
    pygame.display.quit()


def test_the_mirror_lights_each_vcs_busy_gpus_and_draws_them(recording: Path, display) -> None:
    from twin.render import style
    from twin.render.app import Frame

    mirror = Mirror(load_telemetry(recording))
    mirror.run(30 * 60)
    owner = mirror.owner
    for i, (name, running) in enumerate((("vcA", 7), ("vcB", 12))):
        assert (owner == i).sum() == running, name
        assert (owner[mirror.vc_nodes[i]] == i).sum() == running, "lit inside the VC's own servers"
    latest = mirror.series.latest()
    assert latest["gpu_allocation"] == pytest.approx((7 + 12) / 48)
    assert latest["jobs_queued"] == 0 + 1
    frame = Frame(mirror, (1280, 720), "hall")
    frame.refresh(0.0, force=True)
    surface = pygame.Surface((1280, 720)).convert()
    frame.draw(surface, 0.0)
    assert frame.state.epoch == mirror.t0
    assert frame.site.layout.block_labels == ("vcA", "vcB"), "racks are named after their VC"
    # A busy server of vcB is drawn in vcB's colour (its first GPU, the left eighth of the cell).
    node = int(mirror.vc_nodes[1][0])
    x, y, w, h = frame.site.layout.rect[mirror.fabric.node_gid[node]]
    sx, sy = frame.site.camera.to_screen(np.array([x + w / 16, y + h / 2]))
    got = np.array(surface.get_at((round(sx), round(sy))))[:3]
    want = style.job_colors(np.array([1]))[0].astype(int)
    assert np.abs(got - want).max() < 60
    mirror.run(50 * 60)  # into vcA's gap
    assert (mirror.owner == 0).sum() == 0
    assert mirror.snapshot().jobs[0].phase.startswith("no data")
    frame.refresh(1.0, force=True)
    frame.draw(surface, 1.0)  # a gap in the sparklines draws as a gap
    assert np.isfinite(mirror.series.latest()["gpu_allocation"]), "vcB still reports during vcA's gap"


def test_compare_sim_runs_the_calibrated_twin_beside_the_recording(recording: Path) -> None:
    mirror = Mirror(load_telemetry(recording), compare=True)
    mirror.run(3600)
    assert mirror.compare is not None and mirror.compare.now == 3600
    assert mirror.compare.scenario.workload.preset == "helios-earth"
    assert mirror.compare.fabric.n_gpus == mirror.fabric.n_gpus
    sim_alloc = mirror.series.column("sim_gpu_allocation")
    assert np.isfinite(sim_alloc[-10:]).all() and sim_alloc[-1] > 0
    assert "simulated" in mirror.report()


def test_mirror_window_runs_headless(recording: Path, capfd) -> None:
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    assert main(["mirror", str(recording), "--compare-sim", "--size", "800x450", "--quit-after", "1"]) == 0
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.skipif(not HELIOS.exists(), reason="../shared/ is not here")
def test_the_real_helios_files(tmp_path: Path) -> None:
    t = load_telemetry(HELIOS)
    assert {v.name for v in t.vcs} == {"vc6YE", "vchbv", "vcgkz"}
    assert {v.name: v.size for v in t.vcs} == {"vc6YE": 208, "vchbv": 64, "vcgkz": 8}
    assert all(len(v.time) == 44_640 for v in t.vcs)
    assert t.notes == [], "the May 2020 files have no gaps and no malformed lines"
    out = tmp_path / "m.json"
    assert main(["mirror", str(HELIOS), "--at", "2020-05-01 00:00", "--report", str(out)]) == 0
    vc = json.loads(out.read_text())["vcs"]["vc6YE"]
    assert vc == {"gpus": 208, "running_gpus": 162, "running_jobs": 6, "pending_jobs": 0}


def test_scrubbing_goes_back_and_forth_within_the_recording(recording: Path) -> None:
    mirror = Mirror(load_telemetry(recording))
    mirror.run(100 * 60)
    mirror.seek(20 * 60)
    assert mirror.now == 20 * 60 and (mirror.owner == 0).sum() == 5  # vcA ran 20 // 4 GPUs then
    mirror.seek(10 * 86400)
    assert mirror.now == 119 * 60, "clamped to the last recorded minute"
    assert mirror.report()["time"] == "2020-05-01 01:59:00"
