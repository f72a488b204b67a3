"""The live twin: the metric mapping on hand-made query answers (no server), then against a real
Prometheus scraping ``main.py serve``: the report equals what serve exposed, a site built from the hosts
found, an unreachable Prometheus, and outages (Prometheus stopped and restarted, the exporter stopped)."""

from __future__ import annotations

import json
import math
import os
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from promserver import Stack, expected_sim, free_port, parse_metrics, pid_alive, stack_fixture, tiny_site, wait_for

from conftest import site
from twin.cli import main
from twin.errors import ScenarioError
from twin.live import (
    ENGINE,
    EXPECTED,
    GPU_UTIL,
    NIC_RX,
    NIC_TX,
    NODE_JOB,
    PARTITION_STATE,
    POWER,
    QUEUE_PENDING,
    QUEUE_RUNNING,
    SWITCH_TX,
    TEMP,
    XID,
    LiveSource,
    Mapping,
    Reading,
    SiteIndex,
    discover_site,
    interpret,
    load_mapping,
    strip_port,
)
from twin.promql import PromError, Sample
from twin.scenario import load_scenario, scenario_from_dict
from twin.topology import build_fabric

# --- the mapping, on hand-made answers ------------------------------------------------------------------

SITE = scenario_from_dict(site())  # 2 racks x 2 servers of 8 GPUs, one NIC each, two spines


def gpu(name: str, value: float, g: int, **labels: str) -> Sample:
    return Sample({"__name__": name, "gpu": str(g), **labels}, value)


def index(mapping: Mapping | None = None) -> SiteIndex:
    return SiteIndex(build_fabric(SITE), mapping or Mapping())


def present(*names: str) -> dict[str, int]:
    return dict.fromkeys(names, 1)


def answers(families: tuple[str, ...], series: list[Sample], **rest) -> Reading:
    """What the poll's queries answer when Prometheus holds these DCGM series: busy per GPU by family,
    power summed per host, only nonzero XIDs and only GPUs over the alarm temperature."""
    by: dict[str, list[Sample]] = {ENGINE: [], GPU_UTIL: [], XID: [], TEMP: []}
    power: dict[tuple, float] = {}
    for s in series:
        name = s.labels["__name__"]
        labels = {k: v for k, v in s.labels.items() if k != "__name__"}
        if name == POWER:
            host = tuple(sorted((k, v) for k, v in labels.items() if k not in ("gpu", "hpc_job")))
            power[host] = power.get(host, 0.0) + s.value
        elif not (name == XID and s.value == 0) and not (name == TEMP and s.value < 85):
            by[name].append(Sample(labels, s.value))
    return Reading(
        present=present(*families),
        engine=by[ENGINE],
        util=by[GPU_UTIL],
        power=[Sample(dict(k), v) for k, v in power.items()],
        xid=by[XID],
        temp=by[TEMP],
        **rest,
    )


def test_busy_is_engine_active_else_gpu_util_and_hosts_come_from_any_label() -> None:
    reading = answers(
        (ENGINE, GPU_UTIL),
        [
            gpu(ENGINE, 0.3, 0, Hostname="node-0000", hpc_job="42"),
            gpu(GPU_UTIL, 90, 0, Hostname="node-0000", hpc_job="42"),
            gpu(GPU_UTIL, 45, 1, Hostname="node-0000"),
            gpu(ENGINE, 0.75, 3, hostname="node-0001", hpc_job="array_7"),
            gpu(GPU_UTIL, 20, 5, instance="node-0002:9400"),
            gpu(GPU_UTIL, 99, 0, Hostname="ghost"),
        ],
    )
    st = interpret(reading, index(), 1000.0)
    assert st.gpu_busy[0, 0] == 0.3 and st.gpu_busy[0, 1] == 0.45, "GR_ENGINE_ACTIVE first, else GPU_UTIL / 100"
    assert st.gpu_busy[1, 3] == 0.75 and st.gpu_busy[2, 5] == 0.2
    assert st.gpu_owner[0, 0] == 42 and st.gpu_owner[0, 1] == -1
    assert st.job_names[st.gpu_owner[1, 3]] == "array_7", "a job id that is not a number keeps its name"
    assert st.node_jobs[0] == (42,) and st.node_jobs[2] == ()
    assert st.no_data.tolist() == [False, False, False, True], "a server without series is no data"
    assert np.isnan(st.gpu_busy[3]).all() and np.isnan(st.gpu_busy[0, 2]), "unknown is nan, never zero"
    assert st.unknown_hosts == ("ghost",)
    assert set(st.missing) == set(EXPECTED) - {ENGINE, GPU_UTIL}


def test_a_target_that_is_down_is_no_data() -> None:
    reading = answers(
        (GPU_UTIL, NIC_TX),
        [gpu(GPU_UTIL, 50, g, Hostname=f"node-000{n}") for n in (0, 1, 3) for g in range(8)],
        up=[Sample({"instance": "node-0001:9100", "job": "node"}, 0.0), Sample({"instance": "node-0000:9100"}, 1)],
        tx=[Sample({"instance": "node-0001:9100", "device": "mlx5_0"}, 5e9)],
    )
    st = interpret(reading, index(), 0.0)
    assert st.no_data.tolist() == [False, True, True, False], "down, or no series (gone quiet)"
    assert np.isnan(st.gpu_busy[1:3]).all() and (st.gpu_busy[[0, 3]] == 0.5).all()
    assert not st.link_known.any(), "the cables of a server with no data are unknown too"


def test_links_from_nic_rates_and_switch_port_rates_through_a_mapping() -> None:
    mapping = Mapping(
        hosts={"gpu-a": "node-0000", "gpu-b.example.org": "node-0003"},
        rails={"ib7": 0},
        switches={"ib-leaf-1": "leaf-000", "ib-spine-1": "spine-00"},
    )
    idx = index(mapping)
    fab = idx.fabric
    reading = Reading(
        present=present(GPU_UTIL, NIC_TX, NIC_RX, SWITCH_TX),
        util=[Sample({"gpu": "0", "Hostname": h}, 10) for h in ("gpu-a", "node-0001", "node-0002", "gpu-b")],
        tx=[
            Sample({"instance": "gpu-a:9100", "device": "mlx5_0"}, 2e9),
            Sample({"instance": "gpu-b.example.org:9100", "device": "ib7"}, 1e9),
        ],
        rx=[Sample({"instance": "node-0002:9100", "device": "mlx5_0"}, 3e9)],
        switch=[
            Sample({"local_name": "ib-leaf-1", "remote_name": "ib-spine-1"}, 4e9),
            Sample({"local_name": "ib-leaf-1", "remote_name": "nowhere"}, 1e9),
        ],
    )
    st = interpret(reading, idx, 0.0)
    assert st.link_load[fab.host_up[0, 0]] == 2e9 and st.link_load[fab.host_up[3, 0]] == 1e9
    assert st.link_load[fab.host_down[2, 0]] == 3e9 and not st.link_known[fab.host_up[2, 0]]
    names = fab.names
    up = [i for i in np.flatnonzero(st.link_known) if names[fab.link_src[i]] == "leaf-000"]
    assert [names[fab.link_dst[i]] for i in up] == ["spine-00"] and st.link_load[up[0]] == 4e9
    assert st.link_known.sum() == 4 and st.unknown_hosts == ()


def test_queue_from_slurm_or_partition_states_and_jobs_from_slurm() -> None:
    base = dict(
        present=present(GPU_UTIL, NODE_JOB),
        util=[Sample({"gpu": str(g), "Hostname": "node-0001"}, 80) for g in range(8)],
    )
    jobs = [
        Sample({"job_id": "7", "node_name": "node-0001"}, 1),
        Sample({"job_id": "9", "node_name": "node-0001"}, 1),
        Sample({"job_id": "7", "node_name": "node-0002"}, 1),
    ]
    st = interpret(
        Reading(
            **base,
            node_job=jobs,
            queue=[Sample({"__name__": QUEUE_PENDING}, 4), Sample({"__name__": QUEUE_RUNNING}, 2)],
        ),
        index(),
        0.0,
    )
    assert (st.running, st.pending) == (2, 4)
    assert st.node_jobs[1] == (7, 9) and st.node_jobs[2] == (7,)
    assert st.gpu_owner[1].tolist() == [7, 7, 7, 7, 9, 9, 9, 9], "Slurm's jobs share the server's GPUs in order"
    partitions = [
        Sample({"__name__": PARTITION_STATE, "partition": "a", "state": "PENDING"}, 3),
        Sample({"__name__": PARTITION_STATE, "partition": "b", "state": "pending"}, 2),
        Sample({"__name__": PARTITION_STATE, "partition": "a", "state": "running"}, 5),
    ]
    st = interpret(Reading(**base, node_job=jobs, queue=partitions), index(), 0.0)
    assert (st.running, st.pending) == (5, 5)
    assert QUEUE_PENDING in st.missing and QUEUE_RUNNING in st.missing
    st = interpret(Reading(**base, node_job=jobs), index(), 0.0)
    assert (st.running, st.pending) == (2, 0), "without a queue exporter: the distinct jobs seen"


def offline_source(**kwargs) -> LiveSource:
    """A source on the test site that never polls (nothing listens at its URL)."""
    return LiveSource(f"http://127.0.0.1:{free_port()}", SITE, **kwargs)


def test_idle_allocated_gpus_xid_and_heat_become_alerts_and_no_data_stays_unknown() -> None:
    src = offline_source()
    before = src.version
    gpus = [gpu(ENGINE, 0.9, g, Hostname="node-0000", hpc_job="5") for g in range(8)]
    gpus[3] = gpu(ENGINE, 0.0, 3, Hostname="node-0000", hpc_job="5")
    gpus += [gpu(ENGINE, 0.5, g, Hostname="node-0001") for g in range(8)]
    gpus += [gpu(XID, 79 if g == 6 else 0, g, Hostname="node-0001") for g in range(8)]
    gpus += [gpu(TEMP, 91 if g == 2 else 60, g, Hostname="node-0001") for g in range(8)]
    gpus += [gpu(POWER, 300, g, Hostname="node-0000") for g in range(8)]
    gpus += [gpu(ENGINE, 0.1, g, Hostname="node-0002") for g in range(8)]
    src.accept(interpret(answers((ENGINE, XID, TEMP, POWER), gpus), src.index, 1e9))
    assert src.version == before + 1
    snap = src.snapshot()
    (job,) = snap.jobs
    assert job.id == 5 and job.gpus == 8 and "1 of 8 GPUs allocated but idle" in job.phase
    assert src.idle_allocated() == [("node-0000", 3, "5")]
    texts = [a[1] for a in snap.alerts]
    assert "node-0001 GPU 6: XID 79" in texts and "node-0001 GPU 2: 91 C" in texts
    assert any("job 5: 1 allocated GPUs idle" in t for t in texts)
    assert snap.node_job.tolist() == [5, -1, -1, -1]
    fields = snap.__dataclass_fields__
    if "no_data" in fields:
        assert snap.no_data.tolist() == [False, False, False, True]
        assert np.isnan(snap.gpu_util[3]).all() and snap.gpu_util[0, 0] == 0.9
    report = src.report()
    assert report["servers"]["node-0003"] == {"gpu_busy": [None] * 8, "jobs": [], "power_w": None, "state": "no data"}
    assert report["servers"]["node-0000"]["power_w"] == 2400.0 and report["servers"]["node-0000"]["jobs"] == [5]
    assert report["servers"]["node-0001"]["power_w"] is None
    assert len(src.series) == 1 and src.series.latest()["jobs_running"] == 1
    json.dumps(report)


def test_mapping_files_and_their_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "map.toml"
    good.write_text(
        '[hosts]\n"gpu-a" = "node-0001"\n[rails]\nib0 = 0\n[switches]\nsw1 = "leaf-001"\n[site]\nnodes_per_rack = 8\n'
    )
    m = load_mapping(good)
    assert m.hosts == {"gpu-a": "node-0001"} and m.rails == {"ib0": 0} and m.nodes_per_rack == 8
    assert index(m).node("gpu-a") == 1 and index(m).node("node-0002") == 2 and index(m).node("gpu-z") is None
    for text, where in (
        ("[host]\n", "host"),
        ('[rails]\nmlx5_0 = "zero"\n', "rails.mlx5_0"),
        ("[hosts]\nx = 3\n", "hosts.x"),
        ("[site]\nnodes_per_rack = 0\n", "site.nodes_per_rack"),
        ("[hosts\n", "line 1"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ScenarioError) as err:
            load_mapping(bad)
        assert str(bad) in str(err.value) and where in str(err.value), str(err.value)
    bad.write_text('[hosts]\n"gpu-a" = "node-9999"\n')
    with pytest.raises(ScenarioError, match=r"hosts\.gpu-a: expected a server of the site"):
        offline_source(mapping=load_mapping(bad))
    scenario = tmp_path / "site.toml"
    scenario.write_text(tiny_site(tmp_path).read_text())
    out = tmp_path / "r.json"
    code = main(["live", str(scenario), "--prometheus", "http://127.0.0.1:9", "--map", str(bad), "--report", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"{bad}: hosts.gpu-a" in err, err


class FakeClient:
    """Answers the three discovery queries with canned vectors."""

    url, timeout = "http://fake:9090", 1.0

    def __init__(self, answers: dict[str, list[Sample]]) -> None:
        self.answers = answers

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        return next((v for k, v in self.answers.items() if k in expr), [])


def test_a_site_built_from_the_hosts_found() -> None:
    hosts = ["gpu-f", "gpu-a", "gpu-c", "gpu-b", "gpu-e", "gpu-d"]
    client = FakeClient(
        {
            "count by (Hostname": [Sample({"Hostname": h, "modelName": "NVIDIA H100 80GB HBM3"}, 8) for h in hosts],
            f"count by (instance, device) ({NIC_TX})": [
                Sample({"instance": f"{h}:9100", "device": f"mlx5_{r}"}, 1) for h in hosts for r in range(4)
            ],
            "node_infiniband_rate_bytes_per_second": [Sample({"instance": "gpu-a:9100", "device": "mlx5_0"}, 5e10)],
        }
    )
    scenario, servers, notice = discover_site(client, Mapping(hosts={"gpu-f": "zeta"}))  # type: ignore[arg-type]
    assert servers == ["gpu-a", "gpu-b", "gpu-c", "gpu-d", "gpu-e", "zeta", None, None]
    assert scenario.topology.racks == 2 and scenario.topology.nodes_per_rack == 4
    assert scenario.node.gpus == 8 and scenario.node.nics == 4 and scenario.node.nic_gbps == 400
    assert scenario.gpu.model == "NVIDIA H100 80GB HBM3" and scenario.gpu.peak_tflops == 989
    assert "6 hosts found" in notice
    with pytest.raises(PromError, match="found no hosts"):
        discover_site(FakeClient({}), Mapping())  # type: ignore[arg-type]


def test_strip_port() -> None:
    assert strip_port("node-1:9100") == "node-1" and strip_port("[::1]:9100") == "::1"
    assert strip_port("node-1") == "node-1" and strip_port("10.0.0.5:9400") == "10.0.0.5"


# --- against a real Prometheus ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    yield from stack_fixture(tmp_path_factory)


def run_report(tmp_path: Path, capsys, *args: str) -> tuple[dict, str]:
    out = tmp_path / "live.json"
    code = main(["live", *args, "--report", str(out), "--wait", "20"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(out.read_text()), captured.out + captured.err


def test_the_report_is_what_serve_exposed(stack, tmp_path: Path, capsys) -> None:
    stack.prom.wait_for_full_window(4)
    report, said = run_report(tmp_path, capsys, str(stack.scenario), "--prometheus", stack.prom.url)
    assert set(report) == {"time", "data_age_s", "prometheus", "servers", "links", "queue", "missing"}
    assert report["prometheus"] == stack.prom.url and report["missing"] == []
    assert 0 <= report["data_age_s"] < 5 and datetime.fromisoformat(report["time"]).tzinfo is not None
    exposed = parse_metrics(stack.served.metrics())
    busy = {(lab["Hostname"], int(lab["gpu"])): v for lab, v in exposed["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]}
    power: dict[str, float] = {}
    for lab, v in exposed["DCGM_FI_DEV_POWER_USAGE"]:
        power[lab["Hostname"]] = power.get(lab["Hostname"], 0.0) + v
    jobs: dict[str, list[int]] = {}
    for lab, _ in exposed["slurm_node_job"]:
        jobs.setdefault(lab["node_name"], []).append(int(lab["job_id"]))
    assert set(report["servers"]) == {h for h, _ in busy}
    for name, s in report["servers"].items():
        assert s["state"] == "ok"
        assert s["gpu_busy"] == [busy[name, g] for g in range(8)], name
        assert s["jobs"] == sorted(jobs.get(name, [])), name
        assert s["power_w"] == pytest.approx(power[name])
    assert report["queue"] == {
        "running": int(exposed["slurm_queue_running"][0][1]),
        "pending": int(exposed["slurm_queue_pending"][0][1]),
    }
    sim = expected_sim(stack.scenario)
    fab, util = sim.fabric, sim.snapshot().link_util
    cables = {
        f"{fab.names[fab.link_src[2 * e]]}--{fab.names[fab.link_dst[2 * e]]}": 2 * e
        for e in range(fab.n_edges)
        if fab.link_kind[2 * e] in (0, 1)
    }
    assert set(report["links"]) == set(cables)
    for name, link in cables.items():
        for key, lk in (("tx", link), ("rx", link + 1)):
            assert math.isclose(report["links"][name][key], util[lk], rel_tol=0.05, abs_tol=0.002), (name, key)
    assert max(v["tx"] for v in report["links"].values()) > 0.9, "saturated spine cables are seen as such"
    assert "4 of 4 servers with data" in said


def test_a_site_built_from_the_hosts_with_a_map(stack, tmp_path: Path, capsys) -> None:
    mapping = tmp_path / "hosts.toml"
    mapping.write_text('[hosts]\n"node-0000" = "gpu-a"\n"node-0001" = "gpu-b"\n[site]\nnodes_per_rack = 2\n')
    report, said = run_report(tmp_path, capsys, "--prometheus", stack.prom.url, "--map", str(mapping))
    assert "site built from the 4 hosts found (racks of 2" in said
    assert list(report["servers"]) == ["gpu-a", "gpu-b", "node-0002", "node-0003"]
    exposed = parse_metrics(stack.served.metrics())
    busy = {(lab["Hostname"], int(lab["gpu"])): v for lab, v in exposed["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]}
    assert report["servers"]["gpu-b"]["gpu_busy"] == [busy["node-0001", g] for g in range(8)]
    assert report["servers"]["node-0003"]["gpu_busy"][2] == 0.0
    assert any(name.startswith("gpu-a--leaf-") for name in report["links"])


def test_without_report_it_opens_the_view_on_the_cluster(stack, capsys) -> None:
    assert main(["live", "--prometheus", stack.prom.url, "--quit-after", "1.5", "--size", "640x480"]) == 0
    assert "site built from the 4 hosts found" in capsys.readouterr().err
    assert not [t for t in threading.enumerate() if t.name.startswith("live-")], "the poller stopped with the window"


def test_an_unreachable_prometheus_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "r.json"
    for args in (
        [str(tiny_site(tmp_path)), "--prometheus", url, "--report", str(out), "--wait", "1"],
        ["--prometheus", url, "--report", str(out)],
        ["--prometheus", "127.0.0.1:9090", "--report", str(out)],
    ):
        assert main(["live", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "cannot reach Prometheus at" in err or "expected a URL" in err, err
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_outages_keep_the_last_data_and_recover_by_themselves(tmp_path: Path) -> None:
    scenario = tiny_site(tmp_path)
    stack = Stack(tmp_path, scenario)
    try:
        src = LiveSource(stack.prom.url, load_scenario(scenario), poll=0.3, max_backoff=0.5).start()
        try:
            first = src.wait_for_data(15)
            busy = getattr(src.snapshot(), "gpu_util", None)
            stack.prom.stop()
            wait_for(lambda: src.current()[1].error != "", 10, "the poller noticing Prometheus has gone")
            wait_for(lambda: "unreachable for" in banner_of(src.snapshot()), 5, "the banner")
            text = banner_of(src.snapshot())
            assert (
                text.startswith("Prometheus unreachable for") and "(since " in text and "showing the last data" in text
            )
            kept = src.current()[0]
            assert kept is not None and kept.polled_at >= first.polled_at
            assert np.array_equal(kept.gpu_busy, first.gpu_busy, equal_nan=True), "the last data stays"
            if busy is not None:
                assert np.array_equal(src.snapshot().gpu_util, busy, equal_nan=True)
            assert src.report()["servers"]["node-0000"]["state"] == "ok"
            stack.prom.start()  # the same port and storage
            wait_for(
                lambda: src.current()[1].error == "" and src.current()[0].polled_at > kept.polled_at, 20, "recovery"
            )
            assert banner_of(src.snapshot()) == ""
            stack.served.stop()
            wait_for(
                lambda: all(s["state"] == "no data" for s in src.report()["servers"].values()),
                15,
                "servers going dark after the exporter stopped",
            )
            report = src.report()
            assert all(s["gpu_busy"] == [None] * 8 and s["power_w"] is None for s in report["servers"].values())
            assert not report["links"] or all(not n.startswith("node-") for n in report["links"])
        finally:
            src.stop()
    finally:
        stack.stop()
    assert all(not pid_alive(p) for p in stack.pids())


def banner_of(snap) -> str:
    """The banner, from its own field or (older snapshots) the alert it is put in."""
    if hasattr(snap, "banner"):
        return snap.banner
    return next((a[1] for a in snap.alerts if a[1].startswith("Prometheus unreachable")), "")


def test_polling_in_a_process_of_its_own_brings_the_same_data(stack) -> None:
    """The window polls in a separate process (parsing never holds the view's interpreter); what reaches
    the view is what the in-process poller reads."""
    here = LiveSource(stack.prom.url, load_scenario(stack.scenario)).start()
    there = LiveSource(stack.prom.url, load_scenario(stack.scenario)).start(process=True)
    try:
        a, b = here.wait_for_data(30), there.wait_for_data(60)
        assert there._process is not None and there._process[0].pid != os.getpid()
        assert np.array_equal(a.gpu_owner, b.gpu_owner)
        assert np.allclose(a.gpu_busy, b.gpu_busy, equal_nan=True)
        assert there.report()["servers"] == here.report()["servers"]
    finally:
        there.stop()
        here.stop()
    assert there._process is None
