"""The simulation: one object that owns the clock, the random generator and all mutable state.

Event-driven: jobs arrive, start, change phase and finish at exact simulated times from a heap whose
events carry their handlers. Between events every rate is constant (job speeds, link loads, power), so
progress and every time integral (energy, GPU-hours, work) are advanced exactly, and the bandwidth
shares are only re-solved when the set of flows changes. A caller moves the clock with ``advance(dt)`` or
``run(until)``; metrics are sampled every ``step_s`` of simulated time, whatever steps the caller takes,
so a run is the same frame for frame.

The parts it orchestrates each live in their own module: a job's progress (``jobs``), the traffic a job
makes (``traffic``, pure functions), what is broken (``faults``) and how that reads (``alerts``), and
the statistics (``stats``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from heapq import heappop

import numpy as np

from twin.alerts import alert_text
from twin.events import ARRIVAL, FAULT, JOB_MILESTONE, EventQueue
from twin.faults import Component, FaultEffect, FaultState, RandomFaultProcess, check_faults
from twin.flows import CHECKPOINT, DATA, TRAFFIC_KINDS, FlowGroup, FlowTable
from twin.jobs import Job
from twin.metrics import SERIES_FIELDS, TimeSeries
from twin.parallel import StepPlan, plan_job
from twin.power import facility_watts
from twin.routing import Router
from twin.scenario import Scenario
from twin.scheduler import POLICIES, Allocation, Policy, Running
from twin.snapshot import Counts, JobView, LogEntry, Snapshot, hottest_link
from twin.stats import LinkBatch, LinkMeter, Sample, Totals, WorkloadStats
from twin.tiers import TIERS, tier_index
from twin.topology import FABRIC, SWITCH_KINDS, VIRTUAL, Fabric, build_fabric
from twin.traffic import SAVE, WORK, checkpoint_flows, work_flows
from twin.workload import JobSpec, WorkloadGenerator

__all__ = ["BLOCKED", "Job", "Sample", "Simulation", "Totals", "WorkloadStats"]

SNAPSHOT_EVENTS = 64  # log entries a snapshot carries: more than happen between two frames
BLOCKED = -2  # owner of a GPU that is failed or cut off: not free, not any job's
INF = float("inf")
LINK_FIELDS = slice(9, 12)  # the series fields read off the links: filled in when their batch is measured
assert SERIES_FIELDS[LINK_FIELDS] == ("mean_link_util", "p99_link_util", "max_link_util")


class RunningJobs(Sequence[Running]):
    """The running jobs as a queue policy sees them, listed only if the policy looks (FIFO never does)."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self._items: list[Running] | None = None

    def _list(self) -> list[Running]:
        if self._items is None:
            now = self._sim.now
            self._items = [Running(j.gpus, max(j.start_s + j.spec.estimate_s, now)) for j in self._sim.running.values()]
        return self._items

    def __len__(self) -> int:
        return len(self._sim.running)

    def __getitem__(self, i):  # type: ignore[override]
        return self._list()[i]

    def __iter__(self):
        return iter(self._list())


class Simulation:
    """A site and its workload, advanced by the caller. Never touches wall time or any display.
    A ``twin.source.Source``: what the view draws is ``snapshot()``."""

    rack_labels: tuple[str, ...] = ()

    def __init__(self, scenario: Scenario, seed: int | None = None, policy: Policy | str | None = None) -> None:
        # The site and everything derived from it.
        self.scenario = scenario
        self.seed = scenario.simulation.seed if seed is None else seed
        self.rng = np.random.default_rng(self.seed)
        workload_rng, self.fault_rng = self.rng.spawn(2)
        self.fabric: Fabric = build_fabric(scenario)
        fab = self.fabric
        self.router = Router(fab)
        self.flows = FlowTable(fab.link_cap.copy())
        self.alloc = Allocation(fab)
        if policy is None:
            policy = scenario.scheduler.policy
        self.policy = POLICIES[policy] if isinstance(policy, str) else policy
        self.workload = WorkloadGenerator(scenario.workload, fab.n_gpus, fab.gpus_per_node, workload_rng)
        self.n_switches = int(np.isin(fab.kind, SWITCH_KINDS).sum())
        self.physical = np.flatnonzero(fab.link_kind != VIRTUAL)
        self.fabric_links = np.flatnonzero(fab.link_kind == FABRIC)
        self._inv_cap = np.divide(1.0, fab.link_cap, out=np.zeros(fab.n_links), where=fab.link_cap > 0)
        self.peak_tflops = scenario.gpu.peak_tflops
        self._n_gpus_or_1 = max(fab.n_gpus, 1)
        self.step_s = scenario.simulation.step_s
        self.backfill_depth = scenario.scheduler.backfill_depth
        self._nic_per_gpu = scenario.node.nics * scenario.node.nic_gbps * 1e9 / 8 / scenario.node.gpus  # bytes/s
        self._tiers = tier_index(fab)
        self._meter = LinkMeter(self._inv_cap, self.physical, self.fabric_links, self._tiers)
        # The links' states, measured a batch at a time: what needs their figures waits in order until then.
        rows = max(2, min(256, 2**18 // max(fab.n_links, 1)))  # at most 2 MB: 256 rows on a small site, 2 at 100k GPUs
        self._links = LinkBatch(self._meter, fab.n_links, rows)
        self._state = 0  # the batch row of the links' state now
        self._link_dts: list[tuple[int, float]] = []  # (state, seconds) to add to the links' integrals
        self._samples: list[tuple[tuple[float, ...], list[float] | None, int]] = []  # (row, times, state)
        # Facility power is linear in the computing and the allocated GPU counts: coefficients worked out once.
        self._watts_idle = facility_watts(scenario, 0.0, self.n_switches, 0.0)
        self._watts_per_busy = facility_watts(scenario, 1.0, self.n_switches, 1.0) - self._watts_idle
        self._watts_per_wait = facility_watts(scenario, 0.0, self.n_switches, 1.0) - self._watts_idle
        # Mutable state: all of it created here, before anything runs.
        self.events = EventQueue()
        self.now = 0.0
        self.queue: list[JobSpec] = []
        self.running: dict[int, Job] = {}
        self.totals = Totals()
        self.series = TimeSeries()
        self._log: deque[tuple] = deque(maxlen=2000)  # ``log``'s entries as their fields, made LogEntries when read
        self.log_count = 0  # entries ever logged, so readers can tell which are new
        self.faults = FaultState(fab)
        self.fault_components = check_faults(scenario, fab)
        self.random_faults = (
            RandomFaultProcess(scenario.faults.random, fab, self.fault_rng) if scenario.faults.any else None
        )
        self.alerts: deque[tuple[float, str, bool]] = deque(maxlen=64)  # (time, text, is a failure)
        self._unusable = np.zeros((fab.n_nodes, fab.gpus_per_node), bool)
        self._restarts: dict[int, int] = {}  # job id -> times a fault sent it back
        self._busy = 0.0  # sum of GPU utilisation right now
        self._flops = 0.0  # sum over GPUs of the share of peak FLOPs they deliver (util x MFU)
        self._stepping = 0  # GPUs of training jobs in their compute phase
        self._stepping_speed = 0.0  # the same GPUs weighted by their job's speed (ideal / actual step time)
        # The integrals per tier and per traffic kind, kept in plain floats between the calls of ``run``
        # (the same sums, element by element, as the arrays of ``totals`` they are written back to).
        assert len(TIERS) == len(TRAFFIC_KINDS) == 4, "the integrals below are written out for four of each"
        self._tier_s = [0.0] * len(TIERS)
        self._tier_max_s = [0.0] * len(TIERS)  # the largest utilisation each tier has seen
        self._traffic_s = [0.0] * len(self.totals.traffic_bytes)
        self._kind_now: list[float] = []
        self._kind_at = (-1, -1)  # (flows.version, flows.solves) the kind rates were read at
        self._allocated = 0
        self._need_schedule = True
        self._stats_version = -1
        self._unset: set[int] = set()  # jobs whose speed must be set at the next settle
        # The running traffic of jobs saving a checkpoint, put back as it was when the checkpoint is done
        # (building a 4,096-GPU job's flows and routes again took 15 to 20 ms); dropped on a reroute.
        self._paused_work: dict[int, FlowGroup] = {}
        self._mfu: dict[str, float] = {}  # by job kind
        self._maybe_blocked = False  # some GPU may be unusable or held out (else _reblock has nothing to do)
        # Then time 0: the site as you find it, and the first events.
        for i, event in enumerate(scenario.faults.events):
            self.events.push(event.at_s, FAULT, self._on_scripted_fault, i)
        if self.random_faults is not None:
            for kind in self.random_faults.kinds():
                self.events.push(self.random_faults.next_gap(kind), FAULT, self._on_random_fault, kind)
        self._warm_start(scenario.workload.initial_load)
        if scenario.workload.arrival == "poisson":
            self.events.push(self.workload.next_arrival_gap(0.0), ARRIVAL, self._on_arrival)
        self._settle()
        self._sample()
        self._next_sample = self.step_s
        self._measure_links()

    # --- driving the clock -----------------------------------------------------------------------

    def advance(self, dt: float) -> None:
        """Move the clock forward by ``dt`` simulated seconds."""
        self.run(self.now + dt)

    def run(self, until: float) -> None:
        """Handle every event up to and including ``until``, then stop the clock there.

        Metric samples are taken every ``step_s`` without going through the heap (there are far more of
        them than of anything else): one that falls between events sees a state nothing changes, and one
        at the same instant as events comes after them and before the scheduler runs, as the lowest
        priority event of that instant would."""
        heap = self.events.heap  # peeked at directly: the loop's most frequent question
        while True:
            t = heap[0][0] if heap else INF
            if self._next_sample < t and self._next_sample <= until:
                # Every sample before the next event sees the same state: one row, written at each time.
                times = [self._next_sample]
                while (ahead := times[-1] + self.step_s) < t and ahead <= until:
                    times.append(ahead)
                self._integrate_to(times[-1])
                self._samples.append((self._sample_values(), times, self._state))
                self._next_sample = times[-1] + self.step_s
                continue
            if t > until:
                break
            self._integrate_to(t)
            while heap and heap[0][0] == t:
                handler, payload = heappop(heap)[3:]  # ``EventQueue.pop``, inlined
                handler(payload)
            if self._next_sample == t:
                self._sample()
                self._next_sample = t + self.step_s
            self._settle()
        self._integrate_to(max(until, self.now))
        self._measure_links()
        self.totals.tier_util_s[:] = self._tier_s
        self.totals.tier_util_max[:] = self._tier_max_s
        self.totals.traffic_bytes[:] = self._traffic_s

    def submit(self, spec: JobSpec) -> None:
        """Queue a job from outside the generator (a trace, a test); it arrives at ``spec.arrival_s``."""
        if spec.arrival_s < self.now:
            raise ValueError(f"job {spec.id} arrives at {spec.arrival_s} s, before the clock ({self.now} s)")
        self.events.push(spec.arrival_s, ARRIVAL, self._submit, spec)

    def _integrate_to(self, t: float) -> None:
        dt = t - self.now
        if dt <= 0:
            return
        tot = self.totals
        tot.gpu_alloc_s += self._allocated * dt
        tot.busy_gpu_s += self._busy * dt
        tot.energy_j += self._watts() * dt
        tot.flops_gpu_s += self._flops * dt
        tot.stepping_gpu_s += self._stepping * dt
        tot.stepping_speed_gpu_s += self._stepping_speed * dt
        self._link_dts.append((self._state, dt))  # the links' integrals: at the next _measure_links
        flows = self.flows
        if self._kind_at[0] != flows.version or self._kind_at[1] != flows.solves:
            self._kind_at = (flows.version, flows.solves)
            self._kind_now = flows.kind_rate.tolist()
        # Plain floats, element by element: what ``array += rates * dt`` computes, without numpy calls.
        acc, rates = self._traffic_s, self._kind_now
        acc[0] += rates[0] * dt
        acc[1] += rates[1] * dt
        acc[2] += rates[2] * dt
        acc[3] += rates[3] * dt
        self.now = t

    # --- event handlers ----------------------------------------------------------------------------

    def _on_arrival(self, _: None) -> None:
        self._submit(self.workload.draw(self.now))
        self.events.push(self.now + self.workload.next_arrival_gap(self.now), ARRIVAL, self._on_arrival)

    def _on_milestone(self, payload: tuple[int, int]) -> None:
        job_id, generation = payload
        job = self.running.get(job_id)
        if job is not None and job.generation == generation:  # an older plan for this job is stale
            self._milestone(job)

    def _on_scripted_fault(self, i: int) -> None:
        event = self.scenario.faults.events[i]
        self._fault(self.fault_components[i], event.action, event.factor, event.minutes * 60.0)

    def _on_random_fault(self, kind: str) -> None:
        process = self.random_faults
        assert process is not None
        self._fault(process.draw(kind), "fail", 0.0, process.repair_s(kind))
        self.events.push(self.now + process.next_gap(kind), FAULT, self._on_random_fault, kind)

    def _on_repair(self, payload: tuple[Component, str, float]) -> None:
        self._change(*payload, sign=-1)

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
        job = Job.start(spec, self.now, gpus, self.fabric.gpus_per_node, warm=not count_wait)
        mfu = self._mfu.get(spec.kind)
        if mfu is None:
            mfu = self._mfu[spec.kind] = self.scenario.workload.mfu_of(spec.kind)
        job.mfu = mfu
        job.plan = self._plan(spec, job.mfu)
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
        job.fold(self.now)
        spec = job.spec
        if job.phase == "checkpoint":
            self._note("checkpoint-done", spec)
            job.phase = "compute"
            job.checkpoint_left_s = 0.0
            job.next_checkpoint_s += spec.checkpoint_s
            self.flows.remove((spec.id, SAVE))
            paused = self._paused_work.pop(spec.id, None)
            if paused is not None:
                self.flows.add(paused)
            else:
                self._add_work_flows(job)
        elif job.progress_s >= spec.duration_s - 1e-6:
            self._finish(job)
            return
        elif job.phase == "compute" and job.progress_s >= job.next_checkpoint_s - 1e-6:
            self._note("checkpoint", spec)
            job.phase = "checkpoint"
            job.progress_s = job.next_checkpoint_s
            work = self.flows.groups.get((spec.id, WORK))
            if work is not None:
                self._paused_work[spec.id] = work
            self.flows.remove((spec.id, WORK))
            job.checkpoint_left_s = self._add_checkpoint_flows(job)
        job.speed = -1.0
        self._unset.add(spec.id)

    def _note(self, what: str, spec: JobSpec | None = None) -> None:
        self.log_count += 1
        if spec is None:
            self._log.append((self.log_count, self.now, what))
        else:
            self._log.append((self.log_count, self.now, what, spec.id, spec.kind, spec.gpus, spec.params_b))

    @property
    def log(self) -> list[LogEntry]:
        """What happened, newest last (for captions): the latest 2,000 entries."""
        return [LogEntry(*fields) for fields in self._log]

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
        self._paused_work.pop(spec.id, None)
        self.alloc.release(spec.id)
        self._reblock()
        del self.running[spec.id]
        self._allocated -= len(job.gpus)
        self._busy -= len(job.gpus) * job.util
        self._tally(job, leaving=True)
        self.totals.finished_work_gpu_s += job.work_s * len(job.gpus)
        self._need_schedule = True

    def _ended(self, job: Job, outcome: str) -> None:
        """Count a job that is over for good, by how it ended."""
        self.totals.end(outcome)
        if not job.warm:
            self.totals.workload.add(len(job.gpus), self.now - job.start_s, outcome)

    def _evict(self, job: Job) -> None:
        """A fault stopped the job: it loses the work since its last checkpoint and goes back to the head
        of the queue to resume from that checkpoint, or fails for good after too many tries."""
        spec = job.spec
        job.fold(self.now)
        kept = job.last_checkpoint_s()
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

    # --- faults ----------------------------------------------------------------------------------------

    @property
    def link_down(self) -> np.ndarray:
        return self.faults.link_down

    @property
    def gpu_down(self) -> np.ndarray:
        return self.faults.gpu_down

    def _fault(self, comp: Component, action: str, factor: float, repair_s: float) -> None:
        self.totals.faults += 1
        self._change(comp, action, factor, sign=+1)
        if repair_s > 0:
            self.events.push(self.now + repair_s, FAULT, self._on_repair, (comp, action, factor))

    def _change(self, comp: Component, action: str, factor: float, sign: int) -> None:
        """A component fails (sign +1) or is repaired (-1); everything that depends on it follows."""
        self.faults.change(comp, factor, sign)
        before = int(self._unusable.sum())
        victims = self._refresh_fabric(reroute=comp.kind in ("link", "switch"))
        effect = FaultEffect(comp, action, factor, sign > 0, victims, int(self._unusable.sum()) - before)
        self.alerts.append((self.now, alert_text(effect), effect.failed))
        self._note("fault" if effect.failed else "repair")

    def _refresh_fabric(self, reroute: bool) -> int:
        """Capacities, routes and usable GPUs from the fault state; evicts the jobs that cannot go on.
        Returns how many jobs were sent back (or failed)."""
        self.flows.set_capacity(self.faults.capacities())
        cut = self.faults.cut_nodes()
        self._unusable = self.faults.unusable()
        self._maybe_blocked = True
        owner = self.alloc.owner
        victims = set(np.unique(owner[(self.faults.gpu_down > 0) & (owner >= 0)]).tolist())
        for job_id in np.unique(owner[cut][owner[cut] >= 0]).tolist():
            job = self.running[job_id]
            if job.spec.trains and len(job.nodes) > 1:  # its collective lost a member: NCCL gives up
                victims.add(job_id)
        for job_id in sorted(victims):
            self._evict(self.running[job_id])
        if reroute:
            self.router.invalidate(self.faults.alive)
            self._paused_work.clear()  # routed over what was alive then
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
        if not self._maybe_blocked:
            return
        owner = self.alloc.owner
        blocked = owner == BLOCKED
        if not self._unusable.any() and not blocked.any():
            self._maybe_blocked = False
            return
        owner[blocked & ~self._unusable] = -1
        owner[self._unusable & (owner == -1)] = BLOCKED
        self.alloc.free[:] = (owner == -1).sum(axis=1)
        self.alloc.changed()

    # --- traffic -------------------------------------------------------------------------------------

    def _plan(self, spec: JobSpec, mfu: float) -> StepPlan | None:
        """A training job's layout and step at full speed (see ``twin.parallel``)."""
        if not spec.trains:
            return None
        g = self.scenario.gpu
        return plan_job(
            spec.params_b * 1e9,
            spec.gpus,
            self.fabric.gpus_per_node,
            g.memory_gb,
            spec.tokens_per_gpu,
            g.peak_tflops,
            mfu,
            self._nic_per_gpu,
            spec.overlap,
        )

    def _add_work_flows(self, job: Job) -> None:
        group = work_flows(job.spec, job.gpus, job.nodes, self.fabric, self.router, job.plan)
        if group is not None:
            self.flows.add(group)

    def _add_checkpoint_flows(self, job: Job) -> float:
        """Returns seconds of writing at full rate."""
        group, seconds = checkpoint_flows(job.spec, job.nodes, self.fabric, self.router)
        self.flows.add(group)
        return seconds

    # --- after events: schedule, share bandwidth, plan milestones -------------------------------------

    def _settle(self) -> None:
        if self._need_schedule:
            self._need_schedule = False
            if self.queue:
                started = self.policy.queue(
                    self.queue, self.alloc, RunningJobs(self), self.now, self.policy.place, self.backfill_depth
                )
                for spec, gpus in started:
                    self._start(spec, gpus)
        flows = self.flows
        solved = flows.dirty
        speeds = flows.solve() if solved else flows.speed  # re-shared only after a change off the fast path
        if solved or flows.version != self._stats_version:
            if self._links.full:
                self._measure_links()
            self._state = self._links.record(flows.link_load)
            self._stats_version = flows.version
        # After a full solve anyone's speed may have changed; otherwise only new or re-phased jobs'.
        unset, running = self._unset, self.running
        if solved:
            jobs = list(running.values())
        elif len(unset) == 1:  # one job (as most events bring): no sorting
            job = running.get(unset.pop())
            jobs = [job] if job is not None else []
        else:
            jobs = [running[i] for i in sorted(unset) if i in running]
        unset.clear()
        for job in jobs:
            speed = speeds.get((job.spec.id, SAVE if job.phase == "checkpoint" else WORK), 1.0)  # its group_key
            if speed != job.speed:
                self._set_speed(job, speed)

    def _set_speed(self, job: Job, speed: float) -> None:
        """New share of bandwidth: fold progress, set rates and utilisation, re-plan the milestone."""
        job.fold(self.now)
        job.speed = speed
        rate, util = job.rates(speed)
        self._busy += len(job.gpus) * (util - job.util)
        job.rate, job.util = rate, util
        job.flops = 0.0 if job.phase == "checkpoint" else util * job.mfu
        self._tally(job)
        job.generation += 1
        when = job.next_milestone(self.now)
        if when < INF:
            self.events.push(when, JOB_MILESTONE, self._on_milestone, (job.spec.id, job.generation))

    def _tally(self, job: Job, leaving: bool = False) -> None:
        """Bring the job's part of the delivered-FLOPs and step-time sums up to date: take out what it
        put in last (its phase may have changed since), then put in what it does now."""
        flops, stepping, weighted = job.tally
        if not leaving:
            n = len(job.gpus)
            stepping_now = n if job.plan is not None and job.phase == "compute" else 0
            job.tally = (n * job.flops, stepping_now, stepping_now * job.speed)
        else:
            job.tally = (0.0, 0, 0.0)
        self._flops += job.tally[0] - flops
        self._stepping += job.tally[1] - stepping
        self._stepping_speed += job.tally[2] - weighted

    # --- reading the state -------------------------------------------------------------------------

    @property
    def pflops_in_use(self) -> float:
        return self._busy * self.peak_tflops / 1000.0

    @property
    def pflops_delivered(self) -> float:
        """What the GPUs achieve: their peak x the time they compute x their job's MFU."""
        return self._flops * self.peak_tflops / 1000.0

    @property
    def tier_links(self) -> tuple[int, ...]:
        """Directed links per tier (``twin.tiers.TIERS``); 0 for a tier the site does not have."""
        return tuple(int(c) for c in self._tiers.counts)

    def _watts(self) -> float:
        """Facility power now: computing GPUs, allocated ones waiting, and the rest of the site."""
        busy = self._busy
        return self._watts_idle + self._watts_per_busy * busy + self._watts_per_wait * (self._allocated - busy)

    @property
    def facility_mw(self) -> float:
        return self._watts() / 1e6

    def mean_wait_s(self) -> float:
        return self.totals.waits.mean

    def _sample(self) -> None:
        self._samples.append((self._sample_values(), None, self._state))

    def _measure_links(self) -> None:
        """Work out the figures of the links' states recorded since the last time, then do in order what
        waited on them: add to the integrals, raise the maxima, write the samples."""
        links = self._links
        figures = links.figures(sorted({state for _, _, state in self._samples}))
        tot = self.totals
        mean_fabric, fabric_load, tier_mean = figures.mean_fabric, figures.fabric_load, figures.tier_mean
        # Plain floats in locals, term by term in order: what ``array += rates * dt`` computes, without
        # numpy calls, and the same sums as adding to the totals one state at a time.
        util_s, fabric_bytes = tot.fabric_util_s, tot.fabric_bytes
        t0, t1, t2, t3 = self._tier_s
        for state, dt in self._link_dts:
            util_s += mean_fabric[state] * dt
            fabric_bytes += fabric_load[state] * dt
            r0, r1, r2, r3 = tier_mean[state]
            t0 += r0 * dt
            t1 += r1 * dt
            t2 += r2 * dt
            t3 += r3 * dt
        tot.fabric_util_s, tot.fabric_bytes = util_s, fabric_bytes
        self._tier_s[:] = (t0, t1, t2, t3)
        self._link_dts.clear()
        seen = self._tier_max_s
        for i, m in enumerate(figures.tier_max):
            if m > seen[i]:
                seen[i] = m
        tot.max_link_util = max(tot.max_link_util, *figures.max)
        p99, peak = figures.p99, figures.max
        head, tail = LINK_FIELDS.start, LINK_FIELDS.stop
        self.series.append_rows(
            [(*values[:head], mean_fabric[s], p99[s], peak[s], *values[tail:]) for values, _, s in self._samples],
            [times for _, times, _ in self._samples],
        )
        self._samples.clear()
        self._state = links.restart(self._state, figures)

    def _sample_values(self) -> tuple[float, ...]:
        """The metrics now, in SERIES_FIELDS order (the properties they are, inlined: one call per sample),
        the links' (``LINK_FIELDS``) left at 0 for ``_measure_links`` to fill in."""
        rates = self.flows.kind_rate
        n = self._n_gpus_or_1
        busy, allocated, tot = self._busy, self._allocated, self.totals
        ended = tot.completed + tot.cancelled + tot.failed
        waits = tot.waits
        watts = self._watts()
        return (
            self.now,
            busy * self.peak_tflops / 1000.0,
            allocated / n,
            busy / n,
            len(self.running),
            len(self.queue),
            ended,
            waits.total / waits.count if waits.count else 0.0,
            watts / 1e6,
            0.0,
            0.0,
            0.0,
            rates[DATA] / 1e9,
            rates[CHECKPOINT] / 1e9,
            self.alloc.fragmentation(),
            self._flops * self.peak_tflops / 1000.0,
        )

    def job_view(self, job: Job) -> JobView:
        spec = job.spec
        done = job.progress_at(self.now)
        step_s = job.step_s  # > 0 only for a training job with a plan
        return JobView(
            id=spec.id,
            kind=spec.kind,
            gpus=spec.gpus,
            params_b=spec.params_b,
            phase=job.phase,
            progress=min(1.0, done / spec.duration_s),
            speed=job.speed if job.speed >= 0 else 1.0,
            nodes=job.nodes,
            start_s=job.start_s,
            arrival_s=spec.arrival_s,
            step_s=step_s,
            comm_share=1.0 - job.util if step_s > 0 else 0.0,
            step_phase=done / job.plan.step_s % 1.0 if step_s > 0 and job.plan else 0.0,
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
        t = self.totals
        util = self._links.util(self._state)
        return Snapshot(
            time_s=self.now,
            gpu_owner=owner.copy(),
            node_job=first,
            node_util=gpu_util.sum(axis=1) / gpn,
            link_load=self.flows.link_load.copy(),
            link_util=util,  # a fresh array
            flows=dict(self.flows.flat()),  # read-only arrays, rebuilt (not changed) when the flows change
            jobs=tuple(self.job_view(j) for j in self.running.values()),
            queue=tuple(self.queue[:50]),
            metrics=self.series.latest(),
            peak_pflops=self.scenario.peak_pflops,
            down=self.faults.vertex_down > 0,
            dead_links=self.faults.link_down > 0,
            alerts=tuple(list(self.alerts)[-4:]),
            gpu_util=gpu_util,
            events=tuple(LogEntry(*fields) for fields in list(self._log)[-SNAPSHOT_EVENTS:]),
            counts=Counts(t.submitted, t.started, t.completed, t.cancelled, t.failed),
            hottest=hottest_link(util),
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
        dead = self.faults.link_down > 0
        assert not (self.flows.link_load[dead] > 1e-6).any(), "traffic routed over a dead link"
        grid = self.alloc.owner
        assert not ((self.faults.gpu_down > 0) & (grid >= 0)).any(), "a job holds a failed GPU"
        assert not ((grid == BLOCKED) & ~self._unusable).any(), "a usable GPU is held out of scheduling"
        assert not ((grid == -1) & self._unusable).any(), "a failed or cut-off GPU is offered to the scheduler"
        assert np.array_equal(self.alloc.free, (grid == -1).sum(axis=1)), "free counts disagree with owners"
        t = self.totals
        assert t.submitted == t.ended + len(self.running) + len(self.queue), "a job was lost"
