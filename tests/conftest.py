"""Shared helpers: small hand-made sites built from dicts, and the shipped scenarios."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("*.toml") if not p.stem.startswith("playlist"))

BASE: dict[str, Any] = {
    "site": {"name": "Test Site"},
    "topology": {
        "kind": "leaf-spine",
        "racks": 2,
        "nodes_per_rack": 2,
        "spines": 2,
        "oversubscription": 1.0,
        "leaf_radix": 16,
        "spine_radix": 16,
        "port_gbps": 100,
    },
    "node": {"gpus": 8, "nics": 1, "nic_gbps": 100, "overhead_watts": 1000},
    "gpu": {"model": "Test-GPU", "peak_tflops": 100, "idle_watts": 50, "max_watts": 350},
    "storage": [{"name": "store", "capacity_pb": 1, "read_gbs": 10, "write_gbs": 5, "ports": 2}],
    "workload": {
        "arrival": "none",
        "mix": [{"kind": "finetune", "share": 1, "gpus": [16, 16], "median_hours": 1}],
    },
    "power": {"pue": 1.5, "switch_watts": 100, "storage_watts": 1000},
    "simulation": {"seed": 1, "step_s": 10},
}


def site(**changes: Any) -> dict[str, Any]:
    """A copy of the base test site with dotted-path changes: site(**{"topology.racks": 4})."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *heads, last = dotted.split(".")
        target = data
        for h in heads:
            target = target[h]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return data


_DELETE = object()
DELETE = _DELETE


@pytest.fixture(params=SCENARIOS, ids=[p.stem for p in SCENARIOS])
def shipped(request: pytest.FixtureRequest) -> Path:
    return request.param
