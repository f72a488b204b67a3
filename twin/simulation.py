"""The simulation: one object that owns the clock, the random generator and all mutable state.

Event-driven: jobs arrive, start, change phase and finish at exact simulated times from a heap. Between
events every rate is constant (job speeds, link loads, power), so progress and every time integral
(energy, GPU-hours, work) are advanced exactly, and the bandwidth shares are only re-solved when the set
of flows changes. A caller moves the clock with ``advance(dt)`` or ``run(until)``; metrics are sampled
every ``step_s`` of simulated time, whatever steps the caller takes, so a run is the same frame for frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from twin.events import ARRIVAL, FAULT, JOB_MILESTONE, SAMPLE, EventQueue
from twin.faults import Component, RandomFaultProcess, check_faults
from twin.flows import (
    CHECKPOINT,
    DATA,
    GRADIENT,
    INFERENCE,
    Entries,
    FlowGroup,
    FlowTable,
    merge_entries,
    route_entries,
)
from twin.metrics import TimeSeries
from twin.power import facility_watts
from twin.routing import Router
from twin.scenario import Scenario
from twin.scheduler import POLICIES, Allocation, Policy, Running
from twin.snapshot import Counts, JobView, LogEntry, Snapshot, hottest_link
from twin.topology import FABRIC, SWITCH_KINDS, VIRTUAL, Fabric, build_fabric
from twin.workload import JobSpec, WorkloadGenerator, ring_allreduce_bytes

WORK, SAVE = 0, 1  # flow-group purposes: the job's running traffic, and its checkpoint writes
SNAPSHOT_EVENTS = 64  # log entries a snapshot carries: more than happen between two frames
CHECKPOINT_GPU_UTIL = 0.05  # GPUs wait on storage while a synchronous checkpoint is written


@dataclass(slots=True)
class Job:
    """A running job. Progress is kept lazily: ``progress_s`` at ``mark_s``, growing at ``rate``."""

    spec: JobSpec
    start_s: float
    gpus: np.ndarray
    nodes: np.ndarray
    phase: str  # compute | checkpoint | serving | evaluating
    progress_s: float
    mark_s: float
    rate: float = 0.0  # progress seconds per simulated second
    util: float = 0.0  # mean GPU utilisation, what power and PFLOPS follow
    speed: float = 1.0  # share of its full-speed traffic the fabric gives it
    work_s: float = 0.0  # integral of util: full-speed GPU-seconds per GPU delivered
    next_checkpoint_s: float = float("inf")
    checkpoint_left_s: float = 0.0  # seconds of writing left at full rate
    generation: int = 0  # bumps whenever its next milestone moves; stale events are skipped
    warm: bool = False  # found running at t = 0 (not counted in wait or workload statistics)

    def progress_at(self, t: float) -> float:
        return self.progress_s + self.rate * (t - self.mark_s)


BLOCKED = -2  # owner of a GPU that is failed or cut off: not free, not any job's


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

    def add(self, gpus: int, runtime_s: float, outcome: str) -> None:
        self.gpu_jobs += 1
        self.gpus += gpus
        self.runtimes.append(runtime_s)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


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

    @property
    def ended(self) -> int:
        """Jobs over for good, however they ended."""
        return self.completed + self.cancelled + self.failed


class Simulation:
    """A site and its workload, advanced by the caller. Never touches wall time or any display.
    A ``twin.source.Source``: what the view draws is ``snapshot()``."""

    rack_labels: tuple[str, ...] = ()

    def __init__(self, scenario: Scenario, seed: int | None = None, policy: Policy | str | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.simulation.seed if seed is None else seed
        self.rng = np.random.default_rng(self.seed)
        workload_rng, self.fault_rng = self.rng.spawn(2)
        self.fabric: Fabric = build_fabric(scenario)
        self.router = Router(self.fabric)
        self.flows = FlowTable(self.fabric.link_cap.copy())
        self.alloc = Allocation(self.fabric)
        if policy is None:
            policy = scenario.scheduler.policy
        self.policy = POLICIES[policy] if isinstance(policy, str) else policy
        self.workload = WorkloadGenerator(
            scenario.workload, self.fabric.n_gpus, self.fabric.gpus_per_node, workload_rng
        )
        self.step_s = scenario.simulation.step_s
        self.events = EventQueue()
        self.now = 0.0
        self.queue: list[JobSpec] = []
        self.running: dict[int, Job] = {}
        self.totals = Totals()
        self.series = TimeSeries()
        self.log: deque[LogEntry] = deque(maxlen=2000)  # what happened, newest last (for captions)
        self.log_count = 0  # entries ever logged, so readers can tell which are new
        self.n_switches = int(np.isin(self.fabric.kind, SWITCH_KINDS).sum())
        self.physical = self.fabric.link_kind != VIRTUAL
        self.fabric_links = self.fabric.link_kind == FABRIC
        self.peak_tflops = scenario.gpu.peak_tflops
        self._busy = 0.0  # sum of GPU utilisation right now
        self._allocated = 0
        self._link_util = np.zeros(self.fabric.n_links)
        self._link_stats = (0.0, 0.0, 0.0)  # mean fabric, p99 physical, max physical
        self._fabric_load = 0.0  # bytes/s on switch-to-switch links
        self._need_schedule = True
        self._stats_version = -1
        self._unset: set[int] = set()  # jobs whose speed must be set at the next settle
        self._init_faults()
        self._warm_start(scenario.workload.initial_load)
        if scenario.workload.arrival == "poisson":
            self.events.push(self.workload.next_arrival_gap(0.0), ARRIVAL, "arrival")
        self._settle()
        self._sample()
        self.events.push(self.step_s, SAMPLE, "sample")

    # --- driving the clock -----------------------------------------------------------------------

    def advance(self, dt: float) -> None:
        """Move the clock forward by ``dt`` simulated seconds."""
        self.run(self.now + dt)

    def run(self, until: float) -> None:
        """Handle every event up to and including ``until``, then stop the clock there."""
        while self.events.peek_time() <= until:
            t = self.events.peek_time()
            self._integrate_to(t)
            while self.events.peek_time() == t:
                _, kind, payload = self.events.pop()
                self._handle(kind, payload)
            self._settle()
        self._integrate_to(max(until, self.now))

    def submit(self, spec: JobSpec) -> None:
        """Queue a job from outside the generator (a trace, a test); it arrives at ``spec.arrival_s``."""
        if spec.arrival_s < self.now:
            raise ValueError(f"job {spec.id} arrives at {spec.arrival_s} s, before the clock ({self.now} s)")
        self.events.push(spec.arrival_s, ARRIVAL, "submit", spec)

    def _handle(self, kind: str, payload: object) -> None:
        if kind == "submit":
            self._submit(payload)  # type: ignore[arg-type]
        elif kind == "arrival":
            self._submit(self.workload.draw(self.now))
            self.events.push(self.now + self.workload.next_arrival_gap(self.now), ARRIVAL, "arrival")
        elif kind == "milestone":
            job_id, generation = payload  # type: ignore[misc]
            job = self.running.get(job_id)
            if job is not None and job.generation == generation:
                self._milestone(job)
        elif kind == "sample":
            self._sample()
            self.events.push(self.now + self.step_s, SAMPLE, "sample")
        elif kind == "fault":
            source, key = payload  # type: ignore[misc]
            if source == "scripted":
                event = self.scenario.faults.events[key]
                self._fault(self.fault_components[key], event.action, event.factor, event.minutes * 60.0)
            else:
                process = self.random_faults
                assert process is not None
                self._fault(process.draw(key), "fail", 0.0, process.repair_s(key))
                self.events.push(self.now + process.next_gap(key), FAULT, "fault", ("random", key))
        elif kind == "repair":
            comp, action, factor = payload  # type: ignore[misc]
            self._change(comp, action, factor, -1)

    def _integrate_to(self, t: float) -> None:
        dt = t - self.now
        if dt <= 0:
            return
        tot = self.totals
        tot.gpu_alloc_s += self._allocated * dt
        tot.busy_gpu_s += self._busy * dt
        tot.energy_j += facility_watts(self.scenario, self._busy, self.n_switches) * dt
        tot.fabric_util_s += self._link_stats[0] * dt
        tot.fabric_bytes += self._fabric_load * dt
        tot.traffic_bytes += self.flows.kind_rate * dt
        self.now = t

    # --- jobs --------------------------------------------------------------------------------------

    def _warm_start(self, load: float) -> None:
        """Start with the site already ``load`` busy, as a real center is when you walk in."""
        target = load * self.fabric.n_gpus
        misses = 0
        while self.alloc.n_nodes and self.fabric.n_gpus - self.alloc.free_gpus < target and misses < 50:
            spec = self.workload.draw(0.0, warm=True)
            gpus = self.policy.place(self.alloc, spec.gpus)
            if gpus is None:
                misses += 1
                continue
            self.totals.submitted += 1
            self.alloc.assign(spec.id, gpus)
            self._start(spec, gpus, count_wait=False)

    def _submit(self, spec: JobSpec) -> None:
        self.totals.submitted += 1
        self.queue.append(spec)
        self._need_schedule = True

    def _start(self, spec: JobSpec, gpus: np.ndarray, count_wait: bool = True) -> None:
        nodes = np.unique(gpus // self.fabric.gpus_per_node)
        phase = {"inference": "serving", "eval": "evaluating"}.get(spec.kind, "compute")
        job = Job(spec, self.now, gpus, nodes, phase, spec.warm_progress_s, self.now, warm=not count_wait)
        if spec.trains and spec.checkpoint_s > 0:
            job.next_checkpoint_s = (np.floor(spec.warm_progress_s / spec.checkpoint_s) + 1) * spec.checkpoint_s
        self.running[spec.id] = job
        self._note("start", spec)
        self._allocated += len(gpus)
        self.totals.started += 1
        if count_wait and spec.id not in self._restarts:
            self.totals.waits.append(self.now - spec.arrival_s)
        self._add_work_flows(job)
        job.speed = -1.0  # force a fresh milestone after the next solve
        self._unset.add(spec.id)

    def _milestone(self, job: Job) -> None:
        """The job reached its next milestone: a checkpoint starts or ends, or the job is done."""
        self._fold(job)
        spec = job.spec
        if job.phase == "checkpoint":
            self._note("checkpoint-done", spec)
            job.phase = "compute"
            job.checkpoint_left_s = 0.0
            job.next_checkpoint_s += spec.checkpoint_s
            self.flows.remove((spec.id, SAVE))
            self._add_work_flows(job)
        elif job.progress_s >= spec.duration_s - 1e-6:
            self._finish(job)
            return
        elif job.phase == "compute" and job.progress_s >= job.next_checkpoint_s - 1e-6:
            self._note("checkpoint", spec)
            job.phase = "checkpoint"
            job.progress_s = job.next_checkpoint_s
            self.flows.remove((spec.id, WORK))
            job.checkpoint_left_s = self._add_checkpoint_flows(job)
        job.speed = -1.0
        self._unset.add(spec.id)

    def _note(self, what: str, spec: JobSpec | None = None) -> None:
        self.log_count += 1
        if spec is None:
            self.log.append(LogEntry(self.log_count, self.now, what))
        else:
            self.log.append(LogEntry(self.log_count, self.now, what, spec.id, spec.kind, spec.gpus, spec.params_b))

    @property
    def version(self) -> int:
        """Grows whenever a snapshot would differ beyond progress: flows, jobs, faults (both only grow)."""
        return self.flows.version + self.log_count

    def _finish(self, job: Job) -> None:
        spec = job.spec
        job.progress_s = spec.duration_s
        self._leave(job)
        self._ended(job, spec.outcome)
        self._note("finish", spec)
        self.totals.jcts.append(self.now - spec.arrival_s)

    def _leave(self, job: Job) -> None:
        """The job stops running (finished or evicted): its traffic and GPUs go back."""
        spec = job.spec
        self.flows.remove((spec.id, WORK))
        self.flows.remove((spec.id, SAVE))
        self.alloc.release(spec.id)
        self._reblock()
        del self.running[spec.id]
        self._allocated -= len(job.gpus)
        self._busy -= len(job.gpus) * job.util
        self.totals.finished_work_gpu_s += job.work_s * len(job.gpus)
        self._need_schedule = True

    def _ended(self, job: Job, outcome: str) -> None:
        """Count a job that is over for good, by how it ended."""
        t = self.totals
        if outcome == "cancelled":
            t.cancelled += 1
        elif outcome == "failed":
            t.failed += 1
        else:
            t.completed += 1
        if not job.warm:
            t.workload.add(len(job.gpus), self.now - job.start_s, outcome)

    # --- faults ----------------------------------------------------------------------------------------

    def _init_faults(self) -> None:
        """Fault state (all healthy), scripted faults on the clock, the random fault process started."""
        fab, spec = self.fabric, self.scenario.faults
        self.fault_components = check_faults(self.scenario, fab)
        self.link_down = np.zeros(fab.n_links, np.int32)  # failures holding each link down
        self.gpu_down = np.zeros((fab.n_nodes, fab.gpus_per_node), np.int32)
        self.vertex_down = np.zeros(len(fab.names), np.int32)  # for the picture: what is red
        self.storage_factor = np.ones(len(fab.storage_gid))
        self._storage_hits: dict[int, list[float]] = {}
        self._unusable = np.zeros((fab.n_nodes, fab.gpus_per_node), bool)
        self._restarts: dict[int, int] = {}
        self.alerts: deque[tuple[float, str, bool]] = deque(maxlen=64)  # (time, text, is a failure)
        for i, event in enumerate(spec.events):
            self.events.push(event.at_s, FAULT, "fault", ("scripted", i))
        self.random_faults = RandomFaultProcess(spec.random, fab, self.fault_rng) if spec.any else None
        if self.random_faults is not None:
            for kind in self.random_faults.kinds():
                self.events.push(self.random_faults.next_gap(kind), FAULT, "fault", ("random", kind))

    def _fault(self, comp: Component, action: str, factor: float, repair_s: float) -> None:
        self.totals.faults += 1
        self._change(comp, action, factor, +1)
        if repair_s > 0:
            self.events.push(self.now + repair_s, FAULT, "repair", (comp, action, factor))

    def _change(self, comp: Component, action: str, factor: float, sign: int) -> None:
        """A component fails (sign +1) or is repaired (-1); everything that depends on it follows."""
        if comp.kind == "gpu":
            self.gpu_down[comp.node, comp.gpu] += sign
        elif comp.kind == "node":
            self.gpu_down[comp.node] += sign
        elif comp.kind in ("link", "switch"):
            self.link_down[list(comp.links)] += sign
        elif comp.kind == "storage":
            hits = self._storage_hits.setdefault(comp.storage, [])
            if sign > 0:
                hits.append(factor)
            elif factor in hits:
                hits.remove(factor)
            self.storage_factor[comp.storage] = min(hits, default=1.0)
        if comp.gid >= 0:
            self.vertex_down[comp.gid] += sign
        before = int(self._unusable.sum())
        victims = self._refresh_fabric(reroute=comp.kind in ("link", "switch"))
        idle = int(self._unusable.sum()) - before
        if sign > 0:
            if comp.kind == "storage" and action == "degrade":
                text = f"{comp.name} degraded to {factor:.0%} of its bandwidth"
            elif comp.kind == "storage":
                text = f"{comp.name} lost: jobs reading or saving to it stall"
            else:
                parts = []
                if victims:
                    parts.append("1 job restarting" if victims == 1 else f"{victims} jobs restarting")
                if idle:
                    parts.append("1 GPU idle" if idle == 1 else f"{idle} GPUs idle")
                if not parts:
                    parts.append("traffic rerouted" if comp.kind in ("link", "switch") else "no job hit")
                text = f"{comp.name} down: {', '.join(parts)}"
        else:
            text = f"{comp.name} back up" if comp.kind != "storage" else f"{comp.name} restored"
        self.alerts.append((self.now, text, sign > 0))
        self._note("fault" if sign > 0 else "repair")

    def _refresh_fabric(self, reroute: bool) -> int:
        """Capacities, routes and usable GPUs from the fault state; evicts the jobs that cannot go on.
        Returns how many jobs were sent back (or failed)."""
        fab = self.fabric
        alive = self.link_down == 0
        cap = fab.link_cap * alive
        cap[fab.storage_read] *= self.storage_factor
        cap[fab.storage_write] *= self.storage_factor
        self.flows.set_capacity(cap)
        # A server is cut off when any of its own cables is down: a rail of its ring is gone.
        cut = ~(alive[fab.host_up].all(axis=1) & alive[fab.host_down].all(axis=1))
        self._unusable = (self.gpu_down > 0) | cut[:, None]
        owner = self.alloc.owner
        victims = set(np.unique(owner[(self.gpu_down > 0) & (owner >= 0)]).tolist())
        for job_id in np.unique(owner[cut][owner[cut] >= 0]).tolist():
            job = self.running[job_id]
            if job.spec.trains and len(job.nodes) > 1:  # its collective lost a member: NCCL gives up
                victims.add(job_id)
        for job_id in sorted(victims):
            self._evict(self.running[job_id])
        if reroute:
            self.router.invalidate(alive)
            for job in self.running.values():
                spec = job.spec
                self.flows.remove((spec.id, WORK))
                self.flows.remove((spec.id, SAVE))
                if job.phase == "checkpoint":
                    left = job.checkpoint_left_s
                    self._add_checkpoint_flows(job)
                    job.checkpoint_left_s = left
                else:
                    self._add_work_flows(job)
                self._unset.add(spec.id)
        self._reblock()
        self._need_schedule = True
        return len(victims)

    def _reblock(self) -> None:
        """Unusable GPUs that are free are held out of scheduling (owner BLOCKED); repaired ones return."""
        owner = self.alloc.owner
        blocked = owner == BLOCKED
        if not self._unusable.any() and not blocked.any():
            return
        owner[blocked & ~self._unusable] = -1
        owner[self._unusable & (owner == -1)] = BLOCKED
        self.alloc.free[:] = (owner == -1).sum(axis=1)

    def _evict(self, job: Job) -> None:
        """A fault stopped the job: it loses the work since its last checkpoint and goes back to the head
        of the queue to resume from that checkpoint, or fails for good after too many tries."""
        spec = job.spec
        self._fold(job)
        every = spec.checkpoint_s if spec.trains else 0.0
        kept = max(0.0, job.next_checkpoint_s - every) if every > 0 and job.next_checkpoint_s < float("inf") else 0.0
        kept = min(kept, job.progress_s)
        self.totals.lost_gpu_s += (job.progress_s - kept) * len(job.gpus)
        self._leave(job)
        tries = self._restarts[spec.id] = self._restarts.get(spec.id, 0) + 1
        if tries > self.scenario.faults.max_retries:
            self._ended(job, "failed")
            self._note("failed", spec)
        else:
            self.totals.restarted += 1
            self.queue.insert(0, replace(spec, warm_progress_s=kept))
            self._note("restart", spec)

    def _fold(self, job: Job) -> None:
        """Bring a job's lazily kept progress and work up to now."""
        dt = self.now - job.mark_s
        job.progress_s += job.rate * dt
        job.work_s += job.util * dt
        if job.phase == "checkpoint":
            job.checkpoint_left_s = max(0.0, job.checkpoint_left_s - job.speed * dt)
        job.mark_s = self.now

    # --- traffic -------------------------------------------------------------------------------------

    def _route(self, src: int, dst: int, rail: int, through: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A fabric route, plus a virtual link (a storage array's read or write limit) if given."""
        links, fracs = self.router.route(src, dst, rail)
        if through is not None and len(links):
            links, fracs = np.r_[links, through], np.r_[fracs, 1.0]
        return links, fracs

    def _add_work_flows(self, job: Job) -> None:
        """The traffic a running job makes: all-reduce rings, data reads, or inference requests."""
        spec, fab = job.spec, self.fabric
        kinds: list[np.ndarray] = []
        srcs: list[np.ndarray] = []
        dsts: list[np.ndarray] = []
        demands: list[np.ndarray] = []
        parts: list[Entries] = []
        count = 0
        gid = fab.node_gid[job.nodes]
        per_node = np.bincount(job.gpus // fab.gpus_per_node, minlength=fab.n_nodes)[job.nodes]
        rails = (job.nodes + spec.id) % fab.rails
        n = len(gid)

        def add(kind: int, src: np.ndarray, dst: np.ndarray, demand: np.ndarray, entries: Entries) -> None:
            nonlocal count
            kinds.append(np.full(len(src), kind, np.int8))
            srcs.append(src)
            dsts.append(dst)
            demands.append(demand)
            parts.append(entries)
            count += len(src)

        def routed(src: np.ndarray, dst: np.ndarray, rail: np.ndarray, through: int | None = None) -> Entries:
            flows = count + np.arange(len(src))
            routes = [self._route(int(a), int(b), int(r), through) for a, b, r in zip(src, dst, rail, strict=True)]
            return route_entries(routes, flows, fab.dead_link)

        if spec.trains and n > 1:
            # Hierarchical all-reduce: NVLink inside each server, then a ring across servers on every rail.
            per_rail = ring_allreduce_bytes(spec.gradient_bytes, n) / fab.rails / spec.iteration_s
            a = np.repeat(job.nodes, fab.rails)
            b = np.repeat(np.roll(job.nodes, -1), fab.rails)
            rail = np.tile(np.arange(fab.rails), n)
            up, down = fab.host_up[a, rail], fab.host_down[b, rail]
            # Ring neighbours under the same leaf need no routing: up to the leaf and down again.
            near = fab.link_dst[up] == fab.link_src[down]
            i = np.flatnonzero(near)
            fast = (np.repeat(i, 2), np.column_stack([up[i], down[i]]).ravel(), np.ones(2 * len(i)))
            far = np.flatnonzero(~near)
            slow_routes = [
                self.router.route(int(fab.node_gid[a[k]]), int(fab.node_gid[b[k]]), int(rail[k])) for k in far
            ]
            entries = merge_entries(fast, route_entries(slow_routes, far, fab.dead_link))
            add(GRADIENT, fab.node_gid[a], fab.node_gid[b], np.full(len(a), per_rail), entries)
        if spec.kind == "inference" and spec.serve_mbs_per_gpu > 0:
            gw = np.full(n, fab.gateway_gid)
            demand = spec.serve_mbs_per_gpu * 1e6 * per_node
            add(INFERENCE, gw, gid, demand, routed(gw, gid, rails))
            add(INFERENCE, gid, gw, demand, routed(gid, gw, rails))
        elif spec.kind != "inference" and spec.read_mbs_per_gpu > 0:
            idx = spec.id % len(fab.storage_gid)
            store = np.full(n, fab.storage_gid[idx])
            add(
                DATA,
                store,
                gid,
                spec.read_mbs_per_gpu * 1e6 * per_node,
                routed(store, gid, rails, int(fab.storage_read[idx])),
            )
        if count:
            cat = np.concatenate
            self.flows.add(
                FlowGroup.build((spec.id, WORK), cat(kinds), cat(srcs), cat(dsts), cat(demands), merge_entries(*parts))
            )

    def _add_checkpoint_flows(self, job: Job) -> float:
        """Every server writes its shard of the checkpoint; returns seconds of writing at full rate."""
        spec, fab = job.spec, self.fabric
        idx = spec.id % len(fab.storage_gid)
        store, limit = int(fab.storage_gid[idx]), int(fab.storage_write[idx])
        rails = (job.nodes + spec.id) % fab.rails
        src = fab.node_gid[job.nodes]
        routes = [self._route(int(g), store, int(r), through=limit) for g, r in zip(src, rails, strict=True)]
        demands = fab.link_cap[fab.host_up[job.nodes, rails]]
        n = len(job.nodes)
        entries = route_entries(routes, np.arange(n), fab.dead_link)
        self.flows.add(
            FlowGroup.build((spec.id, SAVE), np.full(n, CHECKPOINT), src, np.full(n, store), demands, entries)
        )
        shard = spec.checkpoint_bytes / n
        return float(shard / demands.min())

    # --- after events: schedule, share bandwidth, plan milestones -------------------------------------

    def _settle(self) -> None:
        if self._need_schedule:
            self._need_schedule = False
            running = [
                Running(j.gpus, j.start_s + j.spec.estimate_s if j.start_s + j.spec.estimate_s > self.now else self.now)
                for j in self.running.values()
            ]
            started = self.policy.queue(
                self.queue, self.alloc, running, self.now, self.policy.place, self.scenario.scheduler.backfill_depth
            )
            for spec, gpus in started:
                self._start(spec, gpus)
        solved = self.flows.dirty
        if solved or self.flows.version != self._stats_version:
            speeds = self.flows.solve()  # a no-op when the flows changed by the fast path alone
            self._update_link_stats()
            self._stats_version = self.flows.version
        else:
            speeds = self.flows.speed
        # After a full solve anyone's speed may have changed; otherwise only new or re-phased jobs'.
        if solved:
            jobs = list(self.running.values())
        else:
            jobs = [self.running[i] for i in sorted(self._unset) if i in self.running]
        self._unset.clear()
        for job in jobs:
            key = (job.spec.id, SAVE if job.phase == "checkpoint" else WORK)
            speed = speeds.get(key, 1.0)
            if speed != job.speed:
                self._set_speed(job, speed)

    def _set_speed(self, job: Job, speed: float) -> None:
        """New share of bandwidth: fold progress, set rates and utilisation, re-plan the milestone."""
        self._fold(job)
        job.speed = speed
        spec = job.spec
        if job.phase == "checkpoint":
            rate, util = 0.0, CHECKPOINT_GPU_UTIL
        elif job.phase == "serving":
            rate, util = 1.0, speed
        else:
            rate, util = speed, speed
        self._busy += len(job.gpus) * (util - job.util)
        job.rate, job.util = rate, util
        job.generation += 1
        if job.phase == "checkpoint":
            when = self.now + job.checkpoint_left_s / speed if speed > 0 else float("inf")
        else:
            target = min(spec.duration_s, job.next_checkpoint_s)
            when = self.now + max(0.0, target - job.progress_s) / rate if rate > 0 else float("inf")
        if when < float("inf"):
            self.events.push(when, JOB_MILESTONE, "milestone", (spec.id, job.generation))

    def _update_link_stats(self) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            util = np.where(self.fabric.link_cap > 0, self.flows.link_load / self.fabric.link_cap, 0.0)
        self._link_util = util
        phys = util[self.physical]
        fabric = util[self.fabric_links]
        p99 = float(np.partition(phys, int(0.99 * (len(phys) - 1)))[int(0.99 * (len(phys) - 1))]) if len(phys) else 0.0
        mx = float(phys.max()) if len(phys) else 0.0
        self._link_stats = (float(fabric.mean()) if len(fabric) else 0.0, p99, mx)
        self._fabric_load = float(self.flows.link_load[self.fabric_links].sum())
        self.totals.max_link_util = max(self.totals.max_link_util, mx)

    # --- reading the state -------------------------------------------------------------------------

    @property
    def pflops_in_use(self) -> float:
        return self._busy * self.peak_tflops / 1000.0

    @property
    def facility_mw(self) -> float:
        return facility_watts(self.scenario, self._busy, self.n_switches) / 1e6

    def mean_wait_s(self) -> float:
        return self.totals.waits.mean

    def _sample(self) -> None:
        rates = self.flows.kind_rate
        storage_read = rates[DATA] / 1e9
        storage_write = rates[CHECKPOINT] / 1e9
        n = max(self.fabric.n_gpus, 1)
        self.series.append(
            {
                "time_s": self.now,
                "pflops": self.pflops_in_use,
                "gpu_allocation": self._allocated / n,
                "gpu_utilization": self._busy / n,
                "jobs_running": len(self.running),
                "jobs_queued": len(self.queue),
                "jobs_done": self.totals.ended,
                "mean_wait_s": self.mean_wait_s(),
                "facility_mw": self.facility_mw,
                "mean_link_util": self._link_stats[0],
                "p99_link_util": self._link_stats[1],
                "max_link_util": self._link_stats[2],
                "storage_read_gbs": storage_read,
                "storage_write_gbs": storage_write,
                "fragmentation": self.alloc.fragmentation(),
            }
        )

    def job_view(self, job: Job) -> JobView:
        spec = job.spec
        return JobView(
            id=spec.id,
            kind=spec.kind,
            gpus=spec.gpus,
            params_b=spec.params_b,
            phase=job.phase,
            progress=min(1.0, job.progress_at(self.now) / spec.duration_s),
            speed=job.speed if job.speed >= 0 else 1.0,
            nodes=job.nodes,
            start_s=job.start_s,
            arrival_s=spec.arrival_s,
        )

    def snapshot(self) -> Snapshot:
        """Everything a renderer needs, as arrays copied out of the live state."""
        owner = self.alloc.owner
        gpn = self.fabric.gpus_per_node
        busy = owner >= 0
        first = np.where(busy.any(axis=1), owner[np.arange(len(owner)), busy.argmax(axis=1)], -1)
        ids = np.fromiter(self.running.keys(), np.int64, len(self.running))
        utils = np.fromiter((j.util for j in self.running.values()), float, len(self.running))
        order = np.argsort(ids)
        gpu_util = np.zeros(owner.shape)
        if len(ids):
            gpu_util[busy] = utils[order][np.searchsorted(ids[order], owner[busy])]
        node_util = gpu_util.sum(axis=1) / gpn
        flat = self.flows.flat()
        t = self.totals
        return Snapshot(
            time_s=self.now,
            gpu_owner=owner.copy(),
            node_job=first,
            node_util=node_util,
            link_load=self.flows.link_load.copy(),
            link_util=self._link_util.copy(),
            flows={k: v.copy() for k, v in flat.items()},
            jobs=tuple(self.job_view(j) for j in self.running.values()),
            queue=tuple(self.queue[:50]),
            metrics=self.series.latest(),
            peak_pflops=self.scenario.peak_pflops,
            down=self.vertex_down > 0,
            dead_links=self.link_down > 0,
            alerts=tuple(list(self.alerts)[-4:]),
            gpu_util=gpu_util,
            events=tuple(self.log)[-SNAPSHOT_EVENTS:],
            counts=Counts(t.submitted, t.started, t.completed, t.cancelled, t.failed),
            hottest=hottest_link(self._link_util),
        )

    def check_invariants(self) -> None:
        """Raise AssertionError if the state is inconsistent (used by tests; cheap enough to call often)."""
        owner = self.alloc.owner.reshape(-1)
        held = np.concatenate([j.gpus for j in self.running.values()]) if self.running else np.empty(0, int)
        assert len(np.unique(held)) == len(held), "a GPU is given twice"
        assert np.array_equal(np.sort(np.flatnonzero(owner >= 0)), np.sort(held)), "allocation and jobs disagree"
        for job in self.running.values():
            assert np.all(owner[job.gpus] == job.spec.id), f"job {job.spec.id} does not hold all its GPUs"
            assert len(job.gpus) == job.spec.gpus, f"job {job.spec.id} holds part of its GPUs"
        assert self._allocated == len(held)
        cap = self.flows.capacity
        over = self.flows.link_load > cap * (1 + 1e-9) + 1e-6
        assert not over.any(), f"links over capacity: {np.flatnonzero(over)[:5]}"
        dead = self.link_down > 0
        assert not (self.flows.link_load[dead] > 1e-6).any(), "traffic routed over a dead link"
        grid = self.alloc.owner
        assert not ((self.gpu_down > 0) & (grid >= 0)).any(), "a job holds a failed GPU"
        assert np.array_equal(self.alloc.free, (grid == -1).sum(axis=1)), "free counts disagree with owners"
        t = self.totals
        assert t.submitted == t.ended + len(self.running) + len(self.queue), "a job was lost"
