"""Scene changes of the exhibition show at its real pace: does any frame stall while the next scene loads?

    SDL_VIDEODRIVER=dummy .venv/bin/python bench/scenes.py                  # 4 scene changes at 1920x1080
    SDL_VIDEODRIVER=dummy .venv/bin/python bench/scenes.py --changes 8 --scene-seconds 30

Plays the playlist frame by frame, each frame advancing the show by 1/60 s and drawn in full (no vsync
wait), with every scene shortened to ``--scene-seconds`` so changes come quickly. For each change it
reports the longest frame and the p99 from the fade before to three seconds after the title card, beside
the median frame of the whole run; one JSON line last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402

from twin.playlist import load_playlist  # noqa: E402
from twin.render.show import Exhibit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--playlist", default=str(ROOT / "scenarios" / "playlist.toml"))
    ap.add_argument("--changes", type=int, default=4, help="scene changes to measure")
    ap.add_argument("--scene-seconds", type=float, default=20.0, help="each scene shortened to this")
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((64, 64))
    show = load_playlist(Path(args.playlist))
    scenes = tuple(dataclasses.replace(s, seconds=min(s.seconds, args.scene_seconds)) for s in show.scenes)
    show = dataclasses.replace(show, scenes=scenes)
    log = logging.getLogger("scenes")
    log.propagate = False
    exhibit = Exhibit(show, (w, h), log)
    screen = pygame.Surface((w, h)).convert()
    dt = 1 / 60
    times: list[float] = []
    phases: list[tuple[int, str, float]] = []  # (scene index, phase, phase time) at each frame
    while exhibit.scenes_played < args.changes:
        t0 = time.perf_counter()
        exhibit.step(dt)
        exhibit.draw(screen)
        times.append((time.perf_counter() - t0) * 1e3)
        phases.append((exhibit.index, exhibit.phase, exhibit.phase_t))
    frames = np.array(times)
    title_s = show.title_card_s + show.fade_s
    changes = []
    for i in range(1, len(phases)):
        if phases[i][0] != phases[i - 1][0] or (phases[i][1] == "title" and phases[i - 1][1] == "fade"):
            lo = max(0, i - round(show.fade_s * 60))
            hi = min(len(frames), i + round((title_s + 3.0) * 60))
            window = frames[lo:hi]
            changes.append(
                {"max_ms": round(float(window.max()), 1), "p99_ms": round(float(np.percentile(window, 99)), 1)}
            )
    median = statistics.median(times)
    print(f"{len(times)} frames at {w}x{h}, {len(changes)} scene changes; frame median {median:.1f} ms")
    for k, c in enumerate(changes, 1):
        print(f"  change {k}: longest frame {c['max_ms']:6.1f} ms   p99 {c['p99_ms']:6.1f} ms")
    worst = max((c["max_ms"] for c in changes), default=0.0)
    print(json.dumps({"frame_ms_median": round(median, 2), "scene_change_max_ms": worst, "changes": changes}))


if __name__ == "__main__":
    main()
