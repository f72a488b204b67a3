"""``main.py serve``: the exposed metrics are the simulation's state with the real exporters' names and
labels, byte counters grow at the links' loads per wall second (so Prometheus's rate() over them is the
utilisation the simulation shows), it stops cleanly on signals, and bad input is one line, exit 2."""

from __future__ import annotations

import dataclasses
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.exposition import generate_latest
from promserver import (
    SERVE_AT,
    Served,
    expected_sim,
    http_get,
    parse_metrics,
    pid_alive,
    stack_fixture,
    tiny_site,
    wait_for,
)

from twin.cli import main
from twin.exporter import SiteCollector, gpu_memory_mib, make_registry, state_from


@pytest.fixture(scope="module")
def site_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def served(site_file: Path):
    s = Served(site_file)
    yield s
    code, _err = s.stop()
    assert code == 0 and not pid_alive(s.proc.pid)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    yield from stack_fixture(tmp_path_factory)


def by_gpu(samples: list[tuple[dict[str, str], float]]) -> dict[tuple[str, int], tuple[dict[str, str], float]]:
    return {(lab["Hostname"], int(lab["gpu"])): (lab, v) for lab, v in samples}


def test_gpu_metrics_are_the_simulation_state(served: Served, site_file: Path) -> None:
    sim = expected_sim(site_file)
    snap = sim.snapshot()
    fab, sc = sim.fabric, sim.scenario
    m = parse_metrics(served.metrics())
    engine, util = by_gpu(m["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]), by_gpu(m["DCGM_FI_DEV_GPU_UTIL"])
    power, xid = by_gpu(m["DCGM_FI_DEV_POWER_USAGE"]), by_gpu(m["DCGM_FI_DEV_XID_ERRORS"])
    used, free = by_gpu(m["DCGM_FI_DEV_FB_USED"]), by_gpu(m["DCGM_FI_DEV_FB_FREE"])
    assert len(engine) == fab.n_gpus
    assert 0 < snap.gpu_util.max() < 1, "the site should have fractionally busy GPUs to compare"
    for n, gid in enumerate(fab.node_gid):
        server = fab.names[gid]
        for g in range(fab.gpus_per_node):
            labels, busy = engine[server, g]
            expected = snap.gpu_util[n, g]
            assert busy == expected, (server, g)
            assert util[server, g][1] == round(100 * expected)
            # A job's GPU draws wait_watts when it does not compute and max_watts when it does.
            floor = sc.gpu.waiting_watts if snap.gpu_owner[n, g] >= 0 else sc.gpu.idle_watts
            assert power[server, g][1] == pytest.approx(
                0.0 if sim.gpu_down[n, g] else floor + (sc.gpu.max_watts - floor) * expected
            )
            assert (xid[server, g][1] != 0) == bool(sim.gpu_down[n, g])
            assert used[server, g][1] + free[server, g][1] == gpu_memory_mib(sc.gpu.model)
            owner = snap.gpu_owner[n, g]
            assert labels.get("hpc_job") == (str(owner) if owner >= 0 else None), (server, g)
            assert labels["device"] == f"nvidia{g}" and labels["modelName"] == sc.gpu.model
            assert labels["UUID"].startswith("GPU-") and labels["instance"] == f"{server}:9400"
            assert (used[server, g][1] > 0) == (owner >= 0)
    assert sim.gpu_down.sum() == 1 and xid["node-0003", 2][1] == 79
    assert len({lab["UUID"] for lab, _ in engine.values()}) == fab.n_gpus


def test_jobs_queue_and_clock(served: Served, site_file: Path) -> None:
    sim = expected_sim(site_file)
    snap = sim.snapshot()
    m = parse_metrics(served.metrics())
    names = sim.fabric.names
    expected = {(str(j.id), names[sim.fabric.node_gid[n]]) for j in snap.jobs for n in j.nodes}
    assert {(lab["job_id"], lab["node_name"]) for lab, _ in m["slurm_node_job"]} == expected
    assert expected and all(v == 1 for _, v in m["slurm_node_job"])
    assert m["slurm_queue_running"][0][1] == len(sim.running) == 1
    assert m["slurm_queue_pending"][0][1] == len(sim.queue) == 1
    assert m["twin_simulated_seconds"][0][1] == SERVE_AT


def test_byte_counters_grow_with_the_load_even_when_held_still(served: Served, site_file: Path) -> None:
    sim = expected_sim(site_file)
    fab, load = sim.fabric, sim.snapshot().link_load
    first = parse_metrics(served.metrics())
    wait_for(
        lambda: parse_metrics(served.metrics())["twin_simulated_seconds"][0][1] == SERVE_AT,
        5,
        "the held simulation",
    )
    second = parse_metrics(served.metrics())
    for name, links in (
        ("node_infiniband_port_data_transmitted_bytes_total", fab.host_up),
        ("node_infiniband_port_data_received_bytes_total", fab.host_down),
    ):
        before = {lab["instance"]: v for lab, v in first[name]}
        for lab, v in second[name]:
            n = int(np.flatnonzero(np.array(fab.names)[fab.node_gid] == lab["instance"].split(":")[0])[0])
            assert lab["device"] == "mlx5_0" and lab["port"] == "1"
            grew = v - before[lab["instance"]]
            assert grew > 0 if load[links[n, 0]] > 0 else grew == 0, (name, lab)
    rates = {lab["instance"]: v for lab, v in second["node_infiniband_rate_bytes_per_second"]}
    assert set(rates.values()) == {fab.link_cap[fab.host_up[0, 0]]}
    ports = second["infiniband_portxmitdata_total"]
    assert {(lab["local_name"], lab["remote_name"]) for lab, _ in ports} == {
        (fab.names[fab.link_src[i]], fab.names[fab.link_dst[i]]) for i in np.flatnonzero(fab.link_kind == 1)
    }
    assert all(lab["component"] == "switch" and lab["local_port"].isdigit() for lab, _ in ports)


def test_rate_over_the_counters_is_the_link_utilisation(stack) -> None:
    sim = expected_sim(stack.scenario)
    fab, util = sim.fabric, sim.snapshot().link_util
    host = "rate(node_infiniband_port_data_transmitted_bytes_total[4s]) / node_infiniband_rate_bytes_per_second"
    stack.prom.wait_for_full_window(4)
    got = {r["metric"]["instance"].split(":")[0]: float(r["value"][1]) for r in stack.prom.query(host)}
    for n, gid in enumerate(fab.node_gid):
        assert got[fab.names[gid]] == pytest.approx(util[fab.host_up[n, 0]], rel=0.05, abs=0.002)
    assert max(got.values()) == pytest.approx(0.5, rel=0.05), "the busy servers' cables run at half"
    cables = stack.prom.query("4 * sum by (local_name, remote_name) (rate(infiniband_portxmitdata_total[4s]))")
    assert len(cables) == int((fab.link_kind == 1).sum())
    names = {(fab.names[fab.link_src[i]], fab.names[fab.link_dst[i]]): i for i in np.flatnonzero(fab.link_kind == 1)}
    for r in cables:
        link = names[r["metric"]["local_name"], r["metric"]["remote_name"]]
        assert float(r["value"][1]) / fab.link_cap[link] == pytest.approx(util[link], rel=0.05, abs=0.002)
    assert stack.prom.query('count(DCGM_FI_DEV_GPU_UTIL{hpc_job!=""})')[0]["value"][1] == "16"


def test_the_fast_exposition_is_what_prometheus_client_writes(site_file: Path) -> None:
    """Scrapes fill values into text prometheus_client formatted once; it must read as generate_latest's."""
    sim = expected_sim(site_file)
    collector = SiteCollector(sim, clock=lambda: 100.0)  # counters read one second after the state
    collector.publish(state_from(sim, sim.snapshot(), 99.0, None))
    standard = parse_metrics(generate_latest(make_registry(collector)).decode())
    fast = parse_metrics(collector.exposition().decode())
    assert standard.keys() == fast.keys()
    for name, samples in standard.items():
        got = {tuple(sorted(lab.items())): v for lab, v in fast[name]}
        assert len(got) == len(samples), name
        for lab, v in samples:
            assert got[tuple(sorted(lab.items()))] == v, (name, lab)
    owner = collector.state.gpu_owner.copy()
    owner[2, :4] = 77  # a job starts: the GPUs' labels change with it
    collector.publish(dataclasses.replace(collector.state, gpu_owner=owner))
    jobs = {
        (lab["Hostname"], lab["gpu"]): lab.get("hpc_job")
        for lab, _ in parse_metrics(collector.exposition().decode())["DCGM_FI_DEV_GPU_UTIL"]
    }
    assert [jobs["node-0002", str(g)] for g in range(8)] == ["77"] * 4 + [None] * 4
    assert jobs["node-0000", "0"] == "0"


def test_the_simulation_runs_at_the_speed_given(site_file: Path) -> None:
    s = Served(site_file, at=0.0, speed=200.0)
    try:
        t0 = time.monotonic()
        wait_for(lambda: parse_metrics(s.metrics())["twin_simulated_seconds"][0][1] >= 100, 10, "the clock moving")
        assert time.monotonic() - t0 < 5
    finally:
        assert s.stop()[0] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stops_cleanly_on_signals(site_file: Path, sig: signal.Signals) -> None:
    s = Served(site_file, at=0.0, speed=60.0)
    t0 = time.monotonic()
    s.proc.send_signal(sig)
    code = s.proc.wait(5)
    took = time.monotonic() - t0
    err = s.proc.stderr.read()
    assert code == 0 and took < 2.0
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("serving Tiny Live Site on http://127.0.0.1:")
    assert lines[1].startswith(f"stopped by {sig.name}")
    assert not pid_alive(s.proc.pid)
    with pytest.raises(OSError):
        http_get(s.url, timeout=1)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, site_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(site_file.read_text().replace("nodes_per_rack = 1", "nodes_per_rak = 1"))
    assert main(["serve", str(bad), "--port", "9"]) == 2
    assert str(bad) in one_line_error(capsys)
    assert main(["serve", str(tmp_path / "missing.toml"), "--port", "9"]) == 2
    assert "missing.toml" in one_line_error(capsys)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(site_file), "--port", str(port)]) == 2
        err = one_line_error(capsys)
        assert f"--port {port}" in err and "already in use" in err
    assert main(["serve", str(site_file), "--port", "9", "--host", "192.0.2.1"]) == 2
    assert "192.0.2.1" in one_line_error(capsys)
    for flags in (["--port", "70000"], ["--port", "x"], ["--port", "9", "--speed", "-1"], []):
        with pytest.raises(SystemExit) as exit_:
            main(["serve", str(site_file), *flags])
        assert exit_.value.code == 2
        one_line_error(capsys)
