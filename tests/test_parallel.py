"""3D parallelism and the cost of a training step, worked out by hand for a 100B-parameter model on
4,096 A100-80GB GPUs (8 per server, one 200 Gb/s HDR NIC per GPU), and checked against the rule."""

from __future__ import annotations

import pytest

from twin.parallel import Layout, hidden_size, layout_for, step_plan

P = 100e9
GPUS = 4096
A100_PEAK_TFLOPS = 312
HDR_BYTES_S = 200e9 / 8  # 25 GB/s
TOKENS = 1024 * GPUS  # a global batch of about 4M tokens


def test_the_layout_of_a_100b_model_on_4096_a100s() -> None:
    # 100e9 x 16 B = 1.6 TB of training state; 75% of 80 GB = 60 GB per GPU holds it: 26.7 -> 27 GPUs.
    # TP = 8 (a whole server), PP = ceil(27 / 8) = 4 servers per replica, DP = 4096 / 32 = 128 replicas.
    assert layout_for(P, GPUS, 8, 80) == Layout(tp=8, pp=4, dp=128)


def test_small_models_need_no_model_parallelism_and_tiny_jobs_do_their_best() -> None:
    assert layout_for(1e9, 64, 8, 80) == Layout(1, 1, 64)  # 16 GB of state fits on one GPU
    assert layout_for(7e9, 64, 8, 80) == Layout(2, 1, 32)  # 112 GB: two GPUs
    assert layout_for(7e9, 64, 8, 40) == Layout(4, 1, 16)  # half the memory: four
    assert layout_for(P, 16, 8, 80) == Layout(8, 2, 1), "on 16 GPUs it can only split as far as it has GPUs"


def test_bytes_and_time_of_one_step() -> None:
    plan = step_plan(P, Layout(8, 4, 128), TOKENS, A100_PEAK_TFLOPS, mfu=0.45, nic_bytes_per_s=HDR_BYTES_S)
    # Each GPU holds P / 32 parameters; their fp16 gradients are 6.25 GB; a ring of 128 sends 2 x 127/128 of it.
    assert plan.dp_bytes == pytest.approx(2 * 127 / 128 * 2 * P / 32) == pytest.approx(12.40234375e9)
    # Activations: 32,768 tokens per replica x hidden 10,217 x 2 bytes, forward and backward, split over TP 8.
    h = (P * 128 / 12) ** (1 / 3)
    assert hidden_size(P) == pytest.approx(h) and 10_200 < h < 10_230
    assert plan.pp_bytes == pytest.approx(2 * 32_768 * h * 2 / 8)
    # 6 x 100e9 x 4,194,304 FLOPs over 4,096 x 312 TFLOPS x 45%: 4.376 s of compute.
    assert plan.compute_s == pytest.approx(6 * P * TOKENS / (GPUS * 312e12 * 0.45)) == pytest.approx(4.3761, abs=1e-3)
    # Exposed communication at 25 GB/s: (12.40 + 0.17) GB -> 0.503 s; the step takes 4.879 s alone.
    assert plan.comm_s == pytest.approx((plan.dp_bytes + plan.pp_bytes) / 25e9) == pytest.approx(0.5028, abs=1e-3)
    assert plan.step_s == pytest.approx(4.879, abs=2e-3)
    assert plan.compute_share() == pytest.approx(4.3761 / 4.879, abs=1e-3)


def test_overlap_hides_communication_and_one_replica_sends_no_gradients() -> None:
    alone = step_plan(P, Layout(8, 4, 128), TOKENS, 312, 0.45, HDR_BYTES_S)
    half = step_plan(P, Layout(8, 4, 128), TOKENS, 312, 0.45, HDR_BYTES_S, overlap=0.5)
    assert half.comm_s == pytest.approx(alone.comm_s / 2) and half.compute_s == alone.compute_s
    single = step_plan(P, Layout(8, 4, 1), TOKENS / 128, 312, 0.45, HDR_BYTES_S)
    assert single.dp_bytes == 0 and single.pp_bytes > 0
