"""The telemetry mirror: the twin showing what a real cluster did, minute by minute, instead of what the
simulator makes up.

:class:`Mirror` is a ``twin.source.Source`` (a seekable one), like the simulation, so the view, HUD and
sparklines are the simulation's own.
Each virtual cluster (VC) is a group of racks of 8-GPU servers; at each recorded minute its first
``running_gpus`` GPUs are lit in the VC's colour. Jobs are not in the telemetry, so there is no traffic
to draw: the fabric stays quiet. A gap in the recording is shown as a gap (dark VC, breaks in the
sparklines), never filled in.

With ``compare``, a simulation of the same cluster with the calibrated Helios preset runs in step, and
its GPU allocation is kept beside the recorded one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twin.metrics import SERIES_FIELDS, TimeSeries
from twin.power import facility_watts
from twin.scenario import Scenario, scenario_from_dict
from twin.simulation import Simulation
from twin.snapshot import JobView, Snapshot
from twin.telemetry import Telemetry
from twin.topology import SWITCH_KINDS, build_fabric
from twin.trace import format_time

NODES_PER_RACK = 4
GPUS_PER_NODE = 8
EMPTY_FLOWS = {k: np.empty(0, np.int64) for k in ("group", "kind", "src", "dst", "entry_flow", "entry_link", "job")} | {
    k: np.empty(0) for k in ("rate", "demand", "entry_frac")
}


def mirror_site(telemetry: Telemetry, preset: str = "") -> dict[str, Any]:
    """A scenario (as a dict) for the recorded VCs: racks of 8 x V100 servers, enough for each VC."""
    racks = sum(_racks(v.size) for v in telemetry.vcs)
    names = ", ".join(v.name for v in telemetry.vcs)
    workload: dict[str, Any] = {
        "arrival": "none",
        "mix": [{"kind": "research", "share": 1, "gpus": [1, 8], "median_hours": 1}],
    }
    if preset:
        workload = {"preset": preset, "initial_load": 0.4}
    return {
        "site": {
            "name": "Helios Earth, as recorded",
            "blurb": f"{len(telemetry.vcs)} virtual clusters ({names}), minute by minute, from the real telemetry",
        },
        "topology": {
            "kind": "leaf-spine",
            "racks": racks,
            "nodes_per_rack": NODES_PER_RACK,
            "spines": 2,
            "oversubscription": 1.0,
            "leaf_radix": 36,
            "spine_radix": max(36, 4 * racks),
            "port_gbps": 100,
        },
        "node": {"gpus": GPUS_PER_NODE, "nics": 1, "nic_gbps": 100, "overhead_watts": 900},
        "gpu": {"model": "V100-SXM2-32GB", "peak_tflops": 125, "idle_watts": 40, "max_watts": 300},
        "storage": [{"name": "lustre-1", "capacity_pb": 1, "read_gbs": 40, "write_gbs": 20, "ports": 2}],
        "workload": workload,
        "power": {"pue": 1.4},
        "simulation": {"seed": 2020, "step_s": 60},
    }


def _racks(gpus: int) -> int:
    return max(1, math.ceil(math.ceil(gpus / GPUS_PER_NODE) / NODES_PER_RACK))


class Mirror:
    """Recorded telemetry as a seekable source for the view. Time 0 is ``start`` (epoch s)."""

    def __init__(self, telemetry: Telemetry, start: float | None = None, compare: bool = False) -> None:
        self.telemetry = telemetry
        self.scenario: Scenario = scenario_from_dict(mirror_site(telemetry), source="<mirror>")
        self.fabric = build_fabric(self.scenario)
        self.t0 = telemetry.start if start is None else start
        self.now = 0.0
        self.series = TimeSeries(fields=(*SERIES_FIELDS, "sim_gpu_allocation"))
        self.version = 0  # one more for every minute applied
        self.owner = np.full((self.fabric.n_nodes, GPUS_PER_NODE), -1, np.int64)  # VC index per lit GPU
        self.n_switches = int(np.isin(self.fabric.kind, SWITCH_KINDS).sum())
        self.vc_nodes = self._place_vcs()
        self.rack_labels = self._rack_labels()
        self.state: dict[str, dict[str, int] | None] = {}
        self.compare = None
        if compare:
            sized = scenario_from_dict(mirror_site(telemetry, "helios-earth"), source="<mirror: simulated>")
            self.compare = Simulation(sized)
        self._minute = -1
        self._apply(0.0)

    def _place_vcs(self) -> list[np.ndarray]:
        """Each VC's servers: the first of a run of whole racks, in file order."""
        out, rack = [], 0
        for vc in self.telemetry.vcs:
            racks = _racks(vc.size)
            nodes = np.flatnonzero((self.fabric.node_rack >= rack) & (self.fabric.node_rack < rack + racks))
            out.append(nodes[: math.ceil(vc.size / GPUS_PER_NODE)])
            rack += racks
        return out

    def _rack_labels(self) -> tuple[str, ...]:
        """What each rack is called in the picture: the VC it belongs to."""
        labels: list[str] = []
        for vc in self.telemetry.vcs:
            racks = _racks(vc.size)
            labels += [vc.name if racks == 1 else f"{vc.name} {i + 1}/{racks}" for i in range(racks)]
        return tuple(labels)

    @property
    def epoch(self) -> float:
        return self.t0 + self.now

    def advance(self, dt: float) -> None:
        self.run(self.now + dt)

    def run(self, until: float) -> None:
        """Step through every recorded minute up to ``until`` (one series row per minute)."""
        last = math.floor(until / 60.0)
        for minute in range(max(self._minute + 1, last - 2000), last + 1):  # a huge jump keeps the last rows
            self._apply(minute * 60.0)
        self.now = until
        if self.compare is not None:
            self.compare.run(until)

    def seek(self, t: float) -> None:
        """Jump to recorded time t (seconds from the start), backwards too; the series keeps its rows, so
        the sparklines show the jump. The simulated twin, which cannot go back, carries on."""
        t = min(max(t, self.telemetry.start - self.t0), self.telemetry.end - self.t0 - 60.0)
        self._apply(math.floor(t / 60.0) * 60.0)
        self.now = t

    def _apply(self, t: float) -> None:
        """Light each VC's running GPUs as recorded for the minute at time t; append a series row."""
        self._minute = math.floor(t / 60.0)
        self.state = self.telemetry.at(self.t0 + t)
        owner = self.owner
        owner[:] = -1
        busy = total = running = pending = 0
        gap = False
        for i, (vc, nodes) in enumerate(zip(self.telemetry.vcs, self.vc_nodes, strict=True)):
            rec = self.state[vc.name]
            if rec is None:
                gap = True
                continue
            gpus = owner[nodes].reshape(-1)
            gpus[: min(rec["running_gpus"], len(gpus))] = i
            owner[nodes] = gpus.reshape(len(nodes), GPUS_PER_NODE)
            busy += rec["running_gpus"]
            total += rec["gpus"]
            running += rec["running_jobs"]
            pending += rec["pending_jobs"]
        self.version += 1
        nan = float("nan")
        all_gap = gap and total == 0
        row = dict.fromkeys(self.series.fields, 0.0)
        row.update(
            time_s=t,
            pflops=nan if all_gap else busy * self.scenario.gpu.peak_tflops / 1000.0,
            gpu_allocation=nan if all_gap else busy / max(total, 1),
            gpu_utilization=nan if all_gap else busy / max(total, 1),
            jobs_running=nan if all_gap else running,
            jobs_queued=nan if all_gap else pending,
            jobs_done=nan,
            mean_wait_s=nan,
            facility_mw=nan if all_gap else facility_watts(self.scenario, busy, self.n_switches) / 1e6,
            pflops_delivered=nan,  # what the GPUs achieved is not in the telemetry
            sim_gpu_allocation=self._sim_allocation(),
        )
        self.series.append(row)

    def _sim_allocation(self) -> float:
        if self.compare is None:
            return float("nan")
        latest = self.compare.series.latest()
        return latest.get("gpu_allocation", float("nan"))

    def snapshot(self) -> Snapshot:
        owner = self.owner
        busy = owner >= 0
        first = np.where(busy.any(axis=1), owner.max(axis=1), -1)
        jobs = []
        for i, (vc, nodes) in enumerate(zip(self.telemetry.vcs, self.vc_nodes, strict=True)):
            rec = self.state.get(vc.name)
            lit = nodes[busy[nodes].any(axis=1)]
            if rec is None:
                phase, gpus, progress = "no data (a gap in the recording)", 0, 0.0
            else:
                phase = f"{rec['running_jobs']} jobs, {rec['pending_jobs']} queued"
                gpus, progress = rec["running_gpus"], rec["running_gpus"] / max(rec["gpus"], 1)
            jobs.append(JobView(i, f"VC {vc.name}", gpus, 0.0, phase, progress, 1.0, lit, 0.0, 0.0))
        links = np.zeros(self.fabric.n_links)
        return Snapshot(
            time_s=self.now,
            gpu_owner=owner.copy(),
            node_job=first,
            node_util=busy.mean(axis=1),
            link_load=links,
            link_util=links.copy(),
            flows=dict(EMPTY_FLOWS),
            jobs=tuple(jobs),
            queue=(),
            metrics=self.series.latest(),
            peak_pflops=self.scenario.peak_pflops,
            gpu_util=busy.astype(float),
            epoch_s=self.t0,
        )

    def report(self) -> dict[str, Any]:
        """The minute in force now, per VC, as scripts read it (and the simulated twin beside it)."""
        out: dict[str, Any] = {"time": format_time(self.epoch), "vcs": self.telemetry.at(self.epoch)}
        if self.compare is not None:
            latest = self.compare.series.latest()
            out["simulated"] = {
                "gpu_allocation": latest.get("gpu_allocation"),
                "jobs_running": latest.get("jobs_running"),
                "jobs_queued": latest.get("jobs_queued"),
            }
        return out
