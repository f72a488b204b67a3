"""The live view: what one source looks like on screen (``Frame``), and the window around it (``App``).

A ``Frame`` draws from a ``twin.source.Source`` and nothing else: it takes a snapshot when the source's
change counter moves (or now and then, for progress bars) and draws the latest one. The window runs the
shared frame loop (``twin.render.loop``): wall time times the speed is turned into fixed simulated steps
within a time budget (if the source cannot keep up, the view says at what speed it really runs instead of
stalling), then the latest snapshot is drawn once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pygame

from twin.render.hud import Hud, HudModel, HudState
from twin.render.inspector import describe_job, describe_segment, describe_vertex
from twin.render.layout import Layout
from twin.render.loop import DEFAULT_SPEED, Controller, FrameLoop, Pane, Stepper, save_screenshot
from twin.render.scene import SiteView
from twin.render.text import Text
from twin.signals import stop_requested as signalled
from twin.snapshot import Snapshot
from twin.source import Seekable, Source
from twin.topology import NODE

__all__ = ["DEFAULT_SPEED", "App", "Frame", "render_still", "save_screenshot", "text_scale"]

SPARK_SAMPLES = 360  # one simulated hour at the default 10 s step
SNAPSHOT_S = 1 / 15  # wall seconds between snapshots of a changing source (force: at once)
SERIES_KEYS = ("pflops", "pflops_delivered", "gpu_allocation", "facility_mw", "max_link_util")


def text_scale(size: tuple[int, int]) -> float:
    """Text and line sizes follow the window: 1.0 at 1920x1080."""
    return float(np.clip(min(size[0] / 1920, size[1] / 1080), 0.55, 2.5))


class Frame:
    """Everything on screen for one source: the site picture and the HUD, drawn onto a surface.
    Shared by the window, the split view, the show and headless stills, so all show exactly the same."""

    def __init__(
        self, source: Source, size: tuple[int, int], layout: str | Layout = "hall", scale: float | None = None
    ) -> None:
        self.source = source
        self._scale = scale  # fixed text scale (a half of a split screen), else from the size
        self.text = Text(scale or text_scale(size))
        self.site = SiteView(source.fabric, self.text, layout)
        if source.rack_labels:  # recorded telemetry names its racks after virtual clusters
            self.site.relabel_blocks(list(source.rack_labels))
        self.hud = Hud(self.text)
        sc = source.scenario
        self.state = HudState(sc.site.name, sc.site.blurb, sc.peak_pflops, DEFAULT_SPEED, DEFAULT_SPEED)
        self.hud_visible = True
        self.snap: Snapshot | None = None
        self._snap_version = -1
        self._snap_wall = -1e9
        self.size = size
        self.resize(size)

    def resize(self, size: tuple[int, int]) -> None:
        self.size = size
        self.text.set_scale(self._scale or text_scale(size))
        self.site.set_viewport(self.hud.viewport(size, self.hud_visible))

    def refresh(self, wall: float, force: bool = False) -> None:
        """Take a new snapshot if the source changed (or now and then, for progress bars)."""
        version = self.source.version
        changed = force or version != self._snap_version
        since = wall - self._snap_wall
        # At high speeds the source changes every frame; the picture restyles a few times a second and the
        # side panel twice, so a new snapshot more often than SNAPSHOT_S would copy arrays nobody reads.
        if force or (changed and not 0 <= since < SNAPSHOT_S) or since > 0.5:
            self.snap = self.source.snapshot()
            self._snap_wall = wall
            self.state.epoch = self.snap.epoch_s
            if changed:  # the picture changes only with the source; progress bars move with time
                self.site.update(self.snap, wall)
                self._snap_version = version
                self.state.hottest = hottest_link(self.source.fabric, self.snap)
            self._follow_selection()

    def select_job(self, job_id: int) -> None:
        """Select a running job: its servers and paths lit, its card up, from the snapshot in hand."""
        self.state.selected_job = job_id
        self._follow_selection()

    def clear_selection(self) -> None:
        """No job selected: no card and no highlight (a card left up would no longer be kept current)."""
        self.state.selected_job = None
        self.state.inspector = None
        self.site.highlight = ()

    def _follow_selection(self) -> None:
        job_id = self.state.selected_job
        if job_id is None or self.snap is None:
            return
        job = next((j for j in self.snap.jobs if j.id == job_id), None)
        if job is None:  # the job finished
            self.clear_selection()
            return
        self.site.highlight = tuple(int(g) for g in self.source.fabric.node_gid[job.nodes])
        flows = self.snap.flows
        mine = np.isin(flows["entry_flow"], np.flatnonzero(flows["job"] == job_id))
        self.site.highlight_segments = self.site.segments_of_links(np.unique(flows["entry_link"][mine]))
        self.state.inspector = describe_job(job, self.source.fabric, self.snap)

    def draw(self, surface: pygame.Surface, wall: float) -> dict[str, float]:
        t0 = time.perf_counter()
        self.site.tick(wall, self.source.now)
        self.site.draw(surface)
        t1 = time.perf_counter()
        if self.hud_visible and self.snap is not None:
            source = self.source
            keys = SERIES_KEYS + tuple(k for k in ("sim_gpu_allocation",) if k in source.series.fields)
            series = {k: source.series.column(k, SPARK_SAMPLES) for k in keys}
            self.hud.draw(surface, HudModel(self.state, self.snap, source.series.latest(), series, source.now), wall)
        elif self.state.show_help:  # help is there whether or not the HUD is
            self.hud.draw_help(surface)
        t2 = time.perf_counter()
        return {"site_ms": (t1 - t0) * 1000, "hud_ms": (t2 - t1) * 1000}

    def select_at(self, pos: tuple[int, int]) -> None:
        """Click: a job row in the HUD or a server with a job selects that job; anything else inspects."""
        for rect, job_id in self.hud.job_rows if self.hud_visible else []:
            if rect.collidepoint(pos):
                self.select_job(job_id)
                return
        hit = self.site.pick(pos)
        self.clear_selection()
        fab = self.source.fabric
        if hit and hit[0] == "vertex" and fab.kind[hit[1]] == NODE and self.snap is not None:
            n = int(np.flatnonzero(fab.node_gid == hit[1])[0])
            job = int(self.snap.node_job[n])
            if job >= 0:
                self.select_job(job)
                return
        self.state.inspector = self.describe(hit)

    def describe(self, hit: tuple[str, int] | None):
        if hit is None or self.snap is None:
            return None
        if hit[0] == "vertex":
            return describe_vertex(hit[1], self.source.fabric, self.snap)
        return describe_segment(hit[1], self.site.layout, self.source.fabric, self.snap)


def hottest_link(fab, snap: Snapshot) -> str:
    """Name the most loaded link, for the HUD: 'leaf-u03-r2 > spine-r2-01' or 'pfs-3 writes'."""
    lk = snap.hottest
    if lk < 0:
        return ""
    src, dst = fab.names[int(fab.link_src[lk])], fab.names[int(fab.link_dst[lk])]
    if src == dst:  # a storage array's own limit
        i = int(np.flatnonzero(fab.storage_gid == fab.link_src[lk])[0]) if src != "gateway" else -1
        return f"{src} {'reads' if i >= 0 and fab.storage_read[i] == lk else 'writes'}"
    return f"{src} > {dst}"


def render_still(
    source: Source, size: tuple[int, int], layout: str = "hall", speed: float = DEFAULT_SPEED
) -> pygame.Surface:
    """One frame of the view, headless, at the simulation's current time (the `shot` verb)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()
    if pygame.display.get_surface() is None or pygame.display.get_surface().get_size() != size:
        pygame.display.set_mode(size)
    surface = pygame.Surface(size).convert()
    frame = Frame(source, size, layout)
    frame.state.speed = frame.state.effective_speed = speed
    frame.refresh(0.0, force=True)
    for i in range(1, 31):  # let particles spread along their links: a fixed half second of animation
        frame.site.tick(i / 60)
    frame.draw(surface, 0.5)
    return surface


class App:
    """The interactive window on one source."""

    def __init__(
        self,
        source: Source,
        size: tuple[int, int] = (1600, 900),
        fullscreen: bool = False,
        speed: float = DEFAULT_SPEED,
        quit_after: float | None = None,
        stop_requested: Callable[[], bool] = signalled,
    ) -> None:
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(f"twin: {source.scenario.site.name}")
        self.windowed_size = size
        self.fullscreen = fullscreen
        self.screen = self._set_mode()
        self.source = source
        self.frame = Frame(source, self.screen.get_size())
        self.stepper = Stepper(source.advance, lambda: source.now)
        self.controls = Controller([Pane(self.frame, self.screen.get_rect())], speed)
        self.controls.on_quit = self.quit
        self.controls.on_fullscreen = self.toggle_fullscreen
        self.controls.on_screenshot = lambda: self._notify(f"saved {save_screenshot(self.screen, Path.cwd()).name}")
        self.controls.on_notice = self._notify
        if isinstance(source, Seekable):
            self.controls.on_seek = self._seek
        self.loop = FrameLoop(quit_after, stop_requested)
        self.running = True
        self._wall = 0.0
        self._notice_until = 0.0

    @property
    def frame_times(self):
        return self.loop.frame_times

    def _set_mode(self) -> pygame.Surface:
        if self.fullscreen:
            return pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        return pygame.display.set_mode(self.windowed_size, pygame.RESIZABLE)

    def run(self) -> None:
        self.loop.run(self)
        pygame.display.quit()

    def quit(self) -> None:
        self.running = False

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        self.screen = self._set_mode()
        self._resized()

    def _resized(self) -> None:
        self.screen = pygame.display.get_surface()
        self.frame.resize(self.screen.get_size())
        self.controls.panes[0].rect = self.screen.get_rect()

    def _seek(self, hours: float) -> None:
        assert isinstance(self.source, Seekable)
        self.source.seek(self.source.now + hours * 3600.0)
        self.frame.refresh(self._wall, force=True)

    def _notify(self, text: str, seconds: float = 2.5) -> None:
        self.frame.state.notice = text
        self._notice_until = self._wall + seconds

    # --- the frame loop's Screen ----------------------------------------------------------------------

    def handle(self, event: pygame.event.Event, wall: float) -> None:
        self._wall = wall
        if event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
            self._resized()
        else:
            self.controls.handle(event, wall)

    def step(self, dt: float) -> None:
        """Advance the source by dt wall seconds at the current speed, in fixed steps."""
        st = self.frame.state
        if st.paused:
            return
        achieved = self.stepper.step(dt, st.speed)
        if achieved is not None:
            st.effective_speed = 0.9 * st.effective_speed + 0.1 * achieved if st.effective_speed else achieved

    def update(self, dt: float, wall: float) -> None:
        self._wall = wall
        self.step(dt)
        self.frame.refresh(wall)
        if wall > self._notice_until:
            self.frame.state.notice = ""

    def draw(self, wall: float) -> None:
        self.frame.draw(self.screen, wall)
