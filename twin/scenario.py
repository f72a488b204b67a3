"""Scenario files: a site and what runs on it, read from TOML and validated field by field.

Every field is checked on load; the first problem raises :class:`ScenarioError` naming the file, the
line (where it can be found) and the dotted field, and what was expected. The result is a tree of
small frozen dataclasses that the rest of the core reads and never changes.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.names import JOB_KINDS
from twin.parallel import MFU
from twin.presets import PRESETS

TOPOLOGY_KINDS = ("leaf-spine", "fat-tree", "rail-optimized")
ATTACH_TIERS = ("spine", "core", "leaf", "storage")  # storage: the storage fabric's spines
ARRIVALS = ("poisson", "none")  # none: jobs come only from submit() (traces, tests)

# Real-world maxima (the README's "Limits"). The largest site the project must support is about 100,000
# GPUs (12,500 servers of 8 GPUs, three switch tiers); these allow 2.6 times that. A site over any of the
# four site maxima is refused from the numbers alone, before anything is allocated.
MAX_GPUS = 262_144
MAX_SERVERS = 32_768
MAX_SWITCHES = 16_384
MAX_CABLES = 1_000_000
MAX_RADIX = 8_192  # ports on one switch (the biggest director switches have about 2,000)
MAX_PORT_GBPS = 3_200.0  # one port or NIC: 1.6 Tb/s is shipping, 3.2 Tb/s is next
MAX_HOURS = 8_784.0  # a leap year of simulated time
MAX_SECONDS = MAX_HOURS * 3600.0
MAX_MINUTES = MAX_HOURS * 60.0
MAX_SEED = 2**32 - 1
MAX_TOML_BYTES = 1 << 20  # a scenario or playlist file (the largest shipped one is 6 KiB)
MIN_MTBF_HOURS = 1.0  # per component; 0 means never
MAX_MTBF_HOURS = 10_000_000.0
MAX_CHECKPOINT_MINUTES = 10_080.0  # a week


def fault_setting_problem(key: str, value: float) -> str:
    """What is wrong with a random-fault setting (``node_mtbf_hours``, ``link_repair_minutes``, ...) or a
    checkpoint interval, or "" if it is fine. Shared by scenario files and ``compare`` sweeps."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return f"a number, got {value!r}"
    if key.endswith("_mtbf_hours"):
        if value != 0 and not MIN_MTBF_HOURS <= value <= MAX_MTBF_HOURS:
            return f"0 (never) or {MIN_MTBF_HOURS:g} to {MAX_MTBF_HOURS:,.0f} hours, got {value:g}"
    elif key.endswith("_repair_minutes"):
        if not 0 < value <= MAX_MINUTES:
            return f"more than 0 and at most {MAX_MINUTES:,.0f} minutes, got {value:g}"
    elif key == "checkpoint_minutes":
        if not 0 <= value <= MAX_CHECKPOINT_MINUTES:
            return f"0 (none) to {MAX_CHECKPOINT_MINUTES:,.0f} minutes, got {value:g}"
    else:
        return f"a known setting, got {key!r}"
    return ""


# A GPU waiting on NCCL or storage runs polling and copy kernels at low occupancy: an assumption (no
# published per-phase figure), kept in one place and overridable per scenario with ``gpu.wait_watts``.
WAIT_SHARE = 0.3


@dataclass(frozen=True)
class Site:
    name: str
    blurb: str


@dataclass(frozen=True)
class GpuModel:
    """A GPU: dense FP16/BF16 peak, memory, and what it draws idle, waiting on communication and computing."""

    model: str
    peak_tflops: float
    idle_watts: float
    max_watts: float
    memory_gb: float = 80.0
    wait_watts: float = -1.0  # allocated but waiting (communication, I/O); < 0: idle + WAIT_SHARE of the range

    @property
    def waiting_watts(self) -> float:
        if self.wait_watts >= 0:
            return self.wait_watts
        return self.idle_watts + WAIT_SHARE * (self.max_watts - self.idle_watts)


@dataclass(frozen=True)
class NodeSpec:
    gpus: int
    nics: int
    nic_gbps: float
    overhead_watts: float


@dataclass(frozen=True)
class TopologySpec:
    """The fabric. ``racks`` x ``nodes_per_rack`` servers; the kind decides how they are wired.

    leaf-spine: one top-of-rack leaf per rack, ``spines`` spines, uplinks = downlinks / oversubscription.
    rail-optimized: units of ``nodes_per_unit`` nodes; NIC i of every node in a unit goes to leaf i of
    the unit; each rail has its own ``spines`` spines. fat-tree: k-ary three-tier (edge, aggregation,
    core), one rack per edge switch.

    Three tiers on leaf-spine and rail-optimized sites (``cores`` > 0), as large sites are built from
    switches of a real radix: the leaves (of each rail) are grouped into pods of ``leaves_per_pod``, each
    pod has its own ``spines`` spines (per rail), and ``cores`` core switches (per rail) join the pods, in
    one group per spine index: spine s of every pod spreads its uplinks (its downlinks over
    ``spine_oversubscription``) over core group s.
    """

    kind: str
    racks: int
    nodes_per_rack: int
    spines: int
    oversubscription: float
    leaf_radix: int
    spine_radix: int
    port_gbps: float
    nodes_per_unit: int
    k: int
    cores: int = 0  # three tiers: core switches (per rail on rail-optimized); 0: two tiers (fat-tree: k's)
    leaves_per_pod: int = 0  # three tiers: leaves of one rail under one pod's spines
    core_radix: int = 0  # ports per core switch; 0: spine_radix
    spine_oversubscription: float = 1.0  # three tiers: spine down:up bandwidth

    @property
    def tiers(self) -> int:
        return 3 if self.kind == "fat-tree" or self.cores else 2

    @property
    def core_ports(self) -> int:
        """Ports per core switch."""
        return self.core_radix or self.spine_radix


@dataclass(frozen=True)
class StorageSpec:
    name: str
    capacity_pb: float
    read_gbs: float
    write_gbs: float
    ports: int
    attach: str


@dataclass(frozen=True)
class JobClass:
    """One kind of job in the mix: how often it comes, how big and long it is, what traffic it makes."""

    kind: str
    share: float
    gpus: tuple[int, int]
    median_hours: float
    sigma: float
    params_b: tuple[float, float]
    tokens_per_gpu: float  # a training step's global batch, in tokens per GPU of the job
    overlap: float  # share of a step's communication hidden behind compute (0: none)
    read_mbs_per_gpu: float
    checkpoint_minutes: float
    serve_mbs_per_gpu: float


@dataclass(frozen=True)
class WorkloadSpec:
    arrival: str
    jobs_per_hour: float  # 0 with a preset: the preset's rate, scaled to the site's GPUs
    initial_load: float
    estimate_factor: tuple[float, float]
    mix: tuple[JobClass, ...]
    preset: str = ""  # helios-<cluster>: sizes, run times and outcomes calibrated on Helios
    daily_rhythm: float = 0.0  # arrival-rate swing over a day, 0 (flat) to 1
    mfu: tuple[tuple[str, float], ...] = ()  # (kind, model FLOPs utilisation while computing) overrides

    def mfu_of(self, kind: str) -> float:
        """A kind's MFU: the scenario's ``[workload.mfu]`` if it sets one, else the documented default."""
        return dict(self.mfu).get(kind, MFU.get(kind, 0.3))


@dataclass(frozen=True)
class SchedulerSpec:
    policy: str
    backfill_depth: int


@dataclass(frozen=True)
class PowerSpec:
    pue: float
    switch_watts: float
    storage_watts: float


@dataclass(frozen=True)
class SimulationSpec:
    seed: int
    step_s: float
    hours: float


@dataclass(frozen=True)
class FaultEvent:
    """A scripted fault: at ``at_s`` the named component fails (or a storage array degrades to
    ``factor`` of its bandwidth) for ``minutes`` (0: for good)."""

    at_s: float
    target: str  # a component name (node-0003, leaf-002, spine-01, pfs-0) or a cable "leaf-002--spine-01"
    action: str  # fail | degrade
    minutes: float
    factor: float
    gpu: int  # with a server target: only this GPU fails (-1: the whole server)
    where: str  # "line N: faults.event[i].target", for errors about the name


@dataclass(frozen=True)
class RandomFaults:
    """Mean time between failures per component (hours; 0: never) and repair times (minutes)."""

    gpu_mtbf_hours: float = 0.0
    node_mtbf_hours: float = 0.0
    link_mtbf_hours: float = 0.0
    switch_mtbf_hours: float = 0.0
    storage_mtbf_hours: float = 0.0
    gpu_repair_minutes: float = 120.0
    node_repair_minutes: float = 60.0
    link_repair_minutes: float = 30.0
    switch_repair_minutes: float = 45.0
    storage_repair_minutes: float = 90.0


@dataclass(frozen=True)
class FaultSpec:
    events: tuple[FaultEvent, ...] = ()
    random: RandomFaults = RandomFaults()
    max_retries: int = 3  # a job hit by faults more often than this fails for good

    @property
    def any(self) -> bool:
        r = self.random
        rates = (r.gpu_mtbf_hours, r.node_mtbf_hours, r.link_mtbf_hours, r.switch_mtbf_hours, r.storage_mtbf_hours)
        return bool(self.events) or any(rates)


@dataclass(frozen=True)
class Scenario:
    source: str
    site: Site
    topology: TopologySpec
    node: NodeSpec
    gpu: GpuModel
    storage: tuple[StorageSpec, ...]
    workload: WorkloadSpec
    scheduler: SchedulerSpec
    power: PowerSpec
    simulation: SimulationSpec
    faults: FaultSpec = FaultSpec()
    storage_fabric: StorageFabricSpec | None = None  # a storage network of its own (None: arrays on the compute fabric)

    @property
    def nodes(self) -> int:
        return self.topology.racks * self.topology.nodes_per_rack

    @property
    def gpus(self) -> int:
        return self.nodes * self.node.gpus

    @property
    def peak_pflops(self) -> float:
        return self.gpus * self.gpu.peak_tflops / 1000.0

    @property
    def leaf_downlinks(self) -> int:
        """Server-facing ports on one leaf (a rack's ToR, or one rail leaf of a unit)."""
        topo = self.topology
        if topo.kind == "rail-optimized":
            return topo.nodes_per_unit
        return topo.nodes_per_rack * self.node.nics

    @property
    def leaf_uplinks(self) -> int:
        """Spine-facing ports on one leaf: downlink bandwidth over the oversubscription ratio."""
        topo = self.topology
        per_port = self.node.nic_gbps
        down_gbps = self.leaf_downlinks * per_port
        return math.ceil(down_gbps / topo.oversubscription / topo.port_gbps - 1e-9)

    @property
    def spine_uplinks(self) -> tuple[int, ...]:
        """Three tiers: core-facing ports of spine s of a pod, for each s (its leaves' cables to it over
        spine_oversubscription; a leaf's uplinks are spread over its pod's spines as evenly as they go).
        Empty with two tiers."""
        topo = self.topology
        if not topo.cores or topo.kind == "fat-tree":
            return ()
        base, extra = divmod(self.leaf_uplinks, topo.spines)
        downs = [topo.leaves_per_pod * (base + (1 if s < extra else 0)) for s in range(topo.spines)]
        return tuple(math.ceil(d / topo.spine_oversubscription - 1e-9) for d in downs)


# --- reading -------------------------------------------------------------------------------------


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """A TOML file's data and text (the text lets errors name lines); ScenarioError if it cannot be read.
    Only a regular file of at most MAX_TOML_BYTES is read (a FIFO or a device would never end)."""
    from twin.outputs import read_input_text

    source = str(path)
    text = read_input_text(path, MAX_TOML_BYTES)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(source, _toml_where(str(err)), f"not valid TOML ({_toml_what(str(err))})") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError on any problem."""
    data, text = read_toml(path)
    return scenario_from_dict(data, source=str(path), text=text)


def scenario_from_dict(data: dict[str, Any], source: str = "<scenario>", text: str | None = None) -> Scenario:
    """Validate an already-parsed scenario (tests build small sites this way)."""
    root = Table(data, "", Locator(source, text))
    scenario = Scenario(
        source=source,
        site=_site(root.table("site")),
        topology=_topology(root.table("topology")),
        node=_node(root.table("node")),
        gpu=_gpu(root.table("gpu")),
        storage=tuple(_storage(t) for t in root.tables("storage", min_count=1, max_count=256)),
        workload=_workload(root.table("workload")),
        scheduler=_scheduler(root.table("scheduler", optional=True)),
        power=_power(root.table("power", optional=True)),
        simulation=_simulation(root.table("simulation", optional=True)),
        faults=_faults(root.table("faults", optional=True)),
        storage_fabric=_storage_fabric(root),
    )
    root.done()
    _check_size(scenario, root)
    _check_wiring(scenario, root)
    _check_storage_fabric(scenario, root)
    from twin.site import check_ports  # here: twin.site reads scenarios

    # Every port: servers, uplinks, storage, gateway; and the storage network's.
    check_ports(scenario, root.table("topology").fail, root.table("storage_fabric", optional=True).fail)
    return scenario


def _site(t: Table) -> Site:
    s = Site(name=t.str("name"), blurb=t.str("blurb", default=""))
    t.done()
    return s


def _topology(t: Table) -> TopologySpec:
    kind = t.str("kind", choices=TOPOLOGY_KINDS)
    fat = kind == "fat-tree"
    k = t.int("k", minimum=2, maximum=128) if fat else t.int("k", minimum=0, maximum=128, default=0)
    if fat and k % 2:
        t.fail("k", f"an even number of switch ports, got {k}")
    spec = TopologySpec(
        kind=kind,
        racks=t.int("racks", minimum=1, maximum=MAX_SERVERS, default=(k * k // 2) if fat else None),
        nodes_per_rack=t.int("nodes_per_rack", minimum=1, maximum=128, default=(k // 2) if fat else None),
        spines=t.int("spines", minimum=1, maximum=4096, default=(k * k // 4) if fat else None),
        oversubscription=t.float("oversubscription", minimum=1.0, maximum=64.0, default=1.0),
        leaf_radix=t.int("leaf_radix", minimum=2, maximum=MAX_RADIX, default=k if fat else None),
        spine_radix=t.int("spine_radix", minimum=2, maximum=MAX_RADIX, default=k if fat else None),
        port_gbps=t.float("port_gbps", minimum=1.0, maximum=MAX_PORT_GBPS),
        nodes_per_unit=t.int(
            "nodes_per_unit", minimum=1, maximum=4096, default=1 if kind != "rail-optimized" else None
        ),
        k=k,
        **_core_tier(t, fat),
    )
    t.done()
    return spec


def _core_tier(t: Table, fat: bool) -> dict[str, Any]:
    """The third tier's fields: ``cores`` and ``leaves_per_pod`` together (never on a fat-tree, whose k
    sets its cores), ``core_radix`` wherever there are cores."""
    cores = 0 if fat else t.int("cores", minimum=0, maximum=MAX_SWITCHES, default=0)
    for key in ("cores", "leaves_per_pod", "spine_oversubscription") if fat else ():
        if t.maybe(key) is not None:
            t.fail(key, f"no {key} on a fat-tree (k sets its core tier)")
    if not cores and not fat:
        for key in ("leaves_per_pod", "spine_oversubscription", "core_radix"):
            if t.maybe(key) is not None:
                t.fail(key, f"cores (a core tier) for {key} to apply")
    return {
        "cores": cores,
        "leaves_per_pod": t.int("leaves_per_pod", minimum=1, maximum=MAX_SWITCHES) if cores else 0,
        "core_radix": t.int("core_radix", minimum=2, maximum=MAX_RADIX) if t.maybe("core_radix") is not None else 0,
        "spine_oversubscription": t.float("spine_oversubscription", minimum=1.0, maximum=64.0, default=1.0)
        if cores
        else 1.0,
    }


def _node(t: Table) -> NodeSpec:
    s = NodeSpec(
        gpus=t.int("gpus", minimum=1, maximum=64),
        nics=t.int("nics", minimum=1, maximum=64),
        nic_gbps=t.float("nic_gbps", minimum=1.0, maximum=MAX_PORT_GBPS),
        overhead_watts=t.float("overhead_watts", minimum=0.0, maximum=100_000.0, default=1500.0),
    )
    t.done()
    return s


def _gpu(t: Table) -> GpuModel:
    g = GpuModel(
        model=t.str("model"),
        peak_tflops=t.float("peak_tflops", positive=True, maximum=100_000.0),
        idle_watts=t.float("idle_watts", minimum=0.0, maximum=10_000.0),
        max_watts=t.float("max_watts", positive=True, maximum=10_000.0),
        memory_gb=t.float("memory_gb", positive=True, maximum=100_000.0, default=80.0),
        wait_watts=t.float("wait_watts", minimum=0.0, maximum=10_000.0) if t.maybe("wait_watts") is not None else -1.0,
    )
    if g.max_watts < g.idle_watts:
        t.fail("max_watts", f"at least idle_watts ({g.idle_watts:g}), got {g.max_watts:g}")
    if g.wait_watts >= 0 and not g.idle_watts <= g.wait_watts <= g.max_watts:
        t.fail(
            "wait_watts",
            f"between idle_watts and max_watts ({g.idle_watts:g} to {g.max_watts:g}), got {g.wait_watts:g}",
        )
    t.done()
    return g


def _storage(t: Table) -> StorageSpec:
    s = StorageSpec(
        name=t.str("name"),
        capacity_pb=t.float("capacity_pb", positive=True, maximum=100_000.0),
        read_gbs=t.float("read_gbs", positive=True, maximum=100_000.0),
        write_gbs=t.float("write_gbs", positive=True, maximum=100_000.0),
        ports=t.int("ports", minimum=1, maximum=4096),
        attach=t.str("attach", choices=ATTACH_TIERS, default="spine"),
    )
    t.done()
    return s


def _job_class(t: Table) -> JobClass:
    kind = t.str("kind", choices=JOB_KINDS)
    if t.maybe("iteration_s") is not None:
        removed = "no iteration_s field (removed: a step's time follows from params_b, gpus and tokens_per_gpu)"
        t.fail("iteration_s", removed)
    gpus = t.pair("gpus", int, minimum=1, maximum=MAX_GPUS)
    jc = JobClass(
        kind=kind,
        share=t.float("share", positive=True, maximum=1e6),
        gpus=gpus,
        median_hours=t.float("median_hours", positive=True, maximum=MAX_HOURS),
        sigma=t.float("sigma", minimum=0.0, maximum=5.0, default=1.0),
        params_b=t.pair("params_b", float, minimum=0.001, maximum=100_000.0, default=(1.0, 1.0)),
        tokens_per_gpu=t.float("tokens_per_gpu", positive=True, maximum=1e9, default=2048.0),
        overlap=t.float("overlap", minimum=0.0, maximum=1.0, default=0.0),
        read_mbs_per_gpu=t.float("read_mbs_per_gpu", minimum=0.0, maximum=100_000.0, default=0.0),
        checkpoint_minutes=t.float("checkpoint_minutes", minimum=0.0, maximum=MAX_CHECKPOINT_MINUTES, default=0.0),
        serve_mbs_per_gpu=t.float("serve_mbs_per_gpu", minimum=0.0, maximum=100_000.0, default=0.0),
    )
    t.done()
    return jc


def _workload(t: Table) -> WorkloadSpec:
    arrival = t.str("arrival", choices=ARRIVALS, default="poisson")
    preset = t.str("preset", choices=PRESETS) if t.maybe("preset") is not None else ""
    rate_given = t.maybe("jobs_per_hour") is not None or not (preset or arrival == "none")
    w = WorkloadSpec(
        arrival=arrival,
        jobs_per_hour=t.float("jobs_per_hour", positive=True, maximum=100_000.0) if rate_given else 0.0,
        initial_load=t.float("initial_load", minimum=0.0, maximum=1.0, default=0.0),
        estimate_factor=t.pair("estimate_factor", float, minimum=1.0, maximum=100.0, default=(1.2, 3.0)),
        mix=tuple(_job_class(m) for m in t.tables("mix", min_count=0 if preset else 1, max_count=64)),
        preset=preset,
        daily_rhythm=t.float("daily_rhythm", minimum=0.0, maximum=1.0, default=0.4 if preset else 0.0),
        mfu=_mfu(t.table("mfu", optional=True)),
    )
    t.done()
    return w


def _mfu(t: Table) -> tuple[tuple[str, float], ...]:
    """``[workload.mfu]``: model FLOPs utilisation while computing, per job kind."""
    pairs = tuple((kind, t.float(kind, positive=True, maximum=1.0)) for kind in JOB_KINDS if t.maybe(kind) is not None)
    t.done()
    return pairs


def _policy_names() -> tuple[str, ...]:
    from twin.scheduler import POLICIES  # imported here: the scheduler needs the scenario's types

    return tuple(POLICIES)


def _scheduler(t: Table) -> SchedulerSpec:
    s = SchedulerSpec(
        policy=t.str("policy", choices=_policy_names(), default="topology"),
        backfill_depth=t.int("backfill_depth", minimum=1, maximum=10_000, default=64),
    )
    t.done()
    return s


def _power(t: Table) -> PowerSpec:
    p = PowerSpec(
        pue=t.float("pue", minimum=1.0, maximum=5.0, default=1.3),
        switch_watts=t.float("switch_watts", minimum=0.0, maximum=100_000.0, default=700.0),
        storage_watts=t.float("storage_watts", minimum=0.0, maximum=10_000_000.0, default=20000.0),
    )
    t.done()
    return p


def _clock(t: Table, key: str) -> float:
    """Seconds from a number of seconds or an "HH:MM" / "D+HH:MM" time since the start."""
    value = t.maybe(key)
    seconds = -1.0
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"(?:(\d{1,4})\+)?(\d{1,4}):(\d{2})", value.strip())
        if m and int(m.group(3)) < 60:
            seconds = int(m.group(1) or 0) * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60.0
    if not 0 <= seconds <= MAX_SECONDS:
        t.fail(
            key,
            f'seconds, or a time since the start like "02:00" or "1+06:30", up to {MAX_HOURS:,.0f} h, got {value!r}',
        )
    return seconds


def _fault_event(t: Table) -> FaultEvent:
    action = t.str("action", choices=("fail", "degrade"), default="fail")
    field = t._field("target")
    line = t.locator.line_of(field)
    e = FaultEvent(
        at_s=_clock(t, "at"),
        target=t.str("target"),
        action=action,
        minutes=t.float("minutes", minimum=0.0, maximum=MAX_MINUTES, default=0.0),
        factor=t.float("factor", minimum=0.0, maximum=1.0, default=0.5 if action == "degrade" else 0.0),
        gpu=t.int("gpu", minimum=0, maximum=63) if t.maybe("gpu") is not None else -1,
        where=f"line {line}: {field}" if line else field,
    )
    t.done()
    return e


def _faults(t: Table) -> FaultSpec:
    r = t.table("random", optional=True)
    kinds = ("gpu", "node", "link", "switch", "storage")
    defaults = RandomFaults()
    values: dict[str, float] = {}
    for k in kinds:
        for key in (f"{k}_mtbf_hours", f"{k}_repair_minutes"):
            value = r.float(key, minimum=0.0, maximum=MAX_MTBF_HOURS, default=getattr(defaults, key))
            problem = fault_setting_problem(key, value)
            if problem:
                r.fail(key, problem)
            values[key] = value
    r.done()
    spec = FaultSpec(
        events=tuple(_fault_event(e) for e in t.tables("event", max_count=10_000)),
        random=RandomFaults(**values),
        max_retries=t.int("max_retries", minimum=0, maximum=100, default=3),
    )
    t.done()
    return spec


def _simulation(t: Table) -> SimulationSpec:
    s = SimulationSpec(
        seed=t.int("seed", minimum=0, maximum=MAX_SEED, default=0),
        step_s=t.float("step_s", minimum=1.0, maximum=3600.0, default=10.0),
        hours=t.float("hours", positive=True, maximum=MAX_HOURS, default=24.0),
    )
    t.done()
    return s


def _check_wiring(s: Scenario, root: Table) -> None:
    """Can the servers be cabled to the switches as described? Port counts must add up."""
    topo, node = s.topology, s.node
    top = root.table("topology")
    if topo.kind != "fat-tree":
        down, up = s.leaf_downlinks, s.leaf_uplinks
        if topo.kind == "rail-optimized":
            if topo.nodes_per_unit % topo.nodes_per_rack:
                top.fail(
                    "nodes_per_unit", f"a multiple of nodes_per_rack ({topo.nodes_per_rack}), got {topo.nodes_per_unit}"
                )
            if s.nodes % topo.nodes_per_unit:
                top.fail("racks", f"{s.nodes} nodes to divide into units of {topo.nodes_per_unit} nodes")
        if down + up > topo.leaf_radix:
            top.fail(
                "leaf_radix",
                f"at least {down + up} ports: {down} server ports plus {up} uplinks at "
                f"{topo.oversubscription:g}:1, so the GPUs cannot be wired to {topo.leaf_radix}-port leaves",
            )
        leaves = topo.racks if topo.kind == "leaf-spine" else s.nodes // topo.nodes_per_unit
        if topo.cores:
            _check_core_tier(s, top, leaves)
            leaves = topo.leaves_per_pod  # a spine serves its pod's leaves
        need = leaves * math.ceil(up / topo.spines)
        if need > topo.spine_radix:
            top.fail(
                "spine_radix",
                f"at least {need} ports: {leaves} leaves x {math.ceil(up / topo.spines)} links each "
                f"cannot be wired to {topo.spine_radix}-port spines",
            )
    else:  # fat-tree
        k = topo.k
        if topo.racks != k * k // 2:
            top.fail("racks", f"{k * k // 2} racks (one per edge switch of a k={k} fat-tree), got {topo.racks}")
        if topo.nodes_per_rack * node.nics != k // 2:
            top.fail(
                "nodes_per_rack",
                f"nodes x NICs = {k // 2} edge-switch down ports for k={k}, got {topo.nodes_per_rack} x {node.nics}",
            )
    if node.nics * node.nic_gbps > 0 and topo.kind != "leaf-spine" and node.nic_gbps > topo.port_gbps:
        root.table("node").fail("nic_gbps", f"at most the switch port speed ({topo.port_gbps:g} Gb/s)")
    for i, st in enumerate(s.storage):
        if st.attach == "core" and topo.tiers == 2:
            root.tables("storage")[i].fail("attach", f"'spine' or 'leaf' ({topo.kind} has no core tier)")
    for i, jc in enumerate(s.workload.mix):
        mix = root.table("workload").tables("mix")[i]
        lo, hi = jc.gpus
        if hi > s.gpus:
            mix.fail("gpus", f"at most the site's {s.gpus} GPUs, got {hi}")
        if lo > node.gpus and lo % node.gpus:
            mix.fail("gpus", f"multi-node sizes in whole nodes (multiples of {node.gpus}), got {lo}")


def _check_core_tier(s: Scenario, top: Table, leaves: int) -> None:
    """Three tiers: pods divide the leaves of a rail, every spine takes a cable from each of its pod's
    leaves, and cores form one group per spine of a pod, each core reached by every spine of its group."""
    topo = s.topology
    if leaves % topo.leaves_per_pod:
        top.fail("leaves_per_pod", f"a divisor of the {leaves:,} leaves of a rail, got {topo.leaves_per_pod:,}")
    if s.leaf_uplinks < topo.spines:
        top.fail("spines", f"at most a leaf's {s.leaf_uplinks} uplinks (one to each spine of its pod)")
    if topo.cores % topo.spines:
        top.fail("cores", f"a multiple of spines ({topo.spines}: a core group per spine of a pod), got {topo.cores:,}")
    group, fewest = topo.cores // topo.spines, min(s.spine_uplinks)
    if group > fewest:
        top.fail(
            "cores", f"at most {topo.spines * fewest:,} (a spine has {fewest} uplinks, one to each core of its group)"
        )


@dataclass(frozen=True)
class SiteSize:
    """What a site will hold, from the numbers alone (equal to what ``build_fabric`` builds)."""

    servers: int
    gpus: int
    switches: int
    cables: int  # graph edges: host, fabric, storage and gateway cables (parallel ones merged)


def site_size(s: Scenario) -> SiteSize:
    """Count servers, GPUs, switches and cables without building anything, so an oversized site can be
    refused before memory is allocated, and ``validate`` can describe any site at once."""
    topo, node = s.topology, s.node
    servers = s.nodes
    if topo.kind == "fat-tree":
        half = topo.k // 2
        cores, aggs, edges = half * half, topo.k * half, topo.k * half
        switches = cores + aggs + edges
        fabric = edges * half + aggs * half
        host = servers
        targets = {"core": cores, "spine": aggs, "leaf": edges}
        gateway = cores
    else:
        rails = node.nics if topo.kind == "rail-optimized" else 1
        leaves = topo.racks if topo.kind == "leaf-spine" else (servers // topo.nodes_per_unit) * rails
        pods = leaves // rails // topo.leaves_per_pod if topo.cores else 1
        spines = topo.spines * rails * pods
        cores = topo.cores * rails
        switches = leaves + spines + cores
        host = servers * rails
        fabric = leaves * min(s.leaf_uplinks, topo.spines)
        group = topo.cores // topo.spines
        fabric += rails * pods * sum(min(up, group) for up in s.spine_uplinks)  # spine to core
        targets = {"spine": spines, "leaf": leaves, "core": cores}
        gateway = topo.spines * rails if topo.cores else spines  # with cores: the first core of each group
    storage = sum(min(st.ports, targets.get(st.attach) or 0) for st in s.storage)
    sf_switches, sf_cables = storage_fabric_size(s)
    return SiteSize(servers, servers * node.gpus, switches + sf_switches, host + fabric + gateway + storage + sf_cables)


def _check_size(s: Scenario, root: Table) -> None:
    """Refuse a site larger than the stated maxima, naming the field that sizes it."""
    size = site_size(s)
    over = [
        (what, value, limit)
        for what, value, limit in (
            ("GPUs", size.gpus, MAX_GPUS),
            ("servers", size.servers, MAX_SERVERS),
            ("switches", size.switches, MAX_SWITCHES),
            ("cables", size.cables, MAX_CABLES),
        )
        if value > limit
    ]
    if over:
        what, value, limit = over[0]
        field = "k" if s.topology.kind == "fat-tree" else "racks"
        root.table("topology").fail(
            field,
            f"a site of at most {MAX_GPUS:,} GPUs, {MAX_SERVERS:,} servers, {MAX_SWITCHES:,} switches and "
            f"{MAX_CABLES:,} cables; this one has {value:,} {what} (more than {limit:,})",
        )


# --- the storage network ------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageFabricSpec:
    """A storage network of its own, as in a DGX SuperPOD: every server has ``nics`` storage NICs (all
    cabled to its storage leaf, one leaf per ``servers_per_leaf`` servers), each leaf spreads its uplinks
    (downlinks over ``oversubscription``) over the ``spines`` storage spines, and the arrays
    (``attach = "storage"``) spread their ports over the spines. The compute fabric then carries compute
    traffic only."""

    nics: int  # storage NICs per server
    nic_gbps: float
    servers_per_leaf: int
    spines: int
    leaf_radix: int
    spine_radix: int
    port_gbps: float  # leaf-to-spine and array cables
    oversubscription: float = 1.0  # a storage leaf's down:up bandwidth

    def leaves(self, servers: int) -> int:
        return servers // self.servers_per_leaf

    @property
    def leaf_downlinks(self) -> int:
        return self.servers_per_leaf * self.nics

    @property
    def leaf_uplinks(self) -> int:
        down_gbps = self.leaf_downlinks * self.nic_gbps
        return math.ceil(down_gbps / self.oversubscription / self.port_gbps - 1e-9)


def _storage_fabric(root: Table) -> StorageFabricSpec | None:
    if root.maybe("storage_fabric") is None:
        return None
    t = root.table("storage_fabric")
    nic_gbps = t.float("nic_gbps", positive=True, maximum=MAX_PORT_GBPS)
    sf = StorageFabricSpec(
        nics=t.int("nics", minimum=1, maximum=64),
        nic_gbps=nic_gbps,
        servers_per_leaf=t.int("servers_per_leaf", minimum=1, maximum=MAX_RADIX),
        spines=t.int("spines", minimum=1, maximum=4096),
        leaf_radix=t.int("leaf_radix", minimum=2, maximum=MAX_RADIX),
        spine_radix=t.int("spine_radix", minimum=2, maximum=MAX_RADIX),
        port_gbps=t.float("port_gbps", positive=True, maximum=MAX_PORT_GBPS, default=nic_gbps),
        oversubscription=t.float("oversubscription", minimum=1.0, maximum=64.0, default=1.0),
    )
    t.done()
    return sf


def _check_storage_fabric(s: Scenario, root: Table) -> None:
    """Arrays go on the storage network when there is one (all of them: files are striped over every
    array), and only then; servers fill whole storage leaves; each leaf reaches every spine."""
    sf = s.storage_fabric
    for i, st in enumerate(s.storage):
        if (st.attach == "storage") != (sf is not None):
            where = "'storage' (the site has a [storage_fabric])" if sf else "'spine', 'leaf' or 'core'"
            root.tables("storage")[i].fail("attach", where if sf else f"{where} (no [storage_fabric])")
    if sf is None:
        return
    t = root.table("storage_fabric")
    if s.nodes % sf.servers_per_leaf:
        t.fail("servers_per_leaf", f"a divisor of the site's {s.nodes:,} servers, got {sf.servers_per_leaf:,}")
    if sf.leaf_uplinks < sf.spines or sf.leaf_uplinks % sf.spines:
        # Striped traffic spreads evenly over the spines: so must each leaf's cables.
        t.fail(
            "spines",
            f"a divisor of a storage leaf's {sf.leaf_uplinks} uplinks (as many to each spine), got {sf.spines:,}",
        )
    if sf.nic_gbps > sf.port_gbps:
        t.fail("nic_gbps", f"at most the storage switches' port speed ({sf.port_gbps:g} Gb/s), got {sf.nic_gbps:g}")


def storage_fabric_size(s: Scenario) -> tuple[int, int]:
    """Switches and graph edges (parallel cables merged) of the storage network; (0, 0) without one."""
    sf = s.storage_fabric
    if sf is None:
        return 0, 0
    leaves = sf.leaves(s.nodes)
    arrays = sum(min(st.ports, sf.spines) for st in s.storage if st.attach == "storage")
    return leaves + sf.spines, s.nodes + leaves * min(sf.leaf_uplinks, sf.spines) + arrays


# --- a small validating reader -------------------------------------------------------------------

_MISSING = object()


class Locator:
    """Finds the line of a dotted field in the TOML text, so errors can say where to look. The table
    headers are indexed once, so each look-up reads only its own table's lines."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.lines = text.splitlines() if text else []
        self._heads: list[tuple[int, str]] = []  # (line index, header name)
        for i, raw in enumerate(self.lines):
            m = re.match(r"^\s*\[\[?\s*([\w.-]+)\s*\]\]?", raw)
            if m:
                self._heads.append((i, m.group(1)))
        self._by_name: dict[str, list[int]] = {}
        for k, (_, name) in enumerate(self._heads):
            self._by_name.setdefault(name, []).append(k)

    def _section(self, k: int) -> range:
        """Lines after header k up to the next header (k = -1: the lines before the first header)."""
        first = self._heads[k][0] + 1 if k >= 0 else 0
        last = self._heads[k + 1][0] if k + 1 < len(self._heads) else len(self.lines)
        return range(first, last)

    def line_of(self, path: str) -> int | None:
        if not self.lines:
            return None
        parts = [(name, int(idx) if idx else None) for name, idx in re.findall(r"([\w-]+)(?:\[(\d+)\])?", path)]
        if not parts:
            return None
        *heads, (key, _) = parts
        if heads:
            header = ".".join(name for name, _ in heads)
            wanted = heads[-1][1]
            found = self._by_name.get(header, [])
            sections = found if wanted is None else found[wanted : wanted + 1]
        else:
            sections = [-1]
        pattern = re.compile(rf"^{re.escape(key)}\s*=")
        for k in sections:
            for i in self._section(k):
                if pattern.match(self.lines[i].strip()):
                    return i + 1
        return None


class Table:
    """One TOML table being read; tracks which keys were used so unknown ones are reported."""

    def __init__(self, data: Any, path: str, locator: Locator) -> None:
        self.path = path
        self.locator = locator
        if not isinstance(data, dict):
            self.fail("", f"a table, got {_kind(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (self.path or key)

    def fail(self, key: str, expected: str) -> None:
        field = self._field(key)
        line = self.locator.line_of(field) if key else None
        where = f"line {line}: {field}" if line else field
        raise ScenarioError(self.locator.source, where, f"expected {expected}")

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING or default is None:
            self.fail(key, "this field (missing)")
        return default

    def maybe(self, key: str) -> Any:
        """The raw value of an optional field, or None when it is absent."""
        self.used.add(key)
        return self.data.get(key)

    def str(self, key: str, choices: tuple[str, ...] | None = None, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            self.fail(key, f"a string, got {_kind(value)}")
        if choices and value not in choices:
            self.fail(key, f"one of {', '.join(choices)}, got {value!r}")
        return value

    def int(self, key: str, minimum: int, maximum: int, default: Any = _MISSING) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"a whole number, got {_kind(value)}")
        if value < minimum:
            self.fail(key, f"a whole number of at least {minimum}, got {value}")
        if value > maximum:
            self.fail(key, f"a whole number of at most {maximum:,}, got {value:,}")
        return value

    def float(
        self,
        key: str,
        *,
        maximum: float,
        minimum: float | None = None,
        positive: bool = False,
        default: Any = _MISSING,
    ) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, f"a number, got {_kind(value)}")
        if positive and value <= 0:
            self.fail(key, f"a positive number, got {value:g}")
        if minimum is not None and value < minimum:
            self.fail(key, f"a number of at least {minimum:g}, got {value:g}")
        if value > maximum:
            self.fail(key, f"a number of at most {maximum:,g}, got {value:g}")
        return float(value)

    def pair(self, key: str, typ: type, minimum: float, maximum: float, default: Any = _MISSING) -> tuple[Any, Any]:
        """A [low, high] range; a single number means low == high."""
        value = self._get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value, value]
        if isinstance(value, tuple):
            value = list(value)
        name = "whole numbers" if typ is int else "numbers"
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(
            not isinstance(v, bool)
            and (isinstance(v, int) if typ is int else isinstance(v, int | float))
            and math.isfinite(v)
            for v in value
        )
        if not ok:
            self.fail(key, f"a [low, high] pair of {name}, got {_kind(value)}")
        lo, hi = typ(value[0]), typ(value[1])
        if lo < minimum:
            self.fail(key, f"values of at least {minimum:g}, got {lo:g}")
        if hi > maximum:
            self.fail(key, f"values of at most {maximum:,g}, got {hi:g}")
        if hi < lo:
            self.fail(key, f"low <= high, got [{lo:g}, {hi:g}]")
        return lo, hi

    def table(self, key: str, optional: bool = False) -> Table:
        value = self._get(key, {} if optional else _MISSING)
        return Table(value, self._field(key), self.locator)

    def tables(self, key: str, min_count: int = 0, max_count: int = 1000) -> list[Table]:
        value = self._get(key, [] if min_count == 0 else _MISSING)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"an array of tables ([[{self._field(key)}]]), got {_kind(value)}")
        if len(value) < min_count:
            self.fail(key, f"at least {min_count} [[{self._field(key)}]] table(s)")
        if len(value) > max_count:
            self.fail(key, f"at most {max_count:,} [[{self._field(key)}]] tables, got {len(value):,}")
        return [Table(v, f"{self._field(key)}[{i}]", self.locator) for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            self.fail(unknown[0], f"a known field ({known}); {unknown[0]!r} is not one")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value:g})"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _toml_where(message: str) -> str:
    m = re.search(r"line (\d+)", message)
    return f"line {m.group(1)}" if m else ""


def _toml_what(message: str) -> str:
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", message).strip() or "syntax error"
