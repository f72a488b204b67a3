"""What a renderer reads: a frozen picture of the simulation at one instant, arrays copied out."""

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


@dataclass(frozen=True)
class Snapshot:
    time_s: float
    gpu_owner: np.ndarray  # [node, gpu] job id or -1
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
