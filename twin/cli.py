"""The command line: ``python main.py [VERB] ...``. Thin: parse, call the core, print, exit.

Bad input (a scenario that does not validate, a path that cannot be written) prints one line naming
the file and field and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from twin.errors import ScenarioError
from twin.names import LAYOUTS
from twin.resources import DEFAULT_PLAYLIST, DEFAULT_SCENARIO, HELIOS_EARTH, find_scenario, version
from twin.scenario import MAX_HOURS, MAX_SECONDS, MAX_SEED, load_scenario
from twin.scheduler import POLICIES

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on the console of a CLI
VERBS = ("simulate", "validate", "view", "shot", "exhibit", "record", "replay", "mirror", "compare", "serve", "live")
MAX_SPEED = 10_000.0  # simulated seconds per wall second in a window (the view's fastest setting)
MAX_RECORD_SPEED = 86_400.0  # simulated seconds per video second: a day a second
MAX_WINDOW_S = 86_400.0  # --quit-after
MAX_VIDEO_S = 3_600.0
MAX_FPS = 120.0
MAX_SEEDS = 1_000  # compare: seeds per policy
MAX_RUNS = 10_000  # compare: policies x settings x seeds
MAX_WORKERS = 256  # compare --workers: an explicit request may exceed the cores, never this
WINDOW_VERBS = ("view", "exhibit")  # stop signals are polled by a frame loop; headless runs stop at once


class UsageError(Exception):
    """A command-line problem the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse whose flag errors are one line (the usage block is what --help is for), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="twin",
        description="twin: a digital twin of an AI computing center. With no verb, opens the live view.",
    )
    p.add_argument("--version", action="version", version=f"twin {version()}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    s = sub.add_parser("simulate", help="run a scenario headless and print a summary")
    s.add_argument("scenario", type=Path)
    s.add_argument("--hours", type=_hours, default=None, help="simulated hours (default: the scenario's)")
    s.add_argument("--seed", type=_non_negative_int, default=None, help="random seed (default: the scenario's)")
    s.add_argument("--policy", choices=tuple(POLICIES), default=None, help="override the scheduler")
    s.add_argument("--report", type=Path, default=None, help="write the report as JSON to this file")
    v = sub.add_parser("validate", help="check a scenario file and describe the site")
    v.add_argument("scenario", type=Path)
    w = sub.add_parser("view", help="open the live view (the default verb)")
    w.add_argument("scenario", type=Path, nargs="?", default=DEFAULT_SCENARIO)
    w.add_argument("--seed", type=_non_negative_int, default=None)
    w.add_argument("--size", type=_size, default=(1600, 900), help="window size, WIDTHxHEIGHT")
    w.add_argument("--fullscreen", action="store_true")
    w.add_argument("--speed", type=_speed, default=120, help="simulated seconds per wall second")
    w.add_argument("--split", type=_policy_pair, default=None, help="two policies side by side, e.g. fifo,topology")
    w.add_argument("--quit-after", type=_quit_after, default=None, help=argparse.SUPPRESS)
    sh = sub.add_parser("shot", help="save one frame of the view as a PNG, headless")
    sh.add_argument("scenario", type=Path)
    sh.add_argument("--at", type=_non_negative, default=0.0, help="simulated seconds to run first")
    sh.add_argument("--size", type=_size, default=(1920, 1080), help="WIDTHxHEIGHT")
    sh.add_argument("--out", type=Path, default=Path("frame.png"))
    sh.add_argument("--seed", type=_non_negative_int, default=None)
    sh.add_argument("--layout", choices=LAYOUTS, default="hall")
    sh.add_argument("--split", type=_policy_pair, default=None, help="two policies side by side, e.g. fifo,topology")
    ex = sub.add_parser("exhibit", help="the unattended exhibition show (quit with Ctrl+Shift+Q)")
    ex.add_argument("playlist", type=Path, nargs="?", default=DEFAULT_PLAYLIST)
    ex.add_argument("--windowed", action="store_true", help="in a window instead of fullscreen")
    ex.add_argument("--display", type=_display, default=0, help="which screen to use")
    ex.add_argument("--size", type=_size, default=(1600, 900), help="window size with --windowed")
    ex.add_argument("--log", type=Path, default=Path("logs") / "exhibit.log", help="rotating log file")
    ex.add_argument("--quit-after", type=_quit_after, default=None, help=argparse.SUPPRESS)
    ex.add_argument("--check", action="store_true", help="check the playlist, scenes, fonts, logo, display and log")
    rp = sub.add_parser("replay", help="replay a job trace (Helios cluster_log.csv format) through our scheduler")
    rp.add_argument("trace", type=Path)
    rp.add_argument("--scenario", type=Path, default=HELIOS_EARTH, help="the site to replay on")
    rp.add_argument("--speed", type=_speed, default=600.0, help="simulated seconds per second in the window")
    rp.add_argument("--from", dest="start", default=None, help="first submit time replayed (YYYY-MM-DD HH:MM:SS)")
    rp.add_argument("--to", dest="end", default=None, help="submit time where the replay stops taking jobs")
    rp.add_argument("--columns", default="", help="trace column names, e.g. gpus=num_gpus,submit=submitted")
    rp.add_argument("--strict", action="store_true", help="stop at the first bad row")
    rp.add_argument("--report", type=Path, default=None, help="replay headless to the end and write JSON here")
    rp.add_argument("--headless", action="store_true", help="no window: replay to the end and print the report")
    rp.add_argument("--seed", type=_non_negative_int, default=None)
    rp.add_argument("--size", type=_size, default=(1600, 900))
    rp.add_argument("--quit-after", type=_quit_after, default=None, help=argparse.SUPPRESS)
    mi = sub.add_parser("mirror", help="show recorded per-minute telemetry (Helios VC files) in the twin")
    mi.add_argument("dir", type=Path, help="folder of <vc>_per_minute_*.csv[.gz] files")
    mi.add_argument("--at", default=None, help="start (or, with --report, the minute) as YYYY-MM-DD HH:MM")
    mi.add_argument("--report", type=Path, default=None, help="write that minute per VC as JSON and exit")
    mi.add_argument("--speed", type=_speed, default=120.0, help="recorded seconds per second in the window")
    mi.add_argument("--compare-sim", action="store_true", help="run the calibrated simulator beside the recording")
    mi.add_argument("--size", type=_size, default=(1600, 900))
    mi.add_argument("--quit-after", type=_quit_after, default=None, help=argparse.SUPPRESS)
    cp = sub.add_parser("compare", help="the same workload under several policies and seeds, side by side")
    cp.add_argument("scenario", type=Path)
    cp.add_argument("--policies", default="fifo,backfill,topology", help="comma-separated scheduling policies")
    cp.add_argument(
        "--seeds", type=_seeds, default=3, help=f"seeds per policy (from the scenario's seed), at most {MAX_SEEDS:,}"
    )
    cp.add_argument("--hours", type=_hours, default=24.0)
    cp.add_argument("--faults", default=None, help="a sweep, e.g. node_mtbf_hours=100,300,1000")
    cp.add_argument("--checkpoint-minutes", default=None, help="a sweep of checkpoint intervals, e.g. 10,30,60")
    cp.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help=f"processes (default: one per core; never more than runs; at most {MAX_WORKERS})",
    )
    cp.add_argument("--engine", choices=("local", "ray"), default="local", help="where the runs run")
    cp.add_argument("--address", default=None, help="with --engine ray: the Ray cluster to send runs to")
    cp.add_argument("--out", type=Path, default=None, help="results .json or .csv (and a .png chart beside it)")
    se = sub.add_parser("serve", help="run a scenario headless and expose it to Prometheus as real exporters would")
    se.add_argument("scenario", type=Path)
    se.add_argument("--port", type=_port, required=True, help="TCP port for /metrics")
    se.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    se.add_argument("--speed", type=_non_negative, default=1.0, help="simulated seconds per wall second (0: hold)")
    se.add_argument("--seed", type=_non_negative_int, default=None)
    se.add_argument("--at", type=_non_negative, default=0.0, help="simulated seconds to run before serving")
    li = sub.add_parser("live", help="show a real cluster from Prometheus in the twin (or write one --report)")
    li.add_argument("scenario", type=Path, nargs="?", default=None, help="the site (default: built from the hosts)")
    li.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    li.add_argument("--map", type=Path, default=None, help="TOML mapping hosts, NIC devices and switches to the site")
    li.add_argument("--poll", type=_live_seconds, default=None, help="seconds between polls (default: scrape interval)")
    li.add_argument("--report", type=Path, default=None, help="wait for data, write one JSON snapshot here and exit")
    li.add_argument("--wait", type=_live_seconds, default=30.0, help="how long --report waits for data (seconds)")
    li.add_argument("--size", type=_size, default=(1600, 900))
    li.add_argument("--quit-after", type=_quit_after, default=None, help=argparse.SUPPRESS)
    rc = sub.add_parser("record", help="render a scenario headless to an H.264 video (or PNG frames)")
    rc.add_argument("scenario", type=Path)
    rc.add_argument("--seconds", type=_video_seconds, default=60.0, help="length of the video")
    rc.add_argument("--fps", type=_fps, default=30.0)
    rc.add_argument("--size", type=_size, default=(1920, 1080))
    rc.add_argument("--speed", type=_record_speed, default=120.0, help="simulated seconds per video second")
    rc.add_argument("--at", type=_non_negative, default=0.0, help="simulated seconds to run before recording")
    rc.add_argument("--seed", type=_non_negative_int, default=None)
    rc.add_argument("--layout", choices=LAYOUTS, default="hall")
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
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected a number of seconds from 0 to {MAX_SECONDS:,.0f}, got {text!r}")
    return value


def _positive(text: str, maximum: float = MAX_SECONDS, unit: str = "") -> float:
    """A finite number above 0 and at most ``maximum`` (NaN and infinities are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value <= maximum:
        raise argparse.ArgumentTypeError(f"expected a positive number of at most {maximum:,g}{unit}, got {text!r}")
    return value


def _bounded(maximum: float, unit: str = "") -> Callable[[str], float]:
    def parse(text: str) -> float:
        return _positive(text, maximum, unit)

    return parse


_hours = _bounded(MAX_HOURS, " hours")
_speed = _bounded(MAX_SPEED, " (simulated seconds per second)")
_record_speed = _bounded(MAX_RECORD_SPEED, " (simulated seconds per video second)")
_quit_after = _bounded(MAX_WINDOW_S, " s")
_video_seconds = _bounded(MAX_VIDEO_S, " s")


def _fps(text: str) -> float:
    value = _positive(text, MAX_FPS, " frames per second")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected from 1 to {MAX_FPS:g} frames per second, got {text!r}")
    return value


def _whole(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _non_negative_int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low:,} to {high:,}, got {text!r}")
        return value

    return parse


_seeds = _whole(1, MAX_SEEDS, "a number of seeds")
_workers = _whole(1, MAX_WORKERS, "a number of worker processes")
_display = _whole(0, 15, "a display number")


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
        value = int(text) if len(text) <= 30 else None
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a whole number of at most {MAX_SEED:,}, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in VERBS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "view")
    args = _parser().parse_args(argv)
    for name in ("scenario", "playlist"):  # a shipped scenario by name, from any folder: `twin validate lingang`
        if isinstance(getattr(args, name, None), Path):
            setattr(args, name, find_scenario(getattr(args, name)))
    from twin import signals

    windowed = args.verb in WINDOW_VERBS or (
        args.verb in ("replay", "mirror", "live") and args.report is None and not getattr(args, "headless", False)
    )
    if threading.current_thread() is threading.main_thread():
        signals.install_stop_handlers(log=_say if windowed else None, raising=not windowed)
    try:
        return _dispatch(args)
    except (ScenarioError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except signals.StopRequested as stop:
        if args.verb == "exhibit":  # the show's own log has the line; nothing reaches its console
            return 0
        print(f"stopped by {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`twin validate x | head -1`): stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # a bug, not bad input: one line all the same, the traceback on request
        if os.environ.get("TWIN_DEBUG"):
            raise
        print(
            f"error: internal error ({err.__class__.__name__}: {err}); please report it "
            "(TWIN_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 70
    finally:
        if threading.current_thread() is threading.main_thread():
            signals.reset()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the verb (the live view when none was given)."""
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
    if args.verb == "serve":
        return _serve(args)
    if args.verb == "live":
        return _live(args)
    return _view(args)


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
    """Check a file and describe its site from the numbers alone (nothing is built, so any file is
    answered at once, the largest site too)."""
    from twin.scenario import site_size
    from twin.site import describe, describe_lines

    scenario = load_scenario(args.scenario)
    size = site_size(scenario)
    topo = scenario.topology
    print(f"{args.scenario}: ok")
    print(f"  {scenario.site.name}: {topo.kind}, {size.servers:,} nodes, {size.gpus:,} x {scenario.gpu.model}")
    print(
        f"  peak {scenario.peak_pflops:,.0f} PFLOPS, {size.switches:,} switches, "
        f"{size.cables:,} links (bundles of parallel cables count once), {len(scenario.storage)} storage arrays"
    )
    for line in describe_lines(describe(scenario)):
        print(line)
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
    from twin.outputs import check_log
    from twin.playlist import load_playlist, show_inputs

    if args.check:
        from twin.preflight import preflight

        return preflight(args.playlist, args.log, args.display, args.windowed, args.size)
    show = load_playlist(args.playlist)
    check_log(args.log, show_inputs(show))  # never into the playlist, a scene or the logo
    import pygame

    from twin import signals
    from twin.render.show import run_exhibit, show_logger

    log = show_logger(args.log)
    if threading.current_thread() is threading.main_thread():
        signals.install_stop_handlers(log=log.info)  # the stop goes into the show's log
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
        from twin.outputs import check_output_folder

        check_output_folder(args.png, [args.scenario])
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

    if args.report is not None:  # before reading a month of telemetry, not after
        _check_writable(args.report, args.dir)
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

    from twin.compare import (
        compare,
        format_table,
        local_engine,
        parse_variants,
        ray_engine,
        rows_csv,
        summarize,
        worker_count,
    )
    from twin.progress import Progress

    policies = list(dict.fromkeys(p.strip() for p in args.policies.split(",") if p.strip()))
    if not policies:
        raise UsageError(f"--policies {args.policies!r}: expected one or more of fifo, backfill, topology")
    variants = parse_variants(args.faults, args.checkpoint_minutes)
    if args.out is not None:
        if args.out.suffix.lower() not in (".json", ".csv"):
            raise UsageError(f"{args.out}: expected a .json or .csv file name")
        _check_writable(args.out, args.scenario)
        _check_writable(args.out.with_suffix(".png"), args.scenario)
    total = len(policies) * len(variants) * args.seeds
    if total > MAX_RUNS:
        raise UsageError(
            f"--seeds {args.seeds}: {len(policies)} policies x {len(variants)} settings x {args.seeds} seeds is "
            f"{total:,} runs; expected at most {MAX_RUNS:,}"
        )
    if args.engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--engine ray needs Ray: pip install '.[ray]'") from None
        if args.address:
            _check_reachable(args.address)
        engine = partial(ray_engine, address=args.address)
        where = "on Ray"
    else:
        if args.address:
            raise UsageError("--address goes with --engine ray")
        workers = worker_count(total, args.workers)
        engine = partial(local_engine, workers=workers)
        where = f"in {workers} process{'es' if workers > 1 else ''}"
    bar = Progress(total, f"comparing {len(policies)} policies x {args.seeds} seeds x {len(variants)} settings {where}")
    try:
        rows = compare(args.scenario, policies, args.seeds, args.hours, variants, engine, bar.update)
    except ConnectionError as err:
        raise UsageError(f"--address {args.address!r}: cannot reach the Ray cluster ({err})") from None
    bar.close()
    summary = summarize(rows)
    print(f"{rows[0]['site']}, {args.hours:g} h, {args.seeds} seeds each (means)")
    print(format_table(summary))
    if args.out is not None:
        text = rows_csv(rows) if args.out.suffix.lower() == ".csv" else json.dumps({"runs": rows}, indent=2) + "\n"
        _write_atomic(args.out, text)
        from twin.outputs import atomic_path
        from twin.render.chart import save_chart

        chart = args.out.with_suffix(".png")
        with atomic_path(chart) as tmp:
            save_chart(summary, f"{rows[0]['site']}: policies compared over {args.hours:g} h", tmp)
        print(f"results written to {args.out}, chart to {chart}")
    return 0


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {text!r}")
    return value


def _serve(args: argparse.Namespace) -> int:
    from twin.serve import ServeError, serve

    scenario = load_scenario(args.scenario)
    try:
        return serve(scenario, args.port, args.host, args.speed, args.seed, args.at)
    except ServeError as err:
        raise UsageError(str(err)) from None


def _check_reachable(address: str) -> None:
    """A Ray address given as HOST:PORT (or ray://HOST:PORT) must answer a TCP connection within 3 s, so an
    unreachable cluster is one line now rather than a long wait and a traceback."""
    import socket

    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if address == "auto" or not sep:
        return
    if not port.isdigit() or not 1 <= int(port) <= 65535 or not host:
        raise UsageError(f"--address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
            pass
    except OSError as err:
        raise UsageError(f"--address {address!r}: cannot reach {host}:{port} ({err.strerror or err})") from None


_live_seconds = _bounded(3600.0, " s")


def _live(args: argparse.Namespace) -> int:
    from twin.live import LiveSource, load_mapping
    from twin.promql import PromError

    if not args.prometheus.startswith(("http://", "https://")):
        raise UsageError(f"--prometheus {args.prometheus!r}: expected a URL like http://127.0.0.1:9090")
    scenario = load_scenario(args.scenario) if args.scenario is not None else None
    mapping = load_mapping(args.map) if args.map is not None else None
    if args.report is not None:
        _check_writable(args.report, *(p for p in (args.scenario, args.map) if p is not None))
    try:
        source = LiveSource(args.prometheus, scenario, mapping, poll=args.poll)
    except PromError as err:
        raise UsageError(str(err)) from None
    if source.notice:
        print(f"note: {source.notice}", file=sys.stderr)
    if args.report is None:
        from twin.render.app import App

        source.start(process=True)  # polling in a process of its own: the frames never wait for it
        try:
            return _run_window(
                lambda: App(source, size=args.size, speed=1, quit_after=args.quit_after),
                "use --report without a display",
            )
        finally:
            source.stop()
    from twin import signals

    with source:
        try:
            source.wait_for_data(args.wait, check=signals.check_stop)
        except PromError as err:
            raise UsageError(str(err)) from None
        report = source.report()
    ok = sum(1 for s in report["servers"].values() if s["state"] == "ok")
    print(
        f"{report['time']}  {ok} of {len(report['servers'])} servers with data, {len(report['links'])} cables, "
        f"{report['queue']['running']} jobs running, {report['queue']['pending']} pending"
    )
    if report["missing"]:
        print(f"  missing: {', '.join(report['missing'])}")
    _write_atomic(args.report, json.dumps(report, indent=2) + "\n")
    print(f"report written to {args.report}")
    return 0


def _check_writable(path: Path, *inputs: Path) -> None:
    """Fail before a long run, not after it, if the output cannot be written or would clobber an input
    (see ``twin.outputs.check_output``: folders, devices, inputs and files inside input folders)."""
    from twin.outputs import check_output

    check_output(path, inputs)


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

    from twin.outputs import atomic_path

    with atomic_path(path) as tmp:
        pygame.image.save(surface, str(tmp))


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed write never leaves half a file behind."""
    from twin.outputs import write_atomic

    write_atomic(path, text)
