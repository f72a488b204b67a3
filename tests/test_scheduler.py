"""Placement and queue policies on hand-made allocations."""

from __future__ import annotations

import numpy as np

from conftest import site
from helpers import job
from twin.scenario import scenario_from_dict
from twin.scheduler import Allocation, Running, easy_backfill, place_first_fit, place_topology_aware
from twin.topology import build_fabric


def allocation(racks: int = 4, per_rack: int = 4) -> Allocation:
    sc = scenario_from_dict(
        site(**{"topology.racks": racks, "topology.nodes_per_rack": per_rack, "topology.leaf_radix": 32})
    )
    return Allocation(build_fabric(sc))


def domains(alloc: Allocation, gpus: np.ndarray) -> int:
    return len(np.unique(alloc.domain[gpus // alloc.gpus_per_node]))


def test_topology_aware_packs_under_one_leaf_where_first_fit_scatters() -> None:
    alloc = allocation()
    alloc.assign(100, np.arange(8))  # node 0, rack 0
    alloc.assign(101, 4 * 8 + np.arange(8))  # node 4, rack 1
    ff = place_first_fit(alloc, 32)
    ta = place_topology_aware(alloc, 32)
    assert domains(alloc, ff) == 2
    assert domains(alloc, ta) == 1


def test_topology_aware_best_fit_for_small_jobs_keeps_nodes_whole() -> None:
    alloc = allocation()
    alloc.assign(100, np.arange(6))  # node 0 has 2 free GPUs
    gpus = place_topology_aware(alloc, 2)
    assert set(gpus // 8) == {0}
    alloc.assign(1, gpus)
    assert alloc.fragmentation() == 0.0


def test_no_gpu_given_twice() -> None:
    alloc = allocation()
    alloc.assign(1, np.arange(8))
    try:
        alloc.assign(2, np.arange(4, 12))
    except RuntimeError:
        pass
    else:
        raise AssertionError("double assignment was accepted")
    assert (alloc.owner.reshape(-1)[8:12] == -1).all()


def test_fragmentation_counts_stranded_gpus() -> None:
    alloc = allocation(racks=1, per_rack=2)
    alloc.assign(1, np.array([0]))  # 7 free on node 0, 8 free on node 1
    assert alloc.fragmentation() == 7 / 15
    assert place_first_fit(alloc, 16) is None


def test_easy_backfill_reservation() -> None:
    alloc = allocation(racks=1, per_rack=2)
    alloc.assign(0, np.arange(8))  # node 0 busy until t = 100 by its limit
    running = [Running(np.arange(8), 100.0)]
    head = job(1, gpus=16, duration=50)
    short = job(2, gpus=8, duration=50)  # ends at 50 < 100: may go
    long = job(3, gpus=8, duration=500)  # would hold node 1 past 100: must wait
    queue = [head, long, short]
    started = easy_backfill(queue, alloc, running, 0.0, place_first_fit, depth=10)
    assert [s.id for s, _ in started] == [2]
    assert [q.id for q in queue] == [1, 3]


def test_free_counts_and_fragmentation_kept_in_step_agree_with_a_recount() -> None:
    """``Allocation`` updates the owners (GPU by GPU for a few), the free counts and the fragmentation's
    sums per node touched; after random assigns and releases (one node or several, a GPU listed twice
    refused) the owners are the held GPUs' and the rest equal a recount."""
    rng = np.random.default_rng(7)
    alloc = allocation()
    gpn = alloc.gpus_per_node
    for step in range(400):
        if alloc.held and rng.random() < 0.45:
            alloc.release(int(rng.choice(list(alloc.held))))
        else:
            free = np.flatnonzero(alloc.owner.reshape(-1) == -1)
            if not len(free):
                continue
            gpus = rng.choice(free, int(rng.integers(1, min(20, len(free)) + 1)), replace=False)
            if rng.random() < 0.05 and len(gpus) > 1:
                gpus[-1] = gpus[0]  # a GPU twice: refused, nothing changes
                try:
                    alloc.assign(step, gpus)
                except RuntimeError:
                    continue
                raise AssertionError("a GPU listed twice was accepted")
            alloc.assign(step, gpus)
        if rng.random() < 0.5:
            alloc.fragmentation()  # keep the sums current some of the time, so both paths run
        owner = np.full(alloc.owner.size, -1)  # every GPU is its holder's, or free
        for job_id, held in alloc.held.items():
            owner[held] = job_id
        assert np.array_equal(alloc.owner.reshape(-1), owner)
        free = (alloc.owner == -1).sum(axis=1)
        assert np.array_equal(alloc.free, free)
        partial = free[(free > 0) & (free < gpn)].sum()
        assert alloc.fragmentation() == (float(partial / free.sum()) if free.sum() else 0.0)


def test_first_fit_takes_the_first_free_gpus_of_the_first_node_with_room() -> None:
    """First fit, against a plain reading of its definition, over random partly used sites."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        alloc = allocation()
        gpn = alloc.gpus_per_node
        for job_id in range(int(rng.integers(0, 12))):
            free = np.flatnonzero(alloc.owner.reshape(-1) == -1)
            alloc.assign(job_id, rng.choice(free, int(rng.integers(1, 9)), replace=False))
        want = int(rng.integers(1, 2 * gpn + 1))
        if want > gpn:
            want -= want % gpn  # whole nodes
        rows = alloc.owner.tolist()
        if want <= gpn:
            room = [n for n, row in enumerate(rows) if row.count(-1) >= want]
            expected = [room[0] * gpn + g for g in range(gpn) if rows[room[0]][g] == -1][:want] if room else None
        else:
            empty = [n for n, row in enumerate(rows) if row.count(-1) == gpn][: want // gpn]
            expected = [n * gpn + g for n in empty for g in range(gpn)] if len(empty) == want // gpn else None
        got = place_first_fit(alloc, want)
        assert (got is None and expected is None) or (got is not None and got.tolist() == expected)
        if got is not None:
            assert got.dtype == np.int64
