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
    tokens_per_gpu: float = 2048.0,
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
        tokens_per_gpu=tokens_per_gpu,
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


def ring_tokens(demand: float) -> float:
    """``tokens_per_gpu`` that makes a 16-GPU finetune job on the test site (two servers of 8 GPUs of 100
    TFLOPS, one 100 Gb/s NIC each, MFU 35%) send ``demand`` bytes/s each way on its ring, whatever its
    size P. Per step the NIC sends 2P bytes (a ring of 2 servers: 2 x 1/2 x 2 bytes x P, the server's 8
    GPUs' shards together), exposed at 12.5 GB/s, after 6 x P x tokens FLOPs per GPU at 35 TFLOPS:
    step = 2P / 12.5e9 + 6 P tokens / 35e12, and demand = 2P / step."""
    return (2 / demand - 2 / 12.5e9) / (6 / 35e12)
