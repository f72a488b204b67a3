"""What-if: the same scenario under several scheduling policies (and, optionally, several fault or
checkpoint settings) and seeds, each run independent and deterministic, run side by side in processes.

A run is described by a small picklable :class:`RunSpec`; :func:`run_one` turns it into a report row.
The engine is a function that maps ``run_one`` over specs (a local process pool by default), so other
engines can be passed in the way networkx passes algorithms.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import multiprocessing
import os
import statistics
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.report import build_report
from twin.scenario import (
    RandomFaults,
    Scenario,
    fault_setting_problem,
    load_scenario,
    read_toml,
    scenario_from_dict,
)
from twin.scheduler import POLICIES
from twin.signals import worker_init
from twin.simulation import Simulation

FAULT_KEYS = tuple(f.name for f in dataclasses.fields(RandomFaults))
MAX_VARIANTS = 100  # values in one --faults or --checkpoint-minutes sweep
TABLE = (  # (column, report field, format)
    ("GPU util", "mean_gpu_utilization", "{:.1%}"),
    ("wait mean", "mean_wait_s", "{:,.0f} s"),
    ("wait p95", "p95_wait_s", "{:,.0f} s"),
    ("JCT mean", "mean_jct_s", "{:,.0f} s"),
    ("PFLOPS-h", "pflops_hours", "{:,.0f}"),
    ("PF delivered", "pflops_delivered_mean", "{:,.0f}"),
    ("step slowdown", "mean_step_slowdown", "{:.3f}x"),
    ("spine TB", "spine_traffic_tb", "{:,.1f}"),
    ("lost GPU-h", "lost_gpu_hours", "{:,.1f}"),
)


@dataclass(frozen=True)
class RunSpec:
    scenario: str  # path (names the scenario in reports)
    policy: str
    seed: int
    hours: float
    variant: str = ""  # "node_mtbf_hours=300" or "checkpoint_minutes=30"; "" for the scenario as it is
    text: str = ""  # the scenario file's text, so a worker on another machine needs no copy of it


def parse_variants(faults: str | None, checkpoints: str | None) -> list[str]:
    """``--faults node_mtbf_hours=100,300`` and ``--checkpoint-minutes 10,30`` as variant labels."""
    variants: list[str] = []
    if faults:
        key, sep, values = faults.partition("=")
        if not sep or key not in FAULT_KEYS:
            raise ScenarioError("--faults", "", f"expected KEY=V1,V2,... with KEY among {', '.join(FAULT_KEYS)}")
        variants += [f"{key}={_number('--faults', key, v)}" for v in values.split(",") if v.strip()]
    if checkpoints:
        variants += [
            f"checkpoint_minutes={_number('--checkpoint-minutes', 'checkpoint_minutes', v)}"
            for v in checkpoints.split(",")
        ]
    variants = list(dict.fromkeys(variants))
    if len(variants) > MAX_VARIANTS:
        raise ScenarioError(
            "--faults" if faults else "--checkpoint-minutes", "", f"expected at most {MAX_VARIANTS} values"
        )
    return variants or [""]


def _number(flag: str, key: str, text: str) -> str:
    """One swept value, checked as the scenario field would be (finite, within its range)."""
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(flag, "", f"expected numbers, got {text.strip()[:40]!r}") from None
    if value < 0:
        raise ScenarioError(flag, "", f"expected numbers of at least 0, got {value:g}")
    problem = fault_setting_problem(key, value)
    if problem:
        raise ScenarioError(flag, key, f"expected {problem}")
    return f"{value:g}"


def apply_variant(scenario: Scenario, variant: str) -> Scenario:
    """The scenario with one setting changed (a fault rate or repair time, or every checkpoint interval)."""
    if not variant:
        return scenario
    key, _, value = variant.partition("=")
    if key == "checkpoint_minutes":
        mix = tuple(dataclasses.replace(c, checkpoint_minutes=float(value)) for c in scenario.workload.mix)
        return dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload, mix=mix))
    random = dataclasses.replace(scenario.faults.random, **{key: float(value)})
    return dataclasses.replace(scenario, faults=dataclasses.replace(scenario.faults, random=random))


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One run, start to end, as a report row (what a worker process does)."""
    if spec.text:
        scenario = scenario_from_dict(tomllib.loads(spec.text), source=spec.scenario, text=spec.text)
    else:
        scenario = load_scenario(spec.scenario)
    scenario = apply_variant(scenario, spec.variant)
    sim = Simulation(scenario, seed=spec.seed, policy=spec.policy)
    sim.run(spec.hours * 3600.0)
    report = build_report(sim)
    report.pop("workload", None)
    return {"policy": spec.policy, "seed": spec.seed, "variant": spec.variant, **report}


def worker_count(runs: int, asked: int | None = None) -> int:
    """Processes for ``runs`` runs: one per core unless more were asked for, never more than the runs."""
    return max(1, min(runs, asked or os.cpu_count() or 1))


def _run_indexed(item: tuple[int, RunSpec]) -> tuple[int, dict[str, Any]]:
    return item[0], run_one(item[1])


def local_engine(specs: Sequence[RunSpec], workers: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Runs in a local process pool; yields (index, row) as runs finish. Workers leave stop signals to this
    process; if it stops (or fails), the pool is terminated at once rather than waited for."""
    workers = worker_count(len(specs), workers)
    if workers == 1:
        for i, spec in enumerate(specs):
            yield i, run_one(spec)
        return
    pool = multiprocessing.Pool(workers, initializer=worker_init)
    try:
        yield from pool.imap_unordered(_run_indexed, list(enumerate(specs)))
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def ray_engine(specs: Sequence[RunSpec], address: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The same runs as tasks on a Ray cluster (``address``), or on a local Ray if none is given. Runs are
    independent and deterministic, so a task whose worker is lost is simply run again (``max_retries``)."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:  # ship this package to the cluster's workers
            options["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parent)]}
        ray.init(address=address, **options)
    try:
        task = ray.remote(max_retries=3)(run_one)
        pending = {task.remote(spec): i for i, spec in enumerate(specs)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


Engine = Callable[[Sequence[RunSpec]], Iterator[tuple[int, dict[str, Any]]]]


def compare(
    scenario: Path,
    policies: Sequence[str],
    seeds: int,
    hours: float,
    variants: Sequence[str] = ("",),
    engine: Engine = local_engine,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every policy x variant x seed; rows in that order whatever order the engine finishes them in."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ScenarioError("--policies", "", f"expected policies among {', '.join(POLICIES)}, got {unknown[0]!r}")
    data, text = read_toml(scenario)  # a bad file fails here, once, not in every worker
    base = scenario_from_dict(data, source=str(scenario), text=text)
    first = base.simulation.seed
    for v in variants:
        apply_variant(base, v)
    specs = [
        RunSpec(str(scenario), p, first + k, hours, v, text) for v in variants for p in policies for k in range(seeds)
    ]
    rows: list[dict[str, Any] | None] = [None] * len(specs)
    for done, (i, row) in enumerate(engine(specs), start=1):
        rows[i] = row
        if progress is not None:
            progress(done)
    return [r for r in rows if r is not None]


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds for each (variant, policy), in the order they first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["policy"]), []).append(r)
    out = []
    for (variant, policy), runs in groups.items():
        entry: dict[str, Any] = {"variant": variant, "policy": policy, "runs": len(runs)}
        for _, key, _ in TABLE:
            values = [math.nan if r[key] is None else float(r[key]) for r in runs]  # None: stalled throughout
            entry[key] = statistics.fmean(values)
            entry[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """Means over seeds, one line per (setting, policy)."""
    show_variant = any(s["variant"] for s in summary)
    head = (["setting"] if show_variant else []) + ["policy"] + [c for c, _, _ in TABLE]
    lines = [head]
    for s in summary:
        cells = [s["policy"]] + ["stalled" if math.isnan(s[key]) else fmt.format(s[key]) for _, key, fmt in TABLE]
        lines.append([s["variant"], *cells] if show_variant else cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    left = len(head) - len(TABLE)  # text columns, left-aligned; figures right-aligned
    out = []
    for n, row in enumerate(lines):
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  " + "  ".join(cells))
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(out)


def rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The runs as CSV: one row each, scalar fields only (nested ones flattened as kind.field)."""
    flat = []
    for r in rows:
        row = {}
        for k, v in r.items():
            if isinstance(v, dict):
                row.update({f"{k}.{kk}": vv for kk, vv in v.items() if not isinstance(vv, dict)})
            else:
                row[k] = v
        flat.append(row)
    fields = list(dict.fromkeys(k for row in flat for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()
