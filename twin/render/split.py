"""The split view: one scenario under two scheduling policies, side by side and in step, so a visitor
sees one queue drain faster than the other. Both simulations get the same seed, so the same jobs arrive
at the same moments; only the policy differs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pygame

from twin.render import theme
from twin.render.app import DEFAULT_SPEED, SIM_BUDGET_S, SPEEDS, Frame, save_screenshot, text_scale
from twin.scenario import Scenario
from twin.simulation import Simulation

POLICY_LABEL = {
    "fifo": ("FIFO", "first come, first served: the queue waits for its head"),
    "backfill": ("EASY backfill", "small jobs jump ahead when they cannot delay the head"),
    "topology": ("Topology-aware", "EASY backfill, and each job packed under as few leaves as possible"),
}


class Pair:
    """Two simulations advanced together, step for step."""

    def __init__(self, scenario: Scenario, policies: tuple[str, str], seed: int | None = None) -> None:
        self.sims = [Simulation(scenario, seed=seed, policy=p) for p in policies]
        self.policies = policies

    def advance(self, dt: float) -> None:
        for sim in self.sims:
            sim.advance(dt)


def halves(size: tuple[int, int]) -> list[pygame.Rect]:
    w, h = size
    half = (w - 2) // 2
    return [pygame.Rect(0, 0, half, h), pygame.Rect(w - half, 0, half, h)]


def split_frames(pair: Pair, size: tuple[int, int], layout: str = "hall") -> list[Frame]:
    scale = text_scale(size) * 0.8  # half the width, not half the size: keep the text readable
    frames = []
    for sim, policy, rect in zip(pair.sims, pair.policies, halves(size), strict=True):
        frame = Frame(sim, rect.size, layout, scale=scale)
        name, blurb = POLICY_LABEL.get(policy, (policy, ""))
        frame.state.site = f"{name}"
        frame.state.blurb = f"{sim.scenario.site.name}: {blurb}"
        frames.append(frame)
    return frames


def draw_split(frames: list[Frame], screen: pygame.Surface, wall: float) -> None:
    for frame, rect in zip(frames, halves(screen.get_size()), strict=True):
        frame.draw(screen.subsurface(rect), wall)
    w, h = screen.get_size()
    screen.fill(theme.PANEL_EDGE, pygame.Rect(halves((w, h))[0].right, 0, w - 2 * halves((w, h))[0].w, h))


class SplitApp:
    """The window for a split view: the live view's controls, applied to both halves at once."""

    def __init__(
        self,
        scenario: Scenario,
        policies: tuple[str, str],
        seed: int | None = None,
        size: tuple[int, int] = (1600, 900),
        fullscreen: bool = False,
        speed: float = DEFAULT_SPEED,
        quit_after: float | None = None,
    ) -> None:
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(f"twin: {scenario.site.name}, {policies[0]} vs {policies[1]}")
        self.size, self.fullscreen = size, fullscreen
        self.screen = self._set_mode()
        self.pair = Pair(scenario, policies, seed)
        self.frames = split_frames(self.pair, self.screen.get_size())
        self.speed_index = int(np.argmin([abs(s - speed) for s in SPEEDS]))
        self.paused = False
        self.quit_after = quit_after
        self.running = True
        self._acc = 0.0
        self._drag: tuple[int, int] | None = None

    def _set_mode(self) -> pygame.Surface:
        if self.fullscreen:
            return pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        return pygame.display.set_mode(self.size, pygame.RESIZABLE)

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def _relayout(self) -> None:
        """A new window size: both halves are laid out again and fit the site anew."""
        self.screen = pygame.display.get_surface()
        self.frames = split_frames(self.pair, self.screen.get_size())

    def step(self, dt: float) -> None:
        for f in self.frames:
            f.state.speed, f.state.paused = self.speed, self.paused
        if self.paused:
            return
        step = 0.25 * max(1.0, self.speed / 240)
        self._acc += dt * self.speed
        t0 = time.perf_counter()
        before = self.pair.sims[0].now
        while self._acc >= step:
            self.pair.advance(step)
            self._acc -= step
            if time.perf_counter() - t0 > SIM_BUDGET_S:
                self._acc = min(self._acc, step)
                break
        if dt > 0:
            achieved = (self.pair.sims[0].now - before) / dt
            for f in self.frames:
                f.state.effective_speed = achieved

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.running = False
        elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
            self._relayout()
        elif event.type == pygame.KEYDOWN:
            key = event.key
            if key in (pygame.K_ESCAPE, pygame.K_q):
                self.running = False
            elif key == pygame.K_SPACE:
                self.paused = not self.paused
            elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
                self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
            elif key in (pygame.K_MINUS, pygame.K_KP_MINUS):
                self.speed_index = max(self.speed_index - 1, 0)
            elif key == pygame.K_h:
                for f in self.frames:
                    f.hud_visible = not f.hud_visible
                    f.resize(f.size)
            elif key == pygame.K_f:
                self.fullscreen = not self.fullscreen
                self._set_mode()
                self._relayout()
            elif key == pygame.K_s:
                save_screenshot(self.screen, Path.cwd())
        elif event.type == pygame.MOUSEWHEEL:  # both halves zoom together, about the same point
            x, y = pygame.mouse.get_pos()
            left = halves(self.screen.get_size())[0]
            local = (x - (0 if x < left.right else self.screen.get_width() - left.w), y)
            for f in self.frames:
                f.site.set_camera(f.site.camera.zoom_at(local, 1.15**event.y))
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            self._drag = event.pos
        elif event.type == pygame.MOUSEMOTION and self._drag is not None and event.buttons[0]:
            dx, dy = event.pos[0] - self._drag[0], event.pos[1] - self._drag[1]
            for f in self.frames:
                f.site.set_camera(f.site.camera.pan(dx, dy))
            self._drag = event.pos
        elif event.type == pygame.MOUSEBUTTONUP:
            self._drag = None

    def run(self) -> None:
        clock = pygame.time.Clock()
        start = last = time.perf_counter()
        while self.running:
            now = time.perf_counter()
            dt, last = min(now - last, 0.1), now
            for event in pygame.event.get():
                self.handle(event)
            self.step(dt)
            for f in self.frames:
                f.refresh(now - start)
            draw_split(self.frames, self.screen, now - start)
            pygame.display.flip()
            if self.quit_after is not None and now - start >= self.quit_after:
                self.running = False
            clock.tick(60)
        pygame.display.quit()


def render_split_still(
    scenario: Scenario, policies: tuple[str, str], at: float, size: tuple[int, int], seed: int | None = None
) -> pygame.Surface:
    """One frame of the split view at simulated time ``at``, headless (for `shot --split` and tests)."""
    pair = Pair(scenario, policies, seed)
    pair.advance(at)
    surface = pygame.Surface(size)
    if pygame.display.get_surface() is not None:
        surface = surface.convert()
    frames = split_frames(pair, size)
    for f in frames:
        f.refresh(0.0, force=True)
    draw_split(frames, surface, 0.5)
    return surface
