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
from twin.presets import PRESETS

TOPOLOGY_KINDS = ("leaf-spine", "fat-tree", "rail-optimized")
JOB_KINDS = ("pretrain", "finetune", "research", "eval", "inference")
POLICIES = ("fifo", "backfill", "topology")
ATTACH_TIERS = ("spine", "core", "leaf")
ARRIVALS = ("poisson", "none")  # none: jobs come only from submit() (traces, tests)


@dataclass(frozen=True)
class Site:
    name: str
    blurb: str


@dataclass(frozen=True)
class GpuModel:
    model: str
    peak_tflops: float
    idle_watts: float
    max_watts: float


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
    iteration_s: float
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


# --- reading -------------------------------------------------------------------------------------


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """A TOML file's data and text (the text lets errors name lines); ScenarioError if it cannot be read."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(source, "", f"cannot be read as UTF-8 text ({err.__class__.__name__})") from None
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
    root = _Table(data, "", _Locator(source, text))
    scenario = Scenario(
        source=source,
        site=_site(root.table("site")),
        topology=_topology(root.table("topology")),
        node=_node(root.table("node")),
        gpu=_gpu(root.table("gpu")),
        storage=tuple(_storage(t) for t in root.tables("storage", min_count=1)),
        workload=_workload(root.table("workload")),
        scheduler=_scheduler(root.table("scheduler", optional=True)),
        power=_power(root.table("power", optional=True)),
        simulation=_simulation(root.table("simulation", optional=True)),
        faults=_faults(root.table("faults", optional=True)),
    )
    root.done()
    _check_wiring(scenario, root)
    return scenario


def _site(t: _Table) -> Site:
    s = Site(name=t.str("name"), blurb=t.str("blurb", default=""))
    t.done()
    return s


def _topology(t: _Table) -> TopologySpec:
    kind = t.str("kind", choices=TOPOLOGY_KINDS)
    fat = kind == "fat-tree"
    k = t.int("k", minimum=2) if fat else t.int("k", minimum=0, default=0)
    if fat and k % 2:
        t.fail("k", f"an even number of switch ports, got {k}")
    spec = TopologySpec(
        kind=kind,
        racks=t.int("racks", minimum=1, default=(k * k // 2) if fat else None),
        nodes_per_rack=t.int("nodes_per_rack", minimum=1, default=(k // 2) if fat else None),
        spines=t.int("spines", minimum=1, default=(k * k // 4) if fat else None),
        oversubscription=t.float("oversubscription", minimum=1.0, default=1.0),
        leaf_radix=t.int("leaf_radix", minimum=2, default=k if fat else None),
        spine_radix=t.int("spine_radix", minimum=2, default=k if fat else None),
        port_gbps=t.float("port_gbps", positive=True),
        nodes_per_unit=t.int("nodes_per_unit", minimum=1, default=1 if kind != "rail-optimized" else None),
        k=k,
    )
    t.done()
    return spec


def _node(t: _Table) -> NodeSpec:
    s = NodeSpec(
        gpus=t.int("gpus", minimum=1),
        nics=t.int("nics", minimum=1),
        nic_gbps=t.float("nic_gbps", positive=True),
        overhead_watts=t.float("overhead_watts", minimum=0.0, default=1500.0),
    )
    t.done()
    return s


def _gpu(t: _Table) -> GpuModel:
    g = GpuModel(
        model=t.str("model"),
        peak_tflops=t.float("peak_tflops", positive=True),
        idle_watts=t.float("idle_watts", minimum=0.0),
        max_watts=t.float("max_watts", positive=True),
    )
    if g.max_watts < g.idle_watts:
        t.fail("max_watts", f"at least idle_watts ({g.idle_watts:g}), got {g.max_watts:g}")
    t.done()
    return g


def _storage(t: _Table) -> StorageSpec:
    s = StorageSpec(
        name=t.str("name"),
        capacity_pb=t.float("capacity_pb", positive=True),
        read_gbs=t.float("read_gbs", positive=True),
        write_gbs=t.float("write_gbs", positive=True),
        ports=t.int("ports", minimum=1),
        attach=t.str("attach", choices=ATTACH_TIERS, default="spine"),
    )
    t.done()
    return s


def _job_class(t: _Table) -> JobClass:
    kind = t.str("kind", choices=JOB_KINDS)
    gpus = t.pair("gpus", int, minimum=1)
    jc = JobClass(
        kind=kind,
        share=t.float("share", positive=True),
        gpus=gpus,
        median_hours=t.float("median_hours", positive=True),
        sigma=t.float("sigma", minimum=0.0, default=1.0),
        params_b=t.pair("params_b", float, minimum=0.001, default=(1.0, 1.0)),
        iteration_s=t.float("iteration_s", positive=True, default=2.0),
        read_mbs_per_gpu=t.float("read_mbs_per_gpu", minimum=0.0, default=0.0),
        checkpoint_minutes=t.float("checkpoint_minutes", minimum=0.0, default=0.0),
        serve_mbs_per_gpu=t.float("serve_mbs_per_gpu", minimum=0.0, default=0.0),
    )
    t.done()
    return jc


def _workload(t: _Table) -> WorkloadSpec:
    arrival = t.str("arrival", choices=ARRIVALS, default="poisson")
    preset = t.str("preset", choices=PRESETS) if t.maybe("preset") is not None else ""
    rate_given = t.maybe("jobs_per_hour") is not None or not (preset or arrival == "none")
    w = WorkloadSpec(
        arrival=arrival,
        jobs_per_hour=t.float("jobs_per_hour", positive=True) if rate_given else 0.0,
        initial_load=t.float("initial_load", minimum=0.0, maximum=1.0, default=0.0),
        estimate_factor=t.pair("estimate_factor", float, minimum=1.0, default=(1.2, 3.0)),
        mix=tuple(_job_class(m) for m in t.tables("mix", min_count=0 if preset else 1)),
        preset=preset,
        daily_rhythm=t.float("daily_rhythm", minimum=0.0, maximum=1.0, default=0.4 if preset else 0.0),
    )
    t.done()
    return w


def _scheduler(t: _Table) -> SchedulerSpec:
    s = SchedulerSpec(
        policy=t.str("policy", choices=POLICIES, default="topology"),
        backfill_depth=t.int("backfill_depth", minimum=1, default=64),
    )
    t.done()
    return s


def _power(t: _Table) -> PowerSpec:
    p = PowerSpec(
        pue=t.float("pue", minimum=1.0, default=1.3),
        switch_watts=t.float("switch_watts", minimum=0.0, default=700.0),
        storage_watts=t.float("storage_watts", minimum=0.0, default=20000.0),
    )
    t.done()
    return p


def _clock(t: _Table, key: str) -> float:
    """Seconds from a number of seconds or an "HH:MM" / "D+HH:MM" time since the start."""
    value = t.maybe(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"(?:(\d+)\+)?(\d{1,3}):(\d{2})", value.strip())
        if m and int(m.group(3)) < 60:
            return int(m.group(1) or 0) * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60.0
    t.fail(key, f'seconds, or a time since the start like "02:00" or "1+06:30", got {value!r}')
    return 0.0


def _fault_event(t: _Table) -> FaultEvent:
    action = t.str("action", choices=("fail", "degrade"), default="fail")
    field = t._field("target")
    line = t.locator.line_of(field)
    e = FaultEvent(
        at_s=_clock(t, "at"),
        target=t.str("target"),
        action=action,
        minutes=t.float("minutes", minimum=0.0, default=0.0),
        factor=t.float("factor", minimum=0.0, maximum=1.0, default=0.5 if action == "degrade" else 0.0),
        gpu=t.int("gpu", minimum=0) if t.maybe("gpu") is not None else -1,
        where=f"line {line}: {field}" if line else field,
    )
    t.done()
    return e


def _faults(t: _Table) -> FaultSpec:
    r = t.table("random", optional=True)
    kinds = ("gpu", "node", "link", "switch", "storage")
    defaults = RandomFaults()
    values: dict[str, float] = {}
    for k in kinds:
        values[f"{k}_mtbf_hours"] = r.float(f"{k}_mtbf_hours", minimum=0.0, default=0.0)
        values[f"{k}_repair_minutes"] = r.float(
            f"{k}_repair_minutes", positive=True, default=getattr(defaults, f"{k}_repair_minutes")
        )
    r.done()
    spec = FaultSpec(
        events=tuple(_fault_event(e) for e in t.tables("event")),
        random=RandomFaults(**values),
        max_retries=t.int("max_retries", minimum=0, default=3),
    )
    t.done()
    return spec


def _simulation(t: _Table) -> SimulationSpec:
    s = SimulationSpec(
        seed=t.int("seed", minimum=0, default=0),
        step_s=t.float("step_s", positive=True, default=10.0),
        hours=t.float("hours", positive=True, default=24.0),
    )
    t.done()
    return s


def _check_wiring(s: Scenario, root: _Table) -> None:
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
        if st.attach == "core" and topo.kind != "fat-tree":
            root.tables("storage")[i].fail("attach", f"'spine' or 'leaf' ({topo.kind} has no core tier)")
    for i, jc in enumerate(s.workload.mix):
        mix = root.table("workload").tables("mix")[i]
        lo, hi = jc.gpus
        if hi > s.gpus:
            mix.fail("gpus", f"at most the site's {s.gpus} GPUs, got {hi}")
        if lo > node.gpus and lo % node.gpus:
            mix.fail("gpus", f"multi-node sizes in whole nodes (multiples of {node.gpus}), got {lo}")


# --- a small validating reader -------------------------------------------------------------------

_MISSING = object()


class _Locator:
    """Finds the line of a dotted field in the TOML text, so errors can say where to look."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.lines = text.splitlines() if text else []

    def line_of(self, path: str) -> int | None:
        if not self.lines:
            return None
        parts = [(name, int(idx) if idx else None) for name, idx in re.findall(r"([\w-]+)(?:\[(\d+)\])?", path)]
        if not parts:
            return None
        *heads, (key, _) = parts
        header = ".".join(name for name, _ in heads)
        wanted = heads[-1][1] if heads else None
        seen = -1
        in_table = not heads
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            m = re.match(r"^\[\[?\s*([\w.-]+)\s*\]\]?", line)
            if m:
                seen += m.group(1) == header
                in_table = m.group(1) == header and (wanted is None or seen == wanted)
            elif in_table and re.match(rf"^{re.escape(key)}\s*=", line):
                return number
        return None


class _Table:
    """One TOML table being read; tracks which keys were used so unknown ones are reported."""

    def __init__(self, data: Any, path: str, locator: _Locator) -> None:
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

    def int(self, key: str, minimum: int | None = None, default: Any = _MISSING) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"a whole number, got {_kind(value)}")
        if minimum is not None and value < minimum:
            self.fail(key, f"a whole number of at least {minimum}, got {value}")
        return value

    def float(
        self,
        key: str,
        minimum: float | None = None,
        maximum: float | None = None,
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
        if maximum is not None and value > maximum:
            self.fail(key, f"a number of at most {maximum:g}, got {value:g}")
        return float(value)

    def pair(self, key: str, typ: type, minimum: float, default: Any = _MISSING) -> tuple[Any, Any]:
        """A [low, high] range; a single number means low == high."""
        value = self._get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value, value]
        if isinstance(value, tuple):
            value = list(value)
        name = "whole numbers" if typ is int else "numbers"
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(
            not isinstance(v, bool) and (isinstance(v, int) if typ is int else isinstance(v, int | float))
            for v in value
        )
        if not ok:
            self.fail(key, f"a [low, high] pair of {name}, got {_kind(value)}")
        lo, hi = typ(value[0]), typ(value[1])
        if lo < minimum:
            self.fail(key, f"values of at least {minimum:g}, got {lo:g}")
        if hi < lo:
            self.fail(key, f"low <= high, got [{lo:g}, {hi:g}]")
        return lo, hi

    def table(self, key: str, optional: bool = False) -> _Table:
        value = self._get(key, {} if optional else _MISSING)
        return _Table(value, self._field(key), self.locator)

    def tables(self, key: str, min_count: int = 0) -> list[_Table]:
        value = self._get(key, [] if min_count == 0 else _MISSING)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"an array of tables ([[{self._field(key)}]]), got {_kind(value)}")
        if len(value) < min_count:
            self.fail(key, f"at least {min_count} [[{self._field(key)}]] table(s)")
        return [_Table(v, f"{self._field(key)}[{i}]", self.locator) for i, v in enumerate(value)]

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
