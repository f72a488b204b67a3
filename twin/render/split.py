"""The split view: one scenario under two scheduling policies, side by side and in step, so a visitor
sees one queue drain faster than the other. Both simulations get the same seed, so the same jobs arrive
at the same moments; only the policy differs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygame

from twin.render import theme
from twin.render.app import Frame, text_scale
from twin.render.loop import DEFAULT_SPEED, Controller, FrameLoop, Pane, Stepper, save_screenshot
from twin.scenario import Scenario
from twin.scheduler import POLICIES
from twin.signals import stop_requested as signalled
from twin.simulation import Simulation


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
        frame.state.site = POLICIES[policy].label
        frame.state.blurb = f"{sim.scenario.site.name}: {POLICIES[policy].blurb}"
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
        stop_requested: Callable[[], bool] = signalled,
    ) -> None:
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(f"twin: {scenario.site.name}, {policies[0]} vs {policies[1]}")
        self.size, self.fullscreen = size, fullscreen
        self.screen = self._set_mode()
        self.pair = Pair(scenario, policies, seed)
        self.stepper = Stepper(self.pair.advance, lambda: self.pair.sims[0].now)
        self.controls = Controller([], speed)
        self.controls.on_quit = self.quit
        self.controls.on_fullscreen = self.toggle_fullscreen
        self.controls.on_screenshot = lambda: save_screenshot(self.screen, Path.cwd())
        self._relayout()
        self.loop = FrameLoop(quit_after, stop_requested)
        self.running = True

    def _set_mode(self) -> pygame.Surface:
        if self.fullscreen:
            return pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        return pygame.display.set_mode(self.size, pygame.RESIZABLE)

    @property
    def speed(self) -> float:
        return self.controls.speed

    def quit(self) -> None:
        self.running = False

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        self._set_mode()
        self._relayout()

    def _relayout(self) -> None:
        """A new window size: both halves are laid out again and fit the site anew."""
        self.screen = pygame.display.get_surface()
        self.frames = split_frames(self.pair, self.screen.get_size())
        self.controls.panes = [Pane(f, r) for f, r in zip(self.frames, halves(self.screen.get_size()), strict=True)]
        self.controls.sync()

    def handle(self, event: pygame.event.Event, wall: float) -> None:
        if event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
            self._relayout()
        else:
            self.controls.handle(event, wall)

    def step(self, dt: float) -> None:
        if self.controls.paused:
            return
        achieved = self.stepper.step(dt, self.speed)
        if achieved is not None:
            for f in self.frames:
                f.state.effective_speed = achieved

    def update(self, dt: float, wall: float) -> None:
        self.step(dt)
        for f in self.frames:
            f.refresh(wall)

    def draw(self, wall: float) -> None:
        draw_split(self.frames, self.screen, wall)

    def run(self) -> None:
        self.loop.run(self)
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
