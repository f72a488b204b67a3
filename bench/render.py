"""Frame time of the live view on Lingang, simulation included.

    SDL_VIDEODRIVER=dummy .venv/bin/python bench/render.py          # headless: drawing alone
    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python bench/render.py   # a real window

Runs the real frame loop without waiting for vsync, each frame advancing the simulation by 1/60 s of
wall time at the given speed, and prints per-layer median and p99, then one JSON line last. The floor is
what presenting an unchanged frame of the same size costs; frame times are also given as ratios to it,
and to the repaint floor: copying one ready picture of the whole screen onto it, then presenting.
``--glide`` moves the camera all the time, back and forth between the whole site and its busiest rack,
as the exhibition's camera script does. ``--framebuffer texture`` presents through SDL's OpenGL texture
instead of X11's shared-memory framebuffer (the view's choice on Linux), to compare the two floors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pygame  # noqa: E402

from twin.render.app import App  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402
from twin.simulation import Simulation  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "lingang.toml"))
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--speed", type=float, default=120)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--glide", action="store_true", help="keep the camera moving (site <-> busiest rack)")
    ap.add_argument(
        "--framebuffer",
        choices=("native", "texture"),
        default="native",
        help="how SDL presents the window surface: X11 shared memory (the view's choice) or an OpenGL texture",
    )
    args = ap.parse_args()
    os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0" if args.framebuffer == "native" else "1"
    w, h = (int(v) for v in args.size.split("x"))
    app = App(Simulation(load_scenario(args.scenario)), size=(w, h), speed=args.speed)
    floor, repaint = present_floor(app.screen), present_floor(app.screen, repaint=True)
    glide = glider(app) if args.glide else None
    layers: dict[str, list[float]] = {k: [] for k in ("sim", "snapshot", "site", "hud", "present", "frame", "draw")}
    wall = 0.0
    for _ in range(30):  # warm up: caches, first snapshot
        app.step(1 / 60)
        app.frame.refresh(wall)
        app.frame.draw(app.screen, wall)
        wall += 1 / 60
    for i in range(args.frames):
        t0 = time.perf_counter()
        pygame.event.pump()
        if glide is not None:
            glide(i)
        app.step(1 / 60)
        t1 = time.perf_counter()
        app.frame.refresh(wall)
        t2 = time.perf_counter()
        parts = app.frame.draw(app.screen, wall)
        t3 = time.perf_counter()
        pygame.display.flip()
        t4 = time.perf_counter()
        wall += 1 / 60
        layers["sim"].append((t1 - t0) * 1000)
        layers["snapshot"].append((t2 - t1) * 1000)
        layers["site"].append(parts["site_ms"])
        layers["hud"].append(parts["hud_ms"])
        layers["present"].append((t4 - t3) * 1000)
        layers["draw"].append((t3 - t2) * 1000)
        layers["frame"].append((t4 - t0) * 1000)
    driver = pygame.display.get_driver()
    mode = (", gliding" if args.glide else "") + f", {args.framebuffer} framebuffer"
    print(
        f"{args.frames} frames of {Path(args.scenario).stem} at {w}x{h}, x{args.speed:g}{mode}, video driver {driver}"
    )
    for name, values in layers.items():
        print(f"  {name:9s} median {statistics.median(values):6.2f} ms   p99 {np.percentile(values, 99):6.2f} ms")
    frame_median, frame_p99 = statistics.median(layers["frame"]), float(np.percentile(layers["frame"], 99))
    real = floor >= 0.05  # a real display; the dummy driver presents nothing, so has no floor to compare with
    ratio = f"frame median {frame_median / floor:.2f}x, p99 {frame_p99 / floor:.2f}x" if real else "no display"
    print(f"  floor     {floor:6.2f} ms (presenting an unchanged frame): {ratio}")
    if real:
        print(
            f"  repaint   {repaint:6.2f} ms ({repaint / floor:.2f}x the floor: one picture of the whole screen "
            f"copied and presented, the least a frame that moves every pixel costs): "
            f"frame median {frame_median / repaint:.2f}x"
        )
    print(
        json.dumps(
            {
                "frame_ms_median": round(statistics.median(layers["frame"]), 3),
                "frame_ms_p99": round(float(np.percentile(layers["frame"], 99)), 3),
                "draw_ms_median": round(statistics.median(layers["draw"]), 3),
                "draw_ms_p99": round(float(np.percentile(layers["draw"], 99)), 3),
                "sim_ms_median": round(statistics.median(layers["sim"]), 3),
                "present_floor_ms": round(floor, 3),
                "frame_to_floor_median": round(frame_median / floor, 3) if real else None,
                "frame_to_floor_p99": round(frame_p99 / floor, 3) if real else None,
                "repaint_floor_ms": round(repaint, 3) if real else None,
                "frame_to_repaint_floor_median": round(frame_median / repaint, 3) if real else None,
                "glide": args.glide,
                "framebuffer": args.framebuffer,
                "video_driver": driver,
                "size": [w, h],
                "speed": args.speed,
                "frames": args.frames,
                "display": os.environ.get("DISPLAY", ""),
            }
        )
    )
    pygame.display.quit()


def present_floor(screen: pygame.Surface, frames: int = 120, repaint: bool = False) -> float:
    """Median ms to present a frame that did not change: the least any frame of this size can cost.
    ``repaint``: to copy one ready picture of the whole screen onto it first, then present: what any frame
    costs whose pixels may all change (particles flow across the whole view), before drawing anything."""
    screen.fill((9, 13, 26))
    picture = screen.copy()
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        if repaint:
            screen.blit(picture, (0, 0))
        pygame.display.flip()
        times.append((time.perf_counter() - t0) * 1000)
    return max(statistics.median(times), 1e-3)


def glider(app: App):
    """A camera that glides for ever between the whole site and its busiest rack, 3 s each way."""
    from twin.render.camera import Camera
    from twin.render.show import blend

    site = app.frame.site
    lay = site.layout
    whole = Camera.fit(lay.bounds, site.camera.viewport)
    x, y, rw, rh = lay.racks[len(lay.racks) // 2]
    rack = Camera.fit((x - 2.5 * rw, y - 1.2 * rh, x + 3.5 * rw, y + 2.2 * rh), site.camera.viewport)

    def move(i: int) -> None:
        leg, t = divmod(i, 180)
        a, b = (whole, rack) if leg % 2 == 0 else (rack, whole)
        site.set_camera(blend(a, b, t / 180))

    return move


if __name__ == "__main__":
    main()
