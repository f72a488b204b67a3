"""The live view: a window, a fixed-step frame loop, and the controls.

Each frame: wall time since the last frame (clamped) times the speed factor is added to an accumulator,
the simulation advances in fixed steps while a time budget lasts (if it cannot keep up, the view says
at what speed it really runs instead of stalling), then the latest snapshot is drawn once.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pygame

from twin.render.hud import Hud, HudState
from twin.render.inspector import describe_job, describe_segment, describe_vertex
from twin.render.scene import SiteView
from twin.render.text import Text
from twin.scenario import Scenario
from twin.simulation import Simulation
from twin.snapshot import Snapshot
from twin.topology import NODE

SPEEDS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3000, 6000, 10000)
DEFAULT_SPEED = 120
SIM_BUDGET_S = 0.008  # wall time a frame may spend advancing the simulation
SPARK_SAMPLES = 360  # one simulated hour at the default 10 s step
SERIES_KEYS = ("pflops", "gpu_allocation", "facility_mw", "max_link_util")


def text_scale(size: tuple[int, int]) -> float:
    """Text and line sizes follow the window: 1.0 at 1920x1080."""
    return float(np.clip(min(size[0] / 1920, size[1] / 1080), 0.55, 2.5))


class Frame:
    """Everything on screen for one simulation: the site picture and the HUD, drawn onto a surface.
    Shared by the window and by headless stills, so both show exactly the same thing."""

    def __init__(
        self, sim: Simulation, size: tuple[int, int], layout: str = "hall", scale: float | None = None
    ) -> None:
        self.sim = sim
        self._scale = scale  # fixed text scale (a half of a split screen), else from the size
        self.text = Text(scale or text_scale(size))
        self.site = SiteView(sim.fabric, self.text, layout)
        if hasattr(sim, "rack_labels"):  # recorded telemetry names its racks after virtual clusters
            self.site.relabel_blocks(sim.rack_labels())
        self.hud = Hud(self.text)
        sc = sim.scenario
        self.state = HudState(sc.site.name, sc.site.blurb, sc.peak_pflops, DEFAULT_SPEED, DEFAULT_SPEED)
        self.hud_visible = True
        self.snap: Snapshot | None = None
        self._snap_key: tuple = ()
        self._snap_wall = -1e9
        self.size = size
        self.resize(size)

    def resize(self, size: tuple[int, int]) -> None:
        self.size = size
        self.text.set_scale(self._scale or text_scale(size))
        self.site.set_viewport(self.hud.viewport(size, self.hud_visible))

    def refresh(self, wall: float, force: bool = False) -> None:
        """Take a new snapshot if the simulation changed (or now and then, for progress bars)."""
        sim = self.sim
        key = (sim.flows.version, sim.totals.started, sim.totals.ended)
        if force or key != self._snap_key or wall - self._snap_wall > 0.5:
            self.snap = sim.snapshot()
            self.site.update(self.snap, wall)
            self._snap_key, self._snap_wall = key, wall
            self.state.hottest = hottest_link(self.sim.fabric, self.snap)
            self.state.epoch = getattr(sim, "t0", None)
            self._follow_selection()

    def _follow_selection(self) -> None:
        job_id = self.state.selected_job
        if job_id is None or self.snap is None:
            return
        job = next((j for j in self.snap.jobs if j.id == job_id), None)
        if job is None:  # the job finished
            self.state.selected_job = None
            self.site.highlight = ()
            self.state.inspector = None
            return
        self.site.highlight = tuple(int(g) for g in self.sim.fabric.node_gid[job.nodes])
        flows = self.snap.flows
        mine = np.isin(flows["entry_flow"], np.flatnonzero(flows["job"] == job_id))
        self.site.highlight_segments = self.site.segments_of_links(np.unique(flows["entry_link"][mine]))
        self.state.inspector = describe_job(job, self.sim.fabric, self.snap)

    def draw(self, surface: pygame.Surface, wall: float) -> dict[str, float]:
        t0 = time.perf_counter()
        self.site.tick(wall)
        self.site.draw(surface)
        t1 = time.perf_counter()
        if self.hud_visible and self.snap is not None:
            keys = SERIES_KEYS + tuple(k for k in ("sim_gpu_allocation",) if k in self.sim.series.fields)
            series = {k: self.sim.series.column(k, SPARK_SAMPLES) for k in keys}
            self.hud.draw(
                surface, self.state, self.sim.series.latest(), series, self.snap.jobs, self.sim.now, self.snap.alerts
            )
        t2 = time.perf_counter()
        return {"site_ms": (t1 - t0) * 1000, "hud_ms": (t2 - t1) * 1000}

    def select_at(self, pos: tuple[int, int]) -> None:
        """Click: a job row in the HUD or a server with a job selects that job; anything else inspects."""
        for rect, job_id in self.hud.job_rows if self.hud_visible else []:
            if rect.collidepoint(pos):
                self.state.selected_job = job_id
                self._follow_selection()
                return
        hit = self.site.pick(pos)
        self.state.selected_job = None
        self.site.highlight = ()
        if hit and hit[0] == "vertex" and self.sim.fabric.kind[hit[1]] == NODE and self.snap is not None:
            n = int(np.flatnonzero(self.sim.fabric.node_gid == hit[1])[0])
            job = int(self.snap.node_job[n])
            if job >= 0:
                self.state.selected_job = job
                self._follow_selection()
                return
        self.state.inspector = self.describe(hit)

    def describe(self, hit: tuple[str, int] | None):
        if hit is None or self.snap is None:
            return None
        if hit[0] == "vertex":
            return describe_vertex(hit[1], self.sim.fabric, self.snap)
        return describe_segment(hit[1], self.site.layout, self.sim.fabric, self.snap)


def hottest_link(fab, snap: Snapshot) -> str:
    """Name the most loaded link, for the HUD: 'leaf-u03-r2 > spine-r2-01' or 'pfs-3 writes'."""
    if not len(snap.link_util) or snap.link_util.max() <= 0:
        return ""
    lk = int(np.argmax(snap.link_util))
    src, dst = fab.names[int(fab.link_src[lk])], fab.names[int(fab.link_dst[lk])]
    if src == dst:  # a storage array's own limit
        i = int(np.flatnonzero(fab.storage_gid == fab.link_src[lk])[0]) if src != "gateway" else -1
        return f"{src} {'reads' if i >= 0 and fab.storage_read[i] == lk else 'writes'}"
    return f"{src} > {dst}"


def render_still(
    sim: Simulation, size: tuple[int, int], layout: str = "hall", speed: float = DEFAULT_SPEED
) -> pygame.Surface:
    """One frame of the view, headless, at the simulation's current time (the `shot` verb)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()
    if pygame.display.get_surface() is None or pygame.display.get_surface().get_size() != size:
        pygame.display.set_mode(size)
    surface = pygame.Surface(size).convert()
    frame = Frame(sim, size, layout)
    frame.state.speed = frame.state.effective_speed = speed
    frame.refresh(0.0, force=True)
    for i in range(1, 31):  # let particles spread along their links: a fixed half second of animation
        frame.site.tick(i / 60)
    frame.draw(surface, 0.5)
    return surface


class App:
    """The interactive window."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        size: tuple[int, int] = (1600, 900),
        fullscreen: bool = False,
        speed: float = DEFAULT_SPEED,
        quit_after: float | None = None,
        driver: object | None = None,
    ) -> None:
        """``driver`` advances the simulation instead of it (a trace replay feeding it jobs); it has
        ``sim`` and ``advance(dt)``."""
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(f"twin: {scenario.site.name}")
        self.windowed_size = size
        self.fullscreen = fullscreen
        self.screen = self._set_mode()
        self.sim = driver.sim if driver is not None else Simulation(scenario, seed=seed)
        self.driver = driver if driver is not None else self.sim
        self.frame = Frame(self.sim, self.screen.get_size())
        self.speed_index = int(np.argmin([abs(s - speed) for s in SPEEDS]))
        self.frame.state.speed = SPEEDS[self.speed_index]
        self.quit_after = quit_after
        self.running = True
        self._acc = 0.0
        self._drag: tuple[int, int] | None = None
        self._dragged = False
        self._last_click = -1.0
        self._notice_until = 0.0
        self.frame_times: list[float] = []

    def _set_mode(self) -> pygame.Surface:
        if self.fullscreen:
            return pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        return pygame.display.set_mode(self.windowed_size, pygame.RESIZABLE)

    def run(self) -> None:
        clock = pygame.time.Clock()
        start = time.perf_counter()
        last = start
        while self.running:
            now = time.perf_counter()
            dt = min(now - last, 0.1)
            last = now
            for event in pygame.event.get():
                self.handle(event, now - start)
            self.step(dt)
            self.frame.refresh(now - start)
            if now - start > self._notice_until:
                self.frame.state.notice = ""
            self.frame.draw(self.screen, now - start)
            pygame.display.flip()
            self.frame_times.append((time.perf_counter() - now) * 1000)
            if self.quit_after is not None and now - start >= self.quit_after:
                self.running = False
            clock.tick(60)
        pygame.display.quit()

    def step(self, dt: float) -> None:
        """Advance the simulation by dt wall seconds at the current speed, in fixed steps."""
        st = self.frame.state
        if st.paused:
            return
        speed = st.speed
        step = 0.25 * max(1.0, speed / 240)
        self._acc += dt * speed
        t0 = time.perf_counter()
        before = self.sim.now
        while self._acc >= step:
            self.driver.advance(step)
            self._acc -= step
            if time.perf_counter() - t0 > SIM_BUDGET_S:
                self._acc = min(self._acc, step)  # drop what cannot be done: run slower, never stall
                break
        if dt > 0:
            achieved = (self.sim.now - before) / dt
            st.effective_speed = 0.9 * st.effective_speed + 0.1 * achieved if st.effective_speed else achieved

    def notify(self, text: str, wall: float, seconds: float = 2.5) -> None:
        self.frame.state.notice = text
        self._notice_until = wall + seconds

    def handle(self, event: pygame.event.Event, wall: float) -> None:
        fr = self.frame
        st = fr.state
        if event.type == pygame.QUIT:
            self.running = False
        elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
            self.screen = pygame.display.get_surface()
            fr.resize(self.screen.get_size())
        elif event.type == pygame.KEYDOWN:
            key = event.key
            if key in (pygame.K_ESCAPE, pygame.K_q):
                self.running = False
            elif key == pygame.K_SPACE:
                st.paused = not st.paused
            elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
                self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
                st.speed = SPEEDS[self.speed_index]
                st.effective_speed = st.speed
            elif key in (pygame.K_MINUS, pygame.K_KP_MINUS):
                self.speed_index = max(self.speed_index - 1, 0)
                st.speed = SPEEDS[self.speed_index]
                st.effective_speed = st.speed
            elif key == pygame.K_l:
                fr.site.set_layout("graph" if fr.site.layout.name == "hall" else "hall")
                self.notify(f"{fr.site.layout.name} layout", wall)
            elif key == pygame.K_h:
                fr.hud_visible = not fr.hud_visible
                fr.resize(self.screen.get_size())
            elif key == pygame.K_f:
                self.fullscreen = not self.fullscreen
                self.screen = self._set_mode()
                fr.resize(self.screen.get_size())
            elif key == pygame.K_s:
                path = save_screenshot(self.screen, Path.cwd())
                self.notify(f"saved {path.name}", wall)
            elif key == pygame.K_SLASH or event.unicode == "?":
                st.show_help = not st.show_help
            elif key in (pygame.K_LEFTBRACKET, pygame.K_RIGHTBRACKET) and hasattr(self.driver, "seek"):
                hours = 1 if key == pygame.K_RIGHTBRACKET else -1  # scrub a recording by the hour
                self.driver.seek(self.sim.now + hours * 3600.0)
                fr.refresh(wall, force=True)
                self.notify(f"{'forward' if hours > 0 else 'back'} one hour", wall)
        elif event.type == pygame.MOUSEWHEEL:
            pos = pygame.mouse.get_pos()
            cam = fr.site.camera.zoom_at(pos, 1.15**event.y)
            fr.site.set_camera(cam)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            self._drag = event.pos
            self._dragged = False
        elif event.type == pygame.MOUSEMOTION:
            if self._drag is not None and event.buttons[0]:
                dx, dy = event.pos[0] - self._drag[0], event.pos[1] - self._drag[1]
                if self._dragged or abs(dx) + abs(dy) > 3:
                    fr.site.set_camera(fr.site.camera.pan(dx, dy))
                    self._drag = event.pos
                    self._dragged = True
            elif st.selected_job is None:
                st.inspector = fr.describe(fr.site.pick(event.pos))
        elif event.type == pygame.MOUSEBUTTONUP and event.button == 1:
            if not self._dragged:
                if wall - self._last_click < 0.35:
                    fr.site.fit()
                else:
                    fr.select_at(event.pos)
                self._last_click = wall
            self._drag = None


def save_screenshot(surface: pygame.Surface, folder: Path) -> Path:
    """Save to a new file, never over an existing one."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"twin-{stamp}.png"
    i = 1
    while path.exists():
        path = folder / f"twin-{stamp}-{i}.png"
        i += 1
    pygame.image.save(surface, str(path))
    return path
