"""Job-trace replay: known answers on hand-made traces, bad rows, column mappings, gzip, windows, strict
mode, streaming memory, and the CLI."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from conftest import site
from twin.cli import main
from twin.errors import ScenarioError
from twin.replay import Replay
from twin.scenario import scenario_from_dict
from twin.trace import TraceStats, parse_columns, read_trace

HEADER = "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue"


def row(job: str, gpus: int, state: str, submit: str, start: str, end: str, duration: str | int) -> str:
    return f"{job},u1,vc1,{gpus},4,1,{state},{submit},{start},{end},{duration},0"


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def tiny_site():
    """Two racks of two 8-GPU nodes: 32 GPUs."""
    return scenario_from_dict(site())


def test_our_scheduler_queues_what_the_site_cannot_hold(tmp_path: Path) -> None:
    trace = write(
        tmp_path / "t.csv",
        [
            row("a", 32, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:10:00", 600),
            row("b", 8, "CANCELLED", "2020-05-01 00:01:00", "2020-05-01 00:01:30", "2020-05-01 00:06:30", 300),
            row("c", 1, "FAILED", "2020-05-01 00:02:00", "2020-05-01 00:02:00", "2020-05-01 00:03:40", 100),
        ],
    )
    replay = Replay(tiny_site(), trace)
    replay.run_to_end(step_s=60)
    sim, t = replay.sim, replay.sim.totals
    assert (t.completed, t.cancelled, t.failed) == (1, 1, 1)
    # a holds the whole site for 600 s; b (arrived at 60 s) and c (at 120 s) start when it ends.
    assert sorted(t.waits.recent) == pytest.approx([0.0, 480.0, 540.0])
    assert sorted(t.workload.runtimes.recent) == pytest.approx([100.0, 300.0, 600.0])
    assert replay.recorded_waits.mean == pytest.approx(10.0)  # 0, 30 and 0 seconds recorded
    block = replay.report_block()
    assert block["jobs_replayed"] == 3 and block["bad_rows"] == 0
    assert block["mean_wait_s"] == pytest.approx(340.0)
    assert block["start"] == "2020-05-01 00:00:00"
    sim.check_invariants()
    assert replay.done


def test_bad_rows_are_counted_with_line_numbers_and_the_replay_goes_on(tmp_path: Path) -> None:
    ok = row("ok", 8, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100)
    trace = write(
        tmp_path / "t.csv",
        [
            ok,  # line 2
            row("nogpu", 8, "COMPLETED", "", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),  # 3: no submit
            row("back", 8, "FAILED", "2020-05-01 00:00:00", "2020-05-01 00:05:00", "2020-05-01 00:01:00", ""),  # 4
            row("neg", -2, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),
            row("time", 8, "COMPLETED", "May the first", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),  # 6
            row("cpu", 0, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),
            row("pend", 8, "CANCELLED", "2020-05-01 00:00:00", "", "2020-05-01 00:01:40", 0),  # never ran
            "short,row",  # line 9
            row("big", 64, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),
        ],
    )
    replay = Replay(tiny_site(), trace)
    replay.run_to_end(step_s=60)
    block = replay.report_block()
    assert block["jobs_replayed"] == 1 and replay.sim.totals.completed == 1
    assert block["cpu_jobs_skipped"] == 1 and block["never_ran_skipped"] == 1
    lines = {e["line"]: e["reason"] for e in block["bad_examples"]}
    assert set(lines) == {3, 4, 5, 6, 9, 10}
    assert lines[3].startswith("missing field") and lines[4] == "end before start"
    assert lines[5].startswith("negative GPUs") and lines[6].startswith("unparseable time")
    assert lines[10].startswith("more GPUs than the site")
    assert block["bad_rows"] == 6


def test_strict_stops_at_the_first_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(
        tmp_path / "t.csv",
        [
            row("a", 8, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),
            row("b", -1, "COMPLETED", "2020-05-01 00:00:00", "2020-05-01 00:00:00", "2020-05-01 00:01:40", 100),
        ],
    )
    code = main(["replay", str(trace), "--scenario", str(tmp_path / "s.toml"), "--headless", "--strict"])
    assert code == 2 and "s.toml" in capsys.readouterr().err  # a missing scenario is named first
    scenario = Path(__file__).parent.parent / "scenarios" / "small-lab.toml"
    code = main(["replay", str(trace), "--scenario", str(scenario), "--headless", "--strict"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "t.csv: line 3" in err and "negative GPUs" in err


def test_other_traces_read_through_a_column_mapping(tmp_path: Path) -> None:
    header = "jobid,num_gpus,status,submitted_time,start_time,end_time"
    trace = write(
        tmp_path / "philly.csv",
        [
            "j1,4,Pass,2017-10-03 10:00:00,2017-10-03 10:05:00,2017-10-03 11:05:00",
            "j2,16,Killed,2017-10-03 10:30:00,2017-10-03 10:30:00,2017-10-03 10:40:00",
        ],
        header,
    )
    with pytest.raises(ScenarioError, match=r"line 1: expected columns gpu_num, submit_time"):
        list(read_trace(trace))
    columns = parse_columns("id=jobid,gpus=num_gpus,state=status,submit=submitted_time")
    stats = TraceStats()
    jobs = list(read_trace(trace, columns, stats))
    assert [(j.job_id, j.gpus, j.runtime_s, j.outcome) for j in jobs] == [
        ("j1", 4, 3600.0, "completed"),
        ("j2", 16, 600.0, "cancelled"),
    ]
    assert jobs[0].recorded_wait_s == 300.0
    with pytest.raises(ScenarioError, match="FIELD=COLUMN"):
        parse_columns("gpus")
    with pytest.raises(ScenarioError, match="FIELD=COLUMN"):
        parse_columns("colour=red")


def test_gzip_and_plain_read_alike(tmp_path: Path) -> None:
    rows = [
        row(str(i), 1 + i % 8, "COMPLETED", f"2020-05-01 00:{i:02d}:00", f"2020-05-01 00:{i:02d}:30", "", 60 + i)
        for i in range(50)
    ]
    plain = list(read_trace(write(tmp_path / "t.csv", rows)))
    packed = list(read_trace(write(tmp_path / "t.csv.gz", rows)))
    assert [(j.job_id, j.gpus, j.runtime_s) for j in plain] == [(j.job_id, j.gpus, j.runtime_s) for j in packed]
    assert len(plain) == 50


def test_from_and_to_pick_a_window_and_order_is_restored(tmp_path: Path) -> None:
    rows = [
        row("late", 1, "COMPLETED", "2020-05-01 02:00:00", "2020-05-01 02:00:00", "", 60),
        row("early", 1, "COMPLETED", "2020-05-01 00:30:00", "2020-05-01 00:30:00", "", 60),
        row("mid", 1, "COMPLETED", "2020-05-01 01:00:00", "2020-05-01 01:00:00", "", 60),
        row("after", 1, "COMPLETED", "2020-05-01 05:00:00", "2020-05-01 05:00:00", "", 60),
    ]
    stats = TraceStats()
    from twin.trace import parse_time

    jobs = list(read_trace(write(tmp_path / "t.csv", rows), stats=stats, start=parse_time("2020-05-01 00:45:00")))
    assert [j.job_id for j in jobs] == ["mid", "late", "after"]
    assert stats.outside == 1
    window = list(
        read_trace(tmp_path / "t.csv", start=parse_time("2020-05-01 00:00:00"), end=parse_time("2020-05-01 01:30:00"))
    )
    assert [j.job_id for j in window] == ["early", "mid"]


def test_reading_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write(HEADER + "\n")
        for i in range(120_000):
            s = 1_588_291_200 + i * 7
            f.write(f"{i},u,vc,{1 + i % 4},4,1,COMPLETED,{s},{s + 3},{s + 500},497,0\n")
    stats = TraceStats()
    tracemalloc.start()
    n = sum(1 for _ in read_trace(path, stats=stats))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 120_000 and stats.bytes_read == path.stat().st_size
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MB: rows must stream, not load"
    assert path.stat().st_size > 6 * 2**20


def test_replay_command_writes_ours_beside_the_recorded_waits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        row(
            str(i),
            [1, 8, 16, 64][i % 4],
            ["COMPLETED", "FAILED"][i % 2],
            f"2020-05-01 {i // 60:02d}:{i % 60:02d}:00",
            f"2020-05-01 {i // 60:02d}:{i % 60:02d}:20",
            "",
            1800,
        )
        for i in range(240)
    ]
    trace = write(tmp_path / "t.csv", rows)
    out = tmp_path / "r.json"
    scenario = Path(__file__).parent.parent / "scenarios" / "small-lab.toml"
    assert main(["replay", str(trace), "--scenario", str(scenario), "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "recorded 20 s / 20 s" in printed
    report = json.loads(out.read_text())
    r = report["replay"]
    assert r["jobs_replayed"] == 240 and r["recorded_mean_wait_s"] == pytest.approx(20.0)
    assert r["mean_wait_s"] > 0, "16 servers cannot start 240 jobs of up to 64 GPUs at once"
    assert report["jobs_submitted"] == 240 == report["jobs_completed"] + report["jobs_failed"]
    assert report["jobs_failed"] == 120
    assert report["jobs_running"] == report["jobs_queued"] == 0


def test_replay_drives_the_live_view(tmp_path: Path) -> None:
    import os

    os.environ["SDL_VIDEODRIVER"] = "dummy"
    from twin.render.app import App

    rows = [
        row(str(i), 8, "COMPLETED", f"2020-05-01 00:{i:02d}:00", f"2020-05-01 00:{i:02d}:00", "", 3000)
        for i in range(10)
    ]
    replay = Replay(tiny_site(), write(tmp_path / "t.csv", rows))
    app = App(replay, size=(640, 360), speed=600, quit_after=1.0)
    assert app.source is replay
    app.run()
    assert replay.sim.totals.submitted > 0, "frames advanced the replay, which fed the simulation"


def test_timestamps_read_the_quick_way_are_the_ones_datetime_reads() -> None:
    """``parse_time`` reads ``YYYY-MM-DD HH:MM:SS`` from a per-day cache and integer arithmetic; every such
    time gives exactly what ``datetime`` gives, and impossible ones (hour 24, minute 60, 29 February 2021,
    a month 13) are still refused."""
    import random
    from datetime import UTC, datetime

    import pytest

    from twin.trace import parse_time

    rng = random.Random(3)
    for _ in range(5000):
        t = rng.randint(0, 4_102_444_800)
        text = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert parse_time(text) == float(t) == datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    for bad in ("2020-05-01 24:00:00", "2020-05-01 23:60:00", "2021-02-29 10:00:00", "2020-13-01 00:00:00"):
        with pytest.raises(ValueError):
            parse_time(bad)
    assert parse_time("2020-02-29 23:59:59") == datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp()
