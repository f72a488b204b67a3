"""The live twin at Lingang's size: Lingang served by ``main.py serve`` (12,000 GPUs, 12,000 NICs, the
switch ports), scraped by a real Prometheus, read by a LiveSource polling as fast as it can.

    .venv/bin/python bench/live.py [--cycles 30] [--scrape 5]

Prints the scrape time of the served site, the poll time per cycle (all queries, median and p99),
the frame-side cost of a snapshot, and the frame times of the view (headless, 1920x1080) drawing
the live source while it polls beside the same view drawing the simulated site; one JSON line last.
Needs ``prometheus`` on PATH. Everything it starts listens on 127.0.0.1 and is stopped by its PID at
the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from twin.live import LiveSource  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402
from twin.simulation import Simulation  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench/live.py: {what}: not within {timeout:g} s")


def get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def frame_times(source, frames: int) -> np.ndarray:
    """Milliseconds per frame of the view on ``source``, headless at 1920x1080 (the window's own loop:
    advance 1/60 s, refresh the snapshot when the source changed, draw, present)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from twin.render.app import App

    app = App(source, size=(1920, 1080), speed=1)
    times = []
    for i in range(frames + 30):  # the first 30 fill the caches
        t = time.perf_counter()
        pygame.event.pump()
        app.update(1 / 60, i / 60)
        app.draw(i / 60)
        pygame.display.flip()
        if i >= 30:
            times.append((time.perf_counter() - t) * 1000)
    pygame.display.quit()
    return np.array(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "lingang.toml"))
    ap.add_argument("--cycles", type=int, default=30, help="poll cycles to time")
    ap.add_argument("--scrape", type=int, default=5, help="Prometheus scrape interval, seconds")
    ap.add_argument("--at", type=float, default=3600.0, help="simulated seconds served (held still)")
    ap.add_argument("--frames", type=int, default=300, help="frames of the view timed for each source")
    args = ap.parse_args()
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("bench/live.py: needs prometheus on PATH (apt-get install prometheus)")
    tmp = Path(tempfile.mkdtemp(prefix="twin-live-bench-"))
    serve_port, prom_port = free_port(), free_port()
    # serve and Prometheus stand for machines elsewhere: niced, so that on this one they do not take the
    # view's cores (the poller is niced by the live source itself).
    serve = subprocess.Popen(
        [
            "nice",
            "-n",
            "19",
            sys.executable,
            str(ROOT / "main.py"),
            "serve",
            args.scenario,
            "--port",
            str(serve_port),
            "--at",
            str(args.at),
            "--speed",
            "0",
        ],
        stderr=subprocess.DEVNULL,
    )
    prom = None
    try:
        t0 = time.perf_counter()
        wait_for(lambda: bool(get(f"http://127.0.0.1:{serve_port}/metrics")), 180, "serve")
        print(f"serve up in {time.perf_counter() - t0:.1f} s")
        scrapes = []
        for _ in range(3):
            t = time.perf_counter()
            body = get(f"http://127.0.0.1:{serve_port}/metrics")
            scrapes.append(time.perf_counter() - t)
        samples = body.count(b"\n") - body.count(b"\n#")
        print(f"/metrics: {samples:,} samples, {len(body) / 1e6:.1f} MB, {min(scrapes) * 1000:.0f} ms per scrape")
        config = tmp / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {args.scrape}s\n  scrape_timeout: {args.scrape}s\n"
            f"scrape_configs:\n  - job_name: twin\n    honor_labels: true\n"
            f'    static_configs:\n      - targets: ["127.0.0.1:{serve_port}"]\n'
        )
        log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 (handed to the process)
        prom = subprocess.Popen(
            [
                "nice",
                "-n",
                "19",
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
        )
        url = f"http://127.0.0.1:{prom_port}"
        wait_for(lambda: get(f"{url}/-/ready").startswith(b"Prometheus"), 60, "prometheus ready")
        source = LiveSource(url, load_scenario(args.scenario), poll=0.001, timeout=30.0).start()
        try:
            t = time.perf_counter()
            source.wait_for_data(20 * args.scrape + 60)
            print(f"first data after {time.perf_counter() - t:.1f} s (rate() needs a few scrapes)")
            source.poll_times.clear()
            wait_for(lambda: len(source.poll_times) >= args.cycles, 60 * args.cycles, f"{args.cycles} polls")
            polls = np.array(list(source.poll_times)[: args.cycles]) * 1000
            snaps = []
            for _ in range(20):
                t = time.perf_counter()
                source.snapshot()
                snaps.append((time.perf_counter() - t) * 1000)
            report = source.report()
        finally:
            source.stop()
        # The view as `live` runs it: polling at the scrape interval, in a process of its own.
        viewed = LiveSource(url, load_scenario(args.scenario), timeout=30.0).start(process=True)
        try:
            viewed.wait_for_data(20 * args.scrape + 60)
            live_frames = frame_times(viewed, args.frames)
        finally:
            viewed.stop()
        still_frames = frame_times(viewed, args.frames)  # the same data, nothing polling beside the view
        sim_frames = frame_times(Simulation(load_scenario(args.scenario)), args.frames)
        ok = sum(1 for s in report["servers"].values() if s["state"] == "ok")
        print(
            f"poll cycle ({args.cycles} cycles, one query per family): median {np.median(polls):.0f} ms, "
            f"p99 {np.percentile(polls, 99):.0f} ms"
        )
        print(f"snapshot for the view: median {statistics.median(snaps):.1f} ms")
        print(f"report: {ok:,} of {len(report['servers']):,} servers with data, {len(report['links']):,} cables")
        lp99, sp99 = (float(np.percentile(f, 99)) for f in (live_frames, sim_frames))
        print(
            f"frames at 1920x1080, headless: live median {np.median(live_frames):.1f} ms p99 {lp99:.1f} ms; "
            f"simulated median {np.median(sim_frames):.1f} ms p99 {sp99:.1f} ms "
            f"(live / simulated p99 {lp99 / sp99:.2f})"
        )
        print(
            f"  the live view with its poller stopped (the same data): median {np.median(still_frames):.1f} ms "
            f"p99 {np.percentile(still_frames, 99):.1f} ms"
        )
        print(
            json.dumps(
                {
                    "site": load_scenario(args.scenario).site.name,
                    "served_samples": samples,
                    "scrape_ms": round(min(scrapes) * 1000, 1),
                    "scrape_interval_s": args.scrape,
                    "cycles": args.cycles,
                    "poll_ms_median": round(float(np.median(polls)), 1),
                    "poll_ms_p99": round(float(np.percentile(polls, 99)), 1),
                    "snapshot_ms_median": round(statistics.median(snaps), 2),
                    "servers_with_data": ok,
                    "live_frame_ms_median": round(float(np.median(live_frames)), 2),
                    "live_frame_ms_p99": round(lp99, 2),
                    "sim_frame_ms_median": round(float(np.median(sim_frames)), 2),
                    "sim_frame_ms_p99": round(sp99, 2),
                    "live_to_sim_frame_p99": round(lp99 / sp99, 3),
                    "live_still_frame_ms_median": round(float(np.median(still_frames)), 2),
                    "live_still_frame_ms_p99": round(float(np.percentile(still_frames, 99)), 2),
                    "cables": len(report["links"]),
                }
            )
        )
    finally:
        stop(serve)
        if prom is not None:
            stop(prom)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
