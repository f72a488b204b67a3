"""Trace replay: each GPU job of a recorded log arrives at its submit time with its GPU count and run time
and goes through our scheduler, so the queueing is ours; its recorded state decides whether it ends as
completed, cancelled or failed after its recorded run time.

A :class:`Replay` drives a :class:`Simulation` the way the frame loop or a headless run advances it,
submitting jobs from the trace stream just before the clock reaches them: only the jobs queued and
running are ever in memory. It is a ``twin.source.Source``: the view draws the simulation it feeds, with
the trace's calendar dates on the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twin.metrics import TimeSeries
from twin.scenario import Scenario
from twin.simulation import Simulation
from twin.snapshot import Snapshot
from twin.stats import Sample
from twin.topology import Fabric
from twin.trace import TraceJob, TraceStats, format_time, read_trace
from twin.workload import JobSpec

READ_MBS_PER_GPU = 20.0  # training-data reads of a replayed job (the trace does not record them)


def replay_scenario(scenario: Scenario) -> Scenario:
    """The site without its own workload: every job comes from the trace, the site starts empty."""
    workload = dataclasses.replace(scenario.workload, arrival="none", initial_load=0.0, preset="")
    return dataclasses.replace(scenario, workload=workload)


class Replay:
    """A simulation fed from a trace. ``advance``/``run`` as on a Simulation; ``done`` when all is over."""

    rack_labels: tuple[str, ...] = ()

    def __init__(
        self,
        scenario: Scenario,
        trace: Path,
        columns: dict[str, str] | None = None,
        strict: bool = False,
        start: float | None = None,
        end: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.sim = Simulation(replay_scenario(scenario), seed=seed)
        self.stats = TraceStats()
        self.trace = trace
        self._jobs: Iterator[TraceJob] = read_trace(
            trace, columns, self.stats, strict, start, end, max_gpus=self.sim.fabric.n_gpus
        )
        self._next: TraceJob | None = None
        self.t0: float | None = start  # epoch seconds at simulated time 0
        self.recorded_waits = Sample()
        self.oversized = 0
        self.exhausted = False
        self._gpn = self.sim.fabric.gpus_per_node
        self._site_gpus = self.sim.fabric.n_gpus
        self._next_id = 0
        self._estimate = scenario.workload.estimate_factor[1]
        self._pull()

    def _pull(self) -> None:
        self._next = next(self._jobs, None)
        if self._next is None:
            self.exhausted = True
        elif self.t0 is None:
            self.t0 = self._next.submit

    @property
    def scenario(self) -> Scenario:
        return self.sim.scenario

    @property
    def fabric(self) -> Fabric:
        return self.sim.fabric

    @property
    def series(self) -> TimeSeries:
        return self.sim.series

    @property
    def now(self) -> float:
        return self.sim.now

    @property
    def version(self) -> int:
        return self.sim.version

    def snapshot(self) -> Snapshot:
        return dataclasses.replace(self.sim.snapshot(), epoch_s=self.t0)

    @property
    def next_arrival_s(self) -> float:
        return self.sim.now if self._next is None or self.t0 is None else self._next.submit - self.t0

    @property
    def done(self) -> bool:
        sim = self.sim
        return self.exhausted and not sim.queue and not sim.running  # run() leaves no job in flight

    def advance(self, dt: float) -> None:
        self.run(self.sim.now + dt)

    def run(self, until: float) -> None:
        """Submit every trace job arriving by ``until``, then move the clock there."""
        while self._next is not None and self.t0 is not None and self._next.submit - self.t0 <= until:
            job = self._next
            self._submit(job, max(job.submit - self.t0, self.sim.now))
            self._pull()
        self.sim.run(until)

    def _submit(self, job: TraceJob, at: float) -> None:
        gpus = job.gpus if job.gpus <= self._gpn else -(-job.gpus // self._gpn) * self._gpn  # whole nodes
        if gpus > self._site_gpus:
            self.oversized += 1
            self.stats.problem(job.line, f"more GPUs than the site: {job.gpus} > {self._site_gpus}")
            return
        if job.recorded_wait_s is not None:
            self.recorded_waits.append(job.recorded_wait_s)
        self.sim.submit(
            JobSpec(
                id=self._next_id,
                kind="research",
                gpus=gpus,
                arrival_s=at,
                duration_s=max(1.0, job.runtime_s),
                estimate_s=max(1.0, job.runtime_s) * self._estimate,
                params_b=0.1,
                read_mbs_per_gpu=READ_MBS_PER_GPU,
                checkpoint_s=0.0,
                serve_mbs_per_gpu=0.0,
                outcome=job.outcome,
            )
        )
        self._next_id += 1

    def run_to_end(self, progress=None, step_s: float = 3600.0) -> None:
        """Replay the whole trace (or window) until its last job has ended."""
        while not self.done:
            self.run(max(self.sim.now + step_s, min(self.next_arrival_s, self.sim.now + 30 * step_s)))
            if progress is not None:
                progress(self.stats.rows)

    def report_block(self) -> dict[str, Any]:
        """Our queueing beside the recorded one, and what reading the trace found."""
        t = self.sim.totals
        block: dict[str, Any] = {
            "trace": str(self.trace),
            "start": format_time(self.t0) if self.t0 is not None else None,
            "jobs_replayed": self.stats.jobs - self.oversized,
            "mean_wait_s": t.waits.mean,
            "p95_wait_s": t.waits.percentile(95),
            "recorded_mean_wait_s": self.recorded_waits.mean,
            "recorded_p95_wait_s": self.recorded_waits.percentile(95),
        }
        block.update(self.stats.as_dict())
        return block
