"""What-if comparisons: runs are independent and deterministic whatever engine or process runs them,
the table and files hold every run, sweeps change what they say, and bad requests are one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pygame
import pytest

from conftest import ROOT
from twin.cli import main
from twin.compare import TABLE, RunSpec, compare, format_table, local_engine, parse_variants, run_one, summarize

SMALL = ROOT / "scenarios" / "small-lab.toml"
STORM = ROOT / "scenarios" / "failure-storm.toml"


def test_rows_come_in_order_and_match_single_runs_whatever_the_pool() -> None:
    one = compare(SMALL, ["fifo", "topology"], 2, 2.0, engine=lambda specs: local_engine(specs, workers=1))
    two = compare(SMALL, ["fifo", "topology"], 2, 2.0, engine=lambda specs: local_engine(specs, workers=2))
    assert [(r["policy"], r["seed"]) for r in one] == [("fifo", 7), ("fifo", 8), ("topology", 7), ("topology", 8)]
    assert one == two, "a run gives the same figures in any process"
    assert one[3] == run_one(RunSpec(str(SMALL), "topology", 8, 2.0))


def test_topology_aware_placement_keeps_traffic_off_the_spine() -> None:
    rows = compare(SMALL, ["backfill", "topology"], 2, 6.0)
    table = {s["policy"]: s for s in summarize(rows)}
    assert table["topology"]["spine_traffic_tb"] < table["backfill"]["spine_traffic_tb"]
    text = format_table(summarize(rows))
    assert "spine TB" in text and text.count("\n") == 3


def test_fault_sweeps_change_what_is_lost() -> None:
    variants = parse_variants("node_mtbf_hours=20,2000", None)
    assert variants == ["node_mtbf_hours=20", "node_mtbf_hours=2000"]
    rows = compare(STORM, ["topology"], 1, 3.0, variants)
    harsh, mild = (r for r in rows)
    assert harsh["variant"] == "node_mtbf_hours=20" and harsh["faults"] > mild["faults"]
    assert parse_variants(None, "10,30") == ["checkpoint_minutes=10", "checkpoint_minutes=30"]


def test_compare_command_writes_json_csv_and_a_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    args = ["compare", str(SMALL), "--policies", "fifo,backfill", "--seeds", "2", "--hours", "2"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fifo" in printed and "wait p95" in printed
    runs = json.loads(out.read_text())["runs"]
    assert [(r["policy"], r["seed"]) for r in runs] == [("fifo", 7), ("fifo", 8), ("backfill", 7), ("backfill", 8)]
    keys = {"mean_gpu_utilization", "mean_wait_s", "p95_wait_s", "mean_jct_s", "pflops_hours", "spine_traffic_tb"}
    assert keys | {"lost_gpu_hours"} <= set(runs[0])
    assert pygame.image.load(str(tmp_path / "results.png")).get_size() == (1600, 900)
    out_csv = tmp_path / "results.csv"
    assert main([*args, "--out", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 4 and rows[0]["policy"] == "fifo" and float(rows[0]["mean_wait_s"]) == runs[0]["mean_wait_s"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--policies", "fifo,lottery"], "expected policies among fifo, backfill, topology, got 'lottery'"),
        (["--out", "results.txt"], "expected a .json or .csv file name"),
        (["--faults", "meteor_mtbf_hours=3"], "expected KEY=V1,V2,... with KEY among gpu_mtbf_hours"),
        (["--checkpoint-minutes", "10,soon"], "expected numbers, got 'soon'"),
    ],
)
def test_bad_requests_are_one_line_errors(
    extra: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(SMALL), "--hours", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_split_view_runs_two_policies_on_the_same_jobs(tmp_path: Path) -> None:
    import os

    import numpy as np

    os.environ["SDL_VIDEODRIVER"] = "dummy"
    from twin.render.split import Pair, SplitApp, render_split_still
    from twin.scenario import load_scenario

    pygame.display.init()
    pygame.display.set_mode((320, 240))
    scenario = load_scenario(STORM)
    pair = Pair(scenario, ("fifo", "topology"))
    pair.advance(2 * 3600)
    a, b = pair.sims
    assert a.now == b.now == 7200 and a.totals.submitted == b.totals.submitted, "the same jobs arrive"
    assert a.totals.faults == b.totals.faults, "and the same faults strike"
    assert len(a.queue) > len(b.queue), "FIFO's queue is longer"
    surface = render_split_still(scenario, ("fifo", "topology"), 1800, (1600, 900))
    px = pygame.surfarray.array3d(surface)
    for half in (px[:790], px[810:]):
        assert len(np.unique(half.reshape(-1, 3)[::9], axis=0)) > 40, "each half shows a site and its HUD"
    app = SplitApp(scenario, ("backfill", "topology"), size=(1280, 720), quit_after=1.0)
    app.run()
    assert app.pair.sims[0].now == app.pair.sims[1].now > 0


def test_split_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "split.png"
    assert (
        main(["shot", str(SMALL), "--split", "fifo,topology", "--at", "600", "--size", "1280x720", "--out", str(out)])
        == 0
    )
    assert pygame.image.load(str(out)).get_size() == (1280, 720)
    with pytest.raises(SystemExit) as done:
        main(["view", str(SMALL), "--split", "fifo"])
    assert done.value.code == 2 and "expected two policies" in capsys.readouterr().err


def test_ray_engine_gives_the_local_engines_results() -> None:
    ray = pytest.importorskip("ray")
    from twin.compare import ray_engine

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = compare(SMALL, ["fifo", "topology"], 2, 1.0, engine=ray_engine)
    finally:
        ray.shutdown()
    local = compare(SMALL, ["fifo", "topology"], 2, 1.0, engine=lambda s: local_engine(s, workers=1))
    assert remote == local
    assert len(remote) == 4


def test_address_needs_the_ray_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SMALL), "--hours", "1", "--address", "ray://nowhere:10001"]) == 2
    assert "--address goes with --engine ray" in capsys.readouterr().err


def test_a_stalled_run_reads_stalled_in_the_table_not_a_number() -> None:
    """A run whose training jobs never stepped has no step slowdown (None in its report): its mean is
    no figure, and the table says why."""
    base = {key: 1.0 for _, key, _ in TABLE}
    rows = [dict(base, variant="", policy="fifo", mean_step_slowdown=None), dict(base, variant="", policy="topology")]
    table = format_table(summarize(rows))
    fifo, topology = (line for line in table.splitlines() if line.strip().startswith(("fifo", "topology")))
    assert "stalled" in fifo and "1.000x" in topology
