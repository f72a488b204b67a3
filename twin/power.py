"""Power: GPUs by what they are doing (idle, allocated but waiting on communication or storage, computing),
plus servers, switches and storage, times the facility's PUE. Pure functions of counts and utilisation."""

from __future__ import annotations

from twin.scenario import Scenario


def it_watts(scenario: Scenario, busy_gpu_equivalents: float, switches: int, allocated: float | None = None) -> float:
    """IT load in watts; ``busy_gpu_equivalents`` is the sum of GPU utilisations (0..gpus), the time the
    GPUs compute; ``allocated`` GPUs draw ``gpu.waiting_watts`` for the rest of their time (without it,
    only computing and idle are told apart, as telemetry that gives utilisation alone can)."""
    gpu = scenario.gpu
    waiting = 0.0 if allocated is None else max(0.0, allocated - busy_gpu_equivalents)
    return (
        scenario.gpus * gpu.idle_watts
        + (gpu.max_watts - gpu.idle_watts) * busy_gpu_equivalents
        + (gpu.waiting_watts - gpu.idle_watts) * waiting
        + scenario.nodes * scenario.node.overhead_watts
        + switches * scenario.power.switch_watts
        + len(scenario.storage) * scenario.power.storage_watts
    )


def facility_watts(
    scenario: Scenario, busy_gpu_equivalents: float, switches: int, allocated: float | None = None
) -> float:
    """What the site draws from the grid: IT load times PUE (cooling, power conversion, lighting)."""
    return it_watts(scenario, busy_gpu_equivalents, switches, allocated) * scenario.power.pue
