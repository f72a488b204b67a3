"""The event queue: a heap ordered by (time, priority, sequence number), as in SimPy.

Each event carries its handler, so there is no dispatch on names: popping an event gives the function
to call and what to call it with. Ties in time are broken by priority, then by insertion order, so the
order of simultaneous events never depends on luck and a run is the same every time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

# Priorities for events at the same instant: lower runs first.
JOB_MILESTONE = 0  # a job finishes or changes phase: frees GPUs before new work is placed
ARRIVAL = 1
FAULT = 2  # failures and repairs, after the jobs and arrivals of the same instant
# Metric samples come after everything else at their instant (the simulation takes them outside the heap).

Handler = Callable[[Any], None]


class EventQueue:
    def __init__(self) -> None:
        # (time, priority, sequence, handler, payload); read-only outside: the earliest is heap[0]
        # (``Simulation.run`` peeks at it and pops it directly, relying on this layout)
        self.heap: list[tuple[float, int, int, Handler, Any]] = []
        self._seq = 0

    def push(self, time: float, priority: int, handler: Handler, payload: Any = None) -> None:
        heapq.heappush(self.heap, (time, priority, self._seq, handler, payload))
        self._seq += 1

    def pop(self) -> tuple[float, Handler, Any]:
        time, _, _, handler, payload = heapq.heappop(self.heap)
        return time, handler, payload

    def peek_time(self) -> float:
        return self.heap[0][0] if self.heap else float("inf")

    def __len__(self) -> int:
        return len(self.heap)
