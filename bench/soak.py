"""Soak test of the exhibition show: the whole playlist, looped headless at high speed, for the
equivalent of a 12-hour day. Reports RSS at start (after a warm-up) and end, and frame-time percentiles
for every show hour, then one JSON line last.

    SDL_VIDEODRIVER=dummy .venv/bin/python bench/soak.py                 # 12 show-hours, dt 1 s per frame
    SDL_VIDEODRIVER=dummy .venv/bin/python bench/soak.py --hours 1       # a quick look

Each frame advances the show by ``--dt`` seconds of show time (the real show advances ~1/60 s), so a day
of scenes, title cards, fades, captions and camera moves passes in minutes; every frame is drawn. The
first ``--warmup`` show-minutes (font and text caches, allocator pools) are not counted in RSS growth.
"""

from __future__ import annotations

import argparse
import gc
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


def rss_mb() -> float:
    """Resident memory now (not the peak): pages in /proc/self/statm times the page size."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--playlist", default=str(ROOT / "scenarios" / "playlist.toml"))
    ap.add_argument("--hours", type=float, default=12.0, help="show hours to play")
    ap.add_argument("--dt", type=float, default=1.0, help="show seconds per frame")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--warmup", type=float, default=30.0, help="show minutes before the start RSS is taken")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((64, 64))
    log = logging.getLogger("soak")
    log.propagate = False
    errors = Counter()
    log.addHandler(errors)
    show = load_playlist(args.playlist)
    exhibit = Exhibit(show, (w, h), log)
    screen = pygame.Surface((w, h)).convert()

    frames_per_hour = round(3600 / args.dt)
    hours = max(1, round(args.hours))
    per_hour: list[dict[str, float]] = []
    rss_start = None
    t_begin = time.perf_counter()
    for hour in range(hours):
        times = np.empty(frames_per_hour)
        for i in range(frames_per_hour):
            t0 = time.perf_counter()
            exhibit.step(args.dt)
            exhibit.draw(screen)
            times[i] = (time.perf_counter() - t0) * 1e3
            if rss_start is None and exhibit.clock >= args.warmup * 60:
                gc.collect()
                rss_start = rss_mb()
        gc.collect()
        row = {
            "hour": hour + 1,
            "frame_ms_p50": round(float(np.percentile(times, 50)), 2),
            "frame_ms_p99": round(float(np.percentile(times, 99)), 2),
            "frame_ms_max": round(float(times.max()), 1),
            "rss_mb": round(rss_mb(), 1),
            "scenes_played": exhibit.scenes_played,
        }
        per_hour.append(row)
        print(
            f"hour {row['hour']:>2}: frame p50 {row['frame_ms_p50']:6.2f} ms  p99 {row['frame_ms_p99']:6.2f} ms"
            f"  max {row['frame_ms_max']:7.1f} ms  RSS {row['rss_mb']:6.1f} MB  scenes {row['scenes_played']}"
            f"  ({time.perf_counter() - t_begin:.0f} s)",
            flush=True,
        )
    rss_end = per_hour[-1]["rss_mb"]
    rss_start = rss_start if rss_start is not None else per_hour[0]["rss_mb"]
    growth = 100 * (rss_end - rss_start) / rss_start
    p99 = [r["frame_ms_p99"] for r in per_hour]
    half = max(1, len(p99) // 2)
    creep = statistics.median(p99[half:]) / statistics.median(p99[:half]) if len(p99) > 1 else 1.0
    print(
        f"RSS {rss_start:.1f} MB after warm-up -> {rss_end:.1f} MB at the end ({growth:+.1f}%); "
        f"p99 second half / first half {creep:.2f}; {exhibit.scenes_played} scenes; {errors.count} logged errors"
    )
    result = {
        "show_hours": hours,
        "dt_s": args.dt,
        "size": f"{w}x{h}",
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_pct": round(growth, 2),
        "p99_creep_ratio": round(creep, 3),
        "scenes_played": exhibit.scenes_played,
        "logged_errors": errors.count,
        "per_hour": per_hour,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
