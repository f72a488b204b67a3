"""The command line: ``python main.py [VERB] ...``. Thin: parse, call the core, print, exit.

Bad input (a scenario that does not validate, a path that cannot be written) prints one line naming
the file and field and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from twin.errors import ScenarioError
from twin.scenario import load_scenario

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on the console of a CLI
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "lingang.toml"
VERBS = ("simulate", "validate", "view", "shot", "exhibit", "record", "replay", "mirror", "compare")
DEFAULT_PLAYLIST = DEFAULT_SCENARIO.parent / "playlist.toml"
HELIOS_EARTH = DEFAULT_SCENARIO.parent / "helios-earth.toml"


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
    w.add_argument("--seed", type=_non_negative_int, default=None)
    w.add_argument("--size", type=_size, default=(1600, 900), help="window size, WIDTHxHEIGHT")
    w.add_argument("--fullscreen", action="store_true")
    w.add_argument("--speed", type=_positive, default=120, help="simulated seconds per wall second")
    w.add_argument("--split", type=_policy_pair, default=None, help="two policies side by side, e.g. fifo,topology")
    w.add_argument("--quit-after", type=_positive, default=None, help=argparse.SUPPRESS)
    sh = sub.add_parser("shot", help="save one frame of the view as a PNG, headless")
    sh.add_argument("scenario", type=Path)
    sh.add_argument("--at", type=_non_negative, default=0.0, help="simulated seconds to run first")
    sh.add_argument("--size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT")
    sh.add_argument("--out", type=Path, default=Path("frame.png"))
    sh.add_argument("--seed", type=_non_negative_int, default=None)
    sh.add_argument("--layout", choices=("hall", "graph"), default="hall")
    sh.add_argument("--split", type=_policy_pair, default=None, help="two policies side by side, e.g. fifo,topology")
    ex = sub.add_parser("exhibit", help="the unattended exhibition show (quit with Ctrl+Shift+Q)")
    ex.add_argument("playlist", type=Path, nargs="?", default=DEFAULT_PLAYLIST)
    ex.add_argument("--windowed", action="store_true", help="in a window instead of fullscreen")
    ex.add_argument("--display", type=_non_negative_int, default=0, help="which screen to use")
    ex.add_argument("--size", type=_size, default=(1600, 900), help="window size with --windowed")
    ex.add_argument("--log", type=Path, default=Path("logs") / "exhibit.log", help="rotating log file")
    ex.add_argument("--quit-after", type=_positive, default=None, help=argparse.SUPPRESS)
    rp = sub.add_parser("replay", help="replay a job trace (Helios cluster_log.csv format) through our scheduler")
    rp.add_argument("trace", type=Path)
    rp.add_argument("--scenario", type=Path, default=HELIOS_EARTH, help="the site to replay on")
    rp.add_argument("--speed", type=_positive, default=600.0, help="simulated seconds per second in the window")
    rp.add_argument("--from", dest="start", default=None, help="first submit time replayed (YYYY-MM-DD HH:MM:SS)")
    rp.add_argument("--to", dest="end", default=None, help="submit time where the replay stops taking jobs")
    rp.add_argument("--columns", default="", help="trace column names, e.g. gpus=num_gpus,submit=submitted")
    rp.add_argument("--strict", action="store_true", help="stop at the first bad row")
    rp.add_argument("--report", type=Path, default=None, help="replay headless to the end and write JSON here")
    rp.add_argument("--headless", action="store_true", help="no window: replay to the end and print the report")
    rp.add_argument("--seed", type=_non_negative_int, default=None)
    rp.add_argument("--size", type=_size, default=(1600, 900))
    rp.add_argument("--quit-after", type=_positive, default=None, help=argparse.SUPPRESS)
    mi = sub.add_parser("mirror", help="show recorded per-minute telemetry (Helios VC files) in the twin")
    mi.add_argument("dir", type=Path, help="folder of <vc>_per_minute_*.csv[.gz] files")
    mi.add_argument("--at", default=None, help="start (or, with --report, the minute) as YYYY-MM-DD HH:MM")
    mi.add_argument("--report", type=Path, default=None, help="write that minute per VC as JSON and exit")
    mi.add_argument("--speed", type=_positive, default=120.0, help="recorded seconds per second in the window")
    mi.add_argument("--compare-sim", action="store_true", help="run the calibrated simulator beside the recording")
    mi.add_argument("--size", type=_size, default=(1600, 900))
    mi.add_argument("--quit-after", type=_positive, default=None, help=argparse.SUPPRESS)
    cp = sub.add_parser("compare", help="the same workload under several policies and seeds, side by side")
    cp.add_argument("scenario", type=Path)
    cp.add_argument("--policies", default="fifo,backfill,topology", help="comma-separated scheduling policies")
    cp.add_argument("--seeds", type=_positive_int, default=3, help="seeds per policy (from the scenario's seed)")
    cp.add_argument("--hours", type=_positive, default=24.0)
    cp.add_argument("--faults", default=None, help="a sweep, e.g. node_mtbf_hours=100,300,1000")
    cp.add_argument("--checkpoint-minutes", default=None, help="a sweep of checkpoint intervals, e.g. 10,30,60")
    cp.add_argument("--workers", type=_positive_int, default=None, help="processes (default: one per core)")
    cp.add_argument("--engine", choices=("local", "ray"), default="local", help="where the runs run")
    cp.add_argument("--address", default=None, help="with --engine ray: the Ray cluster to send runs to")
    cp.add_argument("--out", type=Path, default=None, help="results .json or .csv (and a .png chart beside it)")
    rc = sub.add_parser("record", help="render a scenario headless to an H.264 video (or PNG frames)")
    rc.add_argument("scenario", type=Path)
    rc.add_argument("--seconds", type=_positive, default=60.0, help="length of the video")
    rc.add_argument("--fps", type=_positive, default=30.0)
    rc.add_argument("--size", type=_size, default=(1920, 1080))
    rc.add_argument("--speed", type=_positive, default=120.0, help="simulated seconds per video second")
    rc.add_argument("--at", type=_non_negative, default=0.0, help="simulated seconds to run before recording")
    rc.add_argument("--seed", type=_non_negative_int, default=None)
    rc.add_argument("--layout", choices=("hall", "graph"), default="hall")
    out = rc.add_mutually_exclusive_group()
    out.add_argument("--out", type=Path, default=Path("demo.mp4"))
    out.add_argument("--png", type=Path, default=None, help="write numbered PNG frames into this folder instead")
    return p


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, for example 1920x1080, got {text!r}") from None
    if not (320 <= w <= 8192 and 240 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"expected a size from 320x240 to 8192x8192, got {text!r}")
    return w, h


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds of at least 0, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _policy_pair(text: str) -> tuple[str, str]:
    from twin.scheduler import POLICIES

    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 2 or any(p not in POLICIES for p in parts):
        raise argparse.ArgumentTypeError(f"expected two policies among {', '.join(POLICIES)}, got {text!r}")
    return parts  # type: ignore[return-value]


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
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
        if args.verb == "shot":
            return _shot(args)
        if args.verb == "exhibit":
            return _exhibit(args)
        if args.verb == "record":
            return _record(args)
        if args.verb == "replay":
            return _replay(args)
        if args.verb == "mirror":
            return _mirror(args)
        if args.verb == "compare":
            return _compare(args)
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
    scenario = load_scenario(args.scenario)
    from twin.render.app import App
    from twin.render.split import SplitApp

    def make() -> App | SplitApp:
        if args.split is not None:
            return SplitApp(scenario, args.split, args.seed, args.size, args.fullscreen, args.speed, args.quit_after)
        from twin.simulation import Simulation

        return App(Simulation(scenario, seed=args.seed), args.size, args.fullscreen, args.speed, args.quit_after)

    return _run_window(make, "on a machine without a display use `shot`")


def _shot(args: argparse.Namespace) -> int:
    from twin.progress import Progress
    from twin.simulation import Simulation

    scenario = load_scenario(args.scenario)
    _check_writable(args.out, args.scenario)
    if args.out.suffix.lower() != ".png":
        raise UsageError(f"{args.out}: expected a .png file name")
    if args.split is not None:
        return _shot_split(args, scenario)
    sim = Simulation(scenario, seed=args.seed)
    bar = Progress(args.at, f"simulating to {args.at:g} s")
    chunk = max(scenario.simulation.step_s, args.at / 200)
    while sim.now < args.at:
        sim.run(min(sim.now + chunk, args.at))
        bar.update(sim.now)
    bar.close()
    from twin.render.app import render_still

    _save_png(render_still(sim, args.size, args.layout), args.out)
    print(f"saved {args.out} ({args.size[0]}x{args.size[1]}, t = {sim.now:g} s)")
    return 0


def _shot_split(args: argparse.Namespace, scenario) -> int:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from twin.render.split import render_split_still

    pygame.display.init()
    pygame.display.set_mode((64, 64))
    _save_png(render_split_still(scenario, args.split, args.at, args.size, args.seed), args.out)
    print(f"saved {args.out} ({args.size[0]}x{args.size[1]}, t = {args.at:g} s, {' vs '.join(args.split)})")
    return 0


def _exhibit(args: argparse.Namespace) -> int:
    from twin.playlist import load_playlist

    show = load_playlist(args.playlist)
    import pygame

    from twin.render.show import run_exhibit, show_logger

    log = show_logger(args.log)
    try:
        return run_exhibit(show, log, args.windowed, args.size, args.display, args.quit_after)
    except pygame.error as err:
        log.error("cannot open the display: %s", err)
        raise UsageError(f"cannot open display {args.display} ({err})") from None


def _record(args: argparse.Namespace) -> int:
    from twin.progress import Progress
    from twin.simulation import Simulation

    scenario = load_scenario(args.scenario)
    w, h = args.size
    if args.png is not None:
        if args.png.exists() and not args.png.is_dir():
            raise UsageError(f"{args.png}: exists and is not a folder")
        if args.png.is_dir() and any(args.png.glob("frame-*.png")):
            raise UsageError(f"{args.png}: already holds frame-*.png files; choose an empty folder")
    else:
        _check_writable(args.out, args.scenario)
        if args.out.suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise UsageError(f"{args.out}: expected a .mp4, .mkv or .mov file name")
        if w % 2 or h % 2:
            raise UsageError(f"--size {w}x{h}: H.264 needs an even width and height")
    sim = Simulation(scenario, seed=args.seed)
    if args.at > 0:
        sim.run(args.at)
    from twin.render.record import record

    frames = max(1, round(args.seconds * args.fps))
    bar = Progress(frames, f"recording {frames} frames")
    written = record(sim, frames, args.fps, args.speed, args.size, args.layout, args.out, args.png, bar.update)
    bar.close()
    print(f"wrote {written} frames to {args.png if args.png is not None else args.out}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from twin.progress import Progress
    from twin.replay import Replay
    from twin.report import build_report, format_report
    from twin.trace import parse_columns, parse_time

    def when(flag: str, text: str | None) -> float | None:
        if text is None:
            return None
        try:
            return parse_time(text)
        except ValueError:
            raise UsageError(f"{flag} {text!r}: expected a time like 2020-05-12 14:00:00") from None

    scenario = load_scenario(args.scenario)
    columns = parse_columns(args.columns)
    start, end = when("--from", args.start), when("--to", args.end)
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--to {args.end!r}: expected a time after --from {args.start!r}")
    if args.report is not None:
        _check_writable(args.report, args.scenario, args.trace)
    replay = Replay(scenario, args.trace, columns, args.strict, start, end, seed=args.seed)
    if args.report is None and not args.headless:
        return _replay_view(args, replay)
    size = max(args.trace.stat().st_size, 1)
    bar = Progress(size, f"replaying {args.trace.name} on {scenario.site.name}")
    replay.run_to_end(lambda _rows: bar.update(replay.stats.bytes_read))
    bar.close()
    report = build_report(replay.sim)
    report["replay"] = replay.report_block()
    print(format_report(report))
    r = report["replay"]
    print(
        f"  Trace: {r['rows']:,} rows, {r['jobs_replayed']:,} GPU jobs replayed, {r['cpu_jobs_skipped']:,} CPU jobs "
        f"and {r['never_ran_skipped']:,} that never ran skipped, {r['bad_rows']:,} bad rows"
    )
    print(
        f"  Wait mean / p95: ours {r['mean_wait_s']:,.0f} s / {r['p95_wait_s']:,.0f} s, "
        f"recorded {r['recorded_mean_wait_s']:,.0f} s / {r['recorded_p95_wait_s']:,.0f} s"
    )
    for example in r["bad_examples"][:5]:
        print(f"  bad row: {args.trace}: line {example['line']}: {example['reason']}", file=sys.stderr)
    if args.report is not None:
        _write_atomic(args.report, json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.report}")
    return 0


def _replay_view(args: argparse.Namespace, replay) -> int:
    from twin.render.app import App

    return _run_window(
        lambda: App(replay, size=args.size, speed=args.speed, quit_after=args.quit_after),
        "use --report or --headless without a display",
    )


def _mirror(args: argparse.Namespace) -> int:
    from twin.mirror import Mirror
    from twin.telemetry import load_telemetry
    from twin.trace import format_time, parse_time

    telemetry = load_telemetry(args.dir)
    for note in telemetry.notes:
        print(f"note: {note}", file=sys.stderr)
    start = telemetry.start
    if args.at is not None:
        try:
            start = parse_time(args.at)
        except ValueError:
            raise UsageError(f"--at {args.at!r}: expected a time like 2020-05-12 14:00") from None
        if not telemetry.start <= start < telemetry.end:
            first, last = format_time(telemetry.start), format_time(telemetry.end)
            raise UsageError(f"--at {args.at!r}: expected a time in the recording, {first} to {last}")
    if args.report is not None:
        _check_writable(args.report, args.dir)
        warm = 0.0
        if args.compare_sim:  # the simulated twin needs time to fill up: run it a day before the minute
            warm = min(86400.0, start - telemetry.start)
        mirror = Mirror(telemetry, start=start - warm, compare=args.compare_sim)
        mirror.run(warm)
        report = mirror.report()
        for name, rec in report["vcs"].items():
            text = (
                "no data (a gap in the recording)"
                if rec is None
                else (
                    f"{rec['running_gpus']:>5} of {rec['gpus']:>5} GPUs busy, {rec['running_jobs']:>4} jobs running, "
                    f"{rec['pending_jobs']:>4} pending"
                )
            )
            print(f"  {report['time']}  {name:<10} {text}")
        _write_atomic(args.report, json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.report}")
        return 0
    from twin.render.app import App

    mirror = Mirror(telemetry, start=start, compare=args.compare_sim)
    return _run_window(
        lambda: App(mirror, size=args.size, speed=args.speed, quit_after=args.quit_after),
        "use --report without a display",
    )


def _compare(args: argparse.Namespace) -> int:
    from functools import partial

    from twin.compare import compare, format_table, local_engine, parse_variants, ray_engine, rows_csv, summarize
    from twin.progress import Progress

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    variants = parse_variants(args.faults, args.checkpoint_minutes)
    if args.out is not None:
        if args.out.suffix.lower() not in (".json", ".csv"):
            raise UsageError(f"{args.out}: expected a .json or .csv file name")
        _check_writable(args.out, args.scenario)
        _check_writable(args.out.with_suffix(".png"), args.scenario)
    total = len(policies) * len(variants) * args.seeds
    bar = Progress(total, f"comparing {len(policies)} policies x {args.seeds} seeds x {len(variants)} settings")
    if args.engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--engine ray needs Ray: pip install '.[ray]'") from None
        engine = partial(ray_engine, address=args.address)
    else:
        if args.address:
            raise UsageError("--address goes with --engine ray")
        engine = partial(local_engine, workers=args.workers)
    rows = compare(args.scenario, policies, args.seeds, args.hours, variants, engine, bar.update)
    bar.close()
    summary = summarize(rows)
    print(f"{rows[0]['site']}, {args.hours:g} h, {args.seeds} seeds each (means)")
    print(format_table(summary))
    if args.out is not None:
        text = rows_csv(rows) if args.out.suffix.lower() == ".csv" else json.dumps({"runs": rows}, indent=2) + "\n"
        _write_atomic(args.out, text)
        from twin.render.chart import save_chart

        chart = args.out.with_suffix(".png")
        save_chart(summary, f"{rows[0]['site']}: policies compared over {args.hours:g} h", chart)
        print(f"results written to {args.out}, chart to {chart}")
    return 0


def _check_writable(path: Path, *inputs: Path) -> None:
    """Fail before a long run, not after it, if the output cannot be written or would clobber an input."""
    if any(path.resolve() == p.resolve() for p in inputs):
        raise UsageError(f"{path}: is an input of this run; choose another output path")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; expected a file path for the report")
    if not path.parent.exists():
        raise UsageError(f"{path}: folder {path.parent} does not exist")


def _run_window(make_app, hint: str) -> int:
    """Open a window (the live view, a split view, a replay or a mirror) and run it until it closes."""
    import pygame

    try:
        app = make_app()
    except pygame.error as err:
        raise UsageError(f"cannot open a window ({err}); {hint}") from None
    app.run()
    return 0


def _save_png(surface, path: Path) -> None:
    """Save via a temporary file and rename, as reports are written."""
    import pygame

    tmp = path.with_name(f".{path.stem}.tmp.png")
    pygame.image.save(surface, str(tmp))
    tmp.replace(path)


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed write never leaves half a file behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
