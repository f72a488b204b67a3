"""The storage network: a [storage_fabric] of storage NICs, leaves and spines with the arrays on it; reads
and checkpoints striped over every array across it and never across the compute fabric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_ops import toml_text
from test_topology import THREE_TIER
from test_wiring import built_ports

from conftest import ROOT, site
from helpers import job, pinned
from twin.cli import main
from twin.errors import ScenarioError
from twin.faults import FAULT_KINDS
from twin.flows import CHECKPOINT, DATA
from twin.routing import Router
from twin.scenario import load_scenario, scenario_from_dict, site_size
from twin.simulation import Simulation
from twin.site import describe
from twin.storage import checkpoint_flows, read_parts, reads_of_one_server, striped
from twin.topology import (
    LINK_TIERS,
    STORAGE_NET,
    STORAGE_NIC,
    T_STORAGE,
    T_VIRTUAL,
    build_fabric,
)

W_GBS = 5.0  # each array's write bandwidth in the small site


def storage_site(**fabric: object) -> dict:
    """The base test site (4 servers of 8 GPUs on 2 leaves) with a storage network: 2 storage NICs of
    100 Gb/s per server, 2 servers per storage leaf (2 leaves), 2 storage spines of 8 ports, and two
    arrays of 10 GB/s read, 5 GB/s write with 2 ports each."""
    data = site()
    data["storage_fabric"] = {
        "nics": 2,
        "nic_gbps": 100,
        "servers_per_leaf": 2,
        "spines": 2,
        "leaf_radix": 8,
        "spine_radix": 8,
        "port_gbps": 100,
    } | fabric
    array = {"capacity_pb": 1, "read_gbs": 10, "write_gbs": W_GBS, "ports": 2, "attach": "storage"}
    data["storage"] = [{"name": f"pfs-{i}", **array} for i in range(2)]
    return data


@pytest.fixture
def fab():
    return build_fabric(scenario_from_dict(storage_site()))


def test_ports_and_cables_are_hand_counted() -> None:
    scenario = scenario_from_dict(storage_site())
    d = describe(scenario)
    cables = {c.name: c.count for c in d.cables if c.network == "storage"}
    # 4 servers x 2 NICs; 2 leaves x 4 uplinks (4 x 100 Gb/s down at 1:1); 2 arrays x 2 ports.
    assert cables == {"server-to-storage-leaf": 8, "storage-leaf-to-spine": 8, "array-to-storage-spine": 4}
    assert d.cables_in("storage") == 20 and d.cables_in("compute") == 4 + 4
    leaf, spine = (t for t in d.tiers if t.network == "storage")
    assert (leaf.switches, leaf.busiest, leaf.ports_used, leaf.ports) == (2, 8, 16, 16)
    # A spine: 2 uplinks from each leaf and one port of each array.
    assert (spine.switches, spine.busiest, spine.ports_used) == (2, 2 * 2 + 2, 12)
    fab = build_fabric(scenario)
    used, built = built_ports(scenario, fab)
    storage_switches = [g for g in used if fab.network[g] == STORAGE_NET]
    assert sorted(used[g] for g in storage_switches) == [6, 6, 8, 8]
    assert built["storage-nic"] + built["storage-fabric"] + built["storage"] == 20
    # The numbers alone (site_size) agree with what is built: 4 + 4 switches; 10 compute edges (4 host,
    # 4 leaf-spine, 2 gateway) and 12 storage edges (4 servers' NICs, 2 x 2 leaf-spine, 2 x 2 array).
    size = site_size(scenario)
    assert (size.switches, size.cables) == (len(fab.switch_gids), fab.n_edges) == (8, 22)
    assert fab.names[int(fab.storage_leaves[0])] == "storage-leaf-000"


def test_every_link_has_a_tier(fab) -> None:
    tiers = {LINK_TIERS[t]: int(n) for t, n in enumerate(np.bincount(fab.link_tier, minlength=len(LINK_TIERS)))}
    # Directed links: 4 host + 4 leaf-spine + 2 gateway cables, 12 storage cables, x 2; 2 x 2 + 1 virtual.
    assert tiers == {"host": 8, "leaf-spine": 8, "spine-core": 0, "storage": 24, "gateway": 4, "virtual": 5}
    # A server's attachments stay its compute NICs (routing and rails see only those).
    assert all(len(fab.attachments[int(g)]) == 1 for g in fab.node_gid)
    assert (fab.link_kind[fab.storage_up] == STORAGE_NIC).all()


def test_a_read_is_striped_evenly_over_every_array_and_never_crosses_the_compute_fabric(fab) -> None:
    spec = job(3, gpus=32, duration=100, read_mbs_per_gpu=100.0)
    nodes = np.arange(4)
    src, _, demand, (flow, link, frac) = read_parts(spec, nodes, np.full(4, 8), fab, Router(fab), 5)
    # One flow per server and array, numbered from 5: each a half of the server's 800 MB/s.
    assert len(src) == 8 and set(flow.tolist()) == set(range(5, 13))
    assert demand == pytest.approx(np.full(8, 400e6))
    assert sorted(src.tolist()) == sorted(fab.storage_gid.tolist() * 4)
    assert set(fab.link_tier[link].tolist()) <= {T_STORAGE, T_VIRTUAL}
    load = np.bincount(link, weights=frac * demand[flow - 5], minlength=fab.n_links)
    # Every array's read limit carries an equal share; every server's storage NICs carry all it reads.
    assert load[fab.storage_read] == pytest.approx(np.full(2, 4 * 800e6 / 2))
    assert load[fab.storage_down] == pytest.approx(np.full(4, 800e6))
    assert load[fab.storage_up].sum() == 0
    # ECMP over both storage spines: each leaf's downlinks from them share its two servers' reads.
    assert load[fab.storage_leaf_up ^ 1] == pytest.approx(np.full((2, 2), 800e6))
    one = reads_of_one_server(spec, 8, 2, fab, Router(fab), (3, 0))
    assert one.demand == pytest.approx([400e6, 400e6]) and (one.kind == DATA).all()
    assert set(fab.link_tier[one.entry_link].tolist()) <= {T_STORAGE, T_VIRTUAL}


def test_a_checkpoint_is_limited_by_the_arrays_write_bandwidth_and_conserves_its_bytes(fab) -> None:
    spec = job(1, gpus=32, duration=100, params_b=10.0)  # 140 GB of weights and optimiser state
    group, seconds = checkpoint_flows(spec, np.arange(4), fab, Router(fab))
    # 4 servers' NICs (25 GB/s each) outrun two arrays of 5 GB/s: bytes / (2 W).
    assert seconds == pytest.approx(140e9 / (2 * W_GBS * 1e9))
    assert group.demand.sum() * seconds == pytest.approx(spec.checkpoint_bytes)
    assert (group.kind == CHECKPOINT).all() and set(group.dst.tolist()) == set(fab.storage_gid.tolist())
    load = np.bincount(group.entry_link, weights=group.entry_frac * group.demand[group.entry_flow])
    assert load[fab.storage_write] == pytest.approx(np.full(2, W_GBS * 1e9))
    assert set(fab.link_tier[group.entry_link].tolist()) <= {T_STORAGE, T_VIRTUAL}


def test_slow_storage_nics_limit_a_checkpoint() -> None:
    # One storage NIC of 10 Gb/s (1.25 GB/s) per server, below its 2.5 GB/s share of the arrays.
    fab = build_fabric(scenario_from_dict(storage_site(nics=1, nic_gbps=10, spines=1)))
    spec = job(1, gpus=32, duration=100, params_b=10.0)
    _, seconds = checkpoint_flows(spec, np.arange(4), fab, Router(fab))
    assert seconds == pytest.approx(140e9 / 4 / 1.25e9)


def test_a_simulated_checkpoint_takes_its_write_time() -> None:
    sim = Simulation(scenario_from_dict(storage_site()), seed=1)
    sim.policy = pinned([[0, 1, 2, 3]])
    sim.submit(job(0, gpus=32, duration=1000, params_b=10.0, checkpoint_s=300, read_mbs_per_gpu=50.0))
    sim.run(200)
    sim.check_invariants()
    load = sim.flows.link_load
    compute = np.isin(sim.fabric.link_tier, (0, 1))  # host and leaf-spine: the ring only, no reads
    reads = sim.fabric.storage_read
    assert load[reads] == pytest.approx(np.full(2, 4 * 8 * 50e6 / 2)) and load[compute].sum() > 0
    sim.run(1200)
    assert sim.totals.jcts == [pytest.approx(1000 + 3 * 14.0)]
    assert sim.totals.traffic_bytes[CHECKPOINT] == pytest.approx(3 * 140e9)


def test_reads_go_around_a_failed_storage_spine(fab) -> None:
    alive = np.ones(fab.n_links, bool)
    spine = int(fab.storage_spines[0])
    alive[(fab.link_src == spine) | (fab.link_dst == spine)] = False
    flow, link, frac = striped(fab, np.arange(4), alive, write=False)
    assert alive[link].all()
    on_leaf = np.isin(link, fab.storage_leaf_up[:, 1] ^ 1)
    assert frac[on_leaf] == pytest.approx(1.0)  # all of it over the spine that is left
    alive[fab.storage_down[0]] = False  # server 0's storage NICs down: its flows are stuck, not lost
    flow, link, _ = striped(fab, np.arange(4), alive, write=False)
    assert set(link[flow < 2].tolist()) == {fab.dead_link}


def test_storage_switches_and_cables_can_fail_and_the_simulation_reroutes() -> None:
    data = storage_site()
    data["faults"] = {"event": [{"at": 60, "target": "storage-spine-00", "minutes": 10}]}
    sim = Simulation(scenario_from_dict(data), seed=1)
    fab = sim.fabric
    assert set(fab.storage_spines.tolist()) <= set(FAULT_KINDS["switch"].population(fab).tolist())
    sim.policy = pinned([[0, 1, 2, 3]])
    sim.submit(job(0, gpus=32, duration=3000, read_mbs_per_gpu=50.0))
    sim.run(120)
    sim.check_invariants()  # no traffic on the dead spine's links
    assert sim.flows.link_load[fab.storage_read].sum() == pytest.approx(4 * 8 * 50e6)
    sim.run(1000)  # repaired at 660 s
    sim.check_invariants()
    assert sim.flows.link_load[fab.storage_read].sum() == pytest.approx(4 * 8 * 50e6)
    assert (sim.flows.link_load[fab.storage_leaf_up[:, 0] ^ 1] > 0).all()  # both spines carry reads again


def test_a_storage_array_fault_still_slows_reads() -> None:
    data = storage_site()
    data["faults"] = {"event": [{"at": 60, "target": "pfs-1", "action": "degrade", "factor": 0.01, "minutes": 0}]}
    sim = Simulation(scenario_from_dict(data), seed=1)
    sim.policy = pinned([[0, 1, 2, 3]])
    sim.submit(job(0, gpus=32, duration=3000, read_mbs_per_gpu=100.0))
    sim.run(120)
    sim.check_invariants()
    # 3.2 GB/s striped: 1.6 GB/s per array; pfs-1 has 0.1 GB/s left, so the job reads at 1/16 speed.
    assert sim.flows.link_load[sim.fabric.storage_read] == pytest.approx(np.full(2, 0.1e9))


def test_sites_without_a_storage_network_have_none(shipped: Path) -> None:
    scenario = load_scenario(shipped)
    fab = build_fabric(scenario)
    assert fab.has_storage_fabric == (scenario.storage_fabric is not None)
    if not fab.has_storage_fabric:
        assert not (fab.network == STORAGE_NET).any() and not (fab.link_kind == STORAGE_NIC).any()
    assert len(fab.link_tier) == fab.n_links and (fab.link_tier[fab.storage_read] == T_VIRTUAL).all()


def test_lingang_runs_with_its_storage_network() -> None:
    sim = Simulation(load_scenario(ROOT / "scenarios" / "lingang.toml"), seed=3)
    fab = sim.fabric
    assert fab.has_storage_fabric and len(fab.storage_leaves) == 150 and len(fab.storage_spines) == 4
    sim.advance(900)
    sim.check_invariants()
    flows = sim.snapshot().flows
    storage_kinds = np.isin(flows["kind"], (DATA, CHECKPOINT))
    mine = np.isin(flows["entry_flow"], np.flatnonzero(storage_kinds))
    assert mine.any()
    assert set(fab.link_tier[flows["entry_link"][mine]].tolist()) <= {T_STORAGE, T_VIRTUAL}


BAD = [
    ({"storage_fabric.servers_per_leaf": 3}, "storage_fabric.servers_per_leaf", "a divisor of the site's 4 servers"),
    ({"storage_fabric.leaf_radix": 6}, "storage_fabric.leaf_radix", "at least 8 ports on a storage leaf"),
    ({"storage_fabric.spine_radix": 4}, "storage_fabric.spine_radix", "at least 6 ports on a storage spine"),
    ({"storage_fabric.spines": 5}, "storage_fabric.spines", "a divisor of a storage leaf's 4 uplinks"),
    ({"storage_fabric.spines": 3}, "storage_fabric.spines", "a divisor of a storage leaf's 4 uplinks"),
    ({"storage_fabric.nic_gbps": 400}, "storage_fabric.nic_gbps", "at most the storage switches' port speed"),
    ({"storage_fabric.nics": 0}, "storage_fabric.nics", "at least 1"),
    ({"storage_fabric.oversubscription": 0.5}, "storage_fabric.oversubscription", "at least 1"),
    ({"storage_fabric.bogus": 1}, "storage_fabric.bogus", "a known field"),
    ({"storage.0.attach": "spine"}, "storage[0].attach", "'storage' (the site has a [storage_fabric])"),
    ({"storage_fabric": None}, "storage[0].attach", "(no [storage_fabric])"),
]


@pytest.mark.parametrize(("change", "field", "expected"), BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_storage_fabric_fields_are_one_line_errors(
    change: dict, field: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = storage_site()
    for dotted, value in change.items():
        *heads, last = dotted.split(".")
        target = data
        for h in heads:
            target = target[int(h)] if h.isdigit() else target[h]
        if value is None:
            del target[last]
        else:
            target[last] = value
    with pytest.raises(ScenarioError, match=field.replace("[", r"\[").replace("]", r"\]")):
        scenario_from_dict(data)
    path = tmp_path / "bad.toml"
    path.write_text(toml_text(data), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and field in err and expected in err


def test_validate_describes_the_storage_network(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "scenarios" / "lingang.toml")]) == 0
    out = capsys.readouterr().out
    assert "compute network: 616 switches, 24,000 cables (12,000 server-to-leaf, 12,000 leaf-to-spine)" in out
    assert (
        "storage network: 154 switches, 6,128 cables (3,000 server-to-storage-leaf, 3,000 storage-leaf-to-spine, "
        "128 array-to-storage-spine)" in out
    )
    assert "6,000 of 6,000 used" in out and "3,128 of 3,200 used (busiest switch 782)" in out


def test_a_site_without_a_storage_network_refuses_storage_attachment() -> None:
    data = site()
    data["storage"][0]["attach"] = "storage"
    with pytest.raises(ScenarioError, match=r"storage\[0\]\.attach: expected 'spine', 'leaf' or 'core'"):
        scenario_from_dict(data)


@pytest.mark.parametrize("where", ["lingang", "leaf-spine", "fat-tree", "three-tier"])
def test_the_storage_network_is_drawn_below_the_compute_fabric_with_every_cable(where: str) -> None:
    from twin.render.layout import graph_layout, hall_layout

    if where == "lingang":
        fab = build_fabric(load_scenario(ROOT / "scenarios" / "lingang.toml"))
    else:
        data = storage_site(spine_radix=64)
        if where == "fat-tree":
            data["topology"] = {"kind": "fat-tree", "k": 4, "port_gbps": 100, "spine_radix": 8}
        elif where == "three-tier":
            data["topology"] = dict(THREE_TIER["topology"])
            data["node"]["nics"] = 2
        data["workload"]["mix"][0]["gpus"] = [8, 8]
        fab = build_fabric(scenario_from_dict(data))
    storage = np.flatnonzero(fab.network == STORAGE_NET)
    links = np.flatnonzero(fab.link_tier == T_STORAGE)
    for lay in (hall_layout(fab), graph_layout(fab)):
        seg = lay.segments
        assert (lay.rect[storage, 2] > 0).all()
        x0, y0, x1, y1 = lay.bounds
        box = lay.rect[storage]
        assert (box[:, 0] >= x0).all() and (box[:, 1] >= y0).all()
        assert (box[:, 0] + box[:, 2] <= x1).all() and (box[:, 1] + box[:, 3] <= y1).all()
        assert set(links.tolist()) <= set(seg.fwd.tolist()) | set(seg.rev.tolist())
    lay = hall_layout(fab)
    under = lay.blocks[:, 1] + lay.blocks[:, 3] if len(lay.blocks) else np.zeros(1)
    assert (lay.rect[fab.storage_spines, 1] > under.max()).all()  # a band under the racks
    assert (lay.rect[fab.storage_gid, 1] > lay.rect[fab.storage_spines, 1].max()).all()
