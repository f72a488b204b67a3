"""The 100,000-GPU site at full speed: build time, 24 simulated hours headless (wall time, peak RSS), and
headless drawing at 1920x1080 at every level of detail, from the whole site down to one server's GPUs.

    .venv/bin/python bench/hyperscale.py                   # everything (several minutes)
    .venv/bin/python bench/hyperscale.py --hours 0         # build and drawing only
    .venv/bin/python bench/hyperscale.py --frames 0        # build and the 24 h run only

Targets (issue #13): 24 simulated hours in under 3 minutes with RSS under 1.5 GB; drawing median under
8 ms and p99 under 25 ms. The run and the drawing are measured in separate processes so that each one's
peak RSS is its own. Prints readable lines, then one JSON line last (medians; the machine is shared and
noisy, so nothing here is asserted in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "scenarios" / "hyperscale-100k.toml"
ZOOMS = ("site", "pod", "unit", "rack", "server")


def machine() -> dict:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "load_1min": round(os.getloadavg()[0], 2)}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_sim(path: Path, hours: float) -> dict:
    """Build the site and run it headless; the figures of this process alone."""
    from twin.scenario import load_scenario
    from twin.simulation import Simulation
    from twin.topology import build_fabric

    t0 = time.perf_counter()
    scenario = load_scenario(path)
    fabric = build_fabric(scenario)
    fabric_s = time.perf_counter() - t0
    del fabric
    t0 = time.perf_counter()
    sim = Simulation(scenario)
    build_s = time.perf_counter() - t0
    rss_built = rss_mb()
    hour_walls, hour_cpus = [], []
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(int(hours)):
        h0, hc = time.perf_counter(), time.process_time()
        sim.advance(3600)
        hour_walls.append(time.perf_counter() - h0)
        hour_cpus.append(time.process_time() - hc)
        print(
            f"  hour {len(hour_walls)}: {hour_walls[-1]:.1f} s ({hour_cpus[-1]:.1f} s CPU), {len(sim.running)} jobs "
            "running",
            flush=True,
        )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "gpus": sim.fabric.n_gpus,
        "switches": int(sim.fabric.switch_gids.size),
        "links": sim.fabric.n_links,
        "fabric_build_s": round(fabric_s, 2),
        "sim_build_s": round(build_s, 2),
        "rss_built_mb": round(rss_built, 1),
        "sim_hours": hours,
        "sim_wall_s": round(wall, 1),
        "sim_cpu_s": round(cpu, 1),
        "sim_hour_s_median": round(statistics.median(hour_walls), 2) if hour_walls else None,
        "sim_hour_cpu_s_median": round(statistics.median(hour_cpus), 2) if hour_cpus else None,
        "solves": sim.flows.solves,
        "jobs_completed": sim.totals.completed,
        "peak_rss_mb": round(rss_mb(), 1),
    }


def cameras(site) -> dict:
    """A camera per level of detail: the site, a pod, a unit, a rack with its neighbours, one server."""
    from twin.render.camera import Camera

    lay, vp = site.layout, site.camera.viewport

    def around(x, y, w, h, margin):
        return Camera.fit((x - margin, y - margin, x + w + margin, y + h + margin), vp)

    middle = len(lay.racks) // 2
    gid = int(site.fabric.node_gid[len(site.fabric.node_gid) // 2])
    out = {"site": Camera.fit(lay.bounds, vp)}
    if len(lay.pods):
        out["pod"] = around(*lay.pods[len(lay.pods) // 2], 1.0)
    out["unit"] = around(*lay.blocks[len(lay.blocks) // 2], 0.5)
    x, y, w, h = lay.racks[middle]
    out["rack"] = around(x - 1.5 * w, y, 4 * w, h, 0.8)
    out["server"] = around(*lay.rect[gid], 0.3)
    return out


def run_draw(path: Path, frames: int, size: tuple[int, int], speed: float, at: float, out: Path | None) -> dict:
    """Draw ``frames`` frames at each level of detail, the simulation advancing 1/60 s of wall time at
    ``speed`` between frames, as the live view does; time the drawing alone (site and HUD)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import numpy as np
    import pygame

    from twin.render.app import Frame
    from twin.scenario import load_scenario
    from twin.simulation import Simulation

    pygame.display.init()
    pygame.display.set_mode(size)
    surface = pygame.Surface(size).convert()
    sim = Simulation(load_scenario(path))
    sim.run(at)
    t0 = time.perf_counter()
    frame = Frame(sim, size)
    layout_s = time.perf_counter() - t0
    frame.state.speed = frame.state.effective_speed = speed
    wall = 0.0
    figures: dict[str, dict] = {}
    everything: list[float] = []
    refreshes: list[float] = []
    for name, cam in cameras(frame.site).items():
        frame.site.set_camera(cam)
        times, refresh = [], []
        for i in range(frames + 10):
            sim.advance(speed / 60)
            t = time.perf_counter()
            frame.refresh(wall)  # a new snapshot, and the links restyled when due
            t1 = time.perf_counter()
            frame.draw(surface, wall)
            if i >= 10:  # the first frames after a camera change redraw every layer
                times.append((time.perf_counter() - t1) * 1000)
                refresh.append((t1 - t) * 1000)
            wall += 1 / 60
        refreshes += refresh
        if out is not None:
            pygame.image.save(surface, str(out.with_name(f"{out.stem}-{name}{out.suffix}")))
        everything += times
        figures[name] = {
            "zoom": round(cam.zoom, 2),
            "draw_ms_median": round(statistics.median(times), 2),
            "draw_ms_p99": round(float(np.percentile(times, 99)), 2),
            "refresh_ms_median": round(statistics.median(refresh), 2),
            "refresh_ms_p99": round(float(np.percentile(refresh, 99)), 2),
        }
        f = figures[name]
        print(
            f"  {name:7s} draw median {f['draw_ms_median']:6.2f} ms  p99 {f['draw_ms_p99']:6.2f} ms;"
            f"  snapshot and restyle median {f['refresh_ms_median']:6.2f} ms  p99 {f['refresh_ms_p99']:6.2f} ms"
        )
    return {
        "layout_s": round(layout_s, 2),
        "draw_ms_median": round(statistics.median(everything), 2),
        "draw_ms_p99": round(float(np.percentile(everything, 99)), 2),
        "refresh_ms_median": round(statistics.median(refreshes), 2),
        "refresh_ms_p99": round(float(np.percentile(refreshes, 99)), 2),
        "draw_rss_mb": round(rss_mb(), 1),
        "zooms": figures,
        "size": list(size),
        "speed": speed,
        "frames_per_zoom": frames,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(SCENARIO))
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--frames", type=int, default=300, help="frames drawn at each level of detail")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--speed", type=float, default=120)
    ap.add_argument("--at", type=float, default=3600.0, help="simulated seconds before drawing")
    ap.add_argument("--png", default="", help="save the last frame of each zoom as PNG-<zoom>.png")
    ap.add_argument("--part", choices=("all", "sim", "draw"), default="all", help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = Path(args.scenario)
    w, h = (int(v) for v in args.size.split("x"))
    if args.part == "sim":
        print(json.dumps(run_sim(path, args.hours)))
        return
    if args.part == "draw":
        print(
            json.dumps(run_draw(path, args.frames, (w, h), args.speed, args.at, Path(args.png) if args.png else None))
        )
        return
    result = {"scenario": path.stem, "machine": machine()}
    print(f"{path.stem} on {result['machine']['nproc']} x {result['machine']['cpu']}")
    for part, wanted in (("sim", args.hours >= 0), ("draw", args.frames > 0)):
        if not wanted:
            continue
        cmd = [sys.executable, __file__, "--part", part, *sys.argv[1:]]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        lines = done.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))
        result[part] = json.loads(lines[-1])
    sim = result.get("sim")
    if sim:
        print(
            f"built in {sim['fabric_build_s']} s (fabric) / {sim['sim_build_s']} s (simulation, with the jobs "
            f"running at time 0); {sim['sim_hours']:g} h simulated in {sim['sim_wall_s']} s "
            f"({sim['sim_cpu_s']} s of CPU); peak RSS {sim['peak_rss_mb']} MB"
        )
    draw = result.get("draw")
    if draw:
        print(f"drawing at {w}x{h}: median {draw['draw_ms_median']} ms, p99 {draw['draw_ms_p99']} ms")
    result["machine"]["load_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
