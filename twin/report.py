"""The run report: the figures `simulate --report` writes as JSON and prints as a table."""

from __future__ import annotations

from typing import Any

from twin.flows import TRAFFIC_KINDS
from twin.presets import cluster_of
from twin.simulation import Simulation, WorkloadStats
from twin.tiers import TIERS


def build_report(sim: Simulation) -> dict[str, Any]:
    """Summary of a run so far. Means are exact time averages from the simulation's integrals."""
    fab, tot = sim.fabric, sim.totals
    hours = sim.now / 3600.0
    span = max(sim.now, 1e-9)
    energy_mwh = tot.energy_j / 3.6e9
    return {
        "site": sim.scenario.site.name,
        "scenario": sim.scenario.source,
        "policy": sim.policy.name,
        "seed": sim.seed,
        "gpus": fab.n_gpus,
        "nodes": fab.n_nodes,
        "switches": sim.n_switches,
        "links": fab.n_edges,
        "peak_pflops": round(sim.scenario.peak_pflops, 3),
        "simulated_hours": round(hours, 6),
        "jobs_submitted": tot.submitted,
        "jobs_completed": tot.completed,
        "jobs_cancelled": tot.cancelled,
        "jobs_failed": tot.failed,
        "jobs_restarted": tot.restarted,
        "faults": tot.faults,
        "lost_gpu_hours": tot.lost_gpu_s / 3600.0,
        "jobs_running": len(sim.running),
        "jobs_queued": len(sim.queue),
        "mean_gpu_allocation": tot.gpu_alloc_s / span / fab.n_gpus,
        "mean_gpu_utilization": tot.busy_gpu_s / span / fab.n_gpus,
        "mean_pflops_in_use": tot.busy_gpu_s / span * sim.peak_tflops / 1000.0,
        "pflops_hours": tot.busy_gpu_s / 3600.0 * sim.peak_tflops / 1000.0,
        "pflops_delivered_mean": tot.flops_gpu_s / span * sim.peak_tflops / 1000.0,
        "mfu_mean": tot.flops_gpu_s / tot.gpu_alloc_s if tot.gpu_alloc_s > 0 else 0.0,
        "mean_step_slowdown": tot.step_slowdown,
        "mean_wait_s": tot.waits.mean,
        "p95_wait_s": tot.waits.percentile(95),  # of the latest 100,000 waits
        "mean_jct_s": tot.jcts.mean,
        "mean_link_utilization": tot.fabric_util_s / span,
        "spine_traffic_tb": tot.fabric_bytes / 1e12,
        "max_link_utilization": tot.max_link_util,
        "link_utilization_by_tier": {
            name: {"mean": float(tot.tier_util_s[k] / span), "max": float(tot.tier_util_max[k])}
            for k, name in enumerate(TIERS)
            if sim.tier_links[k]
        },
        "fragmentation": sim.alloc.fragmentation(),
        "energy_mwh": energy_mwh,
        "mean_facility_mw": energy_mwh / hours if hours > 0 else sim.facility_mw,
        "traffic_tb": {k: float(v / 1e12) for k, v in zip(TRAFFIC_KINDS, tot.traffic_bytes, strict=True)},
        "bandwidth_solves": sim.flows.solves,
        "workload": workload_block(tot.workload, sim.scenario.workload.preset),
    }


def workload_block(w: WorkloadStats, preset: str = "") -> dict[str, Any]:
    """The GPU jobs that arrived and ended in the run, summarised as the Helios table summarises a
    cluster; with a preset, the table's figures beside them as ``targets``."""
    n = max(w.gpu_jobs, 1)
    block: dict[str, Any] = {
        "gpu_jobs": w.gpu_jobs,
        "mean_gpus_per_job": w.gpus / n,
        "median_gpu_job_runtime_s": w.runtimes.percentile(50),
        "mean_gpu_job_runtime_s": w.runtimes.mean,
        "complete_rate": w.outcomes.get("completed", 0) / n,
        "cancel_rate": w.outcomes.get("cancelled", 0) / n,
        "fail_rate": w.outcomes.get("failed", 0) / n,
        **gpu_time_figures(w.gpu_s, w.gpu_jobs),
    }
    if preset:
        block["preset"] = preset
        block["targets"] = cluster_of(preset).targets()
    return block


def gpu_time_figures(gpu_s: dict[str, float], jobs: int) -> dict[str, float]:
    """GPU time per job and each outcome's share of it, as the table's GPU-time columns give them.
    ``gpu_s`` is GPU-seconds (GPUs x run time) by outcome."""
    keys = ("gpu_time_per_job_s", "complete_gpu_time_share", "cancel_gpu_time_share", "fail_gpu_time_share")
    total = sum(gpu_s.values())
    parts = [gpu_s.get(o, 0.0) / total if total > 0 else 0.0 for o in ("completed", "cancelled", "failed")]
    return dict(zip(keys, [total / max(jobs, 1), *parts], strict=True))


_ROWS = (
    ("Site", "site", "{}"),
    ("Policy / seed", None, None),
    ("GPUs / nodes", None, None),
    ("Switches / links", None, None),
    ("Peak", "peak_pflops", "{:,.0f} PFLOPS"),
    ("Simulated", "simulated_hours", "{:.2f} h"),
    ("Jobs submitted", "jobs_submitted", "{:,}"),
    ("Jobs completed", "jobs_completed", "{:,}"),
    ("Jobs cancelled / failed", None, None),
    ("Faults / restarts", None, None),
    ("Lost to faults", "lost_gpu_hours", "{:,.1f} GPU-hours"),
    ("Jobs running / queued", None, None),
    ("GPU allocation (mean)", "mean_gpu_allocation", "{:.1%}"),
    ("PFLOPS in use (mean)", "mean_pflops_in_use", "{:,.0f}"),
    ("PFLOPS delivered (mean)", "pflops_delivered_mean", "{:,.0f}"),
    ("MFU of allocated GPUs", "mfu_mean", "{:.1%}"),
    ("Step slowdown (mean)", "mean_step_slowdown", "{:.3f}x"),  # None: stalled throughout
    ("Wait mean / p95", None, None),
    ("Job completion (mean)", "mean_jct_s", "{:,.0f} s"),
    ("Fabric link util (mean)", "mean_link_utilization", "{:.1%}"),
    ("Hottest link (max)", "max_link_utilization", "{:.1%}"),
    ("Energy", "energy_mwh", "{:,.1f} MWh"),
    ("Facility power (mean)", "mean_facility_mw", "{:.2f} MW"),
)


def format_report(r: dict[str, Any]) -> str:
    """The report as an aligned two-column table for the console."""
    combined = {
        "Policy / seed": f"{r['policy']} / {r['seed']}",
        "GPUs / nodes": f"{r['gpus']:,} / {r['nodes']:,}",
        "Switches / links": f"{r['switches']:,} / {r['links']:,}",
        "Jobs running / queued": f"{r['jobs_running']:,} / {r['jobs_queued']:,}",
        "Wait mean / p95": f"{r['mean_wait_s']:,.0f} s / {r['p95_wait_s']:,.0f} s",
        "Jobs cancelled / failed": f"{r['jobs_cancelled']:,} / {r['jobs_failed']:,}",
        "Faults / restarts": f"{r['faults']:,} / {r['jobs_restarted']:,}",
    }
    lines = []
    for label, key, fmt in _ROWS:
        raw = None if key is None else r[key]
        value = combined[label] if key is None else ("stalled" if raw is None else fmt.format(raw))
        lines.append(f"  {label:<24} {value}")
    for tier, u in r.get("link_utilization_by_tier", {}).items():
        lines.append(f"  {'Links: ' + tier:<24} {u['mean']:.1%} mean / {u['max']:.1%} max")
    w = r.get("workload")
    if w and w["gpu_jobs"]:
        targets = w.get("targets", {})
        head = f"  Workload ({w['gpu_jobs']:,} GPU jobs ended)"
        lines.append(head + (f"{'run':>14}{'table':>14}" if targets else ""))
        for label, key, fmt in _WORKLOAD_ROWS:
            if w.get(key) is None:
                continue
            row = f"    {label:<22} {fmt.format(w[key]):>12}"
            if key in targets:
                row += f"{fmt.format(targets[key]):>14}"
            lines.append(row)
    return "\n".join(lines)


_WORKLOAD_ROWS = (
    ("GPUs per job (mean)", "mean_gpus_per_job", "{:.2f}"),
    ("Run time (median)", "median_gpu_job_runtime_s", "{:,.0f} s"),
    ("Run time (mean)", "mean_gpu_job_runtime_s", "{:,.0f} s"),
    ("Completed", "complete_rate", "{:.1%}"),
    ("Cancelled", "cancel_rate", "{:.1%}"),
    ("Failed", "fail_rate", "{:.1%}"),
    ("GPU time per job", "gpu_time_per_job_s", "{:,.0f} GPU-s"),
    ("  of it completed", "complete_gpu_time_share", "{:.1%}"),
    ("  of it cancelled", "cancel_gpu_time_share", "{:.1%}"),
    ("  of it failed", "fail_gpu_time_share", "{:.1%}"),
)
