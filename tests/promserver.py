"""A real Prometheus scraping a real ``main.py serve``, for the serve and live tests.

Both listen on 127.0.0.1 on free ports, are polled for readiness with a deadline (never a blind sleep)
and are stopped by their PIDs. Without a ``prometheus`` binary on PATH the tests that need it skip,
unless TWIN_REQUIRE_PROMETHEUS=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT

SCRAPE_S = 1
SERVE_AT = 300.0  # simulated seconds the served site is run to before it is held still
SERVE_SEED = 1
# Four one-server racks on two spines at 2:1, two 16-GPU training jobs across racks: at 300 s one runs
# slowed by the saturated spine links (GPUs 31% busy), the other waits in the queue because GPU 2 of
# node-0003 failed at 60 s (an XID error), so the exporters show fractional busy, a fault, a queue and
# loads on host and switch cables.
TINY_SITE = """
[site]
name = "Tiny Live Site"

[topology]
kind = "leaf-spine"
racks = 4
nodes_per_rack = 1
spines = 2
oversubscription = 2.0
leaf_radix = 16
spine_radix = 16
port_gbps = 25

[node]
gpus = 8
nics = 1
nic_gbps = 100
overhead_watts = 1000

[gpu]
model = "A100-SXM4-80GB"
peak_tflops = 312
idle_watts = 60
max_watts = 400

[[storage]]
name = "store"
capacity_pb = 1
read_gbs = 10
write_gbs = 5
ports = 2

[workload]
arrival = "none"
initial_load = 1.0

[[workload.mix]]
kind = "pretrain"
share = 1
gpus = [16, 16]
median_hours = 2
sigma = 0.1
params_b = [5, 5]

[power]
pue = 1.5

[simulation]
seed = 1
step_s = 10

[[faults.event]]
at = 60
target = "node-0003"
gpu = 2
action = "fail"
minutes = 0
"""


def tiny_site(folder: Path) -> Path:
    path = folder / "tiny-live.toml"
    path.write_text(TINY_SITE)
    return path


def prometheus_binary() -> str:
    """The prometheus binary, or skip (fail under TWIN_REQUIRE_PROMETHEUS=1)."""
    found = shutil.which("prometheus")
    if found:
        return found
    if os.environ.get("TWIN_REQUIRE_PROMETHEUS") == "1":
        pytest.fail("prometheus is not on PATH but TWIN_REQUIRE_PROMETHEUS=1 (install the Debian package prometheus)")
    pytest.skip("prometheus is not installed (apt-get install prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``check`` every 0.1 s until it is true; fail naming ``what`` after ``timeout`` seconds or as soon
    as ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            said = proc.stderr.read().strip().splitlines()[-3:] if proc.stderr else []
            pytest.fail(f"{what}: the process exited with code {proc.returncode}: {' | '.join(said)}")
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout:g} s")


def http_get(url: str, timeout: float = 3.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> int:
    """Terminate by PID, wait, kill if it will not go; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID still exists (and is not a zombie), as ps would show it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class Served:
    """A ``main.py serve`` subprocess on a free port."""

    def __init__(self, scenario: Path, at: float = SERVE_AT, speed: float = 0.0, seed: int = SERVE_SEED):
        self.port = free_port()
        self.scenario, self.at, self.seed = scenario, at, seed
        args = [sys.executable, str(ROOT / "main.py"), "serve", str(scenario), "--port", str(self.port)]
        args += ["--at", str(at), "--speed", str(speed), "--seed", str(seed)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        wait_for(lambda: bool(http_get(self.url)), 60, f"serve on port {self.port}", self.proc)

    def metrics(self) -> str:
        return http_get(self.url).decode()

    def stop(self) -> tuple[int, str]:
        code = stop_process(self.proc)
        _out, err = self.proc.communicate()
        return code, err


class Prometheus:
    """A real Prometheus scraping ``targets`` every second with honor_labels, storing under ``storage``."""

    def __init__(self, targets: list[int], storage: Path, port: int | None = None) -> None:
        self.binary = prometheus_binary()
        self.port = port or free_port()
        self.storage = storage
        self.config = storage.parent / f"{storage.name}.yml"
        jobs = "".join(
            f"""  - job_name: twin-{t}
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{t}"]
"""
            for t in targets
        )
        self.config.write_text(
            f"""global:
  scrape_interval: {SCRAPE_S}s
  scrape_timeout: {SCRAPE_S}s
  evaluation_interval: {SCRAPE_S}s
scrape_configs:
{jobs}"""
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.started: list[int] = []  # every PID this object started (a restart adds one)
        self.start()

    def start(self) -> None:
        log = open(self.storage.parent / f"{self.storage.name}.log", "ab")  # noqa: SIM115 (kept for the process)
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.storage}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        self.started.append(self.proc.pid)
        wait_for(lambda: http_get(f"{self.url}/-/ready").startswith(b"Prometheus"), 30, "prometheus ready", self.proc)

    def query(self, expr: str) -> list[dict]:
        body = urllib.parse.urlencode({"query": expr}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", body, timeout=5) as resp:
            return json.loads(resp.read())["data"]["result"]

    def wait_for_samples(self, expr: str = "DCGM_FI_PROF_GR_ENGINE_ACTIVE", timeout: float = 30) -> None:
        """Until the serve target's first samples are queryable (the first scrape takes a few seconds)."""
        wait_for(lambda: len(self.query(expr)) > 0, timeout, f"samples of {expr} in prometheus", self.proc)

    def wait_for_full_window(self, seconds: int = 4, timeout: float = 20) -> None:
        """Until every byte counter has a full rate() window of samples: over fewer, rate() extrapolates
        from a counter that started at zero and reads low (Prometheus's own behaviour)."""
        families = "node_infiniband_port_data_transmitted_bytes_total|infiniband_portxmitdata_total"
        expr = f'min(count_over_time({{__name__=~"{families}"}}[{seconds}s]))'
        wait_for(
            lambda: float(self.query(expr)[0]["value"][1]) >= seconds, timeout, f"{seconds} s of samples", self.proc
        )

    def stop(self) -> int:
        return stop_process(self.proc) if self.proc is not None else 0


class Stack:
    """serve + Prometheus, both up and the first samples in."""

    def __init__(self, tmp: Path, scenario: Path, **serve_args: object) -> None:
        self.scenario = scenario
        self.served = Served(scenario, **serve_args)  # type: ignore[arg-type]
        try:
            self.prom = Prometheus([self.served.port], tmp / "tsdb")
            self.prom.wait_for_samples()
        except BaseException:
            self.served.stop()
            if hasattr(self, "prom"):
                self.prom.stop()
            raise

    def pids(self) -> list[int]:
        return [self.served.proc.pid, *self.prom.started]

    def stop(self) -> None:
        self.served.stop()
        self.prom.stop()


def stack_fixture(tmp_path_factory: pytest.TempPathFactory, **serve_args: object):
    """Body of a module fixture: yields a started Stack, stops it, and checks nothing it started is left."""
    prometheus_binary()
    tmp = tmp_path_factory.mktemp("prom")
    stack = Stack(tmp, tiny_site(tmp), **serve_args)
    try:
        yield stack
    finally:
        stack.stop()
        left = [p for p in stack.pids() if pid_alive(p)]
        assert not left, f"processes left running: {left}"


def expected_sim(scenario: Path, at: float = SERVE_AT, seed: int = SERVE_SEED):
    """The simulation a ``serve --at AT --speed 0`` holds, run in this process (runs are deterministic)."""
    from twin.scenario import load_scenario
    from twin.serve import advance_sim
    from twin.simulation import Simulation

    sim = Simulation(load_scenario(scenario), seed=seed)
    advance_sim(sim, at, budget_s=float("inf"))
    return sim


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Exposition text parsed by prometheus_client: samples by sample name, as (labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out
