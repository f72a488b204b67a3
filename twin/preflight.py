"""``exhibit --check``: before a stand is left alone, load everything the show will need and say what is
wrong, so a problem is found by whoever installs it, not by the visitors.

Checks, in order: the playlist; every scene's scenario (loaded and validated as the show would); the fonts
and the logo (loaded with pygame); the display (it opens, and the chosen screen exists); the log (its
folder can be written, and it is none of the show's inputs). Prints one line per check and exits 0 if all
pass, 2 if any fails. pygame is imported only here, inside functions, so the core stays headless.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from twin.errors import ScenarioError


class _Report:
    """Collects check results and prints each as it comes."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"  ok    {what}", flush=True)

    def fail(self, what: str) -> None:
        self.failed += 1
        print(f"  FAIL  {what}", flush=True)
        print(f"error: {what}", file=sys.stderr, flush=True)

    def check(self, what: str, run: Callable[[], str]) -> None:
        """Run one check: ``run`` returns what it found, or raises what is wrong."""
        try:
            self.ok(f"{what}: {run()}")
        except ScenarioError as err:
            self.fail(str(err))
        except Exception as err:  # pygame.error, OSError: what a stand would hit at start
            self.fail(f"{what}: {err.__class__.__name__}: {err}")


def preflight(playlist: Path, log: Path, display: int, windowed: bool, size: tuple[int, int]) -> int:
    """Check a stand's show without playing it. Returns the exit code: 0 if all is well, 2 if not."""
    from twin.outputs import check_log
    from twin.playlist import load_playlist, show_inputs
    from twin.scenario import load_scenario, site_size

    report = _Report()
    print(f"exhibit --check {playlist}")
    try:
        show = load_playlist(playlist)
    except ScenarioError as err:
        report.fail(str(err))
        return _verdict(report)
    report.ok(f"playlist {playlist}: {len(show.scenes)} scenes")
    for i, scene in enumerate(show.scenes, 1):

        def scenario(path: Path = scene.scenario) -> str:
            s = load_scenario(path)
            return f"{s.site.name}, {site_size(s).gpus:,} GPUs"

        report.check(f"scene {i} {scene.scenario}", scenario)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    report.check("fonts", _fonts)
    if show.logo is not None:
        report.check(f"logo {show.logo}", lambda: _image(show.logo))
    report.check(f"display {display}", lambda: _display(display, windowed, size))
    report.check(f"log {log}", lambda: f"writable ({check_log(log, show_inputs(show)).resolve().parent})")
    return _verdict(report)


def _verdict(report: _Report) -> int:
    if report.failed:
        print(f"exhibit --check: {report.failed} problem(s), {report.passed} check(s) passed")
        return 2
    print(f"exhibit --check: all {report.passed} checks passed")
    return 0


def _fonts() -> str:
    import pygame

    from twin.render import theme
    from twin.resources import FONTS

    pygame.font.init()
    for name in theme.FONT_FILES.values():
        path = FONTS / name
        if not path.is_file():
            raise ScenarioError(str(path), "", "font file not found")
        pygame.font.Font(str(path), 24).render("twin", True, (255, 255, 255))
    return f"{len(theme.FONT_FILES)} faces in {FONTS}"


def _image(path: Path) -> str:
    import pygame

    img = pygame.image.load(str(path))
    return f"{img.get_width()}x{img.get_height()}"


def _display(display: int, windowed: bool, size: tuple[int, int]) -> str:
    import pygame

    pygame.display.init()
    try:
        count = pygame.display.get_num_displays()
        if display >= count:
            raise ScenarioError("--display", "", f"expected a display from 0 to {count - 1}, got {display}")
        w, h = pygame.display.get_desktop_sizes()[display]
        driver = pygame.display.get_driver()
        if windowed:
            return f"{driver}, {w}x{h}, the show in a {size[0]}x{size[1]} window"
        return f"{driver}, {w}x{h} fullscreen"
    finally:
        pygame.display.quit()
