"""The site's fabric: a networkx graph of servers, switches, storage and links, and the flat arrays that
the simulator works on.

``build_fabric(scenario)`` is a pure function: it returns a new :class:`Fabric`. Every physical link (an
undirected graph edge, parallel cables merged into one) becomes two directed links, ``2e`` (u to v) and
``2e + 1`` (v to u), since the fabric is full duplex. After them come virtual links that are not
cables: each storage array's read and write throughput, and one dead link of capacity zero that
unroutable flows are pinned to.

With a ``[storage_fabric]`` the site has a second network: every server's storage NICs (one merged cable
to its storage leaf), storage leaves, storage spines (vertex kinds LEAF and SPINE, told apart by
``Fabric.network``) and the arrays on those spines. Its cables are link kinds ``storage-nic`` and
``storage-fabric`` (and ``storage`` for the arrays'), and ``Fabric.link_tier`` names every link's tier
(``LINK_TIERS``) so statistics can be kept per tier. Sites without one are built exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from twin.scenario import Scenario

# Kinds of graph vertex, as codes in Fabric.kind.
NODE, LEAF, SPINE, CORE, STORAGE, GATEWAY = range(6)
VERTEX_KINDS = ("node", "leaf", "spine", "core", "storage", "gateway")
SWITCH_KINDS = (LEAF, SPINE, CORE)

# Kinds of link, as codes in Fabric.link_kind: storage-nic is a server's storage NICs to its storage leaf,
# storage-fabric a storage leaf's cables to a storage spine (both only with a storage network).
HOST, FABRIC, STORAGE_LINK, GATEWAY_LINK, VIRTUAL, STORAGE_NIC, STORAGE_FABRIC = range(7)
LINK_KINDS = ("host", "fabric", "storage", "gateway", "virtual", "storage-nic", "storage-fabric")

# Tiers of link, as codes in Fabric.link_tier: what statistics are kept per. "storage" is every cable of
# storage traffic only (the storage network's, or arrays' cables into compute switches).
T_HOST, T_LEAF_SPINE, T_SPINE_CORE, T_STORAGE, T_GATEWAY, T_VIRTUAL = range(6)
LINK_TIERS = ("host", "leaf-spine", "spine-core", "storage", "gateway", "virtual")

# Networks, as codes in Fabric.network (per vertex).
COMPUTE_NET, STORAGE_NET = 0, 1
NETWORKS = ("compute", "storage")

GBIT = 1e9 / 8  # bytes per second in one Gb/s
GBYTE = 1e9


@dataclass
class Fabric:
    """The built site. Arrays are indexed by graph vertex id (``gid``), compute node (``n``) or link."""

    graph: nx.Graph
    names: list[str]
    kind: np.ndarray  # int8 per gid
    node_gid: np.ndarray  # gid of compute node n
    node_rack: np.ndarray
    node_domain: np.ndarray  # leaf domain: what topology-aware placement packs into
    node_pod: np.ndarray
    gpus_per_node: int
    rails: int
    link_src: np.ndarray  # gid
    link_dst: np.ndarray
    link_cap: np.ndarray  # bytes/s
    link_kind: np.ndarray  # int8
    host_up: np.ndarray  # [n, rail] directed link node -> leaf
    host_down: np.ndarray  # [n, rail] directed link leaf -> node
    storage_gid: np.ndarray
    storage_read: np.ndarray  # virtual link id per array
    storage_write: np.ndarray
    gateway_gid: int
    dead_link: int
    switch_nbrs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # gid -> [(nbr, link)]
    attachments: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)  # gid -> [(sw, up, down)]
    topology: str = "leaf-spine"  # the scenario's kind
    tiers: int = 2  # switch tiers: 2, or 3 with a core tier (a fat-tree, or a leaf-spine or rail site with cores)
    network: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # per gid: COMPUTE_NET | STORAGE_NET
    link_tier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # per link: LINK_TIERS code
    # The storage network (empty without one): per node its storage-NIC links up to and down from its
    # storage leaf, the node's leaf (index into storage_leaves), and directed links leaf -> spine and
    # array -> spine per (leaf or array, spine), -1 where there is no cable.
    storage_up: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    storage_down: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    node_storage_leaf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    storage_leaves: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # gids
    storage_spines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # gids
    storage_leaf_up: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    storage_array_up: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))

    @property
    def n_nodes(self) -> int:
        return len(self.node_gid)

    @property
    def n_gpus(self) -> int:
        return self.n_nodes * self.gpus_per_node

    @property
    def n_links(self) -> int:
        return len(self.link_src)

    @property
    def n_edges(self) -> int:
        return self.graph.number_of_edges()

    @property
    def has_storage_fabric(self) -> bool:
        """Storage traffic has a network of its own (it never crosses the compute fabric)."""
        return len(self.storage_up) > 0

    @property
    def switch_gids(self) -> np.ndarray:
        return np.flatnonzero(np.isin(self.kind, SWITCH_KINDS))

    def endpoints(self, gid: int, rail: int | None) -> list[tuple[int, int, int]]:
        """Where a vertex meets the switches: (switch, uplink, downlink); a host uses one rail only."""
        att = self.attachments[gid]
        if self.kind[gid] == NODE and rail is not None:
            return [att[rail % len(att)]]
        return att


def build_fabric(scenario: Scenario) -> Fabric:
    """Wire the scenario's site; see TopologySpec for what each kind means."""
    b = _Builder()
    topo, node = scenario.topology, scenario.node
    n_nodes = scenario.nodes
    rails = node.nics if topo.kind == "rail-optimized" else 1
    host_gbps = node.nic_gbps if rails > 1 else node.nics * node.nic_gbps
    nodes = [
        b.vertex(f"node-{n:04d}", NODE, rack=n // topo.nodes_per_rack, index=n, gpus=node.gpus) for n in range(n_nodes)
    ]
    rack = np.arange(n_nodes) // topo.nodes_per_rack
    if topo.kind != "fat-tree":
        domain, pod, attach, top = _leaves_and_spines(b, scenario, nodes, rails, host_gbps)
    else:  # fat-tree
        k, half = topo.k, topo.k // 2
        domain, pod = rack.copy(), rack // half
        cores = [b.vertex(f"core-{c:02d}", CORE, index=c) for c in range(half * half)]
        aggs = [[b.vertex(f"agg-p{p:02d}-{a}", SPINE, pod=p, index=a) for a in range(half)] for p in range(k)]
        edges = [
            [b.vertex(f"edge-p{p:02d}-{e}", LEAF, pod=p, rack=p * half + e) for e in range(half)] for p in range(k)
        ]
        for n in range(n_nodes):
            b.edge(nodes[n], edges[pod[n]][rack[n] % half], HOST, host_gbps)
        for p in range(k):
            for a in range(half):
                for e in range(half):
                    b.edge(edges[p][e], aggs[p][a], FABRIC, topo.port_gbps)
                for c in range(half):
                    b.edge(aggs[p][a], cores[a * half + c], FABRIC, topo.port_gbps)
        attach = {
            "core": cores,
            "spine": [aggs[p][a] for a in range(half) for p in range(k)],
            "leaf": [edges[p][e] for e in range(half) for p in range(k)],
        }
        top = cores
    gateway = b.vertex("gateway", GATEWAY)
    for sw in top:
        b.edge(gateway, sw, GATEWAY_LINK, topo.port_gbps)
    if scenario.storage_fabric is not None:
        attach["storage"] = _storage_network(b, scenario, nodes)
    storage = []
    for i, st in enumerate(scenario.storage):
        extra = {"network": "storage"} if st.attach == "storage" else {}
        gid = b.vertex(st.name, STORAGE, index=i, capacity_pb=st.capacity_pb, **extra)
        storage.append(gid)
        targets = attach[st.attach]
        port = scenario.storage_fabric.port_gbps if st.attach == "storage" else topo.port_gbps
        offset = (i * st.ports) % len(targets)
        for j, count in enumerate(_spread(st.ports, len(targets))):
            if count:
                b.edge(gid, targets[(j + offset) % len(targets)], STORAGE_LINK, count * port, ports=count)
    return b.finish(
        scenario,
        node_gids=nodes,
        rack=rack,
        domain=domain,
        pod=pod,
        rails=rails,
        storage=storage,
        gateway=gateway,
    )


def _leaves_and_spines(
    b: _Builder, scenario: Scenario, nodes: list[int], rails: int, host_gbps: float
) -> tuple[np.ndarray, np.ndarray, dict[str, list[int]], list[int]]:
    """Leaf-spine and rail-optimized sites: a leaf per rack (or per rail of a unit), spines above them and,
    with ``cores``, a third tier (see TopologySpec). Returns each node's leaf domain and pod, the switches
    storage may attach to per tier, and the top tier (where the gateway plugs in)."""
    topo = scenario.topology
    n_nodes = len(nodes)
    rail_opt = topo.kind == "rail-optimized"
    domain = np.arange(n_nodes) // (topo.nodes_per_unit if rail_opt else topo.nodes_per_rack)
    units = n_nodes // topo.nodes_per_unit if rail_opt else topo.racks
    per_pod = topo.leaves_per_pod if topo.cores else units
    pods = units // per_pod
    pod = domain // per_pod if topo.cores else np.zeros(n_nodes, int)
    tag = [f"-r{r}" if rail_opt else "" for r in range(rails)]

    def rail_of(r: int) -> dict[str, int]:  # a rail attribute only on rail-optimized sites
        return {"rail": r} if rail_opt else {}

    cores = [
        [b.vertex(f"core{tag[r]}-{c:03d}", CORE, index=c, **rail_of(r)) for c in range(topo.cores)]
        for r in range(rails)
    ]
    if topo.cores:
        spines = [
            [
                [
                    b.vertex(f"spine-p{p:02d}{tag[r]}-{s:02d}", SPINE, pod=p, index=s, **rail_of(r))
                    for s in range(topo.spines)
                ]
                for r in range(rails)
            ]
            for p in range(pods)
        ]
    elif rail_opt:
        spines = [
            [
                [b.vertex(f"spine-r{r}-{s:02d}", SPINE, rail=r, index=s) for s in range(topo.spines)]
                for r in range(rails)
            ]
        ]
    else:
        spines = [[[b.vertex(f"spine-{s:02d}", SPINE, index=s) for s in range(topo.spines)]]]
    if rail_opt:
        leaves = [
            [
                b.vertex(f"leaf-u{u:02d}-r{r}", LEAF, unit=u, rail=r, **({"pod": u // per_pod} if topo.cores else {}))
                for r in range(rails)
            ]
            for u in range(units)
        ]
    else:
        leaves = [
            [b.vertex(f"leaf-{u:03d}", LEAF, rack=u, index=u, **({"pod": u // per_pod} if topo.cores else {}))]
            for u in range(units)
        ]
    for n in range(n_nodes):
        for r in range(rails):
            b.edge(nodes[n], leaves[domain[n]][r], HOST, host_gbps, **rail_of(r))
    spread = _spread(scenario.leaf_uplinks, topo.spines)
    for u in range(units):
        for r in range(rails):
            for s, count in enumerate(spread):
                if count:
                    above = spines[u // per_pod][r][s]
                    b.edge(leaves[u][r], above, FABRIC, count * topo.port_gbps, ports=count, **rail_of(r))
    group = topo.cores // topo.spines if topo.cores else 0
    for p in range(pods if topo.cores else 0):
        for r in range(rails):
            for s, ups in enumerate(scenario.spine_uplinks):
                # Spine s of every pod spreads its uplinks over core group s, each pod starting further on.
                offset = (p * ups) % group
                for i, count in enumerate(_spread(ups, group)):
                    if count:
                        core = cores[r][s * group + (i + offset) % group]
                        b.edge(spines[p][r][s], core, FABRIC, count * topo.port_gbps, ports=count, **rail_of(r))
    # Interleave rails (and core groups) so that round-robin attachment reaches every rail plane (and
    # every spine of a pod).
    attach = {
        "core": [cores[r][s * group + i] for i in range(group) for s in range(topo.spines) for r in range(rails)],
        "spine": [spines[p][r][s] for p in range(len(spines)) for s in range(topo.spines) for r in range(rails)],
        "leaf": [leaves[u][r] for u in range(units) for r in range(rails)],
    }
    # The gateway plugs into the top tier: every spine, or with cores the first core of every group (one
    # per spine of a pod and rail: ECMP spreads inference traffic over every spine without thousands of
    # gateway ports).
    top = attach["core"][: topo.spines * rails] or attach["spine"]
    return domain, pod, attach, top


def _storage_network(b: _Builder, scenario: Scenario, nodes: list[int]) -> list[int]:
    """The storage network (see StorageFabricSpec): storage leaves and spines, every server's storage NICs
    to its leaf (one merged cable), each leaf's uplinks spread over the spines. Returns the spines (where
    the arrays attach)."""
    sf = scenario.storage_fabric
    assert sf is not None
    net = {"network": "storage"}
    leaves = [b.vertex(f"storage-leaf-{i:03d}", LEAF, index=i, **net) for i in range(sf.leaves(len(nodes)))]
    spines = [b.vertex(f"storage-spine-{j:02d}", SPINE, index=j, **net) for j in range(sf.spines)]
    for n, gid in enumerate(nodes):
        b.edge(gid, leaves[n // sf.servers_per_leaf], STORAGE_NIC, sf.nics * sf.nic_gbps, ports=sf.nics)
    for leaf in leaves:
        for j, count in enumerate(_spread(sf.leaf_uplinks, sf.spines)):
            if count:
                b.edge(leaf, spines[j], STORAGE_FABRIC, count * sf.port_gbps, ports=count)
    return spines


def _spread(total: int, bins: int) -> list[int]:
    """Split ``total`` ports over ``bins`` switches as evenly as possible."""
    base, extra = divmod(total, bins)
    return [base + (1 if i < extra else 0) for i in range(bins)]


class _Builder:
    """Collects vertices and edges, then freezes them into a Fabric."""

    def __init__(self) -> None:
        self.graph = nx.Graph()
        self.names: list[str] = []
        self.kinds: list[int] = []

    def vertex(self, name: str, kind: int, **attrs: object) -> int:
        gid = len(self.names)
        self.names.append(name)
        self.kinds.append(kind)
        self.graph.add_node(gid, name=name, kind=VERTEX_KINDS[kind], **attrs)
        return gid

    def edge(self, u: int, v: int, kind: int, gbps: float, ports: int = 1, rail: int = -1) -> None:
        self.graph.add_edge(u, v, kind=LINK_KINDS[kind], capacity=gbps * GBIT, gbps=gbps, ports=ports, rail=rail)

    def finish(
        self,
        scenario: Scenario,
        node_gids: list[int],
        rack: np.ndarray,
        domain: np.ndarray,
        pod: np.ndarray,
        rails: int,
        storage: list[int],
        gateway: int,
    ) -> Fabric:
        g = self.graph
        edges = list(g.edges(data=True))
        n_edges = len(edges)
        n_virtual = 2 * len(storage) + 1
        total = 2 * n_edges + n_virtual
        src = np.empty(total, np.int32)
        dst = np.empty(total, np.int32)
        cap = np.empty(total, np.float64)
        kind = np.empty(total, np.int8)
        kinds = np.array(self.kinds, np.int8)
        switch_nbrs: dict[int, list[tuple[int, int]]] = {
            gid: [] for gid in range(len(kinds)) if kinds[gid] in SWITCH_KINDS
        }
        attachments: dict[int, list[tuple[int, int, int]]] = {
            gid: [] for gid in range(len(kinds)) if kinds[gid] not in SWITCH_KINDS
        }
        storage_nic: dict[int, tuple[int, int, int]] = {}  # server gid -> (storage leaf, up, down)
        for e, (u, v, d) in enumerate(edges):
            g.edges[u, v]["link"] = 2 * e
            src[2 * e], dst[2 * e] = u, v
            src[2 * e + 1], dst[2 * e + 1] = v, u
            cap[2 * e : 2 * e + 2] = d["capacity"]
            kind[2 * e : 2 * e + 2] = LINK_KINDS.index(d["kind"])
            for a, b_, out, back in ((u, v, 2 * e, 2 * e + 1), (v, u, 2 * e + 1, 2 * e)):
                if kinds[a] in SWITCH_KINDS and kinds[b_] in SWITCH_KINDS:
                    switch_nbrs[a].append((b_, out))
                elif kind[2 * e] == STORAGE_NIC:  # kept apart: a server's attachments are its compute NICs
                    if kinds[a] == NODE:
                        storage_nic[a] = (b_, out, back)
                elif kinds[a] not in SWITCH_KINDS:
                    attachments[a].append((b_, out, back))
        read = np.empty(len(storage), np.int32)
        write = np.empty(len(storage), np.int32)
        at = 2 * n_edges
        for i, (gid, spec) in enumerate(zip(storage, scenario.storage, strict=True)):
            read[i], write[i] = at, at + 1
            src[at : at + 2] = gid
            dst[at : at + 2] = gid
            cap[at], cap[at + 1] = spec.read_gbs * GBYTE, spec.write_gbs * GBYTE
            kind[at : at + 2] = VIRTUAL
            at += 2
        src[at] = dst[at] = gateway
        cap[at] = 0.0
        kind[at] = VIRTUAL
        network = np.array([NETWORKS.index(g.nodes[v].get("network", "compute")) for v in g.nodes], np.int8)
        store = _StorageArrays.of(self, network, node_gids, storage, storage_nic, switch_nbrs, attachments)
        n = len(node_gids)
        host_up = np.empty((n, rails), np.int32)
        host_down = np.empty((n, rails), np.int32)
        for i, gid in enumerate(node_gids):
            atts = attachments[gid]
            if rails > 1:  # order a host's uplinks by rail, so index r is rail r
                atts.sort(key=lambda a: g.nodes[a[0]]["rail"])
            for r in range(rails):
                host_up[i, r], host_down[i, r] = atts[r][1], atts[r][2]
        return Fabric(
            graph=g,
            names=self.names,
            kind=kinds,
            node_gid=np.array(node_gids, np.int32),
            node_rack=np.asarray(rack, np.int32),
            node_domain=np.asarray(domain, np.int32),
            node_pod=np.asarray(pod, np.int32),
            gpus_per_node=scenario.node.gpus,
            rails=rails,
            link_src=src,
            link_dst=dst,
            link_cap=cap,
            link_kind=kind,
            host_up=host_up,
            host_down=host_down,
            storage_gid=np.array(storage, np.int32),
            storage_read=read,
            storage_write=write,
            gateway_gid=gateway,
            dead_link=at,
            switch_nbrs=switch_nbrs,
            attachments=attachments,
            topology=scenario.topology.kind,
            tiers=scenario.topology.tiers,
            network=network,
            link_tier=_link_tiers(kind, kinds[src], kinds[dst]),
            storage_up=store.up,
            storage_down=store.down,
            node_storage_leaf=store.node_leaf,
            storage_leaves=store.leaves,
            storage_spines=store.spines,
            storage_leaf_up=store.leaf_up,
            storage_array_up=store.array_up,
        )


def _link_tiers(kind: np.ndarray, src_kind: np.ndarray, dst_kind: np.ndarray) -> np.ndarray:
    """Every link's tier (LINK_TIERS) from its kind and its ends' vertex kinds."""
    tier = np.full(len(kind), T_VIRTUAL, np.int8)
    tier[kind == HOST] = T_HOST
    core = (src_kind == CORE) | (dst_kind == CORE)
    tier[(kind == FABRIC) & ~core] = T_LEAF_SPINE
    tier[(kind == FABRIC) & core] = T_SPINE_CORE
    tier[np.isin(kind, (STORAGE_LINK, STORAGE_NIC, STORAGE_FABRIC))] = T_STORAGE
    tier[kind == GATEWAY_LINK] = T_GATEWAY
    return tier


@dataclass(frozen=True)
class _StorageArrays:
    """The storage network as flat arrays (see the Fabric fields of the same names)."""

    up: np.ndarray
    down: np.ndarray
    node_leaf: np.ndarray
    leaves: np.ndarray
    spines: np.ndarray
    leaf_up: np.ndarray
    array_up: np.ndarray

    @staticmethod
    def of(
        b: _Builder,
        network: np.ndarray,
        node_gids: list[int],
        storage: list[int],
        storage_nic: dict[int, tuple[int, int, int]],
        switch_nbrs: dict[int, list[tuple[int, int]]],
        attachments: dict[int, list[tuple[int, int, int]]],
    ) -> _StorageArrays:
        if not storage_nic:
            z = np.zeros(0, np.int32)
            return _StorageArrays(z, z, z, z, z, np.zeros((0, 0), np.int32), np.zeros((0, 0), np.int32))
        kinds = np.array(b.kinds)
        leaves = np.flatnonzero((network == STORAGE_NET) & (kinds == LEAF)).astype(np.int32)
        spines = np.flatnonzero((network == STORAGE_NET) & (kinds == SPINE)).astype(np.int32)
        local = {int(g): i for i, g in enumerate(spines.tolist())}
        local.update({int(g): i for i, g in enumerate(leaves.tolist())})
        ends = np.array([storage_nic[g] for g in node_gids], np.int64)
        leaf_up = np.full((len(leaves), len(spines)), -1, np.int32)
        for i, leaf in enumerate(leaves.tolist()):
            for nbr, out in switch_nbrs[leaf]:
                leaf_up[i, local[nbr]] = out
        array_up = np.full((len(storage), len(spines)), -1, np.int32)
        for a, gid in enumerate(storage):
            for sw, up, _ in attachments[gid]:
                if network[sw] == STORAGE_NET:
                    array_up[a, local[sw]] = up
        node_leaf = np.array([local[int(v)] for v in ends[:, 0]], np.int32)
        return _StorageArrays(
            ends[:, 1].astype(np.int32), ends[:, 2].astype(np.int32), node_leaf, leaves, spines, leaf_up, array_up
        )
