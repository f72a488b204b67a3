"""Operations: flag errors as one line, every input bounded, only regular files read, bad rows as rows,
outputs checked first and written atomically, clean stops on signals, exhibit --check, shipped scenarios
by name, --version."""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, site
from twin import signals
from twin.cli import main
from twin.compare import worker_count
from twin.errors import ScenarioError
from twin.outputs import atomic_path, check_output, clean_stale, temp_path, write_atomic
from twin.scenario import MAX_GPUS, load_scenario, scenario_from_dict, site_size
from twin.telemetry import load_telemetry, read_vc
from twin.trace import TraceStats, read_trace

pytestmark = pytest.mark.timeout(60)

SCENARIOS = ROOT / "scenarios"
SMALL = SCENARIOS / "small-lab.toml"
LINGANG = SCENARIOS / "lingang.toml"
TRACE_HEADER = "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue"
VC_HEADER = "time,total_gpu_num,running_gpu_num,running_gpujob_num,pending_gpujob_num"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def toml_text(data: dict, prefix: str = "") -> str:
    """A small TOML writer for test files (tables, arrays of tables, numbers incl. nan/inf, strings, lists)."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(type(v))

    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v, False))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v, True))
        else:
            lines.append(f"{json.dumps(k) if not k.replace('_', '').isalnum() else k} = {value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v, many in tables:
        name = f"{prefix}{k}"
        for item in v if many else [v]:
            out += f"\n[[{name}]]\n" if many else f"\n[{name}]\n"
            out += toml_text(item, f"{name}.")
    return out


def run(*args: str, timeout: float = 30, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def trace_row(job: str, gpus: object, submit: str, duration: object, state: str = "COMPLETED") -> str:
    return f"{job},u,vc,{gpus},4,1,{state},{submit},{submit},,{duration},0"


def write_trace(path: Path, rows: list[str], bom: bool = False) -> Path:
    text = ("\ufeff" if bom else "") + "\n".join([TRACE_HEADER, *rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- (7) flag errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", str(SMALL), "--hours", "-1"], "expected a positive number"),
        (["simulate", str(SMALL), "--bogus"], "unrecognized arguments: --bogus"),
        (["compare"], "the following arguments are required: scenario"),
        (["shot", str(SMALL), "--layout", "round"], "invalid choice: 'round'"),
    ],
)
def test_flag_errors_are_one_line_with_exit_2(argv: list[str], expected: str) -> None:
    proc = run(*argv)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert expected in line and "--help" in line and "usage:" not in proc.stderr


def test_help_still_shows_the_usage_and_version_says_what_it_is() -> None:
    proc = run("simulate", "--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout and "--hours" in proc.stdout
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("twin ") and proc.stdout.split()[1][0].isdigit()


# --- (1) every input bounded ----------------------------------------------------------------------

TOO_BIG = [
    ("topology.spines", 10**12),
    ("topology.port_gbps", 1e12),
    ("topology.leaf_radix", 10**12),
    ("topology.oversubscription", 1e12),
    ("node.nics", 10**12),
    ("node.gpus", 10**12),
    ("gpu.peak_tflops", 1e12),
    ("simulation.hours", 1e12),
    ("simulation.step_s", 1e-9),
    ("power.pue", math.inf),
    ("node.gpus", math.inf),
    ("gpu.idle_watts", math.nan),
]


@pytest.mark.parametrize(("field", "value"), TOO_BIG, ids=[f"{f}={v}" for f, v in TOO_BIG])
def test_out_of_range_fields_are_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(toml_text(site(**{field: value})))
    started = time.perf_counter()
    assert main(["validate", str(path)]) == 2
    assert time.perf_counter() - started < 1.0
    line = one_line(capsys.readouterr().err)
    assert str(path) in line and field in line and "line " in line and "expected" in line


def test_a_site_over_the_maximum_is_refused_before_anything_is_built(capsys: pytest.CaptureFixture[str]) -> None:
    data = site(**{"topology.racks": 32_768, "topology.nodes_per_rack": 64})
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"topology\.racks: expected a site of at most 262,144 GPUs"):
        scenario_from_dict(data)
    assert time.perf_counter() - started < 0.5


def test_the_largest_site_to_support_validates_in_a_second(tmp_path: Path, capsys) -> None:
    """A three-tier fat-tree of k = 38: 13,718 servers of 8 GPUs (109,744 GPUs), more than the 100,000."""
    topology = {"kind": "fat-tree", "k": 38, "nodes_per_rack": 19, "spine_radix": 40, "port_gbps": 400}
    data = site(**{"topology": topology})
    path = tmp_path / "big.toml"
    path.write_text(toml_text(data))
    started = time.perf_counter()
    assert main(["validate", str(path)]) == 0
    assert time.perf_counter() - started < 1.0
    size = site_size(load_scenario(path))
    assert size.gpus == 109_744 <= MAX_GPUS and "109,744" in capsys.readouterr().out


def test_site_size_counts_what_build_fabric_builds(shipped: Path) -> None:
    from twin.topology import build_fabric

    s = load_scenario(shipped)
    fabric, size = build_fabric(s), site_size(s)
    assert (size.servers, size.gpus, size.switches, size.cables) == (
        fabric.n_nodes,
        fabric.n_gpus,
        fabric.switch_gids.size,
        fabric.n_edges,
    )


def test_a_playlist_scene_too_fast_is_refused(tmp_path: Path) -> None:
    from twin.playlist import load_playlist

    path = tmp_path / "p.toml"
    path.write_text(toml_text({"scene": [{"scenario": str(SMALL), "seconds": 10, "speed": 1e12}]}))
    with pytest.raises(ScenarioError, match=r"line 5: scene\[0\]\.speed: expected a number of at most 10,000"):
        load_playlist(path)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", "x.toml", "--hours", "1e12"], "at most 8,784"),
        (["simulate", "x.toml", "--hours", "nan"], "expected a positive number"),
        (["shot", "x.toml", "--at", "1e12"], "from 0 to"),
        (["shot", "x.toml", "--at", "inf"], "from 0 to"),
        (["record", "x.toml", "--speed", "1e9"], "at most 86,400"),
        (["record", "x.toml", "--fps", "0.000001"], "from 1 to 120"),
        (["compare", "x.toml", "--seeds", "1000000"], "from 1 to 1,000"),
        (["compare", "x.toml", "--workers", "1000"], "from 1 to 256"),
        (["view", "x.toml", "--speed", "1e12"], "at most 10,000"),
        (["simulate", "x.toml", "--seed", "99999999999999999999"], "at most 4,294,967,295"),
        (["exhibit", "--display", "99"], "from 0 to 15"),
    ],
)
def test_flags_are_bounded(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert expected in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--policies", ""], "expected one or more of fifo"),
        (["--faults", "node_mtbf_hours=inf"], "node_mtbf_hours: expected a number"),
        (["--faults", "node_mtbf_hours=1e-9"], "0 (never) or 1 to"),
        (["--checkpoint-minutes", "1e12"], "0 (none) to 10,080 minutes"),
        (["--policies", "fifo,backfill,topology", "--seeds", "1000", "--faults", "node_mtbf_hours=" + "1,2,3,4"], ""),
    ],
)
def test_compare_requests_are_bounded(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SMALL), "--hours", "1", *argv]) == 2
    line = one_line(capsys.readouterr().err)
    assert expected in line and ("expected at most 10,000" in line or expected)


def test_compare_never_starts_more_workers_than_runs() -> None:
    assert worker_count(1, 1000) == 1
    assert worker_count(3, 200) == 3
    assert worker_count(100, None) == min(100, os.cpu_count() or 1)
    assert worker_count(100, 64) == 64  # asked for: more than the cores is allowed, never more than runs


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for argv in (
        ["validate", str(fifo)],
        ["validate", str(tmp_path)],
        ["validate", "/dev/null"],
        ["replay", str(fifo), "--scenario", str(SMALL), "--headless"],
        ["replay", str(tmp_path), "--scenario", str(SMALL), "--headless"],
        ["exhibit", str(fifo), "--check"],
    ):
        proc = run(*argv, timeout=20)
        assert proc.returncode == 2, (argv, proc.stderr)
        line = one_line(proc.stderr)
        assert "expected a regular file" in line and argv[1] in line
    rec = tmp_path / "rec"
    rec.mkdir()
    os.mkfifo(rec / "vcA_per_minute.csv")
    proc = run("mirror", str(rec), "--report", str(tmp_path / "m.json"), timeout=20)
    assert proc.returncode == 2 and "vcA_per_minute.csv: expected a regular file" in one_line(proc.stderr)


# --- (2) bad rows are rows ------------------------------------------------------------------------


def test_bad_trace_rows_are_counted_with_their_lines(tmp_path: Path) -> None:
    rows = [
        trace_row("good", 8, "2020-05-01 00:00:00", 600),  # line 2
        trace_row("inf", 8, "2020-05-01 00:01:00", "inf"),  # 3
        trace_row("huge", 8, "2020-05-01 00:01:00", 10**12),  # 4
        trace_row("nan-submit", 8, "nan", 60),  # 5
        trace_row("inf-gpus", "inf", "2020-05-01 00:02:00", 60),  # 6
        trace_row("far", 8, "1e300", 60),  # 7
        "x" * 200_000,  # 8: one oversized field
        trace_row("nan-dur", 8, "2020-05-01 00:03:00", "nan"),  # 9
        trace_row("too-big", 4096, "2020-05-01 00:04:00", 60),  # 10
        trace_row("good2", 16, "2020-05-01 00:05:00", 600),  # 11
    ]
    stats = TraceStats()
    jobs = list(read_trace(write_trace(tmp_path / "t.csv", rows, bom=True), stats=stats, max_gpus=32))
    assert [j.job_id for j in jobs] == ["good", "good2"] and [j.line for j in jobs] == [2, 11]
    lines = dict(stats.examples)
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "bad duration" in lines[3] and "over a year" in lines[4] and "time" in lines[5]
    assert "bad GPU count" in lines[6] and "oversized line" in lines[8] and "more GPUs than the site" in lines[10]


def test_strict_stops_at_a_job_bigger_than_the_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(
        tmp_path / "t.csv",
        [trace_row("a", 8, "2020-05-01 00:00:00", 60), trace_row("b", 4096, "2020-05-01 00:01:00", 60)],
    )
    argv = ["replay", str(trace), "--scenario", str(SMALL), "--headless", "--strict"]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{trace}: line 3: expected a good row with --strict, got more GPUs than the site" in line


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_is_one_line_naming_the_file(tmp_path: Path, damage: str, capsys) -> None:
    rows = [trace_row(f"j{i}", 1, f"2020-05-01 00:{i % 60:02d}:00", 60) for i in range(20_000)]
    good = write_trace(tmp_path / "t.csv.gz", rows).read_bytes()
    bad = good[: len(good) // 2] if damage == "truncated" else good[:2000] + bytes(500) + good[2500:]
    (tmp_path / "t.csv.gz").write_bytes(bad)
    assert main(["replay", str(tmp_path / "t.csv.gz"), "--scenario", str(SMALL), "--headless"]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(tmp_path / "t.csv.gz") in line and "line " in line and "truncated or corrupt" in line


def write_vc(path: Path, lines: list[str], bom: bool = False) -> Path:
    text = ("\ufeff" if bom else "") + "\n".join([VC_HEADER, *lines]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_impossible_telemetry_is_reported_not_shown(tmp_path: Path) -> None:
    vc = read_vc(
        write_vc(
            tmp_path / "vcA_per_minute.csv",
            [
                "2020-05-01 00:00:00,32,8,1,0",  # 2
                "2020-05-01 00:01:00,32,500,1,0",  # 3: more busy than there are
                "nan,32,8,1,0",  # 4: a NaN time must not hide the next minute
                "2020-05-01 00:02:00,32,9,1,0",  # 5
                "2020-05-01 00:03:00,1e12,9,1,0",  # 6
                "2020-05-01 00:04:00,inf,9,1,0",  # 7
                "2020-05-01 00:05:00,32,9,1e300,0",  # 8
            ],
            bom=True,
        )
    )
    assert list(vc.running_gpus) == [8, 9] and vc.size == 32
    reasons = dict(vc.malformed)
    assert sorted(reasons) == [3, 4, 6, 7, 8]
    assert "impossible: 500 GPUs busy of 32" in reasons[3] and "not a time" in reasons[4]


def test_a_daily_size_of_a_trillion_gpus_is_a_note_not_a_site(tmp_path: Path) -> None:
    write_vc(tmp_path / "vcA_per_minute.csv", ["2020-05-01 00:00:00,32,8,1,0"])
    (tmp_path / "earth_vc_gpu_number_daily.csv").write_text("date,vcA,total\n2020-05-01,1000000000000,1\n")
    t = load_telemetry(tmp_path)
    assert t.vcs[0].size == 32 and any("values skipped" in n for n in t.notes)


# --- (3) outputs checked first, written atomically ------------------------------------------------


def test_outputs_that_must_not_be_written_are_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL.read_text())
    folder = tmp_path / "in"
    folder.mkdir()
    (tmp_path / "file").write_text("x")
    cases = {
        tmp_path: "is a folder",
        Path("/dev/null"): "is a device",
        scenario: "is an input of this run",
        folder / "r.json": "an input folder",
        tmp_path / "missing" / "r.json": "does not exist",
        tmp_path / "file" / "r.json": "is a file, not a folder",
    }
    for path, expected in cases.items():
        with pytest.raises(ScenarioError, match=expected):
            check_output(path, [scenario, folder])
    assert check_output(tmp_path / "ok.json", [scenario, folder]) == tmp_path / "ok.json"


def test_mirror_report_never_overwrites_the_telemetry(tmp_path: Path, capsys) -> None:
    target = write_vc(tmp_path / "vcA_per_minute.csv", ["2020-05-01 00:00:00,32,8,1,0"])
    before = target.read_bytes()
    assert main(["mirror", str(tmp_path), "--report", str(target)]) == 2
    assert target.read_bytes() == before and "input" in one_line(capsys.readouterr().err)


def test_exhibit_log_is_never_an_input_nor_a_folder(tmp_path: Path, capsys) -> None:
    playlist = tmp_path / "p.toml"
    playlist.write_text(toml_text({"scene": [{"scenario": str(SMALL), "seconds": 10}]}))
    before = playlist.read_bytes()
    for log in (playlist, SMALL, tmp_path, Path("/dev/null")):
        assert main(["exhibit", str(playlist), "--windowed", "--quit-after", "1", "--log", str(log)]) == 2
        assert one_line(capsys.readouterr().err)
    assert playlist.read_bytes() == before


def test_writes_are_atomic_and_leave_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    write_atomic(out, "one")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert out.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_stale_temporary_files_of_dead_runs_are_cleaned(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".demo.mp4.{int(dead.stdout)}.twin-tmp.mp4"
    stale.write_bytes(b"x")
    mine = temp_path(tmp_path / "r.json")
    mine.write_text("in progress")
    assert clean_stale(tmp_path) == [stale]
    assert mine.exists() and not stale.exists()


# --- (4) clean stops ------------------------------------------------------------------------------


def test_polled_stop_sets_a_flag_then_escalates(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    signals.install_stop_handlers(log=said.append)
    try:
        assert not signals.stop_requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.stop_requested() and signals.stop_signal() == "SIGTERM"
        assert said == ["stop requested by SIGTERM"]
        with pytest.raises(signals.StopRequested):  # a second signal raises at once
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.5)
        signals.install_stop_handlers()
        started = time.perf_counter()
        with pytest.raises(signals.StopRequested):  # a loop that never polls is stopped all the same
            os.kill(os.getpid(), signal.SIGINT)
            while time.perf_counter() - started < 5:
                time.sleep(0.01)
        assert time.perf_counter() - started < signals.ESCALATE_S + 0.5
    finally:
        signals.reset()


def _started(proc: subprocess.Popen, seconds: float) -> None:
    time.sleep(seconds)
    assert proc.poll() is None, proc.communicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_headless_run_stops_within_two_seconds_and_writes_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    report = tmp_path / "r.json"
    cmd = [sys.executable, str(ROOT / "main.py"), "simulate", str(LINGANG), "--hours", "8000", "--report", str(report)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=ENV)
    _started(proc, 3.0)
    sent = time.perf_counter()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert time.perf_counter() - sent < 2.0
    assert proc.returncode == 128 + sig and f"stopped by {sig.name}" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_stopped_recording_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    # Long enough (an hour of video) to be still recording however fast the machine is.
    cmd = [sys.executable, str(ROOT / "main.py"), "record", str(SMALL), "--size", "320x240", "--seconds", "3600"]
    cmd += ["--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=ENV)
    _started(proc, 4.0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 143 and list(tmp_path.iterdir()) == []


def test_compare_stops_its_workers(tmp_path: Path) -> None:
    # A year of Lingang per run: still running however fast the machine is.
    cmd = [sys.executable, str(ROOT / "main.py"), "compare", str(LINGANG), "--seeds", "2", "--policies", "fifo"]
    cmd += ["--hours", "8000"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    _started(proc, 5.0)
    sent = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl+C does: the whole process group
    _, err = proc.communicate(timeout=10)
    assert time.perf_counter() - sent < 2.0 and proc.returncode == 130
    assert "Traceback" not in err and one_line(err) == "stopped by SIGINT"
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], "no worker outlives the run"


def test_the_show_stops_on_sigterm_with_a_log_line_and_exit_0(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "exhibit.log"
    cmd = [sys.executable, str(ROOT / "main.py"), "exhibit", "--windowed", "--size", "640x360", "--log", str(log)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    _started(proc, 6.0)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert time.perf_counter() - sent < 2.0
    assert proc.returncode == 0 and out == "" and "Traceback" not in err
    assert "stop requested by SIGTERM" in log.read_text()


def test_exhibit_check_says_what_is_wrong(tmp_path: Path) -> None:
    proc = run("exhibit", "--check", "--log", str(tmp_path / "logs" / "exhibit.log"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 9 checks passed" in proc.stdout and "fonts: 3 faces" in proc.stdout
    playlist = tmp_path / "p.toml"
    playlist.write_text(toml_text({"scene": [{"scenario": str(SMALL), "seconds": 10}, {"scenario": "gone.toml"}]}))
    proc = run("exhibit", str(playlist), "--check", "--log", str(playlist))
    assert proc.returncode == 2
    assert "scene[1].seconds: expected this field (missing)" in proc.stdout
    playlist.write_text(
        toml_text({"scene": [{"scenario": str(SMALL), "seconds": 10}, {"scenario": "gone.toml", "seconds": 5}]})
    )
    proc = run("exhibit", str(playlist), "--check", "--log", str(playlist))
    assert proc.returncode == 2
    assert "FAIL  " in proc.stdout and "gone.toml: file not found" in proc.stdout
    assert "is an input of this run; choose another log path" in proc.stdout


# --- (5) shipped scenarios by name --------------------------------------------------------------------


def test_shipped_scenarios_are_found_by_name_from_any_folder(tmp_path: Path) -> None:
    proc = run("validate", "lingang", cwd=tmp_path)
    assert proc.returncode == 0 and "12,000" in proc.stdout
    proc = run("validate", "small-lab.toml", cwd=tmp_path)
    assert proc.returncode == 0 and "Small AI Lab" in proc.stdout
    proc = run("validate", "no-such-site", cwd=tmp_path)
    assert proc.returncode == 2 and "no-such-site: file not found" in one_line(proc.stderr)
