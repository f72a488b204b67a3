"""Statistics of a run: bounded samples, the workload's figures, and the totals integrated since t = 0."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from twin.tiers import TierIndex


class Sample:
    """Count and mean of everything added, and the most recent values for percentiles: memory stays
    bounded however long a run (or an exhibition) lasts."""

    def __init__(self, keep: int = 100_000) -> None:
        self.count = 0
        self.total = 0.0
        self.recent: deque[float] = deque(maxlen=keep)

    def append(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.recent.append(value)

    def __len__(self) -> int:
        return self.count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self.recent, float), q)) if self.recent else 0.0

    def __eq__(self, other: object) -> bool:  # compares as the list of recent values (tests)
        return list(self.recent) == other if isinstance(other, list) else NotImplemented


@dataclass
class WorkloadStats:
    """What the jobs that arrived and ended were like: the figures a workload trace is summarised by."""

    gpu_jobs: int = 0
    gpus: int = 0
    runtimes: Sample = field(default_factory=lambda: Sample())  # start to end, seconds
    outcomes: dict[str, int] = field(default_factory=lambda: {"completed": 0, "cancelled": 0, "failed": 0})
    gpu_s: dict[str, float] = field(default_factory=lambda: {"completed": 0.0, "cancelled": 0.0, "failed": 0.0})

    def add(self, gpus: int, runtime_s: float, outcome: str) -> None:
        self.gpu_jobs += 1
        self.gpus += gpus
        self.runtimes.append(runtime_s)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.gpu_s[outcome] = self.gpu_s.get(outcome, 0.0) + gpus * runtime_s  # GPU time, by how jobs ended


@dataclass
class Totals:
    """Counters and exact time integrals since t = 0."""

    submitted: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    started: int = 0
    workload: WorkloadStats = field(default_factory=WorkloadStats)
    waits: Sample = field(default_factory=lambda: Sample())  # queueing time of started jobs
    jcts: Sample = field(default_factory=lambda: Sample())  # arrival to finish of completed jobs
    gpu_alloc_s: float = 0.0  # integral of allocated GPUs
    busy_gpu_s: float = 0.0  # integral of sum of GPU utilisation
    energy_j: float = 0.0
    fabric_util_s: float = 0.0  # integral of mean fabric link utilisation
    fabric_bytes: float = 0.0  # bytes carried by switch-to-switch links (the spine traffic)
    max_link_util: float = 0.0
    traffic_bytes: np.ndarray = field(default_factory=lambda: np.zeros(4))  # per traffic kind
    finished_work_gpu_s: float = 0.0  # full-speed GPU-seconds delivered by jobs no longer running
    faults: int = 0  # components that failed (or degraded)
    restarted: int = 0  # jobs sent back to the queue by a fault
    lost_gpu_s: float = 0.0  # work thrown away by faults: progress since the last checkpoint x GPUs
    flops_gpu_s: float = 0.0  # integral of delivered FLOPs in GPU-peak-seconds (util x MFU per GPU)
    stepping_gpu_s: float = 0.0  # integral of GPUs of training jobs in their compute phase
    stepping_speed_gpu_s: float = 0.0  # the same weighted by speed: ideal step time / actual
    tier_util_s: np.ndarray = field(default_factory=lambda: np.zeros(4))  # integral of mean util per tier
    tier_util_max: np.ndarray = field(default_factory=lambda: np.zeros(4))  # max util per tier seen

    @property
    def step_slowdown(self) -> float | None:
        """Training jobs' step time over what the same steps take at full speed, with every step weighted
        by its GPUs (a ratio of GPU-time sums: 1 when never slowed); None when they stepped but never got
        anywhere (stalled the whole time)."""
        if self.stepping_speed_gpu_s > 0:
            return self.stepping_gpu_s / self.stepping_speed_gpu_s
        return None if self.stepping_gpu_s > 0 else 1.0

    @property
    def ended(self) -> int:
        """Jobs over for good, however they ended."""
        return self.completed + self.cancelled + self.failed

    def end(self, outcome: str) -> None:
        """Count a job that is over for good, by how it ended."""
        if outcome == "cancelled":
            self.cancelled += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.completed += 1


class LinkStats:
    """Link utilisation at one instant, as the series and the totals need it."""

    __slots__ = ("_p99", "fabric_load", "max", "mean_fabric", "physical", "tier_max", "tier_mean", "util")

    def __init__(
        self,
        util: np.ndarray,  # load / capacity per directed link
        mean_fabric: float,  # mean over switch-to-switch links
        max: float,  # over physical links
        fabric_load: float,  # bytes/s on switch-to-switch links
        physical: np.ndarray | slice,  # the physical links (for the p99, worked out only when asked)
        tier_mean: np.ndarray | None = None,  # mean and max per tier (``twin.tiers``), where measured so
        tier_max: np.ndarray | None = None,
    ) -> None:
        self.util = util
        self.mean_fabric = mean_fabric
        self.max = max
        self.fabric_load = fabric_load
        self.physical = physical
        self.tier_mean = tier_mean
        self.tier_max = tier_max
        self._p99: float | None = None

    @property
    def p99(self) -> float:
        if self._p99 is None:
            phys = self.util[self.physical] if isinstance(self.physical, slice) else _pick(self.util, self.physical)
            n = len(phys)
            if 0 < n <= 20_000:  # what _kth_smallest does with so few, without the call
                k = int(0.99 * (n - 1))
                self._p99 = float(np.partition(phys, k)[k])
            else:
                self._p99 = _kth_smallest(phys, 0.99)
        return self._p99


class LinkMeter:
    """``link_stats`` and the figures per tier (``twin.tiers.tier_utilization``) together for one site,
    with everything that does not depend on the loads worked out once, in as few numpy calls as they take
    (an event-driven run measures on every change of the flows): the links grouped by tier in one gather,
    each tier's sum and maximum in one ``reduceat``; the switch-to-switch links, when they are one tier,
    a slice of that; the physical links' maximum the largest of the tiers' when they are those tiers'
    links (the gateway's counted as a tier of its own). Every figure is the one the two functions give,
    bit for bit; the figures per tier are plain lists of floats."""

    def __init__(self, inv_cap: np.ndarray, physical: np.ndarray, fabric: np.ndarray, tiers: TierIndex) -> None:
        self.inv_cap = inv_cap
        self.n_fabric = len(fabric)
        self.tiers = tiers
        self._n_tiers = len(tiers.counts)
        self._present = tiers.present.tolist()
        self._present_counts = tiers.counts[tiers.present].astype(np.float64)  # (ints: the same quotients, slower)
        run = len(physical) > 0 and int(physical[-1]) - int(physical[0]) + 1 == len(physical)
        self.physical: np.ndarray | slice = slice(int(physical[0]), int(physical[-1]) + 1) if run else physical
        self._any_physical = len(physical) > 0
        order, starts = tiers.order, tiers.starts
        # The switch-to-switch links as one tier's run of the grouped links (the same links, in the same
        # order, so the same sum), or a gather of their own.
        self._fabric = fabric
        self._fabric_run: slice | None = None
        ends = np.append(starts[1:], len(order))
        for first, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if np.array_equal(order[first:end], fabric):
                self._fabric_run = slice(first, end)
        # Physical links outside the reported tiers (the gateway's): a run of their own after the tiers', so
        # that the physical maximum is the largest run's maximum when the tiers' links are all physical.
        others = np.setdiff1d(physical, order)
        self._max_from_runs = len(order) > 0 and bool(np.isin(order, physical).all())
        self._order, self._starts = order, starts
        if self._max_from_runs and len(others):
            self._order = np.concatenate([order, others])
            self._starts = np.append(starts, len(order))
        # How ``LinkBatch`` keeps a state: the grouped links first, then the rest; and where in that order
        # the switch-to-switch and the physical links are.
        n_links = len(inv_cap)
        self.batch_order = np.concatenate([self._order, np.setdiff1d(np.arange(n_links), self._order)])
        at = np.empty(n_links, np.int64)
        at[self.batch_order] = np.arange(n_links)
        self.inv_cap_batch = inv_cap[self.batch_order]
        self._at_fabric, self._at_physical = at[fabric], at[physical]

    def measure(self, load: np.ndarray) -> LinkStats:
        """The figures for these link loads (bytes/s per link)."""
        util = load * self.inv_cap
        k = self._n_tiers
        means, maxes = [0.0] * k, [0.0] * k
        peak = 0.0
        if len(self._order):
            grouped = util[self._order]
            run_max = np.maximum.reduceat(grouped, self._starts).tolist()
            present = self._present
            sums = np.add.reduceat(grouped, self._starts)[: len(present)]  # the tiers' runs (not the others')
            for i, m in zip(present, (sums / self._present_counts).tolist(), strict=True):
                means[i] = m
            for i, m in zip(present, run_max, strict=False):
                maxes[i] = m
            if self._max_from_runs:
                peak = max(run_max)
        if not self._max_from_runs and self._any_physical:
            peak = float(np.maximum.reduce(util[self.physical]))
        add = np.add.reduce  # what ``.sum()`` calls, without its wrapper
        fabric = self._fabric
        if not self.n_fabric:
            mean_fabric = 0.0
        elif self._fabric_run is not None:
            mean_fabric = float(add(grouped[self._fabric_run]) / self.n_fabric)
        else:
            mean_fabric = float(add(util[fabric]) / self.n_fabric)
        return LinkStats(
            util=util,
            mean_fabric=mean_fabric,
            max=peak,
            fabric_load=float(add(load[fabric])),
            physical=self.physical,
            tier_mean=means,
            tier_max=maxes,
        )

    def measure_rows(self, load: np.ndarray, p99_rows: list[int]) -> LinkFigures:
        """``measure``'s figures for many states at once: each row of ``load`` a state's link loads in
        ``batch_order`` (the grouped links first, so that a tier's links are a run of columns); the p99
        only for ``p99_rows``."""
        rows, w = len(load), len(self._order)
        util = load * self.inv_cap_batch  # the products ``measure`` takes, in batch order
        grouped = util[:, :w]
        means, maxes, peak = np.zeros((rows, self._n_tiers)), np.zeros((rows, self._n_tiers)), np.zeros(rows)
        if w:
            run_max = np.maximum.reduceat(grouped, self._starts, axis=1)
            present, k = self._present, len(self._present)
            means[:, present] = np.add.reduceat(grouped, self._starts, axis=1)[:, :k] / self._present_counts
            maxes[:, present] = run_max[:, :k]
            if self._max_from_runs:
                peak = run_max.max(axis=1)
        if not self._max_from_runs and self._any_physical:
            peak = np.maximum.reduce(util.take(self._at_physical, axis=1), axis=1)
        # The switch-to-switch links in their own order: one tier's run of columns, or gathered.
        if self._fabric_run is not None:
            fabric_util, fabric_load = grouped[:, self._fabric_run], load[:, self._fabric_run]
        else:
            fabric_util, fabric_load = util.take(self._at_fabric, axis=1), load.take(self._at_fabric, axis=1)
        if self.n_fabric:
            mean_fabric = (np.add.reduce(fabric_util, axis=1) / self.n_fabric).tolist()
            fabric_sum = np.add.reduce(fabric_load, axis=1).tolist()
        else:
            mean_fabric = fabric_sum = [0.0] * rows
        asked = util if len(p99_rows) == rows else util[p99_rows]  # (sorted in place: util is not needed after)
        p99 = dict(zip(p99_rows, self._p99s(asked), strict=True)) if p99_rows else {}
        return LinkFigures(
            mean_fabric=mean_fabric,
            fabric_load=fabric_sum,
            tier_mean=means.tolist(),
            tier_max=maxes.max(axis=0).tolist() if rows else [0.0] * self._n_tiers,
            max=peak.tolist(),
            p99=p99,
        )

    def p99s(self, load: np.ndarray) -> list[float]:
        """``LinkStats.p99`` for each row of ``load`` (link loads in ``batch_order``)."""
        return self._p99s(load * self.inv_cap_batch)

    def _p99s(self, util: np.ndarray) -> list[float]:
        """The p99 of each row of ``util`` (in ``batch_order``; sorted in place): the physical links are the
        grouped ones (or gathered), the same values, so the same p99."""
        phys = util[:, : len(self._order)] if self._max_from_runs else util.take(self._at_physical, axis=1)
        n = phys.shape[1]
        if not 0 < n <= 20_000:
            return [_kth_smallest(row, 0.99) for row in phys]
        k = int(0.99 * (n - 1))  # as ``LinkStats.p99``: the value at position k of each sorted row
        phys.sort(axis=1)  # faster than partitioning rows of mostly equal values (idle links), as exact
        return phys[:, k].tolist()


class LinkFigures(NamedTuple):
    """``LinkMeter.measure``'s figures for many states of the links, one entry per state (row)."""

    mean_fabric: list[float]
    fabric_load: list[float]
    tier_mean: list[list[float]]
    tier_max: list[float]  # per tier, the largest over the rows
    max: list[float]
    p99: dict[int, float]  # for the rows asked for


class LinkBatch:
    """Successive states of a site's links, kept as rows of link loads whose figures are worked out
    together: a few numpy calls on 2-D arrays instead of a dozen per state (an event-driven run changes
    its loads on almost every event and uses every state's figures, so per state that overhead was most
    of the cost). A row keeps the loads in ``LinkMeter.batch_order``, so a tier's links are a run of
    columns; numpy reduces each row of a 2-D array as it reduces the row alone, so every figure is
    ``LinkMeter.measure``'s bit for bit (tested). Row 0 is the state at the start: no load, or the last
    state of the previous batch (``restart``), whose figures are known already; it stays where it was
    recorded, the batch going on in a second array (so a restart copies nothing)."""

    def __init__(self, meter: LinkMeter, n_links: int, rows: int) -> None:
        self.meter = meter
        self._arrays = (np.zeros((max(rows, 2), n_links)), np.zeros((max(rows, 2), n_links)))
        self._load = self._arrays[0]  # rows 1.. of the batch (and row 0 before the first restart)
        self._first = self._load[0]  # row 0's loads
        self.n = 1  # rows in use
        self._known: LinkFigures | None = None  # row 0's figures, when carried over from the last batch

    @property
    def full(self) -> bool:
        return self.n == len(self._load)

    def record(self, load: np.ndarray) -> int:
        """Keep a state of the link loads (bytes/s per link); returns its row."""
        row = self.n
        load.take(self.meter.batch_order, out=self._load[row], mode="clip")  # (the indices are in range)
        self.n += 1
        return row

    def util(self, row: int) -> np.ndarray:
        """A row's utilisation per link."""
        util = np.empty(self._load.shape[1])
        util[self.meter.batch_order] = (self._load[row] if row else self._first) * self.meter.inv_cap_batch
        return util

    def figures(self, p99_rows: list[int]) -> LinkFigures:
        """The figures of every row in use, and the p99 of the rows asked for; row 0's, when carried over,
        as they were (its maxima per tier, counted in the last batch, are left out of ``tier_max``)."""
        known = self._known
        if known is None:
            return self.meter.measure_rows(self._load[: self.n], p99_rows)
        new = self.meter.measure_rows(self._load[1 : self.n], [r - 1 for r in p99_rows if r])
        p99 = {r + 1: v for r, v in new.p99.items()}
        if 0 in p99_rows:
            p99[0] = known.p99[0] if 0 in known.p99 else self.meter.p99s(self._first[None])[0]
        return LinkFigures(
            mean_fabric=known.mean_fabric + new.mean_fabric,
            fabric_load=known.fabric_load + new.fabric_load,
            tier_mean=known.tier_mean + new.tier_mean,
            tier_max=new.tier_max,
            max=known.max + new.max,
            p99=p99,
        )

    def restart(self, row: int, figures: LinkFigures) -> int:
        """Empty the batch but for the state in ``row`` (with ``figures``, the batch's), which becomes row 0."""
        if row:  # it stays in this array; the batch goes on in the other
            self._first = self._load[row]
            one, other = self._arrays
            self._load = other if self._load is one else one
        self._known = LinkFigures(
            mean_fabric=figures.mean_fabric[row : row + 1],
            fabric_load=figures.fabric_load[row : row + 1],
            tier_mean=figures.tier_mean[row : row + 1],
            tier_max=figures.tier_max,
            max=figures.max[row : row + 1],
            p99={0: figures.p99[row]} if row in figures.p99 else {},
        )
        self.n = 1
        return 0


def link_stats(load: np.ndarray, inv_cap: np.ndarray, physical: np.ndarray, fabric: np.ndarray) -> LinkStats:
    """Utilisation of every link and the figures the HUD and report quote (a pure function): ``inv_cap``
    is 1 / capacity (0 where a link has none); ``physical`` and ``fabric`` are sorted index arrays of the
    physical and the switch-to-switch links."""
    util = load * inv_cap
    phys = _pick(util, physical)
    return LinkStats(
        util=util,
        mean_fabric=float(util[fabric].sum() / len(fabric)) if len(fabric) else 0.0,
        max=float(phys.max()) if len(phys) else 0.0,
        fabric_load=float(load[fabric].sum()),
        physical=physical,
    )


def _pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` for a sorted index array without repeats; a view, not a copy, when the indices are
    one run (the physical links of a site come first, its virtual ones last)."""
    if len(index) and int(index[-1]) - int(index[0]) + 1 == len(index):
        return values[int(index[0]) : int(index[-1]) + 1]
    return values[index]


def _kth_smallest(values: np.ndarray, q: float) -> float:
    """The value at position ``int(q * (n - 1))`` of the sorted values (0 if there are none). On many
    values it is looked for only among those at or above a threshold read off a sample (or among the
    positive ones, when most are zero, as the links of a large site are) when that is safe, else by a full
    partition: exact either way."""
    n = len(values)
    if not n:
        return 0.0
    k = int(q * (n - 1))
    if n > 20_000:
        sample = np.sort(values[:: n // 4096])
        # A little below the sample's quantile: the k-th smallest is then almost surely above it.
        threshold = sample[max(0, int(len(sample) * q) - 8 - len(sample) // 200)]
        above = values[values >= threshold] if threshold > 0 else values[values > 0]
        below = n - len(above)
        if below <= k:
            return float(np.partition(above, k - below)[k - below])
        if threshold <= 0 and sample[0] >= 0 and values.min() >= 0:  # the answer is one of the zeros
            return 0.0
    return float(np.partition(values, k)[k])
