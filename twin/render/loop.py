"""The one frame loop and the one input controller, shared by the window, the split view and the show.

``FrameLoop`` runs any ``Screen`` (something that handles events, updates and draws) at up to 60 frames a
second until it stops, the time limit passes or the process is asked to stop (SIGTERM and friends).
``Stepper`` turns wall time into fixed simulated steps within a time budget, so a slow source makes the
view run slower rather than stall. ``Controller`` is what keys and the mouse do to one or more views.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pygame

from twin.signals import stop_requested as signalled

SPEEDS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3000, 6000, 10000)
DEFAULT_SPEED = 120
SIM_BUDGET_S = 0.008  # wall time a frame may spend advancing the source
FRAME_TIMES_KEPT = 3600  # the last minute of frame times at 60 fps


class Screen(Protocol):
    """What the frame loop drives: one window's content."""

    running: bool

    def handle(self, event: pygame.event.Event, wall: float) -> None: ...

    def update(self, dt: float, wall: float) -> None: ...

    def draw(self, wall: float) -> None: ...


class FrameLoop:
    """Events, update, draw, present; at most 60 frames a second. Frame times are kept, bounded."""

    def __init__(self, quit_after: float | None = None, stop_requested: Callable[[], bool] = signalled) -> None:
        """``stop_requested``: polled once a frame (by default: has a stop signal come, see twin.signals)."""
        self.quit_after = quit_after
        self.stop_requested = stop_requested
        self.frame_times: deque[float] = deque(maxlen=FRAME_TIMES_KEPT)

    def run(self, screen: Screen) -> None:
        clock = pygame.time.Clock()
        start = last = time.perf_counter()
        while screen.running and not self.stop_requested():
            now = time.perf_counter()
            dt, last = min(now - last, 0.1), now
            wall = now - start
            for event in pygame.event.get():
                screen.handle(event, wall)
            screen.update(dt, wall)
            screen.draw(wall)
            pygame.display.flip()
            self.frame_times.append((time.perf_counter() - now) * 1000)
            if self.quit_after is not None and wall >= self.quit_after:
                break
            clock.tick(60)


class Stepper:
    """Advances a source by wall time x speed in fixed simulated steps, within a wall-time budget."""

    def __init__(self, advance: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.advance = advance
        self.clock = clock
        self._acc = 0.0

    def step(self, dt: float, speed: float) -> float | None:
        """Advance for ``dt`` wall seconds; returns the speed really reached (None if no time passed)."""
        step = 0.25 * max(1.0, speed / 240)
        self._acc += dt * speed
        t0 = time.perf_counter()
        before = self.clock()
        while self._acc >= step:
            self.advance(step)
            self._acc -= step
            if time.perf_counter() - t0 > SIM_BUDGET_S:
                self._acc = min(self._acc, step)  # drop what cannot be done: run slower, never stall
                break
        return (self.clock() - before) / dt if dt > 0 else None


class View(Protocol):
    """A view the controller steers: a ``Frame`` (twin.render.app)."""

    site: object
    state: object
    hud_visible: bool
    size: tuple[int, int]

    def resize(self, size: tuple[int, int]) -> None: ...

    def select_at(self, pos: tuple[int, int]) -> None: ...

    def describe(self, hit: tuple[str, int] | None) -> object: ...


@dataclass
class Pane:
    """A view and where it sits in the window."""

    view: View
    rect: pygame.Rect

    def local(self, pos: tuple[int, int]) -> tuple[int, int]:
        return pos[0] - self.rect.x, pos[1] - self.rect.y


class Controller:
    """Keys and mouse, applied to every pane at once (a split view zooms and pauses both halves).

    Actions the window owns (quit, fullscreen, screenshot, seek) go back through callbacks, so the same
    controller serves the window, the split view and (for the mouse) a visitor at the show.
    """

    def __init__(self, panes: Sequence[Pane], speed: float = DEFAULT_SPEED) -> None:
        self.panes = list(panes)
        self.speed_index = int(np.argmin([abs(s - speed) for s in SPEEDS]))
        self.paused = False
        self.show_help = False
        self._drag: tuple[int, int] | None = None
        self._dragged = False
        self._last_click = -1.0
        self.on_quit: Callable[[], None] = lambda: None
        self.on_fullscreen: Callable[[], None] = lambda: None
        self.on_screenshot: Callable[[], None] = lambda: None
        self.on_seek: Callable[[float], None] | None = None  # hours; None where the source cannot seek
        self.on_notice: Callable[[str], None] = lambda text: None
        self.sync()

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def sync(self) -> None:
        """Carry speed, pause and help over to every pane's HUD."""
        for p in self.panes:
            st = p.view.state
            if st.speed != self.speed:
                st.speed = st.effective_speed = self.speed
            st.paused, st.show_help = self.paused, self.show_help

    def pane_at(self, pos: tuple[int, int]) -> Pane:
        return next((p for p in self.panes if p.rect.collidepoint(pos)), self.panes[0])

    def handle(self, event: pygame.event.Event, wall: float) -> None:
        if event.type == pygame.QUIT:
            self.on_quit()
        elif event.type == pygame.KEYDOWN:
            self.key(event, wall)
        else:
            self.mouse(event, wall)
        self.sync()

    def key(self, event: pygame.event.Event, wall: float) -> None:
        key = event.key
        if key in (pygame.K_ESCAPE, pygame.K_q):
            self.on_quit()
        elif key == pygame.K_SPACE:
            self.paused = not self.paused
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
            self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        elif key in (pygame.K_MINUS, pygame.K_KP_MINUS):
            self.speed_index = max(self.speed_index - 1, 0)
        elif key == pygame.K_l:
            for p in self.panes:
                p.view.site.set_layout("graph" if p.view.site.layout.name == "hall" else "hall")
            self.on_notice(f"{self.panes[0].view.site.layout.name} layout")
        elif key == pygame.K_h:
            for p in self.panes:
                p.view.hud_visible = not p.view.hud_visible
                p.view.resize(p.view.size)
        elif key == pygame.K_f:
            self.on_fullscreen()
        elif key == pygame.K_s:
            self.on_screenshot()
        elif key == pygame.K_SLASH or getattr(event, "unicode", "") == "?":
            self.show_help = not self.show_help
        elif key in (pygame.K_LEFTBRACKET, pygame.K_RIGHTBRACKET) and self.on_seek is not None:
            hours = 1 if key == pygame.K_RIGHTBRACKET else -1  # scrub a recording by the hour
            self.on_seek(hours)
            self.on_notice(f"{'forward' if hours > 0 else 'back'} one hour")

    def mouse(self, event: pygame.event.Event, wall: float) -> None:
        """Wheel zooms about the cursor, drag pans, click selects, double-click fits; hover inspects."""
        if event.type == pygame.MOUSEWHEEL:
            local = self.pane_at(pygame.mouse.get_pos()).local(pygame.mouse.get_pos())
            for p in self.panes:
                p.view.site.set_camera(p.view.site.camera.zoom_at(local, 1.15**event.y))
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            self._drag = event.pos
            self._dragged = False
        elif event.type == pygame.MOUSEMOTION:
            if self._drag is not None and event.buttons[0]:
                dx, dy = event.pos[0] - self._drag[0], event.pos[1] - self._drag[1]
                if self._dragged or abs(dx) + abs(dy) > 3:
                    for p in self.panes:
                        p.view.site.set_camera(p.view.site.camera.pan(dx, dy))
                    self._drag = event.pos
                    self._dragged = True
            else:
                pane = self.pane_at(event.pos)
                if pane.view.state.selected_job is None:
                    pane.view.state.inspector = pane.view.describe(pane.view.site.pick(pane.local(event.pos)))
        elif event.type == pygame.MOUSEBUTTONUP and event.button == 1:
            if self._drag is not None and not self._dragged:
                if wall - self._last_click < 0.35:
                    for p in self.panes:
                        p.view.site.fit()
                else:
                    pane = self.pane_at(event.pos)
                    pane.view.select_at(pane.local(event.pos))
                self._last_click = wall
            self._drag = None


def save_screenshot(surface: pygame.Surface, folder: Path) -> Path:
    """Save to a new file, never over an existing one."""
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"twin-{stamp}.png"
    i = 1
    while path.exists():
        path = folder / f"twin-{stamp}-{i}.png"
        i += 1
    pygame.image.save(surface, str(path))
    return path
