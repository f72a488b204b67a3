"""A running job and the arithmetic of its progress: kept lazily, so nothing is touched between events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.parallel import StepPlan
from twin.workload import JobSpec

CHECKPOINT_GPU_UTIL = 0.05  # GPUs wait on storage while a synchronous checkpoint is written
_FIRST_PHASE = {"inference": "serving", "eval": "evaluating"}  # by kind; the others compute


@dataclass(slots=True)
class Job:
    """A running job. Progress is kept lazily: ``progress_s`` at ``mark_s``, growing at ``rate``."""

    spec: JobSpec
    start_s: float
    gpus: np.ndarray
    nodes: np.ndarray
    phase: str  # compute | checkpoint | serving | evaluating
    progress_s: float
    mark_s: float
    rate: float = 0.0  # progress seconds per simulated second
    util: float = 0.0  # mean GPU utilisation, what power and PFLOPS follow
    speed: float = 1.0  # share of its full-speed traffic the fabric gives it
    work_s: float = 0.0  # integral of util: full-speed GPU-seconds per GPU delivered
    next_checkpoint_s: float = float("inf")
    checkpoint_left_s: float = 0.0  # seconds of writing left at full rate
    generation: int = 0  # bumps whenever its next milestone moves; stale events are skipped
    warm: bool = False  # found running at t = 0 (not counted in wait or workload statistics)
    plan: StepPlan | None = None  # a training job's layout and step at full speed
    mfu: float = 0.0  # model FLOPs utilisation while its GPUs compute
    flops: float = 0.0  # share of peak FLOPs delivered now: util x mfu while it works, 0 while it saves
    tally: tuple[float, int, float] = (0.0, 0, 0.0)  # what the simulation's running sums hold for it

    @staticmethod
    def start(spec: JobSpec, now: float, gpus: np.ndarray, gpus_per_node: int, warm: bool) -> Job:
        """A job starting now on ``gpus``, resuming from ``spec.warm_progress_s`` (a restart, a warm start)."""
        ids = gpus.tolist() if len(gpus) <= gpus_per_node else None
        if ids is not None and (len(ids) <= 1 or min(ids) // gpus_per_node == max(ids) // gpus_per_node):
            nodes = np.array([g // gpus_per_node for g in ids[:1]], gpus.dtype)  # one server, as most jobs: integers
        else:
            nodes = np.unique(gpus // gpus_per_node)
        phase = _FIRST_PHASE.get(spec.kind, "compute")
        job = Job(spec, now, gpus, nodes, phase, spec.warm_progress_s, now, warm=warm)
        if spec.trains and spec.checkpoint_s > 0:
            job.next_checkpoint_s = (np.floor(spec.warm_progress_s / spec.checkpoint_s) + 1) * spec.checkpoint_s
        return job

    def progress_at(self, t: float) -> float:
        return self.progress_s + self.rate * (t - self.mark_s)

    def fold(self, now: float) -> None:
        """Bring the lazily kept progress and work up to ``now``."""
        dt = now - self.mark_s
        self.progress_s += self.rate * dt
        self.work_s += self.util * dt
        if self.phase == "checkpoint":
            self.checkpoint_left_s = max(0.0, self.checkpoint_left_s - self.speed * dt)
        self.mark_s = now

    def rates(self, speed: float) -> tuple[float, float]:
        """(progress rate, GPU utilisation) at a share ``speed`` of its full-speed traffic.

        A training step at full speed computes for ``plan.compute_s`` and communicates (exposed) for
        ``plan.comm_s``. The fabric gives the job ``speed`` of its average traffic, so a step takes
        ``step_s / speed`` (the communication stretches; the compute does not), and the GPUs compute
        ``compute_s`` of it: utilisation ``speed x compute_s / step_s``."""
        if self.phase == "checkpoint":
            return 0.0, CHECKPOINT_GPU_UTIL
        if self.phase == "serving":
            return 1.0, speed
        if self.plan is not None:
            return speed, speed * self.plan.compute_share()
        return speed, speed

    @property
    def step_s(self) -> float:
        """The step period now (0: no step rhythm): the ideal step stretched by the fabric's share."""
        if self.plan is None or self.phase != "compute" or self.speed <= 0:
            return 0.0
        return self.plan.step_s / self.speed

    def next_milestone(self, now: float) -> float:
        """When, at the current rates, the checkpoint ends, the next one starts, or the job is done."""
        if self.phase == "checkpoint":
            return now + self.checkpoint_left_s / self.speed if self.speed > 0 else float("inf")
        target = min(self.spec.duration_s, self.next_checkpoint_s)
        return now + max(0.0, target - self.progress_s) / self.rate if self.rate > 0 else float("inf")

    def last_checkpoint_s(self) -> float:
        """Progress saved by the last checkpoint: what a restart resumes from."""
        every = self.spec.checkpoint_s if self.spec.trains else 0.0
        if every <= 0 or self.next_checkpoint_s == float("inf"):
            return 0.0
        return min(max(0.0, self.next_checkpoint_s - every), self.progress_s)
