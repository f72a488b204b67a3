"""The command line: ``python main.py [VERB] ...``. Thin: parse, call the core, print, exit.

Bad input (a scenario that does not validate, a path that cannot be written) prints one line naming
the file and field and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twin.errors import ScenarioError
from twin.scenario import load_scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "lingang.toml"
VERBS = ("simulate", "validate", "view")


class UsageError(Exception):
    """A command-line problem the user can fix; printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="main.py",
        description="twin: a digital twin of an AI computing center. With no verb, opens the live view.",
    )
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    s = sub.add_parser("simulate", help="run a scenario headless and print a summary")
    s.add_argument("scenario", type=Path)
    s.add_argument("--hours", type=_positive, default=None, help="simulated hours (default: the scenario's)")
    s.add_argument("--seed", type=_non_negative_int, default=None, help="random seed (default: the scenario's)")
    s.add_argument("--policy", choices=("fifo", "backfill", "topology"), default=None, help="override the scheduler")
    s.add_argument("--report", type=Path, default=None, help="write the report as JSON to this file")
    v = sub.add_parser("validate", help="check a scenario file and describe the site")
    v.add_argument("scenario", type=Path)
    w = sub.add_parser("view", help="open the live view (the default verb)")
    w.add_argument("scenario", type=Path, nargs="?", default=DEFAULT_SCENARIO)
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in VERBS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "view")
    args = _parser().parse_args(argv)
    try:
        if args.verb == "simulate":
            return _simulate(args)
        if args.verb == "validate":
            return _validate(args)
        return _view(args)
    except (ScenarioError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _simulate(args: argparse.Namespace) -> int:
    from twin.progress import Progress
    from twin.report import build_report, format_report
    from twin.simulation import Simulation

    scenario = load_scenario(args.scenario)
    if args.report is not None:
        _check_writable(args.report, args.scenario)
    hours = args.hours if args.hours is not None else scenario.simulation.hours
    sim = Simulation(scenario, seed=args.seed, policy=args.policy)
    total = hours * 3600.0
    chunk = max(scenario.simulation.step_s, total / 500)
    bar = Progress(total, f"simulating {hours:g} h of {scenario.site.name}")
    while sim.now < total:
        sim.run(min(sim.now + chunk, total))
        bar.update(sim.now)
    bar.close()
    report = build_report(sim)
    print(format_report(report))
    if args.report is not None:
        _write_atomic(args.report, json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.report}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from twin.topology import build_fabric

    scenario = load_scenario(args.scenario)
    fabric = build_fabric(scenario)
    topo = scenario.topology
    print(f"{args.scenario}: ok")
    print(f"  {scenario.site.name}: {topo.kind}, {fabric.n_nodes:,} nodes, {fabric.n_gpus:,} x {scenario.gpu.model}")
    print(
        f"  peak {scenario.peak_pflops:,.0f} PFLOPS, {fabric.switch_gids.size:,} switches, "
        f"{fabric.n_edges:,} links, {len(scenario.storage)} storage arrays"
    )
    return 0


def _view(args: argparse.Namespace) -> int:
    """The live view arrives with the renderer; until then, run the scenario headless."""
    scenario = load_scenario(args.scenario)
    print(f"{scenario.site.name}: the live view is not built yet; running headless instead.", file=sys.stderr)
    ns = argparse.Namespace(scenario=args.scenario, hours=None, seed=None, policy=None, report=None)
    return _simulate(ns)


def _check_writable(path: Path, *inputs: Path) -> None:
    """Fail before a long run, not after it, if the output cannot be written or would clobber an input."""
    if any(path.resolve() == p.resolve() for p in inputs):
        raise UsageError(f"{path}: is an input of this run; choose another output path")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; expected a file path for the report")
    if not path.parent.exists():
        raise UsageError(f"{path}: folder {path.parent} does not exist")


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed write never leaves half a file behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
