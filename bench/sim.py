"""Simulation speed: 24 simulated hours of Lingang headless, and the bandwidth solver on 10,000 flows
(``group_speeds``: max-min over flows, jobs at their slowest flow, the rest given back; and its core,
``max_min_fair``, alone).

    .venv/bin/python bench/sim.py [--hours 24] [--repeats 15]

Prints readable lines, then one JSON line last with the figures (medians; the machine is shared and
noisy, so nothing here is asserted in tests).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from problems import leaf_spine_problem, ring_problem  # noqa: E402
from twin.flows import group_speeds, max_min_fair  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402
from twin.simulation import Simulation  # noqa: E402


def time_solver(problem: tuple, repeats: int, solver=group_speeds) -> list[float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        solver(*problem)
        times.append((time.perf_counter() - t) * 1000)
    return times


def live_problem(sim: Simulation) -> tuple:
    """The solver's input at this instant of a running simulation (its real flows and flow groups)."""
    groups = list(sim.flows.groups.values())
    var = np.repeat(np.arange(len(groups)), [len(g.links) for g in groups])
    link = np.concatenate([g.links for g in groups])
    load = np.concatenate([g.load for g in groups])
    flat = sim.flows.flat()
    entries = (flat["entry_flow"], flat["entry_link"], flat["entry_frac"])
    return len(groups), flat["group"], flat["demand"], entries, (var, link, load), sim.flows.capacity


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    flat_problem = leaf_spine_problem(flows=10_000)
    n_links = len(flat_problem[3])
    solve = time_solver(flat_problem, args.repeats, max_min_fair)
    jobs = time_solver(ring_problem(), args.repeats)
    print(
        f"solver, 10,000 elastic ECMP flows over {n_links:,} links ({len(flat_problem[0]):,} entries): "
        f"max-min over flows median {statistics.median(solve):.2f} ms, min {min(solve):.2f} ms; "
        f"the same fabric with 1,250 ring all-reduces of 8 flows, job speeds (group_speeds) median "
        f"{statistics.median(jobs):.2f} ms"
    )

    scenario = load_scenario(ROOT / "scenarios" / "lingang.toml")
    t0 = time.perf_counter()
    sim = Simulation(scenario)
    build_s = time.perf_counter() - t0
    flows_seen, entries_seen = [], []
    hour_walls = []
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(int(args.hours)):
        h0 = time.perf_counter()
        sim.advance(3600)
        hour_walls.append(time.perf_counter() - h0)
        flat = sim.flows.flat()
        flows_seen.append(len(flat["rate"]))
        entries_seen.append(len(flat["entry_link"]))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = args.hours * 3600 / scenario.simulation.step_s
    live = time_solver(live_problem(sim), args.repeats)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"lingang: built in {build_s:.2f} s; {args.hours:g} h simulated in {wall:.1f} s ({cpu:.1f} s of CPU) "
        f"(median hour {statistics.median(hour_walls):.2f} s), {sim.flows.solves:,} bandwidth solves, "
        f"{int(statistics.median(flows_seen)):,} flows and {sim.fabric.n_links:,} links (median)"
    )
    print(f"solver on the live Lingang flows: median {statistics.median(live):.2f} ms; peak RSS {rss_mb:.0f} MB")
    print(
        json.dumps(
            {
                "sim_24h_wall_s": round(wall * 24 / args.hours, 2),
                "sim_24h_cpu_s": round(cpu * 24 / args.hours, 2),
                "sim_hours": args.hours,
                "build_s": round(build_s, 3),
                "steps_per_s": round(steps / wall, 1),
                "solves": sim.flows.solves,
                "solves_per_s": round(sim.flows.solves / wall, 1),
                "solve_ms_median": round(statistics.median(solve), 3),
                "job_solve_ms_median": round(statistics.median(jobs), 3),
                "solve_flows": 10_000,
                "solve_links": n_links,
                "live_solve_ms_median": round(statistics.median(live), 3),
                "live_flows_median": int(statistics.median(flows_seen)),
                "live_links": sim.fabric.n_links,
                "peak_rss_mb": round(rss_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
