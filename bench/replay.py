"""Trace streaming and replay at scale: a generated Helios-format trace of a million rows is read in
bounded memory, and a slice of it is replayed on Helios Earth, with RSS sampled along the way.

    .venv/bin/python bench/replay.py                    # 1,000,000 rows read, 40,000 (~20,000 GPU jobs) replayed
    .venv/bin/python bench/replay.py --rows 3000000
    .venv/bin/python bench/replay.py --against ../old --pairs 10   # the replay beside another checkout's

``--against DIR`` replays with this checkout's code and with DIR's (a worktree of an older commit, run by
this same bench file with ``--root DIR``), alternately, one pair after another, and prints each pair's
ratio of CPU seconds (theirs / ours), their median, the ratio of the medians and whether every schedule
was the same: on a shared machine whose speed drifts, a ratio taken within a pair is the figure to trust.

Prints rows per second, replayed GPU jobs per second (FIFO unless ``--policy`` says otherwise, the
network included), the replay's CPU seconds, a digest of its schedule (every job's start time and GPUs,
so two versions of the code can be shown to schedule job for job alike) and RSS at the start, middle and
end of each phase, then one JSON line last. ``--replay-only`` writes just the slice that is replayed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if "--root" in sys.argv[:-1]:  # the code replayed: another checkout's (read before importing it)
    ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
sys.path.insert(0, str(ROOT))

from twin.presets import PresetSampler  # noqa: E402
from twin.replay import Replay  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402
from twin.trace import TraceStats, format_time, read_trace  # noqa: E402

HEADER = "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue\n"
STATES = {"completed": "COMPLETED", "cancelled": "CANCELLED", "failed": "FAILED"}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_trace(path: Path, rows: int, seed: int = 1) -> None:
    """Helios-Earth-like GPU jobs (with CPU jobs mixed in, as in the real log), in submit order."""
    rng = np.random.default_rng(seed)
    sampler = PresetSampler("helios-earth", 1000)
    gap = 3600.0 / (sampler.cluster.jobs_per_hour * 2)  # half the rows are CPU jobs
    t = 1_585_699_200.0  # 2020-04-01
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(rows):
            t += float(rng.exponential(gap))
            cpu = rng.random() < 0.5
            gpus = 0 if cpu else sampler.gpus(rng)
            run = float(rng.exponential(160.0)) if cpu else sampler.duration(rng)
            wait = float(rng.exponential(300.0))
            state = "COMPLETED" if cpu else STATES[sampler.outcome(rng)]
            start, end = t + wait, t + wait + run
            f.write(
                f"{i},u{i % 97},vc{i % 13},{gpus},4,1,{state},{format_time(t)},{format_time(start)},"
                f"{format_time(end)},{run:.0f},0\n"
            )


def replay_once(root: Path | None, policy: str) -> dict:
    """One replay (``--replay-only``) in a fresh process, with this checkout's code or ``root``'s."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--replay-only", "--policy", policy]
    out = subprocess.run(cmd + (["--root", str(root)] if root else []), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(other: Path, pairs: int, policy: str) -> None:
    """Replays with this code and ``other``'s, alternately; the ratio of CPU seconds within each pair."""
    ours, theirs = [], []
    for i in range(pairs):
        a, b = replay_once(None, policy), replay_once(other, policy)
        ours.append(a)
        theirs.append(b)
        print(
            f"pair {i + 1}: ours {a['replay_cpu_s']:.2f} s, theirs {b['replay_cpu_s']:.2f} s, "
            f"ratio {b['replay_cpu_s'] / a['replay_cpu_s']:.2f}",
            flush=True,
        )
    ratios = [b["replay_cpu_s"] / a["replay_cpu_s"] for a, b in zip(ours, theirs, strict=True)]
    ours_s, theirs_s = [r["replay_cpu_s"] for r in ours], [r["replay_cpu_s"] for r in theirs]
    median_ratio = float(np.median(ratios))
    of_medians = float(np.median(theirs_s) / np.median(ours_s))
    same = len({r["schedule_sha256"] for r in ours + theirs}) == 1
    print(
        f"median ratio {median_ratio:.2f} ({min(ratios):.2f} to {max(ratios):.2f}); ratio of medians "
        f"{of_medians:.2f}; the same schedule in every run: {same}"
    )
    print(
        json.dumps(
            {
                "pairs": pairs,
                "paired_ratios": [round(r, 3) for r in ratios],
                "median_ratio": round(median_ratio, 3),
                "ratio_of_medians": round(of_medians, 3),
                "ours_cpu_s": ours_s,
                "theirs_cpu_s": theirs_s,
                "same_schedule": same,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--replay-rows", type=int, default=40_000)
    ap.add_argument("--policy", default="fifo", help="the scheduling policy of the replay")
    ap.add_argument("--replay-only", action="store_true", help="skip the million-row read")
    ap.add_argument("--root", type=Path, help="replay with the code of this checkout instead")
    ap.add_argument("--against", type=Path, help="pair replays with another checkout's (see above)")
    ap.add_argument("--pairs", type=int, default=10, help="pairs of replays with --against")
    args = ap.parse_args()
    if args.against is not None:
        compare(args.against, args.pairs, args.policy)
        return
    if args.replay_only:
        args.rows = args.replay_rows
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.csv"
        t0 = time.perf_counter()
        write_trace(path, args.rows)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        stats = TraceStats()
        rss = [rss_mb()]
        t0 = time.perf_counter()
        for _ in read_trace(path, stats=stats):
            if len(rss) == 1 and stats.rows > args.rows // 2:
                rss.append(rss_mb())
        read_s = time.perf_counter() - t0
        rss.append(rss_mb())
        print(
            f"read: {stats.rows:,} rows, {stats.jobs:,} GPU jobs in {read_s:.1f} s "
            f"({stats.rows / read_s:,.0f} rows/s); RSS {' -> '.join(f'{r:.0f}' for r in rss)} MB"
        )

        small = Path(tmp) / "slice.csv"
        with path.open() as src, small.open("w") as dst:
            for i, line in enumerate(src):
                if i > args.replay_rows:
                    break
                dst.write(line)
        site = load_scenario(ROOT / "scenarios" / "helios-earth.toml")
        site = dataclasses.replace(site, scheduler=dataclasses.replace(site.scheduler, policy=args.policy))
        replay = Replay(site, small)
        starts: list[tuple[int, float, np.ndarray]] = []  # every start, in order: (job, time, GPUs)
        assign, sim = replay.sim.alloc.assign, replay.sim

        def recorded(job_id: int, gpus: np.ndarray) -> None:  # kept as they come, hashed after the replay
            starts.append((job_id, sim.now, gpus))
            assign(job_id, gpus)

        replay.sim.alloc.assign = recorded
        t0, c0 = time.perf_counter(), time.process_time()
        samples = [rss_mb()]
        while not replay.done:
            replay.run(replay.sim.now + 6 * 3600)
            samples.append(rss_mb())
        replay_s, replay_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        schedule = hashlib.sha256()  # the same bytes, in the same order, as when hashed start by start
        for job_id, now, gpus in starts:
            schedule.update(f"{job_id},{now!r},{gpus.tolist()};".encode())
        block = replay.report_block()
        print(
            f"replay: {block['jobs_replayed']:,} GPU jobs over {replay.sim.now / 86400:.1f} simulated days in "
            f"{replay_s:.1f} s, {replay_cpu_s:.1f} s of CPU ({block['jobs_replayed'] / replay_s:,.0f} jobs/s, "
            f"{args.policy}); schedule {schedule.hexdigest()[:16]}; "
            f"RSS first/median/last {samples[1]:.0f}/{np.median(samples):.0f}/{samples[-1]:.0f} MB; "
            f"wait mean ours {block['mean_wait_s']:.0f} s, recorded {block['recorded_mean_wait_s']:.0f} s"
        )
        print(
            json.dumps(
                {
                    "rows": stats.rows,
                    "read_rows_per_s": round(stats.rows / read_s),
                    "read_rss_mb": [round(r, 1) for r in rss],
                    "replay_jobs": block["jobs_replayed"],
                    "replay_days": round(replay.sim.now / 86400, 2),
                    "replay_s": round(replay_s, 2),
                    "replay_cpu_s": round(replay_cpu_s, 2),
                    "schedule_sha256": schedule.hexdigest(),
                    "replay_jobs_per_s": round(block["jobs_replayed"] / replay_s),
                    "policy": args.policy,
                    "replay_rss_mb_first_last": [round(samples[1], 1), round(samples[-1], 1)],
                }
            )
        )


if __name__ == "__main__":
    main()
