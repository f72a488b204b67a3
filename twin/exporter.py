"""The simulated site as Prometheus sees a real one: the metrics of dcgm-exporter, node_exporter's
InfiniBand collector, an InfiniBand switch exporter and a Slurm exporter, with their names and labels.

One process stands for every host, so each host's series carry an ``instance`` label of their own
(``<server>:9400`` for DCGM, ``<server>:9100`` for node_exporter); Prometheus must scrape it with
``honor_labels: true``. :class:`SiteCollector` builds the families at scrape time from the latest
:class:`ExportState`, which the serve loop swaps in whole under a lock, so a scrape never sees half an
update. Byte counters are kept lazily as a base plus the current load times the wall time since, so
``rate()`` over them is the link load the simulation shows, whatever the simulation's speed.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from twin.snapshot import Snapshot
from twin.topology import FABRIC, Fabric

XID_FALLEN_OFF_BUS = 79  # the XID a GPU that failed reports (it has fallen off the bus)
IDLE_TEMP_C, FULL_TEMP_C = 32.0, 75.0  # GPU temperature idle and at full load
OPTIMIZER_BYTES_PER_PARAM = 16  # mixed-precision Adam: weights, gradients, master weights, two moments
CONTEXT_MIB = 600.0  # what a CUDA context takes on an allocated GPU before any tensor
DCGM_PORT, NODE_EXPORTER_PORT = 9400, 9100
UUID_NAMESPACE = uuid.UUID("5a2b8a3e-3f5e-4a59-9a51-7d1f0c6c2f10")


@dataclass(frozen=True)
class ExportState:
    """What the exporters report, fixed at one instant; counters grow from ``link_bytes`` at ``wall``."""

    wall: float  # the clock reading the counter base refers to
    sim_time_s: float
    gpu_util: np.ndarray  # [node, gpu] 0..1
    gpu_owner: np.ndarray  # [node, gpu] job id or -1
    gpu_down: np.ndarray  # [node, gpu] bool
    fb_used_mib: np.ndarray  # [node, gpu]
    link_load: np.ndarray  # bytes/s per directed link
    link_bytes: np.ndarray  # counter value per directed link at ``wall``
    node_jobs: tuple[tuple[int, ...], ...]  # job ids per node
    running: int
    pending: int


def gpu_memory_mib(model: str) -> float:
    """Frame-buffer size from a model name like 'A100-SXM4-80GB' (80 GB when it does not say)."""
    found = re.search(r"(\d+)\s*GB", model, re.IGNORECASE)
    return (int(found.group(1)) if found else 80) * 1024.0


def state_from(
    sim, snap: Snapshot, wall: float, previous: ExportState | None, gpu_util: np.ndarray | None = None
) -> ExportState:
    """The export state of a simulation's snapshot taken at clock reading ``wall``; counters carry on
    from ``previous`` at its load up to ``wall``."""
    fab: Fabric = sim.fabric
    owner = snap.gpu_owner
    util = getattr(snap, "gpu_util", None) if gpu_util is None else gpu_util
    if util is None or np.shape(util) != owner.shape:  # no per-GPU figure: each GPU at its job's utilisation
        util = np.zeros(owner.shape)
        for job_id, job in sim.running.items():
            util[owner == job_id] = job.util
    gpu_down = getattr(sim, "gpu_down", None)  # failed GPUs (a failed server fails all of its own)
    down = np.asarray(gpu_down) > 0 if gpu_down is not None else np.zeros(owner.shape, bool)
    util = np.where(down, 0.0, util)
    total = gpu_memory_mib(sim.scenario.gpu.model)
    fb = np.zeros(owner.shape)
    node_jobs: list[list[int]] = [[] for _ in range(fab.n_nodes)]
    for job in snap.jobs:
        mine = owner == job.id
        weights = job.params_b * 1e9 * OPTIMIZER_BYTES_PER_PARAM / max(job.gpus, 1) / 2**20
        fb[mine] = np.minimum(0.97 * total, CONTEXT_MIB + weights + 0.3 * total * util[mine])
        for n in np.unique(job.nodes):
            node_jobs[int(n)].append(int(job.id))
    if previous is None:
        counters = np.zeros(fab.n_links)
    else:
        counters = previous.link_bytes + previous.link_load * max(0.0, wall - previous.wall)
    return ExportState(
        wall=wall,
        sim_time_s=float(snap.time_s),
        gpu_util=np.clip(util, 0.0, 1.0),
        gpu_owner=owner.copy(),
        gpu_down=down,
        fb_used_mib=fb,
        link_load=np.asarray(snap.link_load, float).copy(),
        link_bytes=counters,
        node_jobs=tuple(tuple(sorted(j)) for j in node_jobs),
        running=len(sim.running) if hasattr(sim, "running") else len(snap.jobs),
        pending=len(sim.queue) if hasattr(sim, "queue") else len(snap.queue),
    )


class SiteCollector:
    """A prometheus_client collector over the latest export state; label sets are built once."""

    def __init__(self, sim, clock: Callable[[], float] = time.monotonic) -> None:
        fab: Fabric = sim.fabric
        sc = sim.scenario
        self.fabric = fab
        self.clock = clock
        self._lock = threading.Lock()
        self._state: ExportState | None = None
        self.idle_w, self.wait_w, self.max_w = sc.gpu.idle_watts, sc.gpu.waiting_watts, sc.gpu.max_watts
        self.fb_total = gpu_memory_mib(sc.gpu.model)
        self.servers = [fab.names[g] for g in fab.node_gid]
        self.gpu_labels = [
            [
                {
                    "gpu": str(g),
                    "UUID": f"GPU-{uuid.uuid5(UUID_NAMESPACE, f'{sc.site.name}/{server}/{g}')}",
                    "device": f"nvidia{g}",
                    "modelName": sc.gpu.model,
                    "Hostname": server,
                    "instance": f"{server}:{DCGM_PORT}",
                }
                for g in range(fab.gpus_per_node)
            ]
            for server in self.servers
        ]
        self.nic_labels = [
            {"device": f"mlx5_{r}", "port": "1", "instance": f"{server}:{NODE_EXPORTER_PORT}"}
            for server in self.servers
            for r in range(fab.rails)
        ]
        ports = _switch_ports(fab)
        self.port_labels = [lab for _link, labels in ports for lab in labels]
        self.port_link = np.array([link for link, labels in ports for _ in labels], np.int64)
        self.port_share = np.array([1.0 / len(labels) for _link, labels in ports for _ in labels])
        self._template_lock = threading.Lock()
        self._fabric_template: _Template | None = None
        self._dcgm_template: tuple[np.ndarray, _Template] | None = None

    def publish(self, state: ExportState) -> None:
        """Swap in a new state; scrapes from now on see it whole."""
        with self._lock:
            self._state = state

    @property
    def state(self) -> ExportState | None:
        with self._lock:
            return self._state

    def counters(self) -> tuple[ExportState | None, np.ndarray]:
        """The state and every link's byte counter now, read together under the lock."""
        with self._lock:
            st, now = self._state, self.clock()
        if st is None:
            return None, np.zeros(0)
        return st, st.link_bytes + st.link_load * max(0.0, now - st.wall)

    def describe(self) -> list[Metric]:
        return []  # families are built at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        """Every family of the current state (what a registry and ``generate_latest`` read)."""
        st, counters = self.counters()
        if st is None:
            return
        yield from self._dcgm_metrics(st.gpu_owner, self._dcgm_values(st))
        yield from self._fabric_metrics(self._fabric_values(counters))
        yield from self._small_metrics(st)

    def exposition(self) -> bytes:
        """The same text ``generate_latest`` writes for :meth:`collect`, made fast for large sites: the
        text around the values is formatted by prometheus_client once (again for DCGM when the GPUs'
        jobs change) and each scrape only fills in the values."""
        st, counters = self.counters()
        if st is None:
            return b""
        with self._template_lock:
            if self._dcgm_template is None or not np.array_equal(self._dcgm_template[0], st.gpu_owner):
                sentinel = [np.full(st.gpu_owner.shape, SENTINEL)] * len(DCGM_FAMILIES)
                self._dcgm_template = (st.gpu_owner, _Template(self._dcgm_metrics(st.gpu_owner, sentinel)))
            dcgm = self._dcgm_template[1]
            if self._fabric_template is None:
                sentinel = [np.full(len(v), SENTINEL) for v in self._fabric_values(counters)]
                self._fabric_template = _Template(self._fabric_metrics(sentinel))
            fabric = self._fabric_template
        parts = (
            dcgm.fill(np.concatenate([v.reshape(-1) for v in self._dcgm_values(st)])),
            fabric.fill(np.concatenate(self._fabric_values(counters))),
        )
        return "".join(parts).encode() + generate_latest(_Families(list(self._small_metrics(st))))

    def _dcgm_values(self, st: ExportState) -> list[np.ndarray]:
        """The DCGM families' values per [node, gpu], in the order of DCGM_FAMILIES."""
        util, down = st.gpu_util, st.gpu_down
        # As the simulation draws it: a job's GPU waits (wait_w) when it does not compute; a free one idles.
        base = np.where(st.gpu_owner >= 0, self.wait_w, self.idle_w)
        power = np.where(down, 0.0, base + (self.max_w - base) * util)
        temp = np.where(down, 0.0, IDLE_TEMP_C + (FULL_TEMP_C - IDLE_TEMP_C) * util)
        return [
            np.round(util * 100.0),
            util,
            power,
            np.round(st.fb_used_mib),
            np.round(self.fb_total - st.fb_used_mib),
            np.round(temp),
            np.where(down, float(XID_FALLEN_OFF_BUS), 0.0),
        ]

    def _dcgm_metrics(self, owner: np.ndarray, values: list[np.ndarray]) -> list[Metric]:
        labels = [
            dict(base, hpc_job=str(int(owner[n, g]))) if owner[n, g] >= 0 else base
            for n, row in enumerate(self.gpu_labels)
            for g, base in enumerate(row)
        ]
        out = []
        for (name, doc), vals in zip(DCGM_FAMILIES, values, strict=True):
            m = Metric(name, doc, "gauge")
            for lab, v in zip(labels, vals.reshape(-1).tolist(), strict=True):
                m.add_sample(name, lab, v)
            out.append(m)
        return out

    def _fabric_values(self, counters: np.ndarray) -> list[np.ndarray]:
        """Host NIC counters (sent, received), NIC rates and switch port counters (4-byte words)."""
        fab = self.fabric
        return [
            counters[fab.host_up].reshape(-1),
            counters[fab.host_down].reshape(-1),
            fab.link_cap[fab.host_up].reshape(-1),
            counters[self.port_link] * self.port_share / 4.0,
        ]

    def _fabric_metrics(self, values: list[np.ndarray]) -> list[Metric]:
        tx, rx, rate, words = (v.tolist() for v in values)
        out = []
        for name, doc, kind, labels, vals in (
            (NODE_TX, "Number of data octets transmitted on all links", "counter", self.nic_labels, tx),
            (NODE_RX, "Number of data octets received on all links", "counter", self.nic_labels, rx),
            (NODE_RATE, "Maximum signal transfer rate", "gauge", self.nic_labels, rate),
            (
                SWITCH_TX,
                "Data octets, divided by 4 (lanes), transmitted on all VLs.",
                "counter",
                self.port_labels,
                words,
            ),
        ):
            m = Metric(name.removesuffix("_total"), doc, kind)
            for lab, v in zip(labels, vals, strict=True):
                m.add_sample(name, lab, v)
            out.append(m)
        return out

    def _small_metrics(self, st: ExportState) -> Iterator[Metric]:
        """Slurm's families and the simulated clock: few samples, formatted directly each scrape."""
        m = Metric("slurm_node_job", "Jobs running on each node.", "gauge")
        for n, jobs in enumerate(st.node_jobs):
            for j in jobs:
                m.add_sample("slurm_node_job", {"job_id": str(j), "node_name": self.servers[n]}, 1.0)
        yield m
        for name, doc, value in (
            ("slurm_queue_pending", "Pending jobs in queue", st.pending),
            ("slurm_queue_running", "Running jobs in the cluster", st.running),
            ("twin_simulated_seconds", "Simulated time of the twin being exported.", st.sim_time_s),
        ):
            q = Metric(name, doc, "gauge")
            q.add_sample(name, {}, float(value))
            yield q


DCGM_FAMILIES = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W)."),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered."),
)
NODE_TX = "node_infiniband_port_data_transmitted_bytes_total"
NODE_RX = "node_infiniband_port_data_received_bytes_total"
NODE_RATE = "node_infiniband_rate_bytes_per_second"
SWITCH_TX = "infiniband_portxmitdata_total"
SENTINEL = 7.0713e-301  # a value no metric takes, marking where values go in a template
SENTINEL_TEXT = floatToGoString(SENTINEL)


class _Template:
    """The text of some families with every value cut out, to be filled in order by :meth:`fill`."""

    def __init__(self, families: list[Metric]) -> None:
        self.pieces = generate_latest(_Families(families)).decode().split(SENTINEL_TEXT)

    def fill(self, values: np.ndarray) -> str:
        if len(values) != len(self.pieces) - 1:
            raise ValueError(f"template of {len(self.pieces) - 1} values filled with {len(values)}")
        out = [""] * (2 * len(values) + 1)
        out[0::2] = self.pieces
        out[1::2] = map(repr, values.tolist())
        return "".join(out)


def _switch_ports(fab: Fabric) -> list[tuple[int, list[dict[str, str]]]]:
    """For each directed switch-to-switch link, the label sets of the ports it leaves by: one per cable
    of the bundle the fabric merged, numbered per switch in neighbour order (hosts take ports too)."""
    g = fab.graph
    ports: dict[tuple[int, int], list[int]] = {}
    for sw in fab.switch_gids.tolist():
        nxt = 1
        for nbr in sorted(g.adj[sw]):
            count = int(g.edges[sw, nbr].get("ports", 1))
            ports[sw, nbr] = list(range(nxt, nxt + count))
            nxt += count
    out = []
    for link in np.flatnonzero(fab.link_kind == FABRIC).tolist():
        a, b = int(fab.link_src[link]), int(fab.link_dst[link])
        labels = [
            {
                "component": "switch",
                "local_guid": _guid(a),
                "local_name": fab.names[a],
                "local_port": str(lp),
                "remote_guid": _guid(b),
                "remote_name": fab.names[b],
                "remote_port": str(rp),
            }
            for lp, rp in zip(ports[a, b], ports[b, a], strict=True)
        ]
        out.append((link, labels))
    return out


def _guid(gid: int) -> str:
    return f"0x506b4b0300{gid:06x}"


class _Families:
    """Already built families, in the shape ``generate_latest`` reads (anything with ``collect()``)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def make_registry(collector: SiteCollector) -> CollectorRegistry:
    """A fresh registry holding only the site (no process or Python metrics of the serve process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
