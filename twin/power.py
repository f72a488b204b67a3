"""Power: GPUs between idle and max watts with their utilisation, plus servers, switches and storage,
times the facility's PUE. Pure functions of counts and utilisation."""

from __future__ import annotations

from twin.scenario import Scenario


def it_watts(scenario: Scenario, busy_gpu_equivalents: float, switches: int) -> float:
    """IT load in watts; ``busy_gpu_equivalents`` is the sum of GPU utilisations (0..gpus)."""
    gpu = scenario.gpu
    return (
        scenario.gpus * gpu.idle_watts
        + (gpu.max_watts - gpu.idle_watts) * busy_gpu_equivalents
        + scenario.nodes * scenario.node.overhead_watts
        + switches * scenario.power.switch_watts
        + len(scenario.storage) * scenario.power.storage_watts
    )


def facility_watts(scenario: Scenario, busy_gpu_equivalents: float, switches: int) -> float:
    """What the site draws from the grid: IT load times PUE (cooling, power conversion, lighting)."""
    return it_watts(scenario, busy_gpu_equivalents, switches) * scenario.power.pue
