"""Building blocks for simulation tests: hand-made jobs and a placement that puts them where told."""

from __future__ import annotations

import numpy as np

from twin.scheduler import Allocation, Policy, easy_backfill
from twin.workload import JobSpec


def job(
    id: int,
    gpus: int,
    duration: float,
    arrival: float = 0.0,
    kind: str = "finetune",
    params_b: float = 1.0,
    iteration_s: float = 10.0,
    estimate: float | None = None,
    read_mbs_per_gpu: float = 0.0,
    checkpoint_s: float = 0.0,
    serve_mbs_per_gpu: float = 0.0,
) -> JobSpec:
    return JobSpec(
        id=id,
        kind=kind,
        gpus=gpus,
        arrival_s=arrival,
        duration_s=duration,
        estimate_s=duration if estimate is None else estimate,
        params_b=params_b,
        iteration_s=iteration_s,
        read_mbs_per_gpu=read_mbs_per_gpu,
        checkpoint_s=checkpoint_s,
        serve_mbs_per_gpu=serve_mbs_per_gpu,
    )


def pinned(nodes_in_order: list[list[int]]) -> Policy:
    """A policy that gives the i-th job it places the i-th node list (all GPUs of each node)."""
    calls = iter(nodes_in_order)

    def place(alloc: Allocation, gpus: int) -> np.ndarray | None:
        nodes = next(calls)
        gpn = alloc.gpus_per_node
        return np.concatenate([n * gpn + np.arange(gpn) for n in nodes])

    return Policy("pinned", easy_backfill, place)
