"""The live view, headless: frames render, show the right colours in the right places, and respond."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pygame
import pytest

from conftest import ROOT, SCENARIOS
from twin.cli import main
from twin.render import style, theme
from twin.render.app import App, Frame, render_still, text_scale
from twin.render.camera import Camera
from twin.render.layout import graph_layout, hall_layout
from twin.render.scene import pick
from twin.scenario import load_scenario
from twin.simulation import Simulation
from twin.topology import NODE, SPINE

SMALL = ROOT / "scenarios" / "small-lab.toml"


@pytest.fixture(scope="module", autouse=True)
def display() -> None:
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    pygame.display.init()
    pygame.display.set_mode((640, 360))
    yield
    pygame.display.quit()


def frame_for(path: Path, at: float = 1800.0, size=(1280, 720), layout: str = "hall") -> tuple[Frame, pygame.Surface]:
    sim = Simulation(load_scenario(path))
    sim.run(at)
    frame = Frame(sim, size, layout)
    frame.refresh(0.0, force=True)
    surface = pygame.Surface(size).convert()
    frame.draw(surface, 0.0)
    return frame, surface


@pytest.mark.parametrize("layout", ["hall", "graph"])
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_renders_a_frame_that_is_not_blank(path: Path, layout: str) -> None:
    _, surface = frame_for(path, layout=layout)
    px = pygame.surfarray.array3d(surface).reshape(-1, 3)
    colors = np.unique(px[::7], axis=0)
    assert len(colors) > 50, "a frame should have structure, not a few flat colours"
    background = (px == np.array(pygame.Color(9, 13, 26))[:3]).all(axis=1).mean()
    assert 0.2 < background < 0.95


def test_busy_server_shows_its_job_colour_where_it_is_drawn() -> None:
    frame, surface = frame_for(SMALL, at=3600)
    snap, site = frame.snap, frame.site
    gids = frame.source.fabric.node_gid
    busy = np.flatnonzero(snap.node_job >= 0)
    assert len(busy) >= 3
    checked = 0
    for n in busy:
        x, y = site.camera.to_screen(site.layout.rect[gids[n], :2][None])[0]
        w, h = site.layout.rect[gids[n], 2:] * site.camera.zoom
        px, py = int(x + 0.15 * w), int(y + 0.5 * h)  # off the cell's middle, where no host link runs
        want = style.node_colors(snap.node_job[n : n + 1], snap.node_util[n : n + 1])[0]
        got = np.array(surface.get_at((px, py)))[:3]
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 2, (n, got, want)
        checked += 1
    assert checked == len(busy)


def test_job_colours_are_stable_and_distinct() -> None:
    ids = np.arange(40)
    c = style.job_colors(ids)
    assert np.array_equal(c, style.job_colors(ids))
    d = np.abs(c[:, None, :].astype(int) - c[None, :, :].astype(int)).sum(-1)
    neighbours = d[np.arange(39), np.arange(1, 40)]
    assert neighbours.min() > 60  # consecutive jobs never look alike


def test_picking_returns_what_is_under_the_pixel() -> None:
    frame, _ = frame_for(SMALL)
    site = frame.site
    fab = frame.source.fabric
    for gid in (int(fab.node_gid[5]), int(np.flatnonzero(fab.kind == SPINE)[0])):
        x, y, w, h = site.layout.rect[gid]
        centre = site.camera.to_screen(np.array([[x + w / 2, y + h / 2]]))[0]
        assert site.pick(tuple(centre)) == ("vertex", gid)
    seg = site.layout.segments
    s = int(np.flatnonzero(~seg.detail)[0])
    mid = site.camera.to_screen(((seg.a[s] + seg.b[s]) / 2)[None])[0]
    hit = site.pick(tuple(mid))
    assert hit is not None and (hit == ("segment", s) or hit[0] == "segment")
    assert site.pick((2, site.camera.viewport[1] + site.camera.viewport[3] - 2)) is None


def test_pick_on_a_hand_made_layout() -> None:
    fab = Simulation(load_scenario(SMALL)).fabric
    lay = hall_layout(fab)
    cam = Camera(center=(0.0, 0.0), zoom=10.0, viewport=(0, 0, 100, 100))
    node = int(fab.node_gid[0])
    x, y, w, h = lay.rect[node]
    cam = Camera(center=(x + w / 2, y + h / 2), zoom=10.0, viewport=(0, 0, 100, 100))
    assert pick(lay, cam, (50, 50)) == ("vertex", node)
    assert fab.kind[node] == NODE


@pytest.mark.parametrize("factor", [0.5, 1.3, 4.0])
def test_zoom_keeps_the_point_under_the_cursor(factor: float) -> None:
    cam = Camera(center=(10.0, -3.0), zoom=12.0, viewport=(20, 40, 800, 600))
    cursor = (613.0, 211.0)
    before = cam.to_world(cursor)
    after = cam.zoom_at(cursor, factor).to_world(cursor)
    assert after == pytest.approx(before)
    assert cam.zoom_at(cursor, factor).zoom == pytest.approx(12.0 * factor)


def test_pan_moves_the_picture_by_the_drag() -> None:
    cam = Camera(center=(0.0, 0.0), zoom=5.0, viewport=(0, 0, 400, 300))
    world = np.array([[3.0, 4.0]])
    moved = cam.pan(25, -10)
    assert moved.to_screen(world)[0] == pytest.approx(cam.to_screen(world)[0] + [25, -10])


def test_fit_shows_the_whole_site() -> None:
    fab = Simulation(load_scenario(ROOT / "scenarios" / "lingang.toml")).fabric
    for lay in (hall_layout(fab), graph_layout(fab)):
        cam = Camera.fit(lay.bounds, (10, 100, 1400, 800))
        corners = cam.to_screen(np.array([lay.bounds[:2], lay.bounds[2:]]))
        assert corners[0, 0] >= 10 and corners[0, 1] >= 100
        assert corners[1, 0] <= 1410 and corners[1, 1] <= 900
        # Leaving bands free at the foot and the right: the site whole in what is left, its middle there.
        cam = Camera.fit(lay.bounds, (10, 100, 1400, 800), clear_bottom=150, clear_right=500)
        corners = cam.to_screen(np.array([lay.bounds[:2], lay.bounds[2:]]))
        assert corners[0, 0] >= 10 and corners[0, 1] >= 100
        assert corners[1, 0] <= 910 and corners[1, 1] <= 750
        assert corners.mean(axis=0) == pytest.approx([10 + 900 / 2, 100 + 650 / 2])


def test_resizing_reflows() -> None:
    frame, _ = frame_for(SMALL, size=(1280, 720))
    for size in ((1920, 1080), (800, 600), (3840, 2160)):
        frame.resize(size)
        surface = pygame.Surface(size).convert()
        frame.draw(surface, 1.0)
        vx, vy, vw, vh = frame.site.camera.viewport
        assert vx + vw <= size[0] and vy + vh <= size[1]
        corners = frame.site.camera.to_screen(np.array([frame.site.layout.bounds[:2], frame.site.layout.bounds[2:]]))
        assert corners[0, 0] >= vx - 1 and corners[1, 0] <= vx + vw + 1
    assert frame.text.scale == pytest.approx(2.0)


def test_same_seed_renders_the_same_frame() -> None:
    shots = []
    for _ in range(2):
        sim = Simulation(load_scenario(SMALL), seed=11)
        sim.run(2400)
        shots.append(pygame.image.tobytes(render_still(sim, (960, 540)), "RGB"))
    assert shots[0] == shots[1]
    sim = Simulation(load_scenario(SMALL), seed=12)
    sim.run(2400)
    assert pygame.image.tobytes(render_still(sim, (960, 540)), "RGB") != shots[0]


def test_zoomed_in_servers_show_their_gpus() -> None:
    frame, _ = frame_for(SMALL, at=3600)
    site, snap = frame.site, frame.snap
    gids = frame.source.fabric.node_gid
    n = int(np.flatnonzero(snap.node_job >= 0)[0])
    x, y, w, h = site.layout.rect[gids[n]]
    site.set_camera(Camera(center=(x + w / 2, y + h / 2), zoom=400.0, viewport=site.camera.viewport))
    surface = pygame.Surface(frame.size).convert()
    frame.draw(surface, 0.0)
    # The first GPU's square sits at the cell's top-left; its owner's colour fills it.
    sx, sy = site.camera.to_screen(np.array([[x, y]]))[0]
    gw = w * 400 / 8
    owner = snap.gpu_owner[n, 0]
    want = style.job_colors(np.array([owner]))[0]
    got = np.array(surface.get_at((int(sx + gw / 2), int(sy + 0.5 * h * 400))))[:3]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_controls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = App(Simulation(load_scenario(SMALL)), size=(960, 540))
    st = app.frame.state

    def key(k: int, unicode: str = "") -> None:
        app.handle(pygame.event.Event(pygame.KEYDOWN, key=k, unicode=unicode, mod=0), 1.0)

    key(pygame.K_SPACE)
    assert st.paused
    before = app.source.now
    app.step(1.0)
    assert app.source.now == before  # paused: the clock does not move
    key(pygame.K_SPACE)
    speed = st.speed
    key(pygame.K_EQUALS)
    assert st.speed > speed
    key(pygame.K_MINUS)
    key(pygame.K_MINUS)
    assert st.speed < speed
    key(pygame.K_l)
    assert app.frame.site.layout.name == "graph"
    key(pygame.K_h)
    assert not app.frame.hud_visible and app.frame.site.camera.viewport == (0, 0, 960, 540)
    key(pygame.K_SLASH, "?")
    assert st.show_help
    app.frame.draw(app.screen, 1.0)
    key(pygame.K_s)
    key(pygame.K_s)
    assert len(list(tmp_path.glob("twin-*.png"))) == 2  # a second screenshot never overwrites the first
    zoom = app.frame.site.camera.zoom
    app.handle(pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=2, flipped=False), 1.0)
    assert app.frame.site.camera.zoom > zoom
    key(pygame.K_ESCAPE)
    assert not app.running


def test_window_runs_its_frame_loop() -> None:
    app = App(Simulation(load_scenario(SMALL)), size=(960, 540), speed=600, quit_after=0.6)
    start = app.source.now
    app.run()
    assert len(app.frame_times) > 5
    assert app.source.now > start


def test_shot_writes_a_png_of_the_asked_size(tmp_path: Path) -> None:
    out = tmp_path / "frame.png"
    assert main(["shot", str(SMALL), "--at", "600", "--size", "800x450", "--out", str(out)]) == 0
    img = pygame.image.load(str(out))
    assert img.get_size() == (800, 450)


def test_shot_bad_size_and_bad_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["shot", str(SMALL), "--size", "huge", "--out", str(tmp_path / "a.png")])
    assert err.value.code == 2
    assert main(["shot", str(SMALL), "--out", str(tmp_path / "a.jpg")]) == 2
    assert "expected a .png" in capsys.readouterr().err


class Degraded:
    """A simulation seen as a live source with trouble: some servers report nothing, the feed is down."""

    def __init__(self, sim: Simulation, no_data: np.ndarray, banner: str) -> None:
        self.sim, self.no_data, self.banner = sim, no_data, banner
        self.scenario, self.fabric, self.series, self.rack_labels = sim.scenario, sim.fabric, sim.series, ()

    now = property(lambda self: self.sim.now)
    version = property(lambda self: self.sim.version)

    def advance(self, dt: float) -> None:
        self.sim.advance(dt)

    def snapshot(self):
        import dataclasses

        snap = self.sim.snapshot()
        return dataclasses.replace(
            snap, no_data=self.no_data, banner=self.banner, data_age_s=75.0, notice="site built from 16 hosts"
        )


def test_missing_data_is_grey_and_a_dead_feed_is_announced_and_dimmed() -> None:
    from twin.render import theme

    sim = Simulation(load_scenario(SMALL))
    sim.run(3600)
    no_data = np.zeros(sim.fabric.n_nodes, bool)
    no_data[: sim.fabric.n_nodes // 2] = True
    size = (1280, 720)

    def draw(source) -> tuple[Frame, np.ndarray]:
        frame = Frame(source, size)
        frame.refresh(0.0, force=True)
        surface = pygame.Surface(size).convert()
        frame.draw(surface, 0.0)
        return frame, pygame.surfarray.array3d(surface)

    frame, fine = draw(Degraded(sim, no_data, ""))
    _, down = draw(Degraded(sim, no_data, "Prometheus unreachable since 21:40:05, retrying"))
    lay, cam = frame.site.layout, frame.site.camera
    x, y, w, h = lay.rect[sim.fabric.node_gid[0]]
    sx, sy = (int(v) for v in cam.to_screen(np.array([[x + w * 0.03, y + h * 0.5]]))[0])
    assert np.abs(fine[sx, sy].astype(int) - np.array(theme.NO_DATA)).max() <= 3, "no data is grey"
    assert (down[sx, sy].astype(int) < fine[sx, sy].astype(int)).all(), "the last data is dimmed while the feed is down"
    hot = (np.abs(down.astype(int) - np.array(theme.HOT)).max(axis=2) <= 2).sum()
    assert hot > 200 and (np.abs(fine.astype(int) - np.array(theme.HOT)).max(axis=2) <= 2).sum() < hot / 4


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (3840, 2160), (790, 900)], ids=str)
def test_the_job_list_never_runs_a_name_into_its_details(size: tuple[int, int]) -> None:
    """Long ids and huge jobs ('pre-training #208' beside '4,096 GPUs ...' once ran together): at every
    supported size, each row's name and details stay apart, and the biggest detail that fits is shown."""
    import dataclasses

    from twin.render.hud import Hud, HudModel, HudState, job_details
    from twin.render.text import Text
    from twin.snapshot import JobView

    sim = Simulation(load_scenario(SMALL))
    snap = sim.snapshot()
    jobs = tuple(
        JobView(jid, kind, gpus, params, "compute", 0.5, 0.62, np.array([0]), 0.0, 0.0)
        for jid, kind, gpus, params in (
            (2084, "pretrain", 4096, 101.0),
            (987654, "finetune", 100_000, 1750.0),
            (7, "inference", 8, 0.0),
            (123456789, "research", 12, 3.0),
        )
    )
    text = Text(text_scale(size) * (0.8 if size[0] < 1000 else 1.0))
    hud = Hud(text)
    surface = pygame.Surface(size)
    state = HudState("Site", "blurb", 1000.0)
    hud.draw(surface, HudModel(state, dataclasses.replace(snap, jobs=jobs), {}, {}, 0.0))
    assert len(hud.job_labels) == len(jobs)
    for (head, detail), job in zip(hud.job_labels, sorted(jobs, key=lambda j: (-j.gpus, j.id)), strict=True):
        assert detail is not None, "at least the GPU count fits"
        assert head.right + 6 <= detail.left, (size, job.id)
    widest = job_details(jobs[2])[0]
    assert widest.startswith("8 GPUs") and "compute" in widest


@pytest.mark.parametrize(
    ("metrics", "shown", "hidden"),
    [
        (
            {"pflops": 2855.0, "pflops_delivered": 320.0, "gpu_allocation": 0.8},
            ["COMPUTE DELIVERED", "320", "of 800 allocated: 40% of their peak (MFU)"],
            ["COMPUTE IN USE", "2,855"],
        ),
        (
            {"pflops": 2855.0, "pflops_delivered": float("nan"), "gpu_allocation": 0.8},
            ["COMPUTE IN USE", "2,855"],
            ["COMPUTE DELIVERED"],
        ),
    ],
    ids=["simulated", "telemetry"],
)
def test_the_headline_is_delivered_compute_beside_the_allocated_peak(metrics, shown, hidden) -> None:
    """A simulation knows what its GPUs deliver: the headline is that, with the allocated GPUs' peak and
    their MFU under it. Telemetry gives utilisation only: then PFLOPS in use, named as such."""
    from twin.render.hud import Hud, HudModel, HudState
    from twin.render.text import Text

    snap = Simulation(load_scenario(SMALL)).snapshot()
    text = Text(1.0)
    said: list[str] = []
    render = text.render

    def spy(s: str, *args, **kwargs):
        said.append(s)
        return render(s, *args, **kwargs)

    text.render = spy  # type: ignore[method-assign]
    Hud(text).draw(pygame.Surface((1920, 1080)), HudModel(HudState("Site", "blurb", 1000.0), snap, metrics, {}, 0.0))
    for s in shown:
        assert s in said
    for s in hidden:
        assert s not in said


def test_restyle_sums_made_in_slices_are_the_bundles_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    from twin.render import scene

    sim = Simulation(load_scenario(ROOT / "scenarios" / "lingang.toml"))
    sim.run(600)
    bundles = hall_layout(sim.fabric).segments.bundles
    load = sim.snapshot().link_load
    monkeypatch.setattr(scene, "SUM_STEP", 97)  # many slices, none aligned with a run
    out = np.zeros(bundles.rows)
    assert len(list(scene.bundle_sums(bundles, load, out))) > 10
    np.testing.assert_allclose(out, bundles.sums(load), rtol=1e-9, atol=1e-3)


def test_pulse_amplitude_fades_out_when_a_step_passes_in_a_few_frames() -> None:
    from twin.render.rhythm import pulse_amplitude

    assert pulse_amplitude(4.0, 0.35, 1 / 60) == 1.0  # real time: a step is hundreds of frames
    assert pulse_amplitude(4.0, 0.35, 2.0) == 0.0  # x120: the communication part is under a frame
    spf = np.geomspace(0.01, 10, 60)
    amp = np.array([pulse_amplitude(4.0, 0.35, s) for s in spf])
    assert (np.diff(amp) <= 0).all() and amp[0] == 1 and amp[-1] == 0, "faster clock, calmer pulse"
    assert pulse_amplitude(0.0, 0.35, 0.01) == 0 and pulse_amplitude(4.0, 0.0, 0.01) == 0
    assert pulse_amplitude(4.0, 1.0, 0.01) == 0, "all communication: no rhythm to show"
    assert pulse_amplitude(4.0, 0.35, 0.0) == 1, "paused: the pulse stays, frozen"
    assert pulse_amplitude(4.0, 0.02, 0.1) < pulse_amplitude(4.0, 0.3, 0.1), "a short burst fades sooner"


@pytest.mark.parametrize("share", [0.05, 0.35, 0.5, 0.8])
def test_a_pulse_keeps_the_mean_brightness(share: float) -> None:
    from twin.render.rhythm import comm_window, job_levels, mean_level

    t = np.linspace(0, 3.0, 30001)[:-1]  # one 3 s step, finely
    assert abs(comm_window(t / 3.0, share).mean() - share) < 1e-3
    for amp in (0.0, 0.4, 1.0):
        levels = np.array([job_levels(x, 3.0, share, 0.25, amp) for x in t[::10]])
        assert abs(levels.mean() - mean_level(share)) < 2e-3
        assert (levels >= 0).all() and (levels <= 1).all()
    comm, compute = job_levels(share / 2 * 3.0, 3.0, share, 0.0, 1.0), job_levels(2.9, 3.0, share, 0.0, 1.0)
    assert comm == 1.0 and compute < comm


class Rhythmic:
    """A simulation whose jobs compute and communicate in steps (made up), its clock set by hand."""

    def __init__(self, sim: Simulation, step_s: float, share: float) -> None:
        self.sim, self.step_s, self.share, self.t = sim, step_s, share, sim.now
        self.scenario, self.fabric, self.series, self.rack_labels = sim.scenario, sim.fabric, sim.series, ()

    now = property(lambda self: self.t)
    version = property(lambda self: self.sim.version)

    def snapshot(self):
        import dataclasses

        snap = self.sim.snapshot()
        jobs = tuple(dataclasses.replace(j, step_s=self.step_s, comm_share=self.share) for j in snap.jobs)
        return dataclasses.replace(snap, jobs=jobs)


def test_a_jobs_particles_pulse_with_its_steps_and_calm_down_at_speed() -> None:
    sim = Simulation(load_scenario(SMALL))
    sim.run(1800)
    source = Rhythmic(sim, 4.0, 0.35)
    frame = Frame(source, (1280, 720))
    frame.refresh(0.0, force=True)
    surface = pygame.Surface((1280, 720)).convert()

    def run(frames: int, sim_per_frame: float, wall: float) -> float:
        for _ in range(frames):
            source.t += sim_per_frame
            frame.refresh(wall)
            frame.draw(surface, wall)
            wall += 1 / 60
        return wall

    wall = run(90, 0.02, 0.0)  # the mix and the rhythm are made
    site = frame.site
    job = site._rhythm["job"]
    assert (job >= 0).any(), "the jobs' links know their job"
    first = job[job >= 0][0]
    step, share, offset = site._rhythm_jobs[:, first]
    seen = []
    for phase in (share / 2, share + (1 - share) / 2):  # mid-communication, mid-compute
        target = (np.ceil(source.t / step) + phase - offset) * step
        wall = run(int((target - source.t) / 0.02), 0.02, wall)  # at x1.2: a step lasts 200 frames
        seen.append(site.segment_levels()[job == first])
    assert (seen[0] > seen[1]).all(), "brighter while communicating"
    wall = run(30, 2.0, wall)  # x120: a step passes in two frames
    calm = [site.segment_levels()[job >= 0]]
    for _ in range(5):
        wall = run(1, 2.0 * 0.37, wall)
        calm.append(site.segment_levels()[job >= 0])
    assert np.ptp(np.array(calm), axis=0).max() < 1e-9, "no flicker at speed: the steady mean"


def test_a_particle_plan_places_particles_where_positions_does() -> None:
    from twin.render import particles as pt

    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 500, (40, 2)), rng.uniform(0, 500, (40, 2))
    n = rng.integers(0, 6, 40)
    mix = rng.uniform(0, 1, (40, 4)) * (rng.uniform(0, 1, (40, 1)) > 0.2)  # some of no known kind
    plan = pt.plan(a, b, n, mix, 2.0)
    for _ in range(3):
        phase = rng.uniform(0, 1, 40)
        xy, kind = pt.positions(a, b, phase, n, mix, 2.0)
        np.testing.assert_allclose(pt.place(plan, phase), xy, atol=1e-9)
        assert np.array_equal(plan.kind, kind) and len(plan.row) == n.sum()


def test_the_pulse_is_bright_where_the_simulation_has_the_job_communicate() -> None:
    """A step computes first and communicates for its last ``comm_share``: a job 0.8 into a step whose
    last 40% is communication is mid-burst (full brightness), one 0.3 into it mid-compute (dim)."""
    from twin.render.rhythm import dim_level, job_levels, step_offset

    for phase, level in ((0.8, 1.0), (0.3, float(dim_level(0.4)))):
        offset = step_offset(phase, 1234.5, 2.0, 0.4)
        assert job_levels(1234.5, 2.0, 0.4, offset, 1.0) == pytest.approx(level)
        # Half a step later it is in the other part.
        other = job_levels(1234.5 + 1.0, 2.0, 0.4, offset, 1.0)
        assert other == pytest.approx(float(dim_level(0.4)) if level == 1.0 else 1.0)


def test_linux_windows_present_through_the_native_framebuffer_unless_the_user_chose() -> None:
    """SDL's texture path costs 13-22 ms a frame on software OpenGL; the view asks for X11's own."""
    from twin.render import prefer_native_framebuffer

    env: dict[str, str] = {}
    prefer_native_framebuffer(env, "linux")
    assert env == {"SDL_FRAMEBUFFER_ACCELERATION": "0"}
    chosen = {"SDL_FRAMEBUFFER_ACCELERATION": "opengl"}
    prefer_native_framebuffer(chosen, "linux")
    assert chosen == {"SDL_FRAMEBUFFER_ACCELERATION": "opengl"}
    elsewhere: dict[str, str] = {}
    prefer_native_framebuffer(elsewhere, "win32")
    assert elsewhere == {}


def glide_cameras(site, frames: int) -> list[Camera]:
    """The cameras of a glide from the whole site into one of its racks (8x closer), one a frame."""
    from twin.render.show import blend

    whole = Camera.fit(site.layout.bounds, site.camera.viewport)
    x, y, rw, rh = site.layout.racks[len(site.layout.racks) // 2]
    rack = Camera((x + rw / 2, y + rh / 2), whole.zoom * 8, whole.viewport)
    return [blend(whole, rack, i / frames) for i in range(1, frames + 1)]


def test_a_glide_never_draws_a_whole_picture_in_one_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gliding, the picture shown is a picture drawn before, scaled; the next one is drawn a slice per
    frame for where the camera is heading, so the pictures follow the camera without any frame drawing
    the static layer or the links at once."""
    from twin.render.scene import SiteView

    frame, surface = frame_for(SMALL, at=3600)
    site = frame.site
    at_once = {"static": 0, "links": 0}
    for name, key in (("_draw_static", "static"), ("_draw_links", "links")):
        method = getattr(SiteView, name)

        def counted(self, *args, _method=method, _key=key, **kwargs):
            at_once[_key] += 1
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(SiteView, name, counted)
    pictures = set()
    cameras = glide_cameras(site, 120)
    for i, camera in enumerate(cameras):
        site.set_camera(camera)
        frame.draw(surface, (i + 1) / 60)
        pictures.add(site._live_cam)
    assert at_once == {"static": 0, "links": 0}
    assert len(pictures) > 3, "the pictures a glide scales follow the camera"
    assert site._live_cam.zoom > cameras[0].zoom * 4


def test_the_picture_at_rest_after_a_glide_is_the_one_drawn_afresh() -> None:
    """A glide may be softer while it moves; once the camera rests, the picture is drawn crisp."""
    frame, surface = frame_for(SMALL, at=3600)
    cameras = glide_cameras(frame.site, 60)
    for i, camera in enumerate(cameras):
        frame.site.set_camera(camera)
        frame.draw(surface, (i + 1) / 60)
    rest = 2.0
    frame.draw(surface, rest)  # the camera rests
    fresh, fresh_surface = frame_for(SMALL, at=3600)
    fresh.site.set_camera(cameras[-1])
    fresh.draw(fresh_surface, rest)
    view = pygame.Rect(cameras[-1].viewport)  # what is shown of the picture (lines may run outside)
    glided, drawn = frame.site._live.subsurface(view), fresh.site._live.subsurface(view)
    assert pygame.image.tobytes(glided, "RGB") == pygame.image.tobytes(drawn, "RGB")
    assert frame.site._live_cam == cameras[-1]


def test_a_particle_plan_made_in_slices_is_the_plan_made_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from twin.render import scene

    frame, _ = frame_for(SMALL, at=3600)
    site = frame.site
    plans = []
    for step in (10**9, 7):
        monkeypatch.setattr(scene, "PLAN_STEP", step)
        for _ in site._plan_steps(site.camera):
            pass
        planned, fine = site._plan[:2]
        order = np.lexsort((planned.frac, planned.row))
        plans.append((planned, order, fine))
    (a, order_a, fine_a), (b, order_b, fine_b) = plans
    assert fine_a == fine_b and len(a.row) == len(b.row) > 0
    for field_a, field_b in zip(a, b, strict=True):
        np.testing.assert_allclose(field_a[order_a], field_b[order_b])
    # Fine dots come first in both.
    assert set(a.row[:fine_a].tolist()) == set(b.row[:fine_b].tolist())


def test_what_one_camera_drew_is_moved_to_another_by_its_affine_map() -> None:
    old = Camera((10.0, 5.0), 20.0, (12, 40, 800, 600))
    new = old.zoom_at((300, 200), 1.7).pan(25, -10)
    world = np.array([[3.0, 4.0], [12.5, -2.0], [10.0, 5.0]])
    scale, offset = new.affine_from(old)
    np.testing.assert_allclose(old.to_screen(world) * scale + np.array(offset), new.to_screen(world), atol=1e-9)
    assert old.covered_by(old) == pytest.approx(1.0)
    assert new.covered_by(old) == pytest.approx(1.0)  # zoomed in: all of it was drawn
    assert old.covered_by(new) < 1.0  # zoomed out: not all of it
    ahead = new.ahead(old, 2, 1.0)
    assert ahead.zoom == pytest.approx(new.zoom * 1.7**2)


def test_covered_reads_the_mask_at_each_position_and_nothing_off_the_viewport() -> None:
    from twin.render import particles as pt

    mask = np.zeros((10, 6), bool)
    mask[2:5, 1:3] = True  # screen x 102..104, y 201..202 with the viewport at (100, 200)
    xy = np.array([[102.0, 201.0], [104.4, 202.4], [105.0, 201.0], [99.0, 201.0], [102.0, 206.0], [103.6, 200.6]])
    hit = pt.covered(mask, xy, (100, 200, 10, 6))
    assert hit.tolist() == [True, True, False, False, False, True]


def drawn_particles(frame: Frame, camera: Camera, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Screen positions of the particles a frame at ``camera`` stamps."""
    from twin.render import particles as pt

    stamped: list[np.ndarray] = []
    real = pt.stamp

    def spy(pixels, xy, colors, radius, clip):
        stamped.append(np.array(xy, copy=True))
        return real(pixels, xy, colors, radius, clip)

    monkeypatch.setattr(pt, "stamp", spy)
    frame.site.set_camera(camera)
    surface = pygame.Surface(frame.size).convert()
    for i in range(3):
        frame.draw(surface, 1.0 + i / 60)
    return np.concatenate(stamped[-2:])  # the last frame's fine and full dots


def inside_cells(site, xy: np.ndarray) -> np.ndarray:
    rects, vis = site._node_rects()
    r = np.round(rects[vis])
    x, y = np.round(xy[:, 0])[:, None], np.round(xy[:, 1])[:, None]
    return ((x >= r[:, 0]) & (x < r[:, 0] + r[:, 2]) & (y >= r[:, 1]) & (y < r[:, 1] + r[:, 3])).any(axis=1)


def test_no_particle_floats_over_a_server_whose_links_are_drawn_beneath_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoomed in, host links are lines drawn under the server cells: their particles show between the
    servers and the switches, not over the servers (nor over a GPU's face). Farther out, where host
    links are too small to draw, their traffic still shimmers inside the racks."""
    from twin.render.scene import HOST_DETAIL_PX, SHIMMER_PX

    frame, _ = frame_for(SMALL, at=3600)
    site = frame.site
    x, y, rw, rh = site.layout.racks[0]
    close = Camera.fit((x - rw, y - rh, x + 2 * rw, y + 2 * rh), site.camera.viewport)
    assert site.layout.cell_w * close.zoom >= HOST_DETAIL_PX
    xy = drawn_particles(frame, close, monkeypatch)
    assert len(xy) > 50 and not inside_cells(site, xy).any()
    planned, *_ = site._plan  # the plan itself has particles on the hidden stretches: the mask matters
    everywhere = planned.base + planned.run * (planned.frac % 1.0)[:, None]
    assert inside_cells(site, everywhere).any()

    far = replace(close, zoom=(SHIMMER_PX + 4) / site.layout.cell_w)
    xy = drawn_particles(frame, far, monkeypatch)
    assert inside_cells(site, xy).any()


def test_a_selected_jobs_servers_stay_visible_under_its_highlight_from_afar() -> None:
    """Far out, server cells are a few pixels: the selected job is outlined by the racks that hold it and
    lit along the links drawn at that zoom (outlining each server and drawing its host links, hidden at
    that zoom, ran together into white blobs that hid the job's own colour). Close up, its servers."""
    frame, surface = frame_for(ROOT / "scenarios" / "lingang.toml", size=(1920, 1080))
    job = max(frame.snap.jobs, key=lambda j: j.gpus)
    frame.select_job(job.id)
    frame.draw(surface, 1.0)
    site, fab = frame.site, frame.source.fabric
    assert site.layout.cell_w * site.camera.zoom < 26  # cells a few pixels wide
    boxes = site._highlight_boxes()
    assert len(boxes) == len(np.unique(fab.node_rack[job.nodes])) < len(job.nodes)
    cells = site.camera.to_screen(site.layout.rect[fab.node_gid[job.nodes], :2]).round().astype(int)
    px = pygame.surfarray.array3d(surface)
    white = np.all(px[cells[:, 0] + 2, cells[:, 1] + 2] == theme.TEXT, axis=1)  # a pixel inside each cell
    assert white.mean() < 0.1, f"{white.mean():.0%} of the job's cells are under white"
    x, y, w, h = site.layout.rect[fab.node_gid[job.nodes[0]]]
    site.set_camera(Camera.fit((x - w, y - h, x + 2 * w, y + 2 * h), site.camera.viewport))
    assert site.layout.cell_w * site.camera.zoom >= 26
    assert len(site._highlight_boxes()) == len(job.nodes)  # close up: each server


def test_the_job_list_says_one_gpu_and_small_models_as_they_are() -> None:
    """'1 GPUs' and '0B' (a 350M-parameter model) read as mistakes to a visitor."""
    from twin.render.hud import job_details, model_size
    from twin.snapshot import JobView

    def details(gpus: int, params_b: float) -> str:
        return job_details(JobView(1, "research", gpus, params_b, "compute", 0.5, 1.0, np.array([0]), 0.0, 0.0))[0]

    assert details(1, 0.35) == "1 GPU  0.35B  compute"
    assert details(8, 3.0) == "8 GPUs  3B  compute"
    assert details(4096, 101.0) == "4,096 GPUs  101B  compute"
    assert [model_size(v) for v in (1750.0, 12.4, 9.4, 2.5, 0.125)] == ["1,750B", "12B", "9.4B", "2.5B", "0.12B"]
    from twin.render.inspector import describe_job

    sim = Simulation(load_scenario(SMALL))
    one = JobView(1, "research", 1, 0.35, "compute", 0.5, 1.0, np.array([0]), 0.0, 0.0)
    _, lines = describe_job(one, sim.fabric, sim.snapshot())
    assert lines[:2] == ("1 GPU on 1 server under 1 leaf domain", "model 0.35B parameters")
