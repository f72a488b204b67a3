"""Who runs where: GPU allocation, placement functions and queue policies.

Policies are plain functions, as networkx passes algorithms: a *placement* picks GPUs for one job (or
says it cannot), a *queue policy* decides which waiting jobs to start now using a placement. A
:class:`Policy` pairs the two; ``POLICIES`` names the shipped ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from twin.topology import Fabric
from twin.workload import JobSpec


class Allocation:
    """Which job owns each GPU. ``owner[n, g]`` is a job id or -1; a job holds all its GPUs or none."""

    def __init__(self, fabric: Fabric) -> None:
        self.gpus_per_node = fabric.gpus_per_node
        self.owner = np.full((fabric.n_nodes, fabric.gpus_per_node), -1, np.int64)
        self.free = np.full(fabric.n_nodes, fabric.gpus_per_node, np.int64)
        self.domain = fabric.node_domain
        self.pod = fabric.node_pod
        self.held: dict[int, np.ndarray] = {}  # job id -> flat GPU indices
        self.version = 0  # grows with every change of ``free`` (whoever makes it calls ``changed()``)
        self._sums = (-1, 0, 0)  # (version, free GPUs, free GPUs on partly used nodes)

    @property
    def n_nodes(self) -> int:
        return len(self.free)

    @property
    def free_gpus(self) -> int:
        return int(self.free.sum())

    def assign(self, job_id: int, gpus: np.ndarray) -> None:
        flat = self.owner.reshape(-1)
        ids = gpus.tolist() if len(gpus) <= self.gpus_per_node else None  # a few (most jobs): plain integers
        if ids is not None:
            taken = len(set(ids)) != len(ids) or any(flat.item(g) != -1 for g in ids)
        else:
            taken = bool((flat[gpus] != -1).any()) or _repeats(gpus)
        if job_id in self.held or taken:
            raise RuntimeError(f"job {job_id}: GPUs are not free to assign")
        _set(flat, gpus, ids, job_id)
        self._count(gpus, -1, ids)
        self.held[job_id] = gpus

    def release(self, job_id: int) -> np.ndarray:
        gpus = self.held.pop(job_id)
        ids = gpus.tolist() if len(gpus) <= self.gpus_per_node else None
        _set(self.owner.reshape(-1), gpus, ids, -1)
        self._count(gpus, +1, ids)
        return gpus

    def _count(self, gpus: np.ndarray, sign: int, ids: list[int] | None = None) -> None:
        """``free`` after GPUs come free (+1) or are taken (-1); the fragmentation's sums follow. ``ids``:
        the GPUs as a list, where the caller has it."""
        gpn = self.gpus_per_node
        was = self._sums if self._sums[0] == self.version else None
        self.version += 1
        if ids is None:
            ids = gpus.tolist() if len(gpus) <= gpn else []
        node = min(ids) // gpn if ids else -1
        if ids and max(ids) // gpn == node:  # one node, as most jobs: plain integers
            before = self.free.item(node)
            after = before + sign * len(ids)
            self.free[node] = after
            if was is not None:
                stranded = (after if 0 < after < gpn else 0) - (before if 0 < before < gpn else 0)
                self._sums = (self.version, was[1] + after - before, was[2] + stranded)
            return
        nodes, counts = np.unique(gpus // gpn, return_counts=True)
        free = self.free[nodes]
        self.free[nodes] = free + sign * counts
        if was is not None:
            now = self.free[nodes]
            total = was[1] + int(now.sum() - free.sum())
            partial = was[2] + int(now[(now > 0) & (now < gpn)].sum() - free[(free > 0) & (free < gpn)].sum())
            self._sums = (self.version, total, partial)

    def changed(self) -> None:
        """``owner`` and ``free`` were changed from outside (GPUs held out for faults)."""
        self.version += 1

    def fragmentation(self) -> float:
        """Share of free GPUs stranded on partly used nodes, where no multi-node job can use them."""
        if self._sums[0] != self.version:
            free = self.free
            self._sums = (self.version, int(free.sum()), int(free[(free > 0) & (free < self.gpus_per_node)].sum()))
        _, total, partial = self._sums
        return float(partial / total) if total else 0.0


def _set(flat: np.ndarray, gpus: np.ndarray, ids: list[int] | None, value: int) -> None:
    """``flat[gpus] = value``; GPU by GPU when they are given as a short list (cheaper than indexing)."""
    if ids is not None and len(ids) <= 4:
        for g in ids:
            flat[g] = value
    else:
        flat[gpus] = value


def _repeats(gpus: np.ndarray) -> bool:
    """Whether a GPU is listed twice."""
    if len(gpus) <= 16:
        return len(set(gpus.tolist())) != len(gpus)
    return bool((np.diff(np.sort(gpus)) == 0).any())


Placement = Callable[[Allocation, int], "np.ndarray | None"]


def _gpus_on(alloc: Allocation, nodes: np.ndarray, per_node: int) -> np.ndarray:
    """The first ``per_node`` free GPUs of each node, as flat indices."""
    gpn = alloc.gpus_per_node
    if len(nodes) == 1:  # one node (most jobs): its row as plain integers
        n = int(nodes[0])
        row = alloc.owner[n].tolist()
        return np.array([n * gpn + g for g in range(gpn) if row[g] == -1][:per_node], np.int64)
    out = [n * gpn + np.flatnonzero(alloc.owner[n] == -1)[:per_node] for n in nodes]
    return out[0] if len(out) == 1 else np.concatenate(out)


def place_first_fit(alloc: Allocation, gpus: int) -> np.ndarray | None:
    """Lowest-numbered nodes that fit, ignoring the fabric (the naive baseline)."""
    gpn = alloc.gpus_per_node
    if gpus <= gpn:  # the first node with room
        first = int((alloc.free >= gpus).argmax())
        return _gpus_on(alloc, (first,), gpus) if alloc.free.item(first) >= gpus else None
    need = gpus // gpn
    empty = np.flatnonzero(alloc.free == gpn)
    return _gpus_on(alloc, empty[:need], gpn) if len(empty) >= need else None


def place_topology_aware(alloc: Allocation, gpus: int) -> np.ndarray | None:
    """Pack a job under as few leaves as possible; fill partly used nodes before empty ones.

    Small jobs go to the fullest node that fits, preferring busy leaf domains, so that empty nodes and
    empty domains stay whole for multi-node jobs. A multi-node job takes the smallest domain that holds
    it whole; failing that, the fullest-free domains of the smallest pod that holds it, then of the site.
    """
    gpn = alloc.gpus_per_node
    empty = alloc.free == gpn
    domain_empty = np.bincount(alloc.domain, weights=empty, minlength=alloc.domain.max() + 1)
    if gpus <= gpn:
        fits = np.flatnonzero(alloc.free >= gpus)
        if not len(fits):
            return None
        best = fits[np.lexsort((fits, domain_empty[alloc.domain[fits]], alloc.free[fits]))[0]]
        return _gpus_on(alloc, np.array([best]), gpus)
    need = gpus // gpn
    if empty.sum() < need:
        return None
    whole = np.flatnonzero(domain_empty >= need)
    if len(whole):
        d = whole[np.argmin(domain_empty[whole])]
        nodes = np.flatnonzero(empty & (alloc.domain == d))[:need]
        return _gpus_on(alloc, nodes, gpn)
    pod_empty = np.bincount(alloc.pod, weights=empty, minlength=alloc.pod.max() + 1)
    pods = np.flatnonzero(pod_empty >= need)
    region = alloc.pod == pods[np.argmin(pod_empty[pods])] if len(pods) else np.ones(alloc.n_nodes, bool)
    cand = np.flatnonzero(empty & region)
    # Largest free domains first, so the job spans as few leaves as it can.
    order = np.lexsort((cand, -domain_empty[alloc.domain[cand]]))
    return _gpus_on(alloc, cand[order][:need], gpn)


@dataclass(frozen=True)
class Running:
    """What a queue policy needs to know of a running job: when its wall-time limit runs out."""

    gpus: np.ndarray
    expected_end_s: float


QueuePolicy = Callable[
    [list[JobSpec], Allocation, Sequence[Running], float, Placement, int], list[tuple[JobSpec, np.ndarray]]
]


def fifo(
    queue: list[JobSpec], alloc: Allocation, running: Sequence[Running], now: float, place: Placement, depth: int
) -> list[tuple[JobSpec, np.ndarray]]:
    """Strict first-come first-served: start jobs in order until the head does not fit."""
    started = []
    while queue:
        gpus = place(alloc, queue[0].gpus)
        if gpus is None:
            break
        job = queue.pop(0)
        alloc.assign(job.id, gpus)
        started.append((job, gpus))
    return started


def easy_backfill(
    queue: list[JobSpec], alloc: Allocation, running: Sequence[Running], now: float, place: Placement, depth: int
) -> list[tuple[JobSpec, np.ndarray]]:
    """FIFO plus EASY backfill: later jobs may jump ahead if they cannot delay the blocked head.

    The head gets a reservation at the *shadow time*, when enough GPUs (whole nodes, for a multi-node
    job) will be free by the wall-time limits of running jobs. A later job starts now if it fits and its
    own limit ends before the shadow time, or if it only uses nodes the head will not need then.
    """
    started = fifo(queue, alloc, running, now, place, depth)
    if not queue:
        return started
    head = queue[0]
    # The jobs FIFO just started hold GPUs too: they come free at their own limits, like the others.
    just_started = [Running(gpus, now + job.estimate_s) for job, gpus in started]
    shadow, spare = _reservation(head, alloc, [*running, *just_started], now)
    gpn = alloc.gpus_per_node
    i = 1
    while i < min(len(queue), depth + 1):
        job = queue[i]
        ends_in_time = now + job.estimate_s <= shadow
        nodes_used = max(1, job.gpus // gpn)
        if ends_in_time or nodes_used <= spare:
            gpus = place(alloc, job.gpus)
            if gpus is not None:
                alloc.assign(job.id, gpus)
                started.append((queue.pop(i), gpus))
                if not ends_in_time:
                    spare -= nodes_used
                continue
        i += 1
    return started


def _reservation(head: JobSpec, alloc: Allocation, running: Sequence[Running], now: float) -> tuple[float, int]:
    """Shadow time for the head job and how many whole nodes will be spare beyond its needs then."""
    gpn = alloc.gpus_per_node
    free = alloc.free.copy()
    multi = head.gpus > gpn
    need = head.gpus // gpn if multi else 1

    def available() -> int:
        return int((free == gpn).sum()) if multi else int((free >= head.gpus).sum())

    for r in sorted(running, key=lambda r: r.expected_end_s):
        np.add.at(free, r.gpus // gpn, 1)
        have = available()
        if have >= need:
            return max(r.expected_end_s, now), (have - need if multi else 0)
    return float("inf"), 0


@dataclass(frozen=True)
class Policy:
    name: str
    queue: QueuePolicy
    place: Placement
    label: str = ""  # what a visitor reads
    blurb: str = ""


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("fifo", fifo, place_first_fit, "FIFO", "first come, first served: the queue waits for its head"),
        Policy(
            "backfill",
            easy_backfill,
            place_first_fit,
            "EASY backfill",
            "small jobs jump ahead when they cannot delay the head",
        ),
        Policy(
            "topology",
            easy_backfill,
            place_topology_aware,
            "Topology-aware",
            "EASY backfill, and each job packed under as few leaves as possible",
        ),
    )
}
