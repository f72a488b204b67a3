"""The live twin: a real cluster read from Prometheus, behind the same interface as the simulation.

:class:`LiveSource` is a source for the view (``scenario``, ``fabric``, ``series``, ``now``, ``version``,
``advance(dt)``, ``snapshot()``, see ``twin.source``). A background thread polls Prometheus every
``poll`` seconds with one query per metric family, run side by side (which families exist comes from
Prometheus's list of metric names, so no query reads series for nothing), turns the answers into an
immutable :class:`LiveState` (:func:`interpret`, a pure function tested on hand-made answers) and swaps
it in under a lock; the frame loop never waits on the network. Queries aggregate on the Prometheus side
(busy per GPU, power per host, only nonzero XIDs and hot GPUs), which keeps a 12,000-GPU site's answers
small. When Prometheus cannot be
reached the last data stays on screen with a banner saying since when, the thread retries with
exponential backoff, and it recovers by itself.

What is read, from the exporters a GPU cluster runs:

- dcgm-exporter: a GPU is busy by ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (else ``DCGM_FI_DEV_GPU_UTIL`` / 100),
  its job by the ``hpc_job`` label, power, temperature and XID errors; the host by ``Hostname`` or
  ``hostname``, else ``instance`` without its port.
- node_exporter: per-NIC InfiniBand byte counters, as ``rate()`` over at least three scrape intervals:
  the server's cables per rail (``mlx5_N`` is rail N unless the mapping says otherwise).
- an InfiniBand switch exporter: ``infiniband_portxmitdata_total`` (4-byte words) per switch port, summed
  per pair of switches: the switch-to-switch cables.
- a Slurm exporter: ``slurm_node_job`` (jobs per server), ``slurm_queue_pending`` / ``_running`` (or
  ``slurm_partition_job_state_total`` by state).

A server whose target is down (``up == 0``) or that has no sample in the last three scrape intervals
(``last_over_time``: this also catches exporters gone without staleness markers, as across a Prometheus
restart) is "no data", never zeros. Families not found at all are listed in ``missing``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import re
import signal
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np

from twin.errors import ScenarioError
from twin.metrics import SERIES_FIELDS, TimeSeries
from twin.mirror import EMPTY_FLOWS
from twin.power import facility_watts
from twin.promql import PromClient, PromError, Sample
from twin.scenario import Scenario, read_toml, scenario_from_dict
from twin.snapshot import JobView, Snapshot
from twin.topology import FABRIC, HOST, SWITCH_KINDS, VIRTUAL, Fabric, build_fabric

ENGINE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
POWER = "DCGM_FI_DEV_POWER_USAGE"
XID = "DCGM_FI_DEV_XID_ERRORS"
TEMP = "DCGM_FI_DEV_GPU_TEMP"
NIC_TX = "node_infiniband_port_data_transmitted_bytes_total"
NIC_RX = "node_infiniband_port_data_received_bytes_total"
NIC_RATE = "node_infiniband_rate_bytes_per_second"
SWITCH_TX = "infiniband_portxmitdata_total"
NODE_JOB = "slurm_node_job"
QUEUE_PENDING, QUEUE_RUNNING = "slurm_queue_pending", "slurm_queue_running"
PARTITION_STATE = "slurm_partition_job_state_total"
QUEUE_FAMILIES = (QUEUE_PENDING, QUEUE_RUNNING, PARTITION_STATE)
GPU_FAMILIES = (ENGINE, GPU_UTIL, POWER, XID, TEMP)
EXPECTED = (*GPU_FAMILIES, NIC_TX, NIC_RX, NIC_RATE, SWITCH_TX, NODE_JOB, QUEUE_PENDING, QUEUE_RUNNING)
HOST_LABELS = ("Hostname", "hostname")

TEMP_ALARM_C = 85.0  # a GPU this hot is an alarm (A100s throttle from about 85 C)
IDLE_BUSY = 0.05  # an allocated GPU busier than this is working
DEFAULT_SCRAPE_S = 15.0  # when the server's configuration cannot be read
HISTORY_S = 3600.0  # the sparklines' hour, filled from query_range at start
DEFAULT_NODES_PER_RACK = 4
NUMERIC_JOB_LIMIT = 2_000_000_000  # job ids that are not numbers map above this


@dataclass(frozen=True)
class Mapping:
    """How Prometheus's names meet the site's: hosts to servers, NIC devices to rails, switch names."""

    hosts: dict[str, str] = field(default_factory=dict)
    rails: dict[str, int] = field(default_factory=dict)
    switches: dict[str, str] = field(default_factory=dict)
    nodes_per_rack: int = DEFAULT_NODES_PER_RACK  # for a site built from the hosts found
    source: str = ""


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping TOML: ``[hosts]`` host = "server", ``[rails]`` device = rail, ``[switches]``
    name = "switch", ``[site]`` nodes_per_rack; a ScenarioError naming the file and key if it is wrong."""
    data, _text = read_toml(path)
    source = str(path)
    known = {"hosts", "rails", "switches", "site"}
    for key, value in data.items():
        if key not in known:
            raise ScenarioError(source, key, f"expected one of the tables {', '.join(sorted(known))}")
        if not isinstance(value, dict):
            raise ScenarioError(source, key, "expected a table, like [hosts]")

    def names(table: str) -> dict[str, str]:
        out = {}
        for k, v in data.get(table, {}).items():
            if not isinstance(v, str) or not v:
                raise ScenarioError(source, f"{table}.{k}", f"expected a name in quotes, got {v!r}")
            out[str(k)] = v
        return out

    rails = {}
    for k, v in data.get("rails", {}).items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ScenarioError(source, f"rails.{k}", f"expected a rail number of at least 0, got {v!r}")
        rails[str(k)] = v
    site = data.get("site", {})
    for k in site:
        if k != "nodes_per_rack":
            raise ScenarioError(source, f"site.{k}", "expected only nodes_per_rack in [site]")
    npr = site.get("nodes_per_rack", DEFAULT_NODES_PER_RACK)
    if isinstance(npr, bool) or not isinstance(npr, int) or not 1 <= npr <= 1024:
        raise ScenarioError(source, "site.nodes_per_rack", f"expected a whole number from 1 to 1024, got {npr!r}")
    return Mapping(names("hosts"), rails, names("switches"), npr, source)


def strip_port(instance: str) -> str:
    """'node-1:9100' -> 'node-1', '[::1]:9100' -> '::1'; a name without a port stays as it is."""
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    head, sep, tail = instance.rpartition(":")
    return head if sep and tail.isdigit() and ":" not in head else instance


def host_of(labels: dict[str, str]) -> str | None:
    """The host a series is about: ``Hostname`` or ``hostname``, else ``instance`` without its port."""
    for key in HOST_LABELS:
        if labels.get(key):
            return labels[key]
    instance = labels.get("instance")
    return strip_port(instance) if instance else None


def _short(host: str) -> str:
    """A host name without its domain ('gpu-b.example.org' -> 'gpu-b'); addresses stay whole."""
    return host if host.replace(".", "").isdigit() or ":" in host else host.split(".", 1)[0]


def job_number(key: str) -> int:
    """A job id as the view's integer: numeric ids as they are, others hashed above the numeric range."""
    return int(key) if key.isdigit() and int(key) < NUMERIC_JOB_LIMIT else NUMERIC_JOB_LIMIT + zlib.crc32(key.encode())


class SiteIndex:
    """Where Prometheus's names land in the fabric: servers by host, directed links by NIC and switch pair."""

    def __init__(self, fabric: Fabric, mapping: Mapping, servers: list[str | None] | None = None) -> None:
        self.fabric = fabric
        self.mapping = mapping
        self.servers = servers if servers is not None else [fabric.names[g] for g in fabric.node_gid]
        self.node_of = {name: n for n, name in enumerate(self.servers) if name is not None}
        self.hosts = {_short(k): v for k, v in mapping.hosts.items()} | mapping.hosts  # FQDN or short name
        gid = {name: g for g, name in enumerate(fabric.names)}
        self.switch_gid = {name: g for name, g in gid.items() if fabric.kind[g] in SWITCH_KINDS}
        self.link_of: dict[tuple[int, int], int] = {}
        for link in np.flatnonzero(fabric.link_kind == FABRIC).tolist():
            self.link_of[int(fabric.link_src[link]), int(fabric.link_dst[link])] = link
        self.host_links = np.concatenate([fabric.host_up.reshape(-1), fabric.host_down.reshape(-1)])

    def node(self, host: str | None) -> int | None:
        """The server index for a Prometheus host name (mapped, then as is, then without its domain)."""
        if not host:
            return None
        for candidate in (host, _short(host)):
            name = self.hosts.get(candidate, candidate)
            if name in self.node_of:
                return self.node_of[name]
        return None

    def rail(self, device: str | None) -> int | None:
        """The rail of a NIC device: the mapping's, else N of ``mlx5_N``; every NIC is rail 0 of a fabric
        with one host link per server (it carries all of them)."""
        if not device:
            return None
        rail = self.mapping.rails.get(device)
        if rail is None:
            found = re.fullmatch(r"[a-z]+\d*_(\d+)", device)
            if not found:
                return None
            rail = int(found.group(1))
        if self.fabric.rails == 1:
            return 0
        return rail if rail < self.fabric.rails else None

    def switch_link(self, local: str | None, remote: str | None) -> int | None:
        sw = self.mapping.switches
        a = self.switch_gid.get(sw.get(local or "", local or ""))
        b = self.switch_gid.get(sw.get(remote or "", remote or ""))
        return None if a is None or b is None else self.link_of.get((a, b))


@dataclass(frozen=True)
class Reading:
    """The answers of one poll, by family: what :func:`interpret` turns into a state. GPU and Slurm
    answers hold only series with a sample in the last few scrape intervals (``last_over_time``), so a
    host that went quiet has none, staleness markers or not."""

    present: dict[str, int]  # families found (name -> 1); absent: missing
    up: list[Sample] = field(default_factory=list)
    engine: list[Sample] = field(default_factory=list)  # DCGM_FI_PROF_GR_ENGINE_ACTIVE per GPU, 0..1
    util: list[Sample] = field(default_factory=list)  # DCGM_FI_DEV_GPU_UTIL per GPU (%), where no engine
    power: list[Sample] = field(default_factory=list)  # W per host, summed over its GPUs
    xid: list[Sample] = field(default_factory=list)  # per GPU, nonzero only
    temp: list[Sample] = field(default_factory=list)  # per GPU, the hot ones only
    tx: list[Sample] = field(default_factory=list)  # bytes/s per (instance, device)
    rx: list[Sample] = field(default_factory=list)
    switch: list[Sample] = field(default_factory=list)  # bytes/s per (local_name, remote_name)
    node_job: list[Sample] = field(default_factory=list)
    queue: list[Sample] = field(default_factory=list)  # __name__ kept


@dataclass(frozen=True)
class LiveState:
    """What the cluster looked like at one poll. Arrays are per [node, gpu], per node or per link."""

    polled_at: float  # Unix time of the poll
    gpu_busy: np.ndarray  # 0..1, nan: unknown
    gpu_owner: np.ndarray  # job number or -1
    node_power: np.ndarray  # W per node (its GPUs), nan: unknown
    gpu_temp: np.ndarray  # C of the GPUs over the alarm threshold, nan elsewhere
    gpu_xid: np.ndarray  # last XID, 0: none
    no_data: np.ndarray  # per node
    node_jobs: tuple[tuple[int, ...], ...]
    link_load: np.ndarray  # bytes/s per directed link (0 where unknown)
    link_known: np.ndarray  # per directed link: measured
    running: int
    pending: int
    missing: tuple[str, ...]
    job_names: dict[int, str]  # job number -> the id as Prometheus gave it
    unknown_hosts: tuple[str, ...] = ()
    warming: bool = False  # counters exist but rate() has too few samples yet


def interpret(reading: Reading, index: SiteIndex, polled_at: float) -> LiveState:
    """One poll's answers as a state of the site (pure: no network, no clock)."""
    fab = index.fabric
    n_nodes, gpn = fab.n_nodes, fab.gpus_per_node
    nan = float("nan")
    unknown: set[str] = set()
    nodes: dict[str | None, int | None] = {}

    def node_of(labels: dict[str, str]) -> int | None:
        host = host_of(labels)
        if host not in nodes:
            nodes[host] = index.node(host)
            if nodes[host] is None and host:
                unknown.add(host)
        return nodes[host]

    def per_gpu(samples: list[Sample], scale: float = 1.0) -> np.ndarray:
        out = np.full((n_nodes, gpn), nan)
        for s in samples:
            n, g = node_of(s.labels), _int(s.labels.get("gpu"))
            if n is not None and g is not None and 0 <= g < gpn:
                out[n, g] = s.value * scale
        return out

    engine, util = per_gpu(reading.engine), per_gpu(reading.util, 0.01)
    busy = np.clip(np.where(np.isfinite(engine), engine, util), 0.0, 1.0)  # engine activity first
    owner = np.full((n_nodes, gpn), -1, np.int64)
    names: dict[int, str] = {}
    for s in (*reading.util, *reading.engine):  # the engine's label wins where both have one
        n, g, job = node_of(s.labels), _int(s.labels.get("gpu")), s.labels.get("hpc_job")
        if job and n is not None and g is not None and 0 <= g < gpn:
            owner[n, g] = job_number(job)
            names[job_number(job)] = job
    power = np.full(n_nodes, nan)
    for s in reading.power:
        n = node_of(s.labels)
        if n is not None:
            power[n] = s.value if np.isnan(power[n]) else power[n] + s.value
    xid = np.nan_to_num(per_gpu(reading.xid)).astype(np.int64)
    temp = per_gpu(reading.temp)

    slurm: list[set[int]] = [set() for _ in range(n_nodes)]
    for s in reading.node_job:
        n = index.node(s.labels.get("node_name"))
        job = s.labels.get("job_id")
        if n is not None and job and s.value > 0:
            slurm[n].add(job_number(job))
            names[job_number(job)] = job
    for n in range(n_nodes):  # Slurm knows the server but not the GPUs: split them among its jobs in order
        if slurm[n] and not (owner[n] >= 0).any():
            jobs = sorted(slurm[n])
            owner[n] = np.repeat(jobs, math.ceil(gpn / len(jobs)))[:gpn]

    has_gpu = np.isfinite(busy).any(axis=1)
    has_nic = np.zeros(n_nodes, bool)
    load = np.zeros(fab.n_links)
    known = np.zeros(fab.n_links, bool)
    rails: dict[str | None, int | None] = {}
    for samples, links in ((reading.tx, fab.host_up), (reading.rx, fab.host_down)):
        for s in samples:
            device = s.labels.get("device")
            if device not in rails:
                rails[device] = index.rail(device)
            n, r = node_of(s.labels), rails[device]
            if n is None or r is None:
                continue
            has_nic[n] = True
            load[links[n, r]] += s.value
            known[links[n, r]] = True
    for s in reading.switch:
        link = index.switch_link(s.labels.get("local_name"), s.labels.get("remote_name"))
        if link is not None:
            load[link] += s.value
            known[link] = True
    present = reading.present
    gpu_exported = present.get(ENGINE, 0) + present.get(GPU_UTIL, 0) > 0
    no_data = ~has_gpu if gpu_exported else ~(has_gpu | has_nic)
    for s in reading.up:
        n = index.node(strip_port(s.labels.get("instance", "")))
        if n is not None and s.value == 0:
            no_data[n] = True
    dark = np.concatenate([fab.host_up[no_data].reshape(-1), fab.host_down[no_data].reshape(-1)])
    load[dark], known[dark] = 0.0, False
    busy[no_data] = nan
    power[no_data] = nan
    owner[no_data] = -1  # which GPUs a job holds is not known without the GPUs' series (Slurm may still say)
    node_jobs = tuple(tuple(sorted(set(owner[n][owner[n] >= 0].tolist()) | slurm[n])) for n in range(n_nodes))

    queue = {s.labels.get("__name__"): s.value for s in reading.queue if s.labels.get("__name__") != PARTITION_STATE}
    by_state: Counter[str] = Counter()
    for s in reading.queue:
        if s.labels.get("__name__") == PARTITION_STATE:
            by_state[s.labels.get("state", "").lower()] += s.value
    distinct = len({j for jobs in node_jobs for j in jobs})
    running = queue.get(QUEUE_RUNNING, by_state.get("running", distinct))
    pending = queue.get(QUEUE_PENDING, by_state.get("pending", 0))
    rate_families = ((NIC_TX, reading.tx), (NIC_RX, reading.rx), (SWITCH_TX, reading.switch))
    return LiveState(
        polled_at=polled_at,
        gpu_busy=busy,
        gpu_owner=owner,
        node_power=power,
        gpu_temp=temp,
        gpu_xid=xid,
        no_data=no_data,
        node_jobs=node_jobs,
        link_load=load,
        link_known=known,
        running=int(running),
        pending=int(pending),
        missing=tuple(f for f in EXPECTED if present.get(f, 0) <= 0),
        job_names=names,
        unknown_hosts=tuple(sorted(unknown)),
        warming=any(present.get(f, 0) > 0 and not answers for f, answers in rate_families),
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# --- a site from the hosts found ---------------------------------------------------------------------

GPU_GUESSES = {"H100": (989, 100, 700), "A100": (312, 60, 400), "V100": (125, 40, 300)}  # TFLOPS, idle/max W


def discover_site(client: PromClient, mapping: Mapping) -> tuple[Scenario, list[str | None], str]:
    """A plain leaf-spine site for the hosts Prometheus knows (sorted, in racks of ``nodes_per_rack``):
    the scenario, the server name of each node (None for padding in the last rack) and a notice."""
    per_gpu = client.query(
        "count by (Hostname, hostname, instance, modelName) "
        f'(max by (Hostname, hostname, instance, modelName, gpu) ({{__name__=~"{ENGINE}|{GPU_UTIL}"}}))'
    )
    nics = client.query(f"count by (instance, device) ({NIC_TX})")
    rates = client.query(f"max by (instance, device) ({NIC_RATE})")
    hosts: dict[str, dict[str, Any]] = {}

    def entry(host: str) -> dict[str, Any]:
        name = mapping.hosts.get(host, host)
        return hosts.setdefault(name, {"gpus": 0, "nics": set(), "models": Counter()})

    for s in per_gpu:
        host = host_of(s.labels)
        if host:
            e = entry(host)
            e["gpus"] = max(e["gpus"], int(s.value))
            e["models"][s.labels.get("modelName", "")] += 1
    for s in nics:
        if s.labels.get("instance"):
            entry(strip_port(s.labels["instance"]))["nics"].add(s.labels.get("device", ""))
    if not hosts:
        raise PromError(
            f"{client.url}: found no hosts (no {ENGINE}, {GPU_UTIL} or {NIC_TX} series); give a scenario or "
            "check that the exporters are scraped"
        )
    names = sorted(hosts)
    npr = mapping.nodes_per_rack
    racks = math.ceil(len(names) / npr)
    gpus = max((e["gpus"] for e in hosts.values()), default=0) or 8
    n_nics = max((len(e["nics"]) for e in hosts.values()), default=0) or 1
    gbps = [s.value * 8 / 1e9 for s in rates if s.value > 0]
    nic_gbps = float(np.median(gbps)) if gbps else 200.0
    models = sum((e["models"] for e in hosts.values()), Counter())
    model = next((m for m, _ in models.most_common() if m), "unknown GPU")
    tflops, idle_w, max_w = next((v for k, v in GPU_GUESSES.items() if k in model.upper()), (100, 50, 400))
    uplinks = npr * n_nics
    data = {
        "site": {
            "name": "Live cluster",
            "blurb": f"{len(names)} servers found in Prometheus, in racks of {npr} on a plain leaf-spine",
        },
        "topology": {
            "kind": "leaf-spine",
            "racks": racks,
            "nodes_per_rack": npr,
            "spines": 2,
            "oversubscription": 1.0,
            "leaf_radix": max(2, 2 * uplinks),
            "spine_radix": max(8, racks * math.ceil(uplinks / 2) + 8),
            "port_gbps": nic_gbps,
        },
        "node": {"gpus": gpus, "nics": n_nics, "nic_gbps": nic_gbps, "overhead_watts": 1500},
        "gpu": {"model": model, "peak_tflops": tflops, "idle_watts": idle_w, "max_watts": max_w},
        "storage": [{"name": "storage", "capacity_pb": 1, "read_gbs": 40, "write_gbs": 20, "ports": 2}],
        "workload": {"arrival": "none", "mix": [{"kind": "research", "share": 1, "gpus": [1, 1], "median_hours": 1}]},
        "simulation": {"seed": 1, "step_s": 10},
    }
    scenario = scenario_from_dict(data, source=f"<hosts found in {client.url}>")
    servers: list[str | None] = [*names, *([None] * (racks * npr - len(names)))]
    notice = f"no scenario: site built from the {len(names)} hosts found (racks of {npr}, leaf-spine)"
    return scenario, servers, notice


# --- the source ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Whether the last poll worked; since when it has not."""

    error: str = ""
    since: float | None = None  # Unix time of the first failure in a row


def _poll_process(
    url: str,
    scenario: Scenario,
    mapping: Mapping,
    poll: float | None,
    timeout: float,
    max_backoff: float,
    history: bool,
    servers: list[str | None] | None,
    queue: Any,
    stop: Any,
) -> None:
    """The polling process: the same poll loop, its news put on ``queue`` until ``stop`` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the view's process decides when to stop
    with contextlib.suppress(OSError):
        os.nice(10)  # on a machine the view shares, its frames come before the next poll
    source = LiveSource(url, scenario, mapping, poll, timeout, max_backoff, history, servers=servers)
    source._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="live-query")

    def put(message: tuple) -> None:
        with contextlib.suppress(Exception):  # a full queue means the view is behind: this news can go
            queue.put(message, timeout=1.0)

    source._emit = put
    watcher = threading.Thread(target=lambda: (stop.wait(), source._stop.set()), daemon=True)
    watcher.start()
    source._run()
    source._pool.shutdown(wait=False, cancel_futures=True)


class LiveSource:
    """A live cluster as a source for the view and for ``--report``. ``start()`` begins polling."""

    rack_labels: tuple[str, ...] = ()

    def __init__(
        self,
        url: str,
        scenario: Scenario | None = None,
        mapping: Mapping | None = None,
        poll: float | None = None,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
        history: bool = True,
        client: PromClient | None = None,
        servers: list[str | None] | None = None,
    ) -> None:
        """``servers``: the hosts' names of a site built from them (given to the polling process, which
        must not discover the site again)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client = client or PromClient(self.url, timeout=timeout)
        self.mapping = mapping or Mapping()
        self.notice = ""
        if scenario is None:
            scenario, servers, self.notice = discover_site(self.client, self.mapping)
        self.scenario = scenario
        self.fabric = build_fabric(scenario)
        if servers is not None:  # the built site's servers carry the hosts' names
            for n, name in enumerate(servers):
                if name is not None:
                    gid = int(self.fabric.node_gid[n])
                    self.fabric.names[gid] = name
                    self.fabric.graph.nodes[gid]["name"] = name
        self.servers = servers
        self.index = SiteIndex(self.fabric, self.mapping, servers)
        self._check_mapping()
        self.series = TimeSeries(capacity=8192, fields=SERIES_FIELDS)
        self.t0 = time.time()
        self._mono0 = time.monotonic()
        self._poll_fixed = poll
        self.scrape_s: float | None = None
        self.max_backoff = max_backoff
        self._history = history
        self._lock = threading.Lock()
        self._state: LiveState | None = None
        self._conn = Connection()
        self._version = 0
        self._rows: deque[dict[str, float]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None  # the queries of a poll run side by side
        self._process: Any = None  # the polling process, when the poller runs in one
        self._emit: Callable[[tuple], None] = self._receive  # where the poller's news goes
        self._snap_cache: tuple[LiveState | None, Connection, Snapshot] | None = None
        self.poll_times: deque[float] = deque(maxlen=10_000)  # wall seconds per successful poll
        self.n_switches = int(np.isin(self.fabric.kind, SWITCH_KINDS).sum())
        self._fabric_links = self.fabric.link_kind == FABRIC
        self._physical = self.fabric.link_kind != VIRTUAL

    def _check_mapping(self) -> None:
        m = self.mapping
        for host, server in m.hosts.items():
            if server not in self.index.node_of:
                examples = ", ".join(n for n in list(self.index.node_of)[:3])
                raise ScenarioError(m.source, f"hosts.{host}", f"expected a server of the site ({examples}, ...)")
        for name, switch in m.switches.items():
            if switch not in self.index.switch_gid:
                examples = ", ".join(list(self.index.switch_gid)[:3])
                raise ScenarioError(m.source, f"switches.{name}", f"expected a switch of the site ({examples}, ...)")

    # --- the source interface --------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Seconds since the source started: the wall clock (live data cannot be sped up or paused)."""
        return time.monotonic() - self._mono0

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    @property
    def poll_s(self) -> float:
        return self._poll_fixed or self.scrape_s or DEFAULT_SCRAPE_S

    @property
    def window_s(self) -> int:
        """The rate() window: at least three scrape intervals (four, so one late scrape does no harm)."""
        return max(2, math.ceil(4 * (self.scrape_s or DEFAULT_SCRAPE_S)))

    @property
    def stale_after_s(self) -> float:
        """A host whose newest sample is older than this (three scrape intervals, at least 5 s) is no data."""
        return max(5.0, 3 * (self.scrape_s or DEFAULT_SCRAPE_S))

    def advance(self, dt: float) -> None:
        """Take in what the poller brought (no network here); the clock is the wall clock."""
        self._drain()

    def _drain(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, deque()
        for row in rows:
            self.series.append(row)

    # --- polling ----------------------------------------------------------------------------------------

    def start(self, process: bool = False) -> LiveSource:
        """Begin polling: on a thread of this process, or (``process``) in a process of its own, so that
        reading and parsing tens of thousands of series never holds the view's interpreter (its frames
        would wait); only the finished state, a few arrays, comes back."""
        if self._thread is not None:
            return self
        if process:
            ctx = multiprocessing.get_context("spawn")  # nothing of the window's process (SDL) is inherited
            queue, stop = ctx.Queue(maxsize=8), ctx.Event()
            args = (self.url, self.scenario, self.mapping, self._poll_fixed, self.timeout, self.max_backoff)
            self._process = (
                ctx.Process(
                    target=_poll_process,
                    args=(*args, self._history, self.servers, queue, stop),
                    name="twin-live-poll",
                    daemon=True,
                ),
                queue,
                stop,
            )
            self._process[0].start()
            self._thread = threading.Thread(target=self._pump, name="live-pump", daemon=True)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="live-query")
            self._thread = threading.Thread(target=self._run, name="live-poll", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None:
            proc, queue, stop = self._process
            stop.set()
            proc.join(timeout=self.client.timeout * 2 + 1)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2)
            queue.close()
            queue.cancel_join_thread()
            self._process = None
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout * 2 + 1)
            self._thread = None
        if self._pool is not None:  # the poller is gone, so no query is running: the workers end at once
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _pump(self) -> None:
        """In the view's process: hand on what the polling process sends, until stopped."""
        assert self._process is not None
        queue = self._process[1]
        while not self._stop.is_set():
            try:
                message = queue.get(timeout=0.2)
            except Empty:
                continue
            except (EOFError, OSError):
                return
            self._receive(message)

    def __enter__(self) -> LiveSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        """The poll loop: poll, pass the state on, wait; back off while Prometheus cannot be reached."""
        first = min(1.0, self.poll_s)
        backoff = first
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                if self.scrape_s is None:
                    self.scrape_s = self._scrape_interval()
                    self._emit(("scrape", self.scrape_s))
                if self._history:
                    self._emit(("rows", self._history_rows()))
                    self._history = False
                state = self.poll_once()
                self._emit(("state", state, time.monotonic() - began))
                backoff = first
                wait = max(0.0, self.poll_s - (time.monotonic() - began))
            except PromError as err:
                self._emit(("error", str(err)))
                wait, backoff = backoff, min(backoff * 2, self.max_backoff)
            self._stop.wait(wait)

    def _receive(self, message: tuple) -> None:
        """What the poller found (here or in its own process): a state, an error, history, the scrape."""
        kind = message[0]
        if kind == "state":
            self.poll_times.append(message[2])
            self.accept(message[1])
        elif kind == "error":
            with self._lock:
                if self._conn.error != message[1]:
                    self._version += 1
                self._conn = Connection(message[1], self._conn.since or time.time())
        elif kind == "rows":
            with self._lock:
                self._rows.extend(message[1])
        elif kind == "scrape":
            self.scrape_s = message[1]

    def _scrape_interval(self) -> float:
        """The server's shortest scrape interval; the usual 15 s if its configuration cannot be read."""
        try:
            return self.client.scrape_interval() or DEFAULT_SCRAPE_S
        except PromError as err:
            if err.unreachable:
                raise
            return DEFAULT_SCRAPE_S

    def accept(self, state: LiveState) -> None:
        """Swap in a new state (what a successful poll does): connection fine, version and series move on."""
        row = self._row(state)
        with self._lock:
            self._state = state
            self._conn = Connection()
            self._version += 1
            self._rows.append(row)

    def read(self) -> Reading:
        """One query per family, run side by side; raises PromError. Which families exist comes from the
        metric names Prometheus holds for the last few scrape intervals (cheap: no series are read)."""
        now = time.time()
        found = self.client.metric_names(now - self.stale_after_s, now)
        present = {f: 1 for f in (*EXPECTED, PARTITION_STATE) if f in found}
        w, fresh = f"{self.window_s}s", f"{math.ceil(self.stale_after_s)}s"
        gpu, host = "Hostname, hostname, instance, gpu", "Hostname, hostname, instance"

        def last(family: str, by: str) -> str:  # per GPU or host, only series with a recent sample
            return f"max by ({by}) (last_over_time({family}[{fresh}]))"

        queries = {
            "up": "up",
            "engine": last(ENGINE, f"{gpu}, hpc_job") if present.get(ENGINE) else "",
            "util": f"{last(GPU_UTIL, f'{gpu}, hpc_job')} unless on ({gpu}) last_over_time({ENGINE}[{fresh}])"
            if present.get(GPU_UTIL)
            else "",
            "power": f"sum by ({host}) (last_over_time({POWER}[{fresh}]))" if present.get(POWER) else "",
            "xid": f"{last(XID, gpu)} != 0" if present.get(XID) else "",
            "temp": f"{last(TEMP, gpu)} >= {TEMP_ALARM_C:g}" if present.get(TEMP) else "",
            "tx": f"sum by (instance, device) (rate({NIC_TX}[{w}]))" if present.get(NIC_TX) else "",
            "rx": f"sum by (instance, device) (rate({NIC_RX}[{w}]))" if present.get(NIC_RX) else "",
            "switch": f"4 * sum by (local_name, remote_name) (rate({SWITCH_TX}[{w}]))"
            if present.get(SWITCH_TX)
            else "",
            "node_job": last(NODE_JOB, "job_id, node_name") if present.get(NODE_JOB) else "",
            **{f"queue:{f}": f"last_over_time({f}[{fresh}])" for f in QUEUE_FAMILIES if present.get(f)},
        }
        pool = self._pool
        if pool is None:  # polled by hand (tests, benchmarks): one after another
            answers = {k: self.client.query(q) for k, q in queries.items() if q}
        else:
            futures = {k: pool.submit(self.client.query, q) for k, q in queries.items() if q}
            answers = {k: f.result() for k, f in futures.items()}  # the first PromError propagates
        queue = [  # last_over_time drops the name: put it back, interpret tells the families apart by it
            Sample({**s.labels, "__name__": key.split(":", 1)[1]}, s.value)
            for key in [k for k in answers if k.startswith("queue:")]
            for s in answers.pop(key)
        ]
        return Reading(present=present, queue=queue, **answers)

    def poll_once(self) -> LiveState:
        """Query Prometheus now and interpret the answers (what the poller does each cycle)."""
        polled_at = time.time()
        return interpret(self.read(), self.index, polled_at)

    def _row(self, st: LiveState) -> dict[str, float]:
        """A sparkline row for a state."""
        nan = float("nan")
        seen = ~np.isnan(st.gpu_busy)
        busy = float(np.nansum(st.gpu_busy))
        util = np.where(st.link_known, st.link_load / np.maximum(self.fabric.link_cap, 1e-9), np.nan)
        fabric_u = util[self._fabric_links & st.link_known]
        phys = util[self._physical & st.link_known]
        row = dict.fromkeys(self.series.fields, nan)
        row.update(
            time_s=st.polled_at - self.t0,
            pflops=busy * self.scenario.gpu.peak_tflops / 1000.0,
            gpu_allocation=float((st.gpu_owner[seen] >= 0).mean()) if seen.any() else nan,
            gpu_utilization=float(st.gpu_busy[seen].mean()) if seen.any() else nan,
            jobs_running=st.running,
            jobs_queued=st.pending,
            facility_mw=self._facility_mw(st, busy),
            mean_link_util=float(fabric_u.mean()) if len(fabric_u) else nan,
            p99_link_util=float(np.percentile(phys, 99)) if len(phys) else nan,
            max_link_util=float(phys.max()) if len(phys) else nan,
        )
        return row

    def _facility_mw(self, st: LiveState, busy: float) -> float:
        """Measured GPU power plus the model's servers, switches and storage, times PUE; the power model
        on the measured utilisation where the GPUs report no power."""
        sc = self.scenario
        if not np.isfinite(st.node_power).any():
            return facility_watts(sc, busy, self.n_switches) / 1e6
        rest = facility_watts(sc, 0.0, self.n_switches) / sc.power.pue - sc.gpus * sc.gpu.idle_watts
        return (float(np.nansum(st.node_power)) + rest) * sc.power.pue / 1e6

    def _history_rows(self) -> list[dict[str, float]]:
        """The last hour of the sparkline figures from query_range (what can be had of it)."""
        end = time.time()
        step = max(self.scrape_s or DEFAULT_SCRAPE_S, HISTORY_S / 720)
        keep = "Hostname, hostname, instance, gpu"
        w = f"{self.window_s}s"
        exprs = {
            "busy": f"sum(max by ({keep}) ({ENGINE}) or max by ({keep}) ({GPU_UTIL}) / 100)",
            "gpus": f'count(max by ({keep}) ({{__name__=~"{ENGINE}|{GPU_UTIL}"}}))',
            "allocated": f'count(max by ({keep}) ({{__name__=~"{ENGINE}|{GPU_UTIL}", hpc_job!=""}}))',
            "power": f"sum({POWER})",
            "running": f"max({QUEUE_RUNNING})",
            "pending": f"max({QUEUE_PENDING})",
            "max_link": f"max(rate({NIC_TX}[{w}]) / on (instance, device, port) {NIC_RATE})",
        }
        columns: dict[str, dict[float, float]] = {}
        for key, expr in exprs.items():
            try:
                found = self.client.query_range(expr, end - HISTORY_S, end, step)
            except PromError as err:  # history is a nicety: only being unreachable stops the poll
                if err.unreachable:
                    raise
                found = []
            columns[key] = dict(zip(found[0].times.tolist(), found[0].values.tolist(), strict=True)) if found else {}
        times = sorted(set().union(*(c.keys() for c in columns.values())))
        sc = self.scenario
        nan = float("nan")
        rows = []
        for t in times:
            get = {k: c.get(t, nan) for k, c in columns.items()}
            row = dict.fromkeys(self.series.fields, nan)
            power = get["power"]
            rest = facility_watts(sc, 0.0, self.n_switches) / sc.power.pue - sc.gpus * sc.gpu.idle_watts
            row.update(
                time_s=t - self.t0,
                pflops=get["busy"] * sc.gpu.peak_tflops / 1000.0,
                gpu_allocation=get["allocated"] / get["gpus"] if get["gpus"] > 0 else nan,
                gpu_utilization=get["busy"] / get["gpus"] if get["gpus"] > 0 else nan,
                jobs_running=get["running"],
                jobs_queued=get["pending"],
                facility_mw=(power + rest) * sc.power.pue / 1e6 if math.isfinite(power) else nan,
                max_link_util=get["max_link"],
            )
            rows.append(row)
        return rows

    # --- what is read ------------------------------------------------------------------------------------

    def current(self) -> tuple[LiveState | None, Connection]:
        with self._lock:
            return self._state, self._conn

    def wait_for_data(self, timeout: float, check: Callable[[], None] | None = None) -> LiveState:
        """Block until a poll has brought data, rates included once they can be computed (at the deadline,
        data without some rates will do); PromError with the reason if no data came within ``timeout``
        seconds. ``check`` is called while waiting (it may raise to give up, e.g. on a stop signal)."""
        deadline = time.monotonic() + timeout
        while True:
            if check is not None:
                check()
            st, conn = self.current()
            if st is not None and not st.warming and not st.no_data.all():
                return st
            if time.monotonic() >= deadline:
                if st is not None and not st.no_data.all():
                    return st  # counters that never gave a rate (an exporter long gone): report the rest
                if conn.error:
                    raise PromError(conn.error, unreachable=True)
                if st is None:
                    raise PromError(f"{self.url}: no answer within {timeout:g} s")
                missing = ", ".join(st.missing) or "none"
                raise PromError(
                    f"{self.url}: no data from any server within {timeout:g} s (families missing: {missing})"
                )
            self._stop.wait(0.05)

    def banner(self, conn: Connection, st: LiveState | None) -> str:
        if not conn.error:
            return ""
        since = conn.since or time.time()
        clock = datetime.fromtimestamp(since).strftime("%H:%M:%S")
        held = "showing the last data" if st is not None else "no data yet"
        return f"Prometheus unreachable for {_age(time.time() - since)} (since {clock}); {held}"

    def snapshot(self) -> Snapshot:
        """The latest state as the view draws it (no network). Between polls only the clock, the data's
        age and the banner move, so the arrays of the last snapshot are reused."""
        self._drain()
        st, conn = self.current()
        cached = self._snap_cache
        if cached is not None and cached[0] is st and st is not None and cached[1] == conn:
            return dataclasses.replace(
                cached[2],
                time_s=self.now,
                metrics=self.series.latest(),
                data_age_s=time.time() - st.polled_at,
                banner=self.banner(conn, st),
            )
        snap = self._snapshot(st, conn)
        self._snap_cache = (st, conn, snap)
        return snap

    def _snapshot(self, st: LiveState | None, conn: Connection) -> Snapshot:
        fab = self.fabric
        n_nodes, gpn = fab.n_nodes, fab.gpus_per_node
        now = self.now
        if st is None:
            st = interpret(Reading(present={}), self.index, time.time())
            st = dataclasses.replace(st, no_data=np.ones(n_nodes, bool))
        busy0 = np.nan_to_num(st.gpu_busy)
        owner = st.gpu_owner
        held = owner >= 0
        first = np.where(held.any(axis=1), owner[np.arange(n_nodes), held.argmax(axis=1)], -1)
        util = np.where(st.link_known, st.link_load / np.maximum(fab.link_cap, 1e-9), 0.0)
        jobs, alerts = self._jobs(st, now)
        banner = self.banner(conn, self._state)
        notices = [self.notice] if self.notice else []
        if st.unknown_hosts:
            shown = ", ".join(st.unknown_hosts[:3])
            notices.append(
                f"{len(st.unknown_hosts)} hosts not in the site ({shown}{', ...' if len(st.unknown_hosts) > 3 else ''})"
            )
        if st.missing:
            notices.append(f"missing: {', '.join(st.missing)}")
        extra = {
            "gpu_util": np.where(st.no_data[:, None], np.nan, busy0),
            "no_data": st.no_data.copy(),
            "banner": banner,
            "data_age_s": time.time() - st.polled_at if self._state is not None else None,
            "notice": "; ".join(notices),
            "epoch_s": self.t0,
            "hottest": int(np.argmax(util)) if len(util) and util.max() > 0 else -1,
        }
        fields = {f.name for f in dataclasses.fields(Snapshot)}
        if banner and "banner" not in fields:
            alerts.append((now, banner, True))
        return Snapshot(
            time_s=now,
            gpu_owner=owner.copy(),
            node_job=first,
            node_util=busy0.mean(axis=1) if gpn else np.zeros(n_nodes),
            link_load=st.link_load.copy(),
            link_util=util,
            flows=dict(EMPTY_FLOWS),
            jobs=tuple(jobs),
            queue=(),
            metrics=self.series.latest(),
            peak_pflops=self.scenario.peak_pflops,
            down=self._down(st),
            dead_links=np.zeros(fab.n_links, bool),
            alerts=tuple(alerts[-4:]),
            **{k: v for k, v in extra.items() if k in fields},
        )

    def _down(self, st: LiveState) -> np.ndarray:
        """Per graph vertex: a server whose every GPU reports an XID error has failed."""
        down = np.zeros(len(self.fabric.names), bool)
        down[self.fabric.node_gid] = (st.gpu_xid != 0).all(axis=1) & ~st.no_data
        return down

    def _jobs(self, st: LiveState, now: float) -> tuple[list[JobView], list[tuple[float, str, bool]]]:
        """Running jobs (GPUs allocated but idle flagged in their phase) and the alarms."""
        fab = self.fabric
        servers = self.index.servers
        alerts: list[tuple[float, str, bool]] = []
        for n, g in zip(*np.nonzero(st.gpu_xid), strict=True):
            alerts.append((now, f"{servers[n]} GPU {g}: XID {st.gpu_xid[n, g]}", True))
        for n, g in zip(*np.nonzero(np.nan_to_num(st.gpu_temp) >= TEMP_ALARM_C), strict=True):
            alerts.append((now, f"{servers[n]} GPU {g}: {st.gpu_temp[n, g]:.0f} C", True))
        gpn = fab.gpus_per_node
        owner, busy = st.gpu_owner.reshape(-1), st.gpu_busy.reshape(-1)
        held = np.flatnonzero(owner >= 0)
        held = held[np.argsort(owner[held], kind="stable")]
        ids, starts = np.unique(owner[held], return_index=True)
        gpus_of = dict(zip(ids.tolist(), np.split(held, starts[1:]), strict=True)) if len(held) else {}
        nodes_of: dict[int, set[int]] = {}
        for n, js in enumerate(st.node_jobs):
            for j in js:
                nodes_of.setdefault(j, set()).add(n)
        jobs = []
        for job in sorted(nodes_of.keys() | gpus_of.keys()):
            mine = gpus_of.get(job, np.empty(0, np.int64))
            nodes = np.array(sorted(nodes_of.get(job, set()) | set((mine // gpn).tolist())), np.int64)
            gpus = len(mine) or len(nodes) * gpn
            idle = int((np.nan_to_num(busy[mine], nan=1.0) < IDLE_BUSY).sum())
            name = st.job_names.get(job, str(job))
            seen = busy[mine][np.isfinite(busy[mine])]
            phase = f"running, {seen.mean():.0%} busy" if len(seen) else "running"
            if idle:
                phase = f"{idle} of {gpus} GPUs allocated but idle"
                alerts.append((now, f"job {name}: {idle} allocated GPUs idle", False))
            jobs.append(JobView(job, f"job {name}", gpus, 0.0, phase, float("nan"), 1.0, nodes, 0.0, 0.0))
        return jobs, alerts

    def idle_allocated(self) -> list[tuple[str, int, str]]:
        """(server, GPU, job) for every GPU allocated to a job but idle in the latest state."""
        st, _ = self.current()
        if st is None:
            return []
        flagged = (st.gpu_owner >= 0) & (np.nan_to_num(st.gpu_busy, nan=1.0) < IDLE_BUSY)
        return [
            (self.index.servers[n] or "", int(g), st.job_names.get(int(st.gpu_owner[n, g]), ""))
            for n, g in zip(*np.nonzero(flagged), strict=True)
        ]

    def report(self) -> dict[str, Any]:
        """The latest state as scripts read it (``--report``)."""
        st, _conn = self.current()
        if st is None:
            raise PromError(f"{self.url}: no data yet")
        fab = self.fabric
        servers: dict[str, Any] = {}
        for n, name in enumerate(self.index.servers):
            if name is None:
                continue
            off = bool(st.no_data[n])
            power = st.node_power[n]
            servers[name] = {
                "gpu_busy": [None if off or not math.isfinite(b) else float(b) for b in st.gpu_busy[n].tolist()],
                "jobs": [_job_id(st.job_names.get(j, str(j))) for j in st.node_jobs[n]],
                "power_w": None if off or not np.isfinite(power) else float(power),
                "state": "no data" if off else "ok",
            }
        links: dict[str, dict[str, float]] = {}
        cap = np.maximum(fab.link_cap, 1e-9)
        for e in range(fab.n_edges):
            a, b = 2 * e, 2 * e + 1
            if fab.link_kind[a] not in (HOST, FABRIC) or not (st.link_known[a] or st.link_known[b]):
                continue
            name = f"{fab.names[fab.link_src[a]]}--{fab.names[fab.link_dst[a]]}"
            links[name] = {"tx": float(st.link_load[a] / cap[a]), "rx": float(st.link_load[b] / cap[b])}
        return {
            "time": datetime.fromtimestamp(st.polled_at, UTC).isoformat(timespec="seconds"),
            "data_age_s": round(time.time() - st.polled_at, 3),
            "prometheus": self.url,
            "servers": servers,
            "links": links,
            "queue": {"running": st.running, "pending": st.pending},
            "missing": list(st.missing),
        }


def _any(present: dict[str, int], names: tuple[str, ...]) -> bool:
    return any(present.get(n, 0) > 0 for n in names)


def _job_id(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
