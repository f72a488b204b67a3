"""How a training job is split over its GPUs (3D parallelism) and what one training step costs.

The rule, as Megatron-LM sets up large runs: a replica of the model must hold its training state in GPU
memory (``STATE_BYTES_PER_PARAM`` bytes per parameter in ``STATE_SHARE`` of each GPU's memory, the rest
left to activations and buffers); it is split by tensor parallelism (TP) inside a server, up to the
server's GPUs, then by pipeline parallelism (PP) across servers as memory still requires; the GPUs
left over are data parallel (DP) replicas.

A step: every GPU computes its share of ``6 x parameters`` FLOPs per token at ``mfu`` of its peak, then
the exposed part of the data-parallel all-reduce of its shard's gradients (``GRAD_BYTES_PER_PARAM`` x
P / (TP x PP) bytes, a ring over the DP group on the GPU's own rail: each GPU sends 2(n-1)/n of it) and
the activations its pipeline stage sends to the next. When TP is smaller than a server, the replicas
inside a server reduce over NVLink first and each rail carries 1/(GPUs per server) of the stage's
gradients across servers (NCCL's hierarchical all-reduce): the same formula with n the servers of a
stage and P / (GPUs per server x PP). Sources: Narayanan et al., "Efficient
Large-Scale Language Model Training on GPU Clusters Using Megatron-LM" (SC'21) for the layout and the
FLOPs; Rajbhandari et al., "ZeRO" (SC'20) for the 16 bytes per parameter; NCCL's ring all-reduce.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

STATE_BYTES_PER_PARAM = 16  # fp16 weights (2) and gradients (2), fp32 master weights (4), Adam moments (8)
STATE_SHARE = 0.75  # of a GPU's memory given to the training state
GRAD_BYTES_PER_PARAM = 2  # gradients are all-reduced in fp16/bf16
ACT_BYTES = 2  # activations sent between pipeline stages in fp16/bf16
FLOPS_PER_TOKEN_PER_PARAM = 6  # forward and backward, no activation recomputation
LAYER_ASPECT = 128  # hidden size / layers of GPT-style models, so params = 12 x layers x hidden^2
# Model FLOPs utilisation while computing, by job kind: large A100 training runs reach 35-55% (Megatron-LM
# reports 52% at 1T parameters on 3,072 A100s); fine-tuning, research and evaluation jobs are smaller and
# less tuned; serving is memory-bound. A scenario may set its own (``[workload.mfu]``).
MFU = {"pretrain": 0.45, "finetune": 0.35, "research": 0.30, "eval": 0.25, "inference": 0.15}


@dataclass(frozen=True)
class Layout:
    """Tensor, pipeline and data parallel degrees; tp x pp x dp GPUs in all."""

    tp: int
    pp: int
    dp: int

    @property
    def model_parallel(self) -> int:
        return self.tp * self.pp

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp


def layout_for(params: float, gpus: int, gpus_per_node: int, gpu_memory_gb: float) -> Layout:
    """The layout the rule gives for a model of ``params`` parameters on ``gpus`` GPUs: every GPU of the
    job has a place (TP x PP x DP = GPUs), so PP is the smallest divisor of GPUs / TP that holds the
    model (all of them, for a job too small to hold it: it does its best)."""
    need = max(1, math.ceil(params * STATE_BYTES_PER_PARAM / (gpu_memory_gb * 1e9 * STATE_SHARE)))
    tp = 1
    while tp < need and tp * 2 <= min(gpus_per_node, gpus) and gpus % (tp * 2) == 0:
        tp *= 2
    rest = gpus // tp
    pp = next((d for d in range(math.ceil(need / tp), rest + 1) if rest % d == 0), rest)
    return Layout(tp, pp, rest // pp)


def hidden_size(params: float) -> float:
    """Hidden size of a GPT-style model of ``params`` parameters (params = 12 x layers x hidden^2)."""
    return (params * LAYER_ASPECT / 12) ** (1 / 3)


@dataclass(frozen=True)
class StepPlan:
    """One training step of one job, uncontended: times in seconds, bytes per GPU (on its rail's NIC)."""

    layout: Layout
    compute_s: float
    dp_bytes: float  # data-parallel ring: what each GPU sends (and receives) per step
    pp_bytes: float  # pipeline activations and their gradients each GPU sends to its neighbour stage
    comm_s: float  # exposed communication at the NIC's line rate
    mfu: float  # efficiency while computing

    @property
    def step_s(self) -> float:
        return self.compute_s + self.comm_s

    @property
    def bytes(self) -> float:
        return self.dp_bytes + self.pp_bytes

    def compute_share(self, slowdown: float = 1.0) -> float:
        """Share of the time spent computing when steps take ``slowdown`` times their ideal length."""
        return self.compute_s / (self.step_s * slowdown) if self.step_s > 0 else 1.0


@functools.lru_cache(maxsize=4096)
def plan_job(
    params: float,
    gpus: int,
    gpus_per_node: int,
    gpu_memory_gb: float,
    tokens_per_gpu: float,
    peak_tflops: float,
    mfu: float,
    nic_bytes_per_gpu: float,
    overlap: float = 0.0,
) -> StepPlan:
    """A training job's layout and step: the rule's layout, a global batch of ``tokens_per_gpu`` per GPU.
    Cached: a replay starts tens of thousands of jobs of a few shapes."""
    layout = layout_for(params, gpus, gpus_per_node, gpu_memory_gb)
    tokens = tokens_per_gpu * gpus
    return step_plan(params, layout, tokens, peak_tflops, mfu, nic_bytes_per_gpu, overlap, gpus_per_node)


def step_plan(
    params: float,
    layout: Layout,
    tokens_per_step: float,
    peak_tflops: float,
    mfu: float,
    nic_bytes_per_s: float,
    overlap: float = 0.0,
    gpus_per_node: int = 8,
) -> StepPlan:
    """A step of the job: compute at ``mfu``, then the exposed share (1 - ``overlap``) of its traffic.
    Bytes are what each GPU's NIC sends across servers per step."""
    compute_s = FLOPS_PER_TOKEN_PER_PARAM * params * tokens_per_step / (layout.gpus * peak_tflops * 1e12 * mfu)
    per_server = max(1, min(gpus_per_node, layout.gpus))
    ring = max(1, layout.gpus // per_server // layout.pp)  # servers in one stage's data-parallel ring
    shard = params / (max(layout.tp, per_server) * layout.pp)  # parameters whose gradients a NIC carries
    dp_bytes = 2 * (ring - 1) / ring * GRAD_BYTES_PER_PARAM * shard if ring > 1 else 0.0
    pp_bytes = 0.0
    if layout.pp > 1:  # forward activations and backward gradients of the replica's tokens, split over TP
        pp_bytes = 2 * (tokens_per_step / layout.dp) * hidden_size(params) * ACT_BYTES / layout.tp
    comm_s = (1 - overlap) * (dp_bytes + pp_bytes) / nic_bytes_per_s if nic_bytes_per_s > 0 else 0.0
    return StepPlan(layout, compute_s, dp_bytes, pp_bytes, comm_s, mfu)
