"""The source contract: what the view, captions, camera script and split view draw from, and nothing else.

A source is anything that can say what a site looks like at its current time: the simulation, a replayed
job trace, recorded telemetry, a live cluster read from Prometheus. The view never reaches past this
contract, so a new kind of data needs only a new class with these members:

- ``scenario`` and ``fabric``: the site (what is drawn and where), fixed for the source's life.
- ``series``: the metric time series behind the sparklines (``twin.metrics.TimeSeries``).
- ``now``: the source's clock, seconds since its time 0.
- ``version``: a change counter that grows whenever a new snapshot would show something new (jobs,
  traffic, faults, data), so a viewer takes snapshots only when needed.
- ``rack_labels``: names for the racks in the picture, or empty for the default names.
- ``advance(dt)``: move the clock (a simulation computes; a recording reads; a live source only ages).
- ``snapshot()``: everything on screen at ``now``, copied out (``twin.snapshot.Snapshot``).

Optional: ``seek(t)`` for sources that can jump in time (recordings), checked with ``isinstance(source,
Seekable)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from twin.metrics import TimeSeries
from twin.scenario import Scenario
from twin.snapshot import Snapshot
from twin.topology import Fabric


@runtime_checkable
class Source(Protocol):
    scenario: Scenario
    fabric: Fabric
    series: TimeSeries
    rack_labels: tuple[str, ...]

    @property
    def now(self) -> float: ...

    @property
    def version(self) -> int: ...

    def advance(self, dt: float) -> None: ...

    def snapshot(self) -> Snapshot: ...


@runtime_checkable
class Seekable(Source, Protocol):
    def seek(self, t: float) -> None: ...
