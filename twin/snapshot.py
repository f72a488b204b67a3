"""What a renderer reads: a frozen picture of a source at one instant, arrays copied out.

Everything the view, captions and camera script need is here (the biggest jobs, the hottest link, the
event log, the totals), so none of them reaches into a source's internals: see ``twin.source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.workload import JobSpec


@dataclass(frozen=True)
class JobView:
    """A running job as the HUD and inspector show it."""

    id: int
    kind: str
    gpus: int
    params_b: float
    phase: str
    progress: float  # 0..1 of its work (of its lifetime, for a service)
    speed: float  # share of its full-speed traffic the fabric gives it
    nodes: np.ndarray
    start_s: float
    arrival_s: float
    step_s: float = 0.0  # a training job's step period now (0: no step rhythm), for the view's pulse
    comm_share: float = 0.0  # share of each step spent in exposed communication (links busy)
    step_phase: float = 0.0  # where in its step the job is now (0..1: compute, then communication)


@dataclass(frozen=True)
class LogEntry:
    """Something that happened, for captions: numbered so a reader can tell which entries are new."""

    seq: int  # 1, 2, 3, ... over the whole run
    time_s: float
    what: str  # start | finish | checkpoint | checkpoint-done | restart | failed | fault | repair
    job_id: int = -1
    kind: str = ""  # the job's workload kind, when the entry is about a job
    gpus: int = 0
    params_b: float = 0.0


@dataclass(frozen=True)
class Counts:
    """Jobs so far: the totals a HUD or a caption quotes."""

    submitted: int = 0
    started: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0

    @property
    def ended(self) -> int:
        return self.completed + self.cancelled + self.failed


@dataclass(frozen=True)
class Snapshot:
    time_s: float
    gpu_owner: np.ndarray  # [node, gpu] job id or -1 (-2: held out, failed)
    node_job: np.ndarray  # a job on each node (its first GPU's), or -1
    node_util: np.ndarray  # mean GPU utilisation per node, 0..1
    link_load: np.ndarray  # bytes/s per directed link
    link_util: np.ndarray  # load / capacity
    flows: dict[str, np.ndarray]  # flattened flows: src, dst, kind, rate, job, entry_* (routes)
    jobs: tuple[JobView, ...]
    queue: tuple[JobSpec, ...]
    metrics: dict[str, float]  # the latest time-series row
    peak_pflops: float
    down: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per graph vertex: failed
    dead_links: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per directed link
    alerts: tuple[tuple[float, str, bool], ...] = ()  # latest fault news: (time, text, is a failure)
    gpu_util: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [node, gpu] 0..1 (nan: no data)
    events: tuple[LogEntry, ...] = ()  # the most recent log entries, oldest first
    counts: Counts = field(default_factory=Counts)
    hottest: int = -1  # the most loaded directed link, or -1 when nothing flows
    epoch_s: float | None = None  # calendar time (Unix s) at time 0, for recorded or live data
    no_data: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per node: nothing known
    data_age_s: float | None = None  # live data: seconds since it was measured
    banner: str = ""  # a problem with the data itself, shown until it clears (e.g. source unreachable)
    notice: str = ""  # a standing remark about the data (e.g. a site guessed from the hosts found)

    def biggest_jobs(self, n: int = 1) -> tuple[JobView, ...]:
        """The ``n`` largest running jobs by GPUs (the older first among equals)."""
        return tuple(sorted(self.jobs, key=lambda j: (-j.gpus, j.id))[:n])

    def new_events(self, seen: int) -> tuple[LogEntry, ...]:
        """Entries numbered after ``seen`` (as many as the snapshot still carries)."""
        return tuple(e for e in self.events if e.seq > seen)

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


def hottest_link(link_util: np.ndarray) -> int:
    """Index of the most loaded link, or -1 when nothing flows."""
    if not len(link_util):
        return -1
    lk = int(np.argmax(link_util))
    return lk if link_util[lk] > 0 else -1
