"""The source contract: every kind of data the view draws (simulation, trace replay, recorded telemetry)
keeps the same promises, and the view, captions and camera script use nothing beyond them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pygame
import pytest
from test_mirror import minute
from test_mirror import write as write_telemetry
from test_replay import row
from test_replay import write as write_trace

from conftest import ROOT, site
from twin.mirror import Mirror
from twin.replay import Replay
from twin.scenario import load_scenario, scenario_from_dict
from twin.simulation import Simulation
from twin.snapshot import Snapshot
from twin.source import Seekable, Source
from twin.telemetry import load_telemetry

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
SMALL = ROOT / "scenarios" / "small-lab.toml"
CONTRACT = ("scenario", "fabric", "series", "rack_labels", "now", "version", "advance", "snapshot", "seek")


def simulation(tmp_path: Path) -> Source:
    return Simulation(load_scenario(SMALL), seed=3)


def replay(tmp_path: Path) -> Source:
    rows = []
    for i in range(30):
        submit = f"2020-05-01 00:{i:02d}:00"
        rows.append(row(str(i), 8 * (1 + i % 3), "COMPLETED", submit, submit, "", 600 + 60 * i))
    scenario = scenario_from_dict(site(**{"topology.racks": 4}), source="<test>")
    return Replay(scenario, write_trace(tmp_path / "t.csv", rows))


def mirror(tmp_path: Path) -> Source:
    write_telemetry(
        tmp_path / "earth_vcA_per_minute_2020-05.csv", [minute(m * 60, 32, m % 32, 3, 1) for m in range(90)]
    )
    write_telemetry(tmp_path / "earth_vcB_per_minute_2020-05.csv", [minute(m * 60, 16, 8, 2, 0) for m in range(90)])
    return Mirror(load_telemetry(tmp_path))


SOURCES: dict[str, Callable[[Path], Source]] = {"simulation": simulation, "replay": replay, "mirror": mirror}


@pytest.fixture(params=list(SOURCES), ids=list(SOURCES))
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Source:
    return SOURCES[request.param](tmp_path)


def check_snapshot(src: Source, snap: Snapshot) -> None:
    fab = src.fabric
    assert snap.time_s == src.now
    assert snap.gpu_owner.shape == (fab.n_nodes, fab.gpus_per_node)
    assert snap.gpu_util.shape == snap.gpu_owner.shape
    assert np.all((snap.gpu_util >= 0) & (snap.gpu_util <= 1) | np.isnan(snap.gpu_util))
    assert not (snap.gpu_util[snap.gpu_owner < 0] > 0).any(), "a GPU no job holds is not busy"
    assert snap.node_util.shape == (fab.n_nodes,)
    assert snap.link_load.shape == snap.link_util.shape == (fab.n_links,)
    held = {int(j) for j in np.unique(snap.gpu_owner) if j >= 0}
    listed = {j.id for j in snap.jobs}
    assert held <= listed or not listed, "every GPU's owner is a job the snapshot lists"
    for job in snap.jobs:
        assert np.all(snap.gpu_owner[job.nodes] >= -1)
    if snap.hottest >= 0:
        assert snap.link_util[snap.hottest] == snap.link_util.max() > 0
    else:
        assert not (snap.link_util > 0).any()
    seqs = [e.seq for e in snap.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert snap.counts.ended <= snap.counts.started <= snap.counts.submitted or snap.counts.submitted == 0
    biggest = snap.biggest_jobs(3)
    assert [j.gpus for j in biggest] == sorted((j.gpus for j in snap.jobs), reverse=True)[:3]


def test_every_source_keeps_the_contract(source: Source) -> None:
    assert isinstance(source, Source)
    assert source.fabric.n_nodes > 0 and len(source.rack_labels) in (0, len(np.unique(source.fabric.node_rack)))
    versions = [source.version]
    snap = source.snapshot()
    check_snapshot(source, snap)
    for _ in range(12):
        before = source.now
        source.advance(300.0)
        assert source.now == pytest.approx(before + 300.0), "advance(dt) moves the clock by dt"
        versions.append(source.version)
        check_snapshot(source, source.snapshot())
    assert versions == sorted(versions), "the change counter never goes back"
    assert versions[-1] > versions[0], "an hour of a busy source changes what is drawn"
    assert len(source.series) > 0 and source.series.latest()["time_s"] <= source.now


def test_a_snapshot_is_a_copy(source: Source) -> None:
    source.advance(600.0)
    snap = source.snapshot()
    owner, load = snap.gpu_owner.copy(), snap.link_load.copy()
    snap.gpu_owner[:] = 99
    snap.link_load[:] = -1
    again = source.snapshot()
    assert np.array_equal(again.gpu_owner, owner) and np.array_equal(again.link_load, load)


def test_seeking_is_optional_and_works_where_offered(tmp_path: Path) -> None:
    assert not isinstance(simulation(tmp_path), Seekable), "a simulation cannot go back in time"
    m = mirror(tmp_path)
    assert isinstance(m, Seekable)
    m.advance(3600.0)
    m.seek(600.0)
    assert m.now == 600.0 and m.snapshot().time_s == 600.0


class ContractOnly:
    """A source seen only through the contract: anything else the view reached for would fail here."""

    def __init__(self, inner: Source) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str):
        if name not in CONTRACT:
            raise AssertionError(f"the view reached past the source contract: .{name}")
        return getattr(self._inner, name)


def test_the_view_show_and_captions_use_nothing_beyond_the_contract(source: Source, tmp_path: Path) -> None:
    from twin.playlist import playlist_from_dict
    from twin.render.app import App, render_still
    from twin.render.show import SceneRun

    pygame.display.init()
    pygame.display.set_mode((320, 240))
    narrow = ContractOnly(source)
    narrow.advance(1200.0)
    surface = render_still(narrow, (960, 540))
    assert len(np.unique(pygame.surfarray.array3d(surface).reshape(-1, 3)[::7], axis=0)) > 20
    app = App(narrow, size=(640, 360), speed=600, quit_after=0.3)
    app.run()
    assert narrow.now > 1200.0
    data = {"scene": [{"scenario": "small-lab.toml", "seconds": 10, "camera": ["follow-biggest", "glide-rack"]}]}
    data["scene"][0]["caption"] = [{"on": "job-start", "text": "{gpus} GPUs"}, {"on": "fault", "text": "{alert}"}]
    scene = playlist_from_dict(data, ROOT / "scenarios", "p.toml").scenes[0]
    run = SceneRun(scene, (640, 360), source=narrow)  # a scene's camera script and captions, over any source
    for i in range(20):
        run.advance(0.5, scripted=True, wall=0.5 * (i + 1))
    assert run.frame.snap is not None and run.frame.snap.time_s == narrow.now


def test_the_biggest_job_is_the_one_the_camera_follows(tmp_path: Path) -> None:
    from twin.playlist import playlist_from_dict
    from twin.render.show import SceneRun

    pygame.display.init()
    pygame.display.set_mode((320, 240))
    data = {"scene": [{"scenario": "small-lab.toml", "seconds": 10, "camera": ["follow-biggest"]}]}
    run = SceneRun(playlist_from_dict(data, ROOT / "scenarios", "p.toml").scenes[0], (960, 540))
    run.advance(1.0, scripted=True, wall=1.0)
    snap = run.frame.snap
    assert snap is not None and len({j.gpus for j in snap.jobs}) > 1, "jobs of several sizes run"
    biggest = max(snap.jobs, key=lambda j: (j.gpus, -j.id))
    assert run.frame.state.selected_job == biggest.id
    assert dataclasses.replace(snap, jobs=snap.jobs[::-1]).biggest_jobs(1)[0].id == biggest.id
