"""Property-based tests (hypothesis) of the two solvers everything else rests on: bandwidth and GPUs.

Bandwidth: on random small problems, :func:`twin.flows.max_min_fair` and :class:`twin.flows.FlowTable`
must give feasible rates (no link over capacity, no flow over its demand) that are max-min fair over
flows with their demands as caps, checked against the definition and against a reference written here
(progressive filling in exact rational arithmetic: slow, but obviously right).

GPUs: on random small sites with random jobs, every queue policy gives each job all its GPUs or none
and no GPU twice; ``fifo`` never starts a job before an earlier one; EASY backfill never pushes back
the blocked head's reservation (the earliest time it could start if every running job ran to its
wall-time limit).

Examples are few and derandomized (the same cases on every run, so CI is steady and a failure repeats).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import site
from helpers import job
from twin.flows import FlowGroup, FlowTable, max_min_fair
from twin.scenario import scenario_from_dict
from twin.scheduler import POLICIES, Allocation, Placement, Running
from twin.simulation import Simulation
from twin.stats import link_stats
from twin.topology import build_fabric
from twin.workload import JobSpec

pytestmark = pytest.mark.timeout(120)

PROPERTY = settings(
    max_examples=60,
    deadline=None,  # a loaded 2-core CI machine is slow; the timeout above bounds the whole test
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SIMULATED = settings(PROPERTY, max_examples=25)

REL = 1e-7  # float solver against exact reference


# --- bandwidth ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    demand: float  # bytes/s it would send at full speed: its cap
    route: dict[int, float]  # link -> fraction of the flow on it (ECMP splits)


@dataclass(frozen=True)
class Problem:
    capacity: list[float]
    flows: list[Flow]


ROUND = [0.0, 1.0, 2.0, 3.0, 4.5, 10.0]  # round numbers make ties, where sharing bugs hide; 0 is a dead link
CAPACITY = st.one_of(st.sampled_from(ROUND), st.floats(0.1, 50.0))
DEMAND = st.one_of(st.sampled_from([0.5, 1.0, 2.0, 3.0, 7.0, 40.0]), st.floats(0.05, 60.0))


@st.composite
def problems(draw: st.DrawFn, max_links: int = 5, max_flows: int = 7) -> Problem:
    n_links = draw(st.integers(1, max_links))
    capacity = draw(st.lists(CAPACITY, min_size=n_links, max_size=n_links))
    flows = []
    for _ in range(draw(st.integers(1, max_flows))):
        links = draw(st.lists(st.integers(0, n_links - 1), min_size=1, max_size=min(3, n_links), unique=True))
        fracs = draw(st.lists(st.sampled_from([1.0, 0.5, 0.25]), min_size=len(links), max_size=len(links)))
        flows.append(Flow(draw(DEMAND), dict(zip(sorted(links), fracs, strict=True))))
    return Problem(capacity, flows)


def progressive_filling(problem: Problem) -> list[Fraction]:
    """Max-min fair rates by the textbook algorithm, in exact arithmetic.

    Raise every unfrozen flow's rate by the same amount, as far as the tightest link or the nearest
    demand allows; freeze the flows that reached their demand or cross a link that is now full; repeat.
    """
    cap = [Fraction(c) for c in problem.capacity]
    demand = [Fraction(f.demand) for f in problem.flows]
    frac = [{lk: Fraction(w) for lk, w in f.route.items()} for f in problem.flows]
    n = len(demand)
    rate = [Fraction(0)] * n
    frozen = [False] * n

    def load(lk: int) -> Fraction:
        return sum((frac[f].get(lk, Fraction(0)) * rate[f] for f in range(n)), Fraction(0))

    while not all(frozen):
        live = [f for f in range(n) if not frozen[f]]
        step = min(demand[f] - rate[f] for f in live)
        for lk in range(len(cap)):
            weight = sum((frac[f].get(lk, Fraction(0)) for f in live), Fraction(0))
            if weight:
                step = min(step, (cap[lk] - load(lk)) / weight)
        for f in live:
            rate[f] += step
        full = {lk for lk in range(len(cap)) if load(lk) == cap[lk]}
        for f in live:
            if rate[f] == demand[f] or full & frac[f].keys():
                frozen[f] = True
    return rate


def entries(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flow, link, fraction) entries sorted by flow, one per (flow, link)."""
    rows = [(f, lk, w) for f, flow in enumerate(problem.flows) for lk, w in sorted(flow.route.items())]
    var, link, weight = zip(*rows, strict=True)
    return np.array(var, np.int64), np.array(link, np.int64), np.array(weight, float)


def link_loads(problem: Problem, rate: np.ndarray) -> np.ndarray:
    var, link, weight = entries(problem)
    return np.bincount(link, weights=weight * rate[var], minlength=len(problem.capacity))


def assert_max_min_fair(problem: Problem, rate: np.ndarray) -> None:
    """The definition: feasible, and every flow below its demand has a bottleneck: a full link it
    crosses where no flow gets more. Then it cannot gain without taking from a flow no richer than it."""
    capacity = np.array(problem.capacity)
    demand = np.array([f.demand for f in problem.flows])
    assert (rate >= -1e-12).all() and (rate <= demand * (1 + 1e-12)).all(), "a flow over its demand"
    load = link_loads(problem, rate)
    assert (load <= capacity * (1 + 1e-9) + 1e-12).all(), "a link over capacity"
    full = load >= capacity * (1 - REL) - 1e-12
    for f, flow in enumerate(problem.flows):
        if rate[f] >= demand[f] * (1 - REL):
            continue
        bottlenecks = [
            lk
            for lk in flow.route
            if full[lk]
            and all(rate[g] <= rate[f] * (1 + REL) + 1e-12 for g, o in enumerate(problem.flows) if lk in o.route)
        ]
        assert bottlenecks, f"flow {f} at {rate[f]} < {demand[f]} could grow without slowing a poorer flow"


@given(problems())
@PROPERTY
def test_reference_is_max_min_fair(problem: Problem) -> None:
    """Guards the reference itself: what it returns meets the definition, so agreeing with it means something."""
    assert_max_min_fair(problem, np.array(progressive_filling(problem), float))


@given(problems())
@PROPERTY
def test_max_min_fair_solver_matches_progressive_filling(problem: Problem) -> None:
    """``max_min_fair`` with flows as variables, fractions as weights and demands as caps is feasible and
    equals the exact max-min fair rates (which are unique): its shortcuts (dropping slack links, merging
    identical ECMP columns, fixing whole batches per step) must never change the answer."""
    var, link, weight = entries(problem)
    demand = np.array([f.demand for f in problem.flows])
    got = max_min_fair(var, link, weight, np.array(problem.capacity), demand)
    want = np.array(progressive_filling(problem), float)
    np.testing.assert_allclose(got, want, rtol=REL, atol=1e-9)
    assert_max_min_fair(problem, got)


def group(key: int, flows: list[Flow], kinds: list[int]) -> FlowGroup:
    """A flow group (one job's flows, run at one speed) from flows given as routes."""
    rows = [(f, lk, w) for f, flow in enumerate(flows) for lk, w in sorted(flow.route.items())]
    var, link, frac = (np.array(col) for col in zip(*rows, strict=True))
    n = len(flows)
    return FlowGroup.build(
        (key, 0), kinds, np.arange(n), np.arange(n) + 100, [f.demand for f in flows], (var, link, frac.astype(float))
    )


@given(problems(max_flows=6), st.data())
@PROPERTY
def test_flow_table_shares_bandwidth_max_min_fair_over_flows(problem: Problem, data: st.DataObject) -> None:
    """When every job is a single flow, the fabric's shares (``FlowTable.solve``) are the per-flow max-min
    fair rates with demands as caps: a 2 GB/s job beside a 40 GB/s one on 25 GB/s gets 2, not a
    demand-weighted 1.19. Also guards the table's bookkeeping: link loads and per-kind rates add up."""
    kinds = data.draw(st.lists(st.integers(0, 3), min_size=len(problem.flows), max_size=len(problem.flows)))
    table = FlowTable(np.array(problem.capacity))
    for i, (flow, kind) in enumerate(zip(problem.flows, kinds, strict=True)):
        table.add(group(i, [flow], [kind]))
    speed = table.solve()
    demand = np.array([f.demand for f in problem.flows])
    rate = np.array([speed[(i, 0)] for i in range(len(problem.flows))]) * demand
    np.testing.assert_allclose(rate, np.array(progressive_filling(problem), float), rtol=REL, atol=1e-9)
    assert_max_min_fair(problem, rate)
    np.testing.assert_allclose(table.link_load, link_loads(problem, rate), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(table.kind_rate, np.bincount(kinds, weights=rate, minlength=4), rtol=1e-9, atol=1e-9)


@st.composite
def grouped_problems(draw: st.DrawFn) -> tuple[Problem, list[int]]:
    """A problem and, per flow, its group (0..k-1, each used, flows of a group adjacent)."""
    problem = draw(problems(max_flows=8))
    sizes = []
    left = len(problem.flows)
    while left:
        sizes.append(draw(st.integers(1, min(3, left))))
        left -= sizes[-1]
    return problem, [g for g, size in enumerate(sizes) for _ in range(size)]


def grouped_table(problem: Problem, owner: list[int]) -> FlowTable:
    table = FlowTable(np.array(problem.capacity))
    for g in range(max(owner) + 1):
        flows = [f for f, o in zip(problem.flows, owner, strict=True) if o == g]
        table.add(group(g, flows, [0] * len(flows)))
    return table


@given(grouped_problems())
@PROPERTY
def test_job_speeds_are_feasible_and_no_job_can_speed_up_alone(case: tuple[Problem, list[int]]) -> None:
    """A job of several flows runs at one speed in [0, 1]: its flows carry speed x demand, no link is over
    capacity, a job below full speed crosses a full link (it cannot go faster without slowing another),
    and no job runs slower than its slowest flow's fair share (the bandwidth it gives back is only ever
    handed on, never lost)."""
    problem, owner = case
    table = grouped_table(problem, owner)
    speed = table.solve()
    x = np.array([speed[(g, 0)] for g in owner])  # per flow, its group's speed
    assert ((x >= 0) & (x <= 1)).all()
    demand = np.array([f.demand for f in problem.flows])
    load = link_loads(problem, x * demand)
    capacity = np.array(problem.capacity)
    assert (load <= capacity * (1 + 1e-9) + 1e-12).all(), "a link over capacity"
    np.testing.assert_allclose(table.link_load, load, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(table.flat()["rate"], x * demand, rtol=1e-12)
    full = load >= capacity * (1 - REL) - 1e-12
    fair = np.array(progressive_filling(problem), float) / demand
    for g in set(owner):
        mine = [f for f, o in enumerate(owner) if o == g]
        if speed[(g, 0)] < 1 - REL:
            assert any(full[lk] for f in mine for lk in problem.flows[f].route), f"job {g} could run faster"
        assert speed[(g, 0)] >= min(fair[mine]) * (1 - REL) - 1e-12, f"job {g} below its slowest flow's share"


@given(grouped_problems(), st.lists(st.integers(0, 7), min_size=1, max_size=14))
@PROPERTY
def test_incremental_updates_agree_with_a_fresh_solve(case: tuple[Problem, list[int]], ops: list[int]) -> None:
    """The table's fast path (adding a job that fits in spare capacity, or removing one, while nobody is
    throttled, without a solve) must give the same speeds, link loads and flows as solving from scratch. Each
    op toggles a job (in if out, out if in) or adds it again over itself; the table is solved after each, as
    the simulation does."""
    problem, owner = case
    groups = {}
    for g in range(max(owner) + 1):
        flows = [f for f, o in zip(problem.flows, owner, strict=True) if o == g]
        groups[g] = group(g, flows, [g % 4] * len(flows))
    table = FlowTable(np.array(problem.capacity))
    for op in ops:
        g = op % len(groups)
        if (g, 0) not in table.groups or op >= 6:  # 6 and 7 add a job that may be there already: a replacement
            table.add(groups[g])
        else:
            table.remove((g, 0))
        table.solve()
    fresh = FlowTable(np.array(problem.capacity))
    for g in table.groups.values():
        fresh.add(g)
    want = fresh.solve()
    got = table.solve()
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    np.testing.assert_allclose(table.link_load, fresh.link_load, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(table.kind_rate, fresh.kind_rate, rtol=1e-9, atol=1e-9)
    # What a renderer reads (rebuilt lazily after fast updates): the same flows at the same rates.
    mine, theirs = table.flat(), fresh.flat()
    for field in ("job", "kind", "src", "dst", "demand", "entry_flow", "entry_link", "entry_frac"):
        np.testing.assert_array_equal(mine[field], theirs[field], err_msg=field)
    np.testing.assert_allclose(mine["rate"], theirs["rate"], rtol=1e-9, atol=1e-12)


@given(
    st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.5, 7.0]), min_size=1, max_size=40),
    st.integers(0, 2**32 - 1),
)
@PROPERTY
def test_link_stats_are_the_plain_figures(loads: list[float], seed: int) -> None:
    """``link_stats`` takes shortcuts (the physical links as one slice when they are one run, the p99 among
    the loaded links only); its figures are exactly the plain ones over index arrays."""
    rng = np.random.default_rng(seed)
    load = np.array(loads)
    n = len(load)
    cap = rng.choice([0.0, 1.0, 4.0], n)
    inv_cap = np.divide(1.0, cap, out=np.zeros(n), where=cap > 0)
    physical = np.arange(int(rng.integers(0, n + 1))) if rng.random() < 0.5 else np.flatnonzero(rng.random(n) < 0.7)
    fabric = np.flatnonzero(rng.random(n) < 0.5)
    got = link_stats(load, inv_cap, physical, fabric)
    util = load * inv_cap
    phys = util[physical]
    assert got.max == (float(phys.max()) if len(phys) else 0.0)
    assert got.mean_fabric == (float((load[fabric] * inv_cap[fabric]).sum() / len(fabric)) if len(fabric) else 0.0)
    assert got.fabric_load == float(load[fabric].sum())
    k = int(0.99 * (len(phys) - 1))
    assert got.p99 == (float(np.partition(phys, k)[k]) if len(phys) else 0.0)


# --- GPUs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    racks: int
    per_rack: int
    gpn: int

    @property
    def n_nodes(self) -> int:
        return self.racks * self.per_rack

    def data(self) -> dict:
        return site(
            **{
                "topology.racks": self.racks,
                "topology.nodes_per_rack": self.per_rack,
                "node.gpus": self.gpn,
                "workload.mix": [{"kind": "eval", "share": 1, "gpus": [1, 1], "median_hours": 1}],
                "simulation.step_s": 3600,
            }
        )


SITES = st.builds(Site, st.integers(1, 3), st.integers(1, 4), st.sampled_from([4, 8]))


def sizes(s: Site) -> st.SearchStrategy[int]:
    """Job sizes a site can run: any count on one server, whole servers beyond that."""
    return st.one_of(st.integers(1, s.gpn), st.integers(1, s.n_nodes).map(lambda k: k * s.gpn))


def earliest_start(alloc: Allocation, running: list[tuple[np.ndarray, float]], gpus: int, place: Placement) -> float:
    """When a job of ``gpus`` could first be placed if each running job (GPUs, end) left at its end and
    nothing else started: the head's reservation, by the placement itself, not by counting nodes."""
    trial = copy.deepcopy(alloc)
    if place(trial, gpus) is not None:
        return -np.inf
    for end in sorted({e for _, e in running}):
        for held, e in running:
            if e == end:
                trial.owner.reshape(-1)[held] = -1
                np.add.at(trial.free, held // trial.gpus_per_node, 1)
        if place(trial, gpus) is not None:
            return end
    return np.inf


def assert_gangs(alloc: Allocation, jobs: list[tuple[JobSpec, np.ndarray]]) -> None:
    """Every job holds exactly its GPUs, all of them, none shared; a multi-server job whole servers."""
    gpn = alloc.gpus_per_node
    owner = alloc.owner.reshape(-1)
    held = np.concatenate([g for _, g in jobs]) if jobs else np.empty(0, np.int64)
    assert len(np.unique(held)) == len(held), "a GPU given twice"
    for spec, gpus in jobs:
        assert len(gpus) == spec.gpus, f"job {spec.id} got {len(gpus)} of its {spec.gpus} GPUs"
        assert (owner[gpus] == spec.id).all(), f"job {spec.id} does not own its GPUs"
        if spec.gpus > gpn:
            assert (np.bincount(gpus // gpn)[np.unique(gpus // gpn)] == gpn).all(), "a multi-server job on part of one"
    assert np.array_equal(alloc.free, (alloc.owner == -1).sum(axis=1)), "free counts disagree with owners"


@dataclass
class Round:
    """One scheduling round's input: a part-busy site, what runs there until when, and a queue."""

    alloc: Allocation
    running: list[tuple[np.ndarray, float]]  # (GPUs, wall-time limit runs out)
    queue: list[JobSpec]
    now: float = 1000.0


def a_round(s: Site, data: st.DataObject) -> Round:
    """A busy site: each server full, half full, nearly empty or idle; a full one may belong to the job
    of the full server before it (a multi-server job, whose servers come free together). Then a queue."""
    alloc = Allocation(build_fabric(scenario_from_dict(s.data())))
    now = 1000.0
    running: list[tuple[np.ndarray, float]] = []
    joinable = False
    for n in range(s.n_nodes):
        used = data.draw(st.sampled_from([0, s.gpn, s.gpn, s.gpn // 2, 1]), label=f"node {n} busy")
        gpus = n * s.gpn + np.arange(used)
        if joinable and used == s.gpn and data.draw(st.booleans(), label="same job"):
            running[-1] = (np.r_[running[-1][0], gpus], running[-1][1])
        elif used:
            running.append((gpus, now + data.draw(st.sampled_from([0.0, 100.0, 200.0, 500.0]), label="left")))
        joinable = used == s.gpn
    for i, (gpus, _) in enumerate(running):
        alloc.assign(i, gpus)
    queue = []
    for i, size in enumerate(data.draw(st.lists(sizes(s), min_size=1, max_size=8), label="queue")):
        estimate = data.draw(st.sampled_from([50.0, 100.0, 150.0, 300.0, 1000.0]), label="estimate")
        queue.append(job(100 + i, size, duration=estimate))
    return Round(alloc, running, queue, now)


@given(st.sampled_from(sorted(POLICIES)), SITES, st.data())
@settings(PROPERTY, max_examples=100)
def test_a_scheduling_round_gives_whole_jobs_in_queue_order(name: str, s: Site, data: st.DataObject) -> None:
    """One call of a queue policy on a random part-busy site and queue: each started job gets all its GPUs,
    free ones, none twice; the queue keeps its order; every job ahead of the first that does not fit
    starts, and that head is left waiting (FIFO); ``fifo`` starts nothing behind it."""
    policy = POLICIES[name]
    r = a_round(s, data)
    original = list(r.queue)
    trial, ahead = copy.deepcopy(r.alloc), 0  # the jobs ahead of the first that does not fit, on a copy
    for spec in original:
        gpus = policy.place(trial, spec.gpus)
        if gpus is None:
            break
        trial.assign(spec.id, gpus)
        ahead += 1
    free_before = r.alloc.owner.copy().reshape(-1)

    started = policy.queue(r.queue, r.alloc, [Running(g, e) for g, e in r.running], r.now, policy.place, 10)

    ids = [spec.id for spec, _ in started]
    assert len(set(ids)) == len(ids)
    for _, gpus in started:
        assert (free_before[gpus] == -1).all(), "a started job took a GPU that was not free"
    assert_gangs(r.alloc, started)
    held = sum(len(g) for g, _ in r.running) + sum(spec.gpus for spec, _ in started)
    assert (r.alloc.owner >= 0).sum() == held
    assert [q.id for q in r.queue] == [spec.id for spec in original if spec.id not in ids], "the queue lost its order"
    assert ids[:ahead] == [spec.id for spec in original[:ahead]], "a job ahead of the head was skipped"
    if ahead == len(original):
        assert not r.queue
        return
    head = original[ahead]
    assert r.queue[0] is head and policy.place(copy.deepcopy(r.alloc), head.gpus) is None, "the head is not waiting"
    if name == "fifo":
        assert len(ids) == ahead, "fifo started a job behind one that was waiting"


@given(st.sampled_from(["backfill", "topology"]), SITES, st.data())
@settings(PROPERTY, max_examples=100)
def test_easy_backfill_never_delays_the_heads_reservation(name: str, s: Site, data: st.DataObject) -> None:
    """EASY backfill first starts the jobs ahead of the first that does not fit (the head), then may start
    later jobs, but the head's reservation (the earliest time it could start if every running job, those
    just started included, ran to its wall-time limit, found by the placement itself) is never later than
    before them. (The jobs just started once went uncounted, and a burst of arrivals let a later job
    delay the head: ``test_catches`` has that case.)"""
    policy = POLICIES[name]
    r = a_round(s, data)
    trial, ahead = copy.deepcopy(r.alloc), []
    for spec in r.queue:
        gpus = policy.place(trial, spec.gpus)
        if gpus is None:
            break
        trial.assign(spec.id, gpus)
        ahead.append((gpus, r.now + spec.estimate_s))
    assume(len(ahead) < len(r.queue))
    head = r.queue[len(ahead)]
    before = earliest_start(trial, r.running + ahead, head.gpus, policy.place)

    started = policy.queue(r.queue, r.alloc, [Running(g, e) for g, e in r.running], r.now, policy.place, 10)

    assert head not in [spec for spec, _ in started] and r.queue[0] is head
    ends = r.running + [(g, r.now + spec.estimate_s) for spec, g in started]
    after = earliest_start(r.alloc, ends, head.gpus, policy.place)
    assert after <= before, f"backfill pushed the head's reservation from {before} to {after}"


@st.composite
def workloads(draw: st.DrawFn) -> tuple[Site, list[JobSpec]]:
    """A random small site and a few jobs of valid sizes: evaluation jobs (no traffic) and training jobs
    too small to be slowed, so every job runs exactly its duration, within its wall-time limit."""
    s = draw(SITES)
    specs = []
    arrival = 0.0
    for i in range(draw(st.integers(1, 9))):
        arrival += draw(st.sampled_from([0.0, 0.0, 10.0, 60.0, 300.0]))
        duration = draw(st.sampled_from([60.0, 100.0, 250.0, 400.0, 900.0]))
        kind = draw(st.sampled_from(["eval", "finetune"]))
        estimate = duration * draw(st.sampled_from([1.0, 1.0, 1.5, 3.0]))
        size = draw(sizes(s))
        specs.append(job(i, size, duration, arrival, kind=kind, params_b=1e-4, estimate=estimate))
    return s, specs


def run_observed(name: str, s: Site, specs: list[JobSpec]) -> tuple[Simulation, dict[int, float], dict[int, float]]:
    """Run the jobs event by event under a policy, checking gangs after every event. Returns the simulation,
    each job's start time and the earliest reservation seen while it was the blocked head."""
    sim = Simulation(scenario_from_dict(s.data()), policy=name)
    for spec in specs:
        sim.submit(spec)
    horizon = max(spec.arrival_s for spec in specs) + sum(spec.estimate_s for spec in specs) + 1
    reservation: dict[int, float] = {}
    while sim.events.peek_time() <= horizon:
        sim.run(sim.events.peek_time())
        assert_gangs(sim.alloc, [(j.spec, j.gpus) for j in sim.running.values()])
        sim.check_invariants()
        if sim.queue:
            head = sim.queue[0]
            ends = [(j.gpus, j.start_s + j.spec.estimate_s) for j in sim.running.values()]
            when = earliest_start(sim.alloc, ends, head.gpus, sim.policy.place)
            reservation[head.id] = min(reservation.get(head.id, np.inf), when)
    starts = {e.job_id: e.time_s for e in sim.log if e.what == "start"}
    assert sorted(starts) == [spec.id for spec in specs], "every job got to run (no starvation)"
    ends = {e.job_id: e.time_s for e in sim.log if e.what == "finish"}
    for spec in specs:  # the reservations assume no job outruns its limit: check they were entitled to
        assert ends[spec.id] - starts[spec.id] == pytest.approx(spec.duration_s), f"job {spec.id} was slowed"
    return sim, starts, reservation


@given(workloads())
@SIMULATED
def test_fifo_never_starts_a_job_before_an_earlier_one(case: tuple[Site, list[JobSpec]]) -> None:
    """Under ``fifo`` start times follow the queue: no job starts while one queued before it still waits,
    and every job gets all its GPUs or none, none twice, at every event of the run."""
    s, specs = case
    _, starts, _ = run_observed("fifo", s, specs)
    order = [starts[spec.id] for spec in specs]  # submitted in queue order
    assert order == sorted(order), f"start times out of queue order: {order}"


@pytest.mark.parametrize("name", ["backfill", "topology"])
@given(case=workloads())
@SIMULATED
def test_easy_backfill_never_delays_the_blocked_head(name: str, case: tuple[Site, list[JobSpec]]) -> None:
    """Under EASY backfill a job that waits at the head of the queue starts no later than the earliest
    reservation it was given there (when the running jobs' wall-time limits would let it start): jobs
    that jumped ahead of it never delayed it. Gangs are checked at every event too."""
    s, specs = case
    _, starts, reservation = run_observed(name, s, specs)
    for job_id, when in reservation.items():
        assert starts[job_id] <= when + 1e-6, f"job {job_id} started at {starts[job_id]}, reserved for {when}"


@given(st.lists(st.integers(1, 12), min_size=1, max_size=12), st.integers(2, 9))
@PROPERTY
def test_repeated_rows_land_in_the_ring_as_single_rows_do(runs: list[int], capacity: int) -> None:
    """``TimeSeries.append_repeated`` (the samples between two events, written at once) leaves the ring
    buffer exactly as appending each row alone would, across wrap-arounds and runs longer than the buffer."""
    from twin.metrics import TimeSeries

    fields = ("time_s", "a", "b")
    one, many = TimeSeries(capacity, fields), TimeSeries(capacity, fields)
    t = 0.0
    for i, n in enumerate(runs):
        times = [t + k for k in range(n)]
        t += n
        for time in times:
            one.append_values((time, float(i), -float(i)))
        many.append_repeated((times[0], float(i), -float(i)), times)
        assert len(one) == len(many)
        for name in fields:
            np.testing.assert_array_equal(one.column(name), many.column(name))
        assert one.latest() == many.latest()


@given(st.lists(st.none() | st.integers(1, 12), min_size=1, max_size=12), st.integers(2, 9), st.integers(0, 8))
@PROPERTY
def test_rows_written_in_one_go_land_in_the_ring_as_appended_one_by_one(
    runs: list[int | None], capacity: int, before: int
) -> None:
    """``TimeSeries.append_rows`` (a batch of samples, written when their link figures are known) leaves
    the ring buffer bit for bit as ``append_values`` and ``append_repeated`` one by one would, across
    wrap-arounds and batches longer than the buffer."""
    from twin.metrics import TimeSeries

    fields = ("time_s", "a", "b")
    one, batch = TimeSeries(capacity, fields), TimeSeries(capacity, fields)
    for k in range(before):
        one.append_values((float(k), 1.0, 2))
        batch.append_values((float(k), 1.0, 2))
    rows, times, t = [], [], float(before)
    for i, n in enumerate(runs):
        row = (t + 0.5, i / 3, -i)  # an int among them, as the simulation's counts are
        at = None if n is None else [t + k for k in range(n)]
        t += 1 if n is None else n
        one.append_values(row) if at is None else one.append_repeated(row, at)
        rows.append(row)
        times.append(at)
    batch.append_rows(rows, times)
    assert (batch._data.tobytes(), batch._next, len(batch)) == (one._data.tobytes(), one._next, len(one))


@pytest.mark.parametrize("kind", ["uniform", "mostly idle", "all idle", "ties", "negative", "few loaded"])
def test_the_p99_of_many_links_is_the_plain_percentile(kind: str) -> None:
    """On a large site the p99 is looked for above a threshold read off a sample; it is exactly the value
    a full partition gives, whatever the utilisations look like."""
    from twin.stats import _kth_smallest

    rng = np.random.default_rng(len(kind))
    for n in (20_001, 54_321, 455_841):
        values = {
            "uniform": rng.random(n),
            "mostly idle": rng.random(n) * (rng.random(n) < 0.3),
            "all idle": np.zeros(n),
            "ties": rng.integers(0, 3, n) / 2.0,
            "negative": rng.normal(0.0, 1.0, n),
            "few loaded": rng.random(n) * (rng.random(n) < 0.005),
        }[kind]
        for q in (0.99, 0.5, 0.0, 1.0):
            k = int(q * (n - 1))
            assert _kth_smallest(values, q) == float(np.partition(values, k)[k]), (n, q)
