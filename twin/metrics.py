"""Metrics over time: a bounded ring buffer of samples, one row per simulation step."""

from __future__ import annotations

import numpy as np

SERIES_FIELDS = (
    "time_s",
    "pflops",
    "gpu_allocation",
    "gpu_utilization",
    "jobs_running",
    "jobs_queued",
    "jobs_done",
    "mean_wait_s",
    "facility_mw",
    "mean_link_util",
    "p99_link_util",
    "max_link_util",
    "storage_read_gbs",
    "storage_write_gbs",
    "fragmentation",
    "pflops_delivered",
)


class TimeSeries:
    """Fixed-capacity ring buffer of metric rows; old rows are overwritten, memory stays flat."""

    def __init__(self, capacity: int = 65536, fields: tuple[str, ...] = SERIES_FIELDS) -> None:
        self.fields = fields
        self.index = {f: i for i, f in enumerate(fields)}
        self._data = np.zeros((capacity, len(fields)))
        self._next = 0
        self._count = 0

    def append(self, row: dict[str, float]) -> None:
        self.append_values([row[f] for f in self.fields])

    def append_values(self, values: tuple[float, ...] | list[float]) -> None:
        """A row given in field order (the simulation's fast path: no dict per sample)."""
        self._data[self._next] = values
        self._next = (self._next + 1) % len(self._data)
        self._count = min(self._count + 1, len(self._data))

    def append_repeated(self, values: tuple[float, ...], times: list[float]) -> None:
        """The same row at each of ``times`` (the first field is the time): samples between two events."""
        if len(times) == 1:
            self.append_values((times[0], *values[1:]))
            return
        size = len(self._data)
        kept = times[-size:]  # at most a buffer's worth survive
        start, m = self._next, len(kept)
        if start + m <= size:  # one run of rows: slices, no index arrays
            rows = self._data[start : start + m]
            rows[:] = values
            rows[:, 0] = kept
        else:
            at = (start + np.arange(m)) % size
            self._data[at] = values
            self._data[at, 0] = kept
        self._next = (start + m) % size
        self._count = min(self._count + len(times), size)

    def append_rows(self, rows: list[tuple[float, ...]], times: list[list[float] | None]) -> None:
        """Rows in order, each appended once (times ``None``) or at each of its times (``append_repeated``):
        the buffer ends as if they were appended one by one, written in one go."""
        counts = [1 if at is None else len(at) for at in times]
        total, size = sum(counts), len(self._data)
        if total > size or not rows:  # more than a buffer's worth: one by one
            for row, at in zip(rows, times, strict=True):
                self.append_values(row) if at is None else self.append_repeated(row, at)
            return
        block = np.array(rows, float)
        if any(at is not None for at in times):  # a repeated row's first field is each of its times
            block = np.repeat(block, counts, axis=0) if total != len(rows) else block
            block[:, 0] = [t for row, at in zip(rows, times, strict=True) for t in ((row[0],) if at is None else at)]
        start, end = self._next, self._next + total
        if end <= size:
            self._data[start:end] = block
        else:
            self._data[start:] = block[: size - start]
            self._data[: end - size] = block[size - start :]
        self._next = end % size
        self._count = min(self._count + total, size)

    def __len__(self) -> int:
        return self._count

    def column(self, name: str, last: int | None = None) -> np.ndarray:
        """The most recent ``last`` values of one field, oldest first (a copy)."""
        n = self._count if last is None else min(last, self._count)
        idx = (self._next - n + np.arange(n)) % len(self._data)
        return self._data[idx, self.index[name]].copy()

    def latest(self) -> dict[str, float]:
        if not self._count:
            return {}
        row = self._data[(self._next - 1) % len(self._data)]
        return dict(zip(self.fields, row.tolist(), strict=True))
