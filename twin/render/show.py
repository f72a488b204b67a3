"""The exhibition show: a playlist played all day, unattended, fullscreen.

Each scene opens with a title card, runs its scenario with a scripted camera and captions timed to what
happens in the simulation, then fades out into the next. Visitors may explore (zoom, pan, inspect); a
quiet minute later the show takes the camera back where the script has got to. Only a deliberate chord
(Ctrl+Shift+Q) ends it. Anything that goes wrong inside a scene is logged and the show moves on; the
whole picture drifts a few pixels over minutes so nothing burns into a screen left on for weeks.
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pygame

from twin.captions import CaptionTrack
from twin.playlist import Scene, Show
from twin.render import theme
from twin.render.app import Frame, text_scale
from twin.render.camera import Camera
from twin.render.layout import LAYOUTS, Layout
from twin.render.loop import Controller, FrameLoop, Pane
from twin.render.scene import fill_outside
from twin.render.text import Text
from twin.scenario import load_scenario
from twin.signals import stop_requested as signalled
from twin.signals import stop_signal
from twin.simulation import Simulation
from twin.source import Source

GLIDE_SHARE = 0.35  # of each camera move spent gliding to its target
DRIFT_PX = 8  # anti burn-in drift amplitude at 1080p
DRIFT_PERIODS_S = (660.0, 420.0)
INTERMISSION_S = 30.0  # when no scene can be played, wait this long before trying again
PRELOAD_AT = 0.3  # share of a scene played when the next one starts being built, off the frame loop
WARM_STEPS = 3  # frames of the title card spent drawing the new scene off screen, a part at a time
CAPTION_ROOM = 135  # px at 1080p kept free at the foot of the whole-site shot: a two-line caption and its gap
CARD_ROOM = 470  # px at 1080p kept free at the right of the whole-site shot of a followed job: its card and a gap


def show_logger(path: Path) -> logging.Logger:
    """A rotating log file for the show: the only place its errors go."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"twin.exhibit.{path}")
    if not log.handlers:
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def blend(a: Camera, b: Camera, x: float) -> Camera:
    """Camera between a and b: centre linearly, zoom geometrically (so zooming feels even)."""
    s = smoothstep(x)
    center = (a.center[0] + (b.center[0] - a.center[0]) * s, a.center[1] + (b.center[1] - a.center[1]) * s)
    zoom = math.exp(math.log(a.zoom) + (math.log(b.zoom) - math.log(a.zoom)) * s)
    return Camera(center, zoom, b.viewport)


@dataclass
class Move:
    name: str
    start_s: float
    seconds: float
    origin: Camera | None = None
    target: Camera | None = None
    job: int | None = None  # the job a follow move follows
    glide_from: float | None = None  # scene time its glide to the target began (the move's start if None)

    def reset(self) -> None:
        """Choose the target afresh the next time the move is played (from wherever the camera is then)."""
        self.origin = self.target = self.job = self.glide_from = None


class SceneRun:
    """One scene being played: its simulation, its picture, its captions and its camera script."""

    def __init__(
        self, scene: Scene, size: tuple[int, int], source: Source | None = None, layout: Layout | None = None
    ) -> None:
        """``source``: what to show instead of simulating the scene's scenario (any source will do);
        ``layout``: the scene's layout if it is already computed (see ``SceneLoader``)."""
        self.scene = scene
        self.source = source or Simulation(load_scenario(scene.scenario), seed=scene.seed)
        self.frame = Frame(self.source, size, layout or scene.layout)
        self.frame.refresh(0.0, force=True)
        assert self.frame.snap is not None
        self.captions = CaptionTrack(scene.captions, self.source.fabric, self.frame.snap.last_seq)
        self.controls = Controller([Pane(self.frame, pygame.Rect((0, 0), size))])  # what visitors' hands do
        # The scene's own speed on the HUD (after the controller, which sets its panes to one of its steps).
        self.frame.state.speed = self.frame.state.effective_speed = scene.speed
        share = scene.seconds / len(scene.camera)
        self.moves = [Move(name, i * share, share) for i, name in enumerate(scene.camera)]
        self.t = 0.0  # scene time, seconds since the title card ended
        self.frame.site.set_camera(self._whole())  # the script's first shot, captions' room left free
        self.caption = None
        self.warmed = 0  # warm-up steps done (caches filled before the scene is first shown)

    def warm(self, offscreen: pygame.Surface, wall: float) -> None:
        """One step of drawing the scene off screen while its title card shows, so the first frame it is
        seen costs no more than any other: the snapshot, then the site picture, then the HUD."""
        if self.warmed == 0:
            self.frame.refresh(wall, force=True)
        elif self.warmed == 1:
            self.frame.site.draw(offscreen)
        else:
            self.frame.draw(offscreen, wall)
        self.warmed += 1

    def resize(self, size: tuple[int, int]) -> None:
        self.frame.resize(size)
        self.controls.panes[0].rect = pygame.Rect((0, 0), size)
        for m in self.moves:
            m.reset()

    def advance(self, dt: float, scripted: bool, wall: float) -> None:
        """Move the scene on by ``dt`` seconds; ``wall``: the show's clock, which the frame's snapshots and
        animations follow (as when it is drawn)."""
        self.t += dt
        self.source.advance(dt * self.scene.speed)
        self.frame.refresh(wall)
        assert self.frame.snap is not None
        self.caption = self.captions.update(self.t, self.frame.snap)
        if scripted:
            self.frame.site.set_camera(self.camera_at(self.t), fitted=False)
            self._hand_over()

    def _hand_over(self) -> None:
        """A followed job that ends hands over to the biggest job still running: the camera glides to its
        shot (from one whole-site shot to another only the card beside the site changes), so the move never
        ends on servers gone idle or beside a room left for a card that is gone."""
        move, snap = self._move_at(self.t), self.frame.snap
        if move.name != "follow-biggest" or move.target is None or snap is None or not snap.jobs:
            return
        if move.job is None or not any(j.id == move.job for j in snap.jobs):  # (None: none ran when it began)
            move.origin, move.glide_from = self.frame.site.camera, self.t
            move.target = self._target(move.name)  # (selects the job it follows)
            move.job = self.frame.state.selected_job

    def _move_at(self, t: float) -> Move:
        return next((m for m in reversed(self.moves) if t >= m.start_s), self.moves[0])

    def camera_at(self, t: float) -> Camera:
        """Where the script has the camera at scene time t (targets chosen when each move begins)."""
        site = self.frame.site
        move = self._move_at(t)
        if move.target is None:
            move.origin = site.camera
            move.target = self._target(move.name)  # (a follow move's selects the job it follows)
            move.job = self.frame.state.selected_job if move.name == "follow-biggest" else None
            if t > move.start_s:  # chosen late (the show resumes after a visitor): a glide from now
                move.glide_from = t
        glide = max(2.0, GLIDE_SHARE * move.seconds) * (1.6 if move.name == "orbit-back" else 1.0)
        start = move.start_s if move.glide_from is None else move.glide_from
        return blend(move.origin, move.target, (t - start) / glide)

    def _whole(self, card: bool = False) -> Camera:
        """The whole site, above the band at the foot of the view where captions show (if the scene has
        any): a caption never covers the storage arrays drawn at the bottom of the site. With ``card`` (a
        job followed on the whole site), left of where the job's inspector card shows, which reaches
        higher than the captions' band."""
        site, s = self.frame.site, self.frame.text.scale
        room = round(CAPTION_ROOM * s) if self.scene.captions else 0
        right = round(CARD_ROOM * s) if card else 0
        return Camera.fit(site.layout.bounds, site.camera.viewport, clear_bottom=room, clear_right=right)

    def _target(self, name: str) -> Camera:
        site = self.frame.site
        lay, fab, snap = site.layout, self.source.fabric, self.frame.snap
        viewport = site.camera.viewport
        fit = self._whole()
        owner = snap.gpu_owner if snap is not None else np.full((fab.n_nodes, fab.gpus_per_node), -1)
        self.frame.clear_selection()  # a job's card belongs to the move that follows it
        if name == "glide-rack" and len(lay.racks):
            busy = np.bincount(fab.node_rack, weights=(owner >= 0).sum(axis=1), minlength=len(lay.racks))
            r = int(np.argmax(busy))
            x, y, w, h = lay.racks[r]
            return Camera.fit((x - 2.5 * w, y - 1.2 * h, x + 3.5 * w, y + 2.2 * h), viewport)
        if name == "follow-biggest" and snap is not None and snap.jobs:
            (job,) = snap.biggest_jobs(1)
            rects = lay.rect[fab.node_gid[job.nodes]]
            x0, y0 = rects[:, 0].min(), rects[:, 1].min()
            x1, y1 = (rects[:, 0] + rects[:, 2]).max(), (rects[:, 1] + rects[:, 3]).max()
            pad = max(x1 - x0, y1 - y0) * 0.35 + 2.0
            cam = Camera.fit((x0 - pad, y0 - pad, x1 + pad, y1 + pad), viewport)
            self.frame.select_job(job.id)
            return cam if cam.zoom > fit.zoom else self._whole(card=True)
        return fit


class SceneLoader:
    """Builds the next scene's simulation and layout on a worker thread while the current scene plays,
    so changing scenes never stalls a frame (building Lingang takes over a second). Only pure work is
    done there: nothing touches pygame off the main thread."""

    def __init__(self) -> None:
        self.index = -1
        self._thread: threading.Thread | None = None
        self._result: tuple[Simulation, Layout] | BaseException | None = None

    def start(self, index: int, scene: Scene) -> None:
        if self._thread is not None and self.index == index:
            return
        self.index, self._result = index, None

        def build() -> None:
            try:
                sim = Simulation(load_scenario(scene.scenario), seed=scene.seed)
                self._result = (sim, LAYOUTS[scene.layout](sim.fabric))
            except Exception as err:  # handed to the show, which logs it and skips the scene
                self._result = err

        self._thread = threading.Thread(target=build, name=f"scene {index + 1}", daemon=True)
        self._thread.start()

    def take(self, index: int) -> tuple[Simulation, Layout] | None:
        """The built scene if it is ``index`` (waiting for it to finish); None if another was built."""
        if self._thread is None or self.index != index:
            return None
        self._thread.join()
        result, self._thread, self._result = self._result, None, None
        if isinstance(result, BaseException):
            raise result
        return result


class Exhibit:
    """The show's state machine, driven by ``step(dt)`` and ``handle(event)`` so tests can run it."""

    def __init__(self, show: Show, size: tuple[int, int], log: logging.Logger) -> None:
        """``size``: the screen's; the scenes are drawn a margin smaller (see ``draw``)."""
        self.show = show
        self.log = log
        self._fit(size)
        self.index = -1
        self.run: SceneRun | None = None
        self.phase = "title"  # title | scene | fade | intermission
        self.phase_t = 0.0
        self.clock = 0.0  # show time, for drift and fades
        self.interactive_until = -1.0
        self.quit = False
        self.failures = 0
        self.scenes_played = 0
        self._logo: pygame.Surface | None = None
        self._surfaces: dict[tuple, pygame.Surface] = {}
        self.loader = SceneLoader()
        self._next_scene()

    # --- flow ---------------------------------------------------------------------------------------

    def _next_scene(self) -> None:
        """Load the next scene that loads; after a full round of failures, hold an intermission."""
        self.run = None
        while self.failures < len(self.show.scenes):
            self.index = (self.index + 1) % len(self.show.scenes)
            scene = self.show.scenes[self.index]
            try:
                built = self.loader.take(self.index)  # built during the last scene, if it was
                if built is not None:
                    self.run = SceneRun(scene, self.size, source=built[0], layout=built[1])
                else:
                    self.run = SceneRun(scene, self.size)
            except Exception as err:  # a scenario that fails to load is skipped, with a log line
                self.failures += 1
                self.log.error("scene %d (%s) skipped: %s", self.index + 1, scene.scenario, err)
                continue
            self.log.info("scene %d: %s", self.index + 1, scene.scenario.name)
            self.failures = 0
            self.phase, self.phase_t = "title", 0.0
            return
        self.log.error("no scene of %s could be played; intermission", self.show.source)
        self.phase, self.phase_t = "intermission", 0.0

    def _fail(self, where: str) -> None:
        scene = self.show.scenes[self.index].scenario.name if self.index >= 0 else "?"
        self.log.exception("error in scene %d (%s) while %s; moving on", self.index + 1, scene, where)
        self.failures += 1
        self._next_scene()

    @property
    def interactive(self) -> bool:
        return self.clock < self.interactive_until

    def step(self, dt: float) -> None:
        """Advance the show by dt seconds of wall time."""
        self.clock += dt
        self.phase_t += dt
        sh = self.show
        if self.phase == "intermission":
            if self.phase_t >= INTERMISSION_S:
                self.failures = 0
                self._next_scene()
            return
        if self.phase == "title":
            if self.phase_t >= sh.title_card_s + sh.fade_s:
                self.phase, self.phase_t = "scene", 0.0
            return
        run = self.run
        assert run is not None
        try:
            was_interactive = self.interactive
            run.advance(dt, scripted=not was_interactive, wall=self.clock)
        except Exception:
            self._fail("simulating")
            return
        if self.phase == "scene" and run.t >= PRELOAD_AT * run.scene.seconds:
            following = (self.index + 1) % len(sh.scenes)
            self.loader.start(following, sh.scenes[following])
        if self.phase == "scene" and run.t >= run.scene.seconds:
            self.phase, self.phase_t = "fade", 0.0
        elif self.phase == "fade" and self.phase_t >= sh.fade_s:
            self.scenes_played += 1
            self._next_scene()

    def resize(self, size: tuple[int, int]) -> None:
        self._fit(size)
        if self.run is not None:
            self.run.resize(self.size)

    def _fit(self, size: tuple[int, int]) -> None:
        """The screen's size, text scale, and the scenes' size: the screen less the drift's margin."""
        self.screen_size, self.scale = size, text_scale(size)
        m = self.margin()
        self.size = (size[0] - 2 * m, size[1] - 2 * m)

    def margin(self) -> int:
        """Pixels kept free on every side of the picture for the drift to move it by."""
        w, h = self.screen_size
        return max(0, min(math.ceil(DRIFT_PX * self.scale), (min(w, h) - 1) // 2))

    # --- visitors -----------------------------------------------------------------------------------

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN:
            mods = event.mod if hasattr(event, "mod") else 0
            if event.key == pygame.K_q and mods & pygame.KMOD_CTRL and mods & pygame.KMOD_SHIFT:
                self.log.info("quit chord pressed")
                self.quit = True
                return
        touched = event.type in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEWHEEL, pygame.FINGERDOWN, pygame.KEYDOWN)
        touched = touched or (event.type == pygame.MOUSEMOTION and any(event.buttons))
        run = self.run
        if run is None or self.phase != "scene":
            return
        if touched:
            self.interactive_until = self.clock + self.show.idle_resume_s
            for m in run.moves:  # when the show takes over again it glides from wherever the visitor left
                m.reset()
        elif not self.interactive:
            return  # the cursor drifting over a scripted scene changes nothing
        try:
            if event.type != pygame.KEYDOWN:  # a visitor's keys do nothing but wake the view
                run.controls.mouse(event, self.clock)
        except Exception:
            self.log.exception("error handling a visitor's input")

    # --- drawing ------------------------------------------------------------------------------------

    def drift(self) -> tuple[int, int]:
        a = min(DRIFT_PX * self.scale, self.margin())
        return (
            round(a * math.sin(2 * math.pi * self.clock / DRIFT_PERIODS_S[0])),
            round(a * math.sin(2 * math.pi * self.clock / DRIFT_PERIODS_S[1])),
        )

    def draw(self, screen: pygame.Surface) -> None:
        """Draw the show straight onto the screen, a margin in from its edges and moved by the drift; the
        margin is cleared. (Drawn on a picture of its own and copied there, it cost a copy of the whole
        screen a frame: 4 ms at 3840x2160.)"""
        if screen.get_size() != self.screen_size:
            self.resize(screen.get_size())
        m, (dx, dy) = self.margin(), self.drift()
        place = pygame.Rect((m + dx, m + dy), self.size)
        canvas = screen.subsurface(place)
        run, sh = self.run, self.show
        if run is not None:
            run.controls.panes[0].rect = place  # where a visitor's hand meets the picture
        drew_site = False
        if run is not None and self.phase in ("scene", "fade", "title"):
            try:
                if self.phase == "title" and run.warmed < WARM_STEPS:
                    run.warm(self._offscreen(canvas.get_size()), self.clock)
                run.frame.refresh(self.clock)
                if self.phase != "title" or self.phase_t > sh.title_card_s:
                    exploring = "exploring: the show resumes after a quiet minute"
                    run.frame.state.notice = exploring if self.interactive else ""
                    run.frame.draw(canvas, self.clock)  # covers the whole canvas
                    drew_site = True
                    self._caption(canvas, run)
            except Exception:
                self._fail("drawing")
        if not drew_site:
            canvas.fill(theme.BG)
        if self.phase == "title":
            fade_in = smoothstep(self.phase_t / max(sh.fade_s, 1e-6))
            fade_out = 1 - smoothstep((self.phase_t - sh.title_card_s) / max(sh.fade_s, 1e-6))
            self._overlay(canvas, self._title_card(canvas.get_size()), min(fade_in, fade_out))
        elif self.phase == "fade":
            self._overlay(canvas, self._veil(canvas.get_size()), smoothstep(self.phase_t / max(sh.fade_s, 1e-6)))
        elif self.phase == "intermission":
            self._overlay(canvas, self._title_card(canvas.get_size(), "The show will continue shortly"), 1.0)
        fill_outside(screen, place, (0, 0, 0))

    @staticmethod
    def _overlay(canvas: pygame.Surface, layer: pygame.Surface, alpha: float) -> None:
        a = round(255 * min(max(alpha, 0.0), 1.0))
        if a <= 0:
            return
        layer.set_alpha(None if a >= 255 else a)
        canvas.blit(layer, (0, 0))

    def _cached(self, key: tuple, make) -> pygame.Surface:
        """One surface per key (title card, veil, caption box), drawn once and reused every frame."""
        if key not in self._surfaces:
            if len(self._surfaces) > 16:  # bounded: a new scene or size makes the old ones useless
                self._surfaces.clear()
            self._surfaces[key] = make()
        return self._surfaces[key]

    def _veil(self, size: tuple[int, int]) -> pygame.Surface:
        def make() -> pygame.Surface:
            veil = pygame.Surface(size)
            veil.fill((0, 0, 0))
            return veil

        return self._cached(("veil", size), make)

    def _offscreen(self, size: tuple[int, int]) -> pygame.Surface:
        return self._cached(("offscreen", size), lambda: self._veil(size).copy())

    def _fonts(self) -> Text:
        return self.run.frame.text if self.run is not None else Text(self.scale)

    def _title_card(self, size: tuple[int, int], message: str | None = None) -> pygame.Surface:
        key = ("title", size, self.index, message)
        return self._cached(key, lambda: self._draw_title_card(size, message))

    def _draw_title_card(self, size: tuple[int, int], message: str | None) -> pygame.Surface:
        text = self._fonts()
        w, h = size
        card = pygame.Surface((w, h))
        card.fill(theme.BG)
        s = text.scale
        y = round(h * 0.26)
        logo = self._load_logo(s)
        if logo is not None:
            card.blit(logo, logo.get_rect(midtop=(w // 2, y - logo.get_height() - round(24 * s))))
        sh = self.show
        brand = text.render(sh.title.upper(), 20, sh.accent, "semibold")
        card.blit(brand, brand.get_rect(midtop=(w // 2, y)))
        y += brand.get_height() + round(28 * s)
        if message is None and self.run is not None:
            sc = self.run.source.scenario
            name, blurb = sc.site.name, sc.site.blurb
            facts = f"{sc.gpus:,} GPUs   {sc.peak_pflops:,.0f} PFLOPS peak   {sc.topology.kind} fabric"
        else:
            name, blurb, facts = message or "", sh.subtitle, ""
        title = text.render(name, 56, theme.TEXT, "bold")
        card.blit(title, title.get_rect(midtop=(w // 2, y)))
        y += title.get_height() + round(18 * s)
        for line in wrap(blurb, text.font(24, "regular"), w * 0.7):
            surf = text.render(line, 24, theme.TEXT_DIM)
            card.blit(surf, surf.get_rect(midtop=(w // 2, y)))
            y += surf.get_height() + round(6 * s)
        if facts:
            y += round(24 * s)
            surf = text.render(facts, 22, sh.accent, "semibold")
            card.blit(surf, surf.get_rect(midtop=(w // 2, y)))
        sub = text.render(sh.subtitle, 18, theme.TEXT_FAINT)
        card.blit(sub, sub.get_rect(midbottom=(w // 2, h - round(60 * s))))
        return card.convert() if pygame.display.get_surface() else card

    def _caption(self, canvas: pygame.Surface, run: SceneRun) -> None:
        placed = self.caption_place(run)
        if placed is None:
            return
        box, rect = placed
        shown = run.caption
        age, left = run.t - shown.since_s, shown.until_s - run.t
        box.set_alpha(round(255 * smoothstep(min(age, left) / 0.6)))
        canvas.blit(box, rect)

    def caption_place(self, run: SceneRun) -> tuple[pygame.Surface, pygame.Rect] | None:
        """The scene's caption box and where it goes: at the foot of the view, above the fault ticker (the
        HUD's last three alerts of the past simulated hour), left of the inspector card when one is shown
        (the card of the job the camera follows sits in the same band), wrapped to the width it has."""
        shown = run.caption
        if shown is None:
            return None
        view = run.frame.site.camera.viewport
        s = run.frame.text.scale
        left, width = view[0], view[2]
        card = run.frame.hud.inspector_box if run.frame.hud_visible else None
        if card is not None:  # in steps, so the caption stays put while the card's figures change its width
            step = round(80 * s)
            width = max(round(view[2] * 0.4), (card.left - round(24 * s) - left) // step * step)
        box = self._cached(
            ("caption", shown.text, width, s), lambda: self._caption_box(run.frame.text, shown.text, width)
        )
        snap = run.frame.snap
        recent = [a for a in (snap.alerts if snap is not None else ()) if run.source.now - a[0] < 3600.0][-3:]
        lift = (len(recent) * 30 + 12) * s if recent else 0
        return box, box.get_rect(midbottom=(left + width // 2, view[1] + view[3] - round(10 * s + lift)))

    def _caption_box(self, text: Text, caption: str, width: int) -> pygame.Surface:
        """A caption wrapped to 90% of ``width`` px, in its box."""
        s = text.scale
        lines = wrap(caption, text.font(30, "semibold"), width * 0.9)
        rendered = [text.render(line, 30, theme.TEXT, "semibold") for line in lines]
        box_w = max(r.get_width() for r in rendered) + round(56 * s)
        box_h = sum(r.get_height() for r in rendered) + round(36 * s)
        box = pygame.Surface((box_w, box_h), pygame.SRCALPHA)
        pygame.draw.rect(box, (*theme.PANEL, 235), box.get_rect(), border_radius=round(14 * s))
        pygame.draw.rect(
            box,
            (*self.show.accent, 255),
            pygame.Rect(0, 0, round(6 * s), box_h),
            border_top_left_radius=round(14 * s),
            border_bottom_left_radius=round(14 * s),
        )
        y = round(18 * s)
        for r in rendered:
            box.blit(r, ((box_w - r.get_width()) // 2, y))
            y += r.get_height()
        return box

    def _load_logo(self, scale: float) -> pygame.Surface | None:
        if self.show.logo is None:
            return None
        if self._logo is None or abs(self._logo.get_height() - round(120 * scale)) > 1:
            try:
                img = pygame.image.load(str(self.show.logo))
            except (pygame.error, OSError) as err:
                self.log.error("logo %s cannot be loaded: %s", self.show.logo, err)
                self.show = replace(self.show, logo=None)
                return None
            height = round(120 * scale)
            width = round(img.get_width() * height / img.get_height())
            self._logo = pygame.transform.smoothscale(
                img.convert_alpha() if pygame.display.get_surface() else img, (width, height)
            )
        return self._logo


def wrap(text: str, font: pygame.font.Font, width: float) -> list[str]:
    """Word wrap to a pixel width, balanced: as few lines as greedy wrapping needs, but of even length
    (no lone word on a last line)."""

    def greedy(limit: float) -> list[str]:
        lines, line = [], ""
        for word in text.split():
            trial = f"{line} {word}".strip()
            if font.size(trial)[0] <= limit or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        return [*lines, line] if line else lines

    best = greedy(width)
    if len(best) > 1:
        lo, hi = 0.0, float(width)
        while hi - lo > 4:  # narrowest width that still needs no more lines
            mid = (lo + hi) / 2
            if len(greedy(mid)) == len(best):
                hi = mid
            else:
                lo = mid
        best = greedy(hi)
    return best or [""]


class ExhibitWindow:
    """The show in a window or fullscreen: the frame loop's Screen around an ``Exhibit``."""

    def __init__(self, exhibit: Exhibit, screen: pygame.Surface, windowed: bool) -> None:
        self.exhibit = exhibit
        self.screen = screen
        self.windowed = windowed

    @property
    def running(self) -> bool:
        return not self.exhibit.quit

    def handle(self, event: pygame.event.Event, wall: float) -> None:
        if event.type == pygame.QUIT and self.windowed:
            self.exhibit.quit = True
        elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
            self.screen = pygame.display.get_surface()
            self.exhibit.resize(self.screen.get_size())
        else:
            self.exhibit.handle(event)

    def update(self, dt: float, wall: float) -> None:
        try:
            self.exhibit.step(dt)
        except Exception:  # last line of defence: never a traceback on the stand's screen or console
            self.exhibit._fail("running a frame")

    def draw(self, wall: float) -> None:
        try:
            self.exhibit.draw(self.screen)
        except Exception:
            self.exhibit._fail("drawing a frame")


def run_exhibit(
    show: Show,
    log: logging.Logger,
    windowed: bool,
    size: tuple[int, int],
    display: int,
    quit_after: float | None = None,
    stop_requested: Callable[[], bool] = signalled,
) -> int:
    """The show's window loop. Returns when the quit chord is pressed, the process is asked to stop
    (``stop_requested``: SIGTERM from a service manager), or after ``quit_after`` seconds."""
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_caption(show.title)
    if windowed:
        screen = pygame.display.set_mode(size, pygame.RESIZABLE, display=display)
    else:
        screen = pygame.display.set_mode((0, 0), pygame.FULLSCREEN, display=display)
        pygame.mouse.set_visible(False)
    log.info("show started: %s, %d scenes, %dx%d", show.source, len(show.scenes), *screen.get_size())
    exhibit = Exhibit(show, screen.get_size(), log)  # (logs the first scene)
    start = time.perf_counter()
    FrameLoop(quit_after, stop_requested).run(ExhibitWindow(exhibit, screen, windowed))
    if stop_requested():
        log.info("show stopped by %s", stop_signal() or "request")
    log.info("show ended after %.0f s, %d scenes played", time.perf_counter() - start, exhibit.scenes_played)
    pygame.display.quit()
    return 0
