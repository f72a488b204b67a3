"""Property-based fuzzing (hypothesis) of everything a user hands the CLI: scenario files, trace rows,
telemetry rows, playlists and flag values. Whatever comes in: exit 0 or 2, never a traceback, one line
naming the file and the field or line, a bounded time, and the input unchanged.

Examples are few and derandomized (the same cases on every run, so CI is steady); each test has a
pytest-timeout, and each example is timed against a few seconds.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ops import toml_text

from conftest import ROOT, site
from twin.cli import main
from twin.errors import ScenarioError
from twin.playlist import load_playlist
from twin.scenario import MAX_CABLES, MAX_GPUS, load_scenario, site_size
from twin.telemetry import MAX_VC_GPUS, read_vc
from twin.trace import MAX_JOB_S, MAX_TIME, MIN_TIME, TraceStats, read_trace

pytestmark = pytest.mark.timeout(240)

SMALL = ROOT / "scenarios" / "small-lab.toml"
FUZZ = settings(
    max_examples=50,
    deadline=None,  # timed below against a bound that a loaded CI machine still meets
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS = 5.0  # no example may take longer

NUMBERS = st.one_of(
    st.integers(-(10**15), 10**15),
    st.integers(0, 64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e-9, 1e12, 10**12, 2**63, float("inf"), float("nan")]),
)
ANY_VALUE = st.one_of(
    NUMBERS, st.text(max_size=12), st.booleans(), st.lists(st.integers(-5, 10**6), max_size=3), st.just({"x": 1})
)
FIELDS = [
    "topology.racks",
    "topology.nodes_per_rack",
    "topology.spines",
    "topology.oversubscription",
    "topology.leaf_radix",
    "topology.spine_radix",
    "topology.port_gbps",
    "topology.kind",
    "topology.k",
    "node.gpus",
    "node.nics",
    "node.nic_gbps",
    "node.overhead_watts",
    "gpu.peak_tflops",
    "gpu.idle_watts",
    "gpu.max_watts",
    "workload.jobs_per_hour",
    "workload.initial_load",
    "workload.arrival",
    "power.pue",
    "simulation.seed",
    "simulation.step_s",
    "simulation.hours",
    "site.name",
    "site.unknown_field",
]


def run_cli(argv: list[str]) -> tuple[int, str, str, float]:
    """main() in this process: (exit code, stdout, stderr, seconds); argparse's SystemExit is an exit code."""
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as done:
            code = int(done.code or 0)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - started


def assert_clean(code: int, err: str, seconds: float, *names: str) -> None:
    """Exit 0 or 2; on 2 one line that names what was given; never a traceback; bounded time."""
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    assert seconds < SECONDS
    if code == 2:
        lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("note:", "  bad row:"))]
        assert len(lines) == 1, err
        assert any(n in lines[0] for n in names), (names, lines[0])


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(FIELDS), ANY_VALUE, min_size=1, max_size=4))
def test_scenario_files(changes: dict[str, object]) -> None:
    data = site(**{"workload.arrival": "poisson", "workload.jobs_per_hour": 2})
    for dotted, value in changes.items():
        table, key = dotted.split(".")
        data[table][key] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.toml"
        path.write_text(toml_text(data))
        before = path.read_bytes()
        code, out, err, seconds = run_cli(["validate", str(path)])
        assert_clean(code, err, seconds, str(path))
        assert path.read_bytes() == before
        if code == 2:
            assert ("expected" in err or "not valid TOML" in err) and (
                "." in err.split(str(path), 1)[1] or "line" in err
            )
        else:
            size = site_size(load_scenario(path))
            assert size.gpus <= MAX_GPUS and size.cables <= MAX_CABLES and "ok" in out


@FUZZ
@given(body=st.one_of(st.binary(max_size=3000), st.text(max_size=3000).map(str.encode)))
def test_scenario_files_of_anything(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.toml"
        path.write_bytes(body)
        code, _, err, seconds = run_cli(["validate", str(path)])
        assert_clean(code, err, seconds, str(path))
        assert code == 2 and path.read_bytes() == body


CELLS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e300", "-5", "", "NaN", "1e12", "2020-13-45 25:61:00", "0"]),
    st.text(max_size=8).filter(lambda s: "," not in s and "\n" not in s and "\r" not in s and '"' not in s),
)
GPUS = st.one_of(st.integers(0, 40).map(str), CELLS)
SUBMITS = st.one_of(st.integers(0, 86_400).map(lambda s: f"2020-05-01 {s // 3600:02d}:{s // 60 % 60:02d}:00"), CELLS)
DURATIONS = st.one_of(st.integers(1, 3600).map(str), st.floats(0, 3600).map(repr), CELLS)
TRACE_ROWS = st.lists(st.tuples(GPUS, SUBMITS, DURATIONS, st.sampled_from(["COMPLETED", "FAILED", "X"])), max_size=25)
HEADER = "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue"


def trace_text(rows: list[tuple[str, str, str, str]], bom: bool) -> str:
    body = [f"j{i},u,vc,{g},1,1,{state},{s},,,{d},0" for i, (g, s, d, state) in enumerate(rows)]
    return ("\ufeff" if bom else "") + "\n".join([HEADER, *body]) + "\n"


@FUZZ
@given(rows=TRACE_ROWS, bom=st.booleans(), strict=st.booleans(), packed=st.sampled_from(["", ".gz", ".gz-cut"]))
def test_trace_rows(rows: list[tuple[str, str, str, str]], bom: bool, strict: bool, packed: str) -> None:
    data = trace_text(rows, bom).encode()
    suffix = ".csv.gz" if packed else ".csv"
    if packed:
        data = gzip.compress(data)
        data = data[: max(12, len(data) // 2)] if packed == ".gz-cut" else data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        path.write_bytes(data)
        stats = TraceStats()
        try:
            jobs = list(read_trace(path, stats=stats, strict=strict, max_gpus=32))
        except ScenarioError as err:
            assert str(path) in str(err) and "line " in str(err)
            jobs = []
        for job in jobs:
            assert MIN_TIME <= job.submit <= MAX_TIME and 0 < job.runtime_s <= MAX_JOB_S and 0 < job.gpus <= 32
            assert 2 <= job.line <= len(rows) + 1
        assert all(2 <= line <= len(rows) + 1 for line, _ in stats.examples)
        report = Path(tmp) / "out" / "r.json"
        report.parent.mkdir()
        argv = ["replay", str(path), "--scenario", str(SMALL), "--report", str(report)]
        code, _, err, seconds = run_cli([*argv, "--strict"] if strict else argv)
        assert_clean(code, err, seconds, str(path))
        assert report.exists() == (code == 0)
        assert path.read_bytes() == data


COUNTS = st.one_of(st.integers(0, 64).map(str), CELLS)


@FUZZ
@given(
    rows=st.lists(st.tuples(SUBMITS, COUNTS, COUNTS, COUNTS, COUNTS), max_size=25),
    bom=st.booleans(),
    packed=st.booleans(),
)
def test_telemetry_rows(rows: list[tuple[str, ...]], bom: bool, packed: bool) -> None:
    text = ("\ufeff" if bom else "") + "time,total_gpu_num,running_gpu_num,running_gpujob_num,pending_gpujob_num\n"
    text += "".join(",".join(r) + "\n" for r in rows)
    data = gzip.compress(text.encode()) if packed else text.encode()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rec"
        folder.mkdir()
        path = folder / ("vcA_per_minute.csv.gz" if packed else "vcA_per_minute.csv")
        path.write_bytes(data)
        vc = read_vc(path)
        assert (vc.running_gpus <= vc.total_gpus).all() and (vc.total_gpus <= MAX_VC_GPUS).all()
        assert (vc.running_gpus >= 0).all() and all(math.isfinite(t) for t in vc.time)
        assert (vc.time[1:] > vc.time[:-1]).all()
        assert all(2 <= line <= len(rows) + 1 for line, _ in vc.malformed)
        report = Path(tmp) / "m.json"
        code, out, err, seconds = run_cli(["mirror", str(folder), "--report", str(report)])
        assert_clean(code, err, seconds, str(folder), str(path))
        if code == 0:
            for line in out.splitlines():
                if "GPUs busy" in line:
                    busy, _, total = line.split("GPUs busy")[0].split()[-3:]
                    assert int(busy) <= int(total)
        assert path.read_bytes() == data


SCENE_FIELDS = ["seconds", "speed", "seed", "camera", "layout", "scenario", "extra"]
SHOW_FIELDS = ["idle_resume_s", "title_card_s", "fade_s", "accent", "logo", "title"]


@FUZZ
@given(
    scene=st.dictionaries(st.sampled_from(SCENE_FIELDS), ANY_VALUE, max_size=3),
    show=st.dictionaries(st.sampled_from(SHOW_FIELDS), ANY_VALUE, max_size=3),
    caption=st.dictionaries(st.sampled_from(["on", "text", "at", "min_gpus", "hold", "times"]), ANY_VALUE, max_size=3),
)
def test_playlists(scene: dict[str, object], show: dict[str, object], caption: dict[str, object]) -> None:
    first = {"scenario": str(SMALL), "seconds": 30, **scene, "caption": [{"on": "start", "text": "hi", **caption}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.toml"
        path.write_text(toml_text({"show": show, "scene": [first]}))
        before = path.read_bytes()
        started = time.perf_counter()
        try:
            playlist = load_playlist(path)
        except ScenarioError as err:
            text = str(err)
            assert text.startswith(str(path)) and ("expected" in text or "not valid TOML" in text) and "\n" not in text
        else:
            for s in playlist.scenes:
                assert 0 < s.seconds <= 86_400 and 0 < s.speed <= 10_000
        assert time.perf_counter() - started < SECONDS and path.read_bytes() == before


FLAGS = {
    "simulate": ["--hours", "--seed", "--policy", "--report"],
    "shot": ["--at", "--size", "--seed", "--layout", "--out"],
    "record": ["--seconds", "--fps", "--size", "--speed", "--at", "--out"],
    "replay": ["--speed", "--from", "--to", "--columns", "--seed", "--size", "--report"],
    "mirror": ["--at", "--speed", "--size", "--report"],
    "compare": ["--policies", "--seeds", "--hours", "--faults", "--checkpoint-minutes", "--workers", "--out"],
    "view": ["--speed", "--seed", "--size", "--split"],
}
FLAG_VALUES = st.one_of(
    NUMBERS.map(str),
    st.sampled_from(["1920x1080", "0x0", "99999x2", "fifo,topology", "", "node_mtbf_hours=inf", "2020-05-01", "-"]),
    st.text(max_size=10),
)


@FUZZ
@given(
    verb=st.sampled_from(sorted(FLAGS)),
    picks=st.lists(st.tuples(st.integers(0, 6), FLAG_VALUES), min_size=1, max_size=3),
)
def test_flag_values(verb: str, picks: list[tuple[int, str]]) -> None:
    """Any flag values on a missing input: the flags or the input are refused at once, in one line."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [verb, str(Path(tmp) / "missing.toml")]
        for i, value in picks:
            argv += [FLAGS[verb][i % len(FLAGS[verb])], value]
        code, _, err, seconds = run_cli(argv)
        assert_clean(code, err, seconds, "missing.toml", "--", "error: twin", "expected")
        assert code == 2
