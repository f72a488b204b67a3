"""The live twin at Lingang's size: Lingang served by ``main.py serve`` (12,000 GPUs, 12,000 NICs, the
switch ports), scraped by a real Prometheus, read by a LiveSource polling as fast as it can.

    .venv/bin/python bench/live.py [--cycles 30] [--scrape 5]

Prints the scrape time of the served site, the poll time per cycle (all queries, median and p99) and
the frame-side cost of a snapshot, then one JSON line last. Needs ``prometheus`` on PATH. Everything it
starts listens on 127.0.0.1 and is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "lingang.toml"))
    ap.add_argument("--cycles", type=int, default=30, help="poll cycles to time")
    ap.add_argument("--scrape", type=int, default=5, help="Prometheus scrape interval, seconds")
    ap.add_argument("--at", type=float, default=3600.0, help="simulated seconds served (held still)")
    args = ap.parse_args()
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("bench/live.py: needs prometheus on PATH (apt-get install prometheus)")
    tmp = Path(tempfile.mkdtemp(prefix="twin-live-bench-"))
    serve_port, prom_port = free_port(), free_port()
    serve = subprocess.Popen(
        [
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
        ok = sum(1 for s in report["servers"].values() if s["state"] == "ok")
        print(
            f"poll cycle ({args.cycles} cycles, one query per family): median {np.median(polls):.0f} ms, "
            f"p99 {np.percentile(polls, 99):.0f} ms"
        )
        print(f"snapshot for the view: median {statistics.median(snaps):.1f} ms")
        print(f"report: {ok:,} of {len(report['servers']):,} servers with data, {len(report['links']):,} cables")
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
