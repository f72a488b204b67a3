"""Scenario files: the shipped ones load; every kind of bad file gets one clear line and exit code 2."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from conftest import BASE, DELETE, ROOT, SCENARIOS, site
from twin.cli import main
from twin.errors import ScenarioError
from twin.scenario import load_scenario, scenario_from_dict


def test_shipped_scenarios_load(shipped: Path) -> None:
    s = load_scenario(shipped)
    assert s.gpus > 0 and s.peak_pflops > 0
    assert s.site.name


def test_lingang_matches_the_reference_site() -> None:
    s = load_scenario(ROOT / "scenarios" / "lingang.toml")
    assert 1400 <= s.nodes <= 1600
    assert 11_000 <= s.gpus <= 13_000
    assert abs(s.peak_pflops - 3740) / 3740 < 0.01  # 3,740 PFLOPS designed peak
    assert s.topology.kind == "rail-optimized"


def test_required_kinds_are_shipped() -> None:
    kinds = {load_scenario(p).topology.kind for p in SCENARIOS}
    assert {"rail-optimized", "leaf-spine", "fat-tree"} <= kinds
    assert (ROOT / "scenarios" / "small-lab.toml").exists()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml(data: dict) -> str:
    """Serialise the small test dicts to TOML (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []

    def scalar(v: object) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return repr(v)

    def table(prefix: str, d: dict, header: str) -> None:
        lines.append(header)
        subs = []
        for k, v in d.items():
            if isinstance(v, dict):
                subs.append((k, v, False))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                subs.append((k, v, True))
            else:
                lines.append(f"{k} = {scalar(v)}")
        for k, v, many in subs:
            name = f"{prefix}.{k}" if prefix else k
            if many:
                for item in v:
                    table(name, item, f"[[{name}]]")
            else:
                table(name, v, f"[{name}]")

    table("", data, "")
    return "\n".join(lines) + "\n"


def test_toml_helper_round_trips() -> None:
    assert tomllib.loads(_toml(BASE)) == BASE


BAD_CASES = [
    (
        "removed iteration_s",
        {"workload.mix": [{"kind": "finetune", "share": 1, "gpus": [16, 16], "median_hours": 1, "iteration_s": 2}]},
        "workload.mix[0].iteration_s",
        "tokens_per_gpu",
    ),
    ("mfu above 1", {"workload.mfu": {"pretrain": 1.5}}, "workload.mfu.pretrain", "at most 1"),
    ("mfu of no kind", {"workload.mfu": {"training": 0.4}}, "workload.mfu.training", "not one"),
    ("wait watts off the range", {"gpu.wait_watts": 20}, "gpu.wait_watts", "between idle_watts and max_watts"),
    ("no memory", {"gpu.memory_gb": 0}, "gpu.memory_gb", "positive"),
    (
        "overlap above 1",
        {"workload.mix": [{"kind": "finetune", "share": 1, "gpus": [16, 16], "median_hours": 1, "overlap": 2}]},
        "workload.mix[0].overlap",
        "at most 1",
    ),
    ("missing field", {"topology.racks": DELETE}, "topology.racks", "missing"),
    ("wrong type", {"node.gpus": "eight"}, "node.gpus", "whole number"),
    ("negative count", {"topology.racks": -3}, "topology.racks", "at least 1"),
    ("unknown topology", {"topology.kind": "torus"}, "topology.kind", "leaf-spine, fat-tree, rail-optimized"),
    ("cannot wire", {"topology.nodes_per_rack": 12}, "topology.leaf_radix", "cannot be wired"),
    ("spine too small", {"topology.racks": 20, "topology.spine_radix": 8}, "topology.spine_radix", "cannot be wired"),
    ("unknown field", {"node.colour": "red"}, "node.colour", "not one"),
    (
        "bad range",
        {"workload.mix": [{"kind": "finetune", "share": 1, "gpus": [32, 16], "median_hours": 1}]},
        "workload.mix[0].gpus",
        "low <= high",
    ),
    (
        "too big job",
        {"workload.mix": [{"kind": "finetune", "share": 1, "gpus": [8, 4096], "median_hours": 1}]},
        "workload.mix[0].gpus",
        "at most the site's 32 GPUs",
    ),
    (
        "bad kind",
        {"workload.mix": [{"kind": "mining", "share": 1, "gpus": 8, "median_hours": 1}]},
        "workload.mix[0].kind",
        "one of pretrain",
    ),
    ("max below idle", {"gpu.max_watts": 10}, "gpu.max_watts", "at least idle_watts"),
    ("fat-tree odd k", {"topology": {"kind": "fat-tree", "k": 5, "port_gbps": 100}}, "topology.k", "even"),
    (
        "fat-tree racks",
        {"topology": {"kind": "fat-tree", "k": 4, "racks": 3, "port_gbps": 100}},
        "topology.racks",
        "one per edge switch",
    ),
    (
        "rail units",
        {
            "topology": {
                "kind": "rail-optimized",
                "racks": 3,
                "nodes_per_rack": 2,
                "nodes_per_unit": 4,
                "spines": 1,
                "leaf_radix": 16,
                "spine_radix": 16,
                "port_gbps": 100,
            }
        },
        "topology.racks",
        "units of 4",
    ),
    ("no storage", {"storage": []}, "storage", "at least 1"),
]


@pytest.mark.parametrize(("name", "changes", "field", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_scenario_gets_one_clear_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, changes: dict, field: str, expected: str
) -> None:
    path = _write(tmp_path, _toml(site(**changes)))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert field in str(err.value) and expected in str(err.value)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert str(path) in lines[0] and field in lines[0] and expected in lines[0]
    assert "Traceback" not in out.err + out.out


def test_error_names_the_line(tmp_path: Path) -> None:
    text = _toml(site(**{"node.gpus": -1}))
    path = _write(tmp_path, text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("gpus = -1"))
    with pytest.raises(ScenarioError, match=rf"line {line}: node.gpus"):
        load_scenario(path)


def test_toml_syntax_error_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, '[site]\nname = "x"\n[topology\nkind = 1\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "not valid TOML" in err and err.count("\n") == 1


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "nope.toml"), "--hours", "1"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_boolean_is_not_a_number() -> None:
    with pytest.raises(ScenarioError, match=r"node\.gpus: expected a whole number, got a boolean"):
        scenario_from_dict(site(**{"node.gpus": True}))


def test_valid_test_site_has_defaults() -> None:
    s = scenario_from_dict(site())
    assert s.scheduler.policy == "topology"
    assert s.simulation.hours == 24.0
    assert s.gpus == 32
