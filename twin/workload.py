"""Jobs and where they come from: the synthetic workload generator.

A :class:`JobSpec` is what a user submits: kind, GPU count, how long it would run at full speed, model
size and the traffic it makes. The generator draws them from the scenario's mix with the random
generator it is given (never a global one), so the same seed gives the same jobs whatever the
scheduler does with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.presets import PresetSampler, rhythm
from twin.records import quick_init
from twin.scenario import JobClass, WorkloadSpec

TRAINING_KINDS = ("pretrain", "finetune", "research")
CHECKPOINT_BYTES_PER_PARAM = 14.0  # bf16 weights + fp32 master weights + two Adam moments


@quick_init
@dataclass(frozen=True)
class JobSpec:
    """One submitted job. ``duration_s`` is its run time at full speed (a service's lifetime)."""

    id: int
    kind: str
    gpus: int
    arrival_s: float
    duration_s: float
    estimate_s: float  # the wall-time limit the user asked for; what backfill plans with
    params_b: float
    read_mbs_per_gpu: float
    checkpoint_s: float  # progress between checkpoints; 0 means never
    serve_mbs_per_gpu: float
    warm_progress_s: float = 0.0  # work already done when the run starts (warm start)
    outcome: str = "completed"  # completed | cancelled | failed: how it ends after duration_s
    tokens_per_gpu: float = 2048.0  # a training step's global batch per GPU (LLaMA: 4M tokens on 2,048 GPUs)
    overlap: float = 0.0  # share of a step's communication hidden behind compute

    @property
    def trains(self) -> bool:
        return self.kind in TRAINING_KINDS

    @property
    def checkpoint_bytes(self) -> float:
        return self.params_b * 1e9 * CHECKPOINT_BYTES_PER_PARAM


class WorkloadGenerator:
    """Draws jobs from a scenario's mix: Poisson arrivals, log-uniform sizes, log-normal durations."""

    def __init__(self, spec: WorkloadSpec, total_gpus: int, gpus_per_node: int, rng: np.random.Generator) -> None:
        self.spec = spec
        self.total_gpus = total_gpus
        self.gpus_per_node = gpus_per_node
        self.rng = rng
        shares = np.array([c.share for c in spec.mix], float)
        self.shares = shares / shares.sum()
        # Jobs running at a random instant are length-biased: kinds weigh by share x mean duration.
        mean_hours = np.array([c.median_hours * np.exp(c.sigma**2 / 2) for c in spec.mix])
        self.warm_shares = self.shares * mean_hours / (self.shares * mean_hours).sum()
        self.next_id = 0
        self.preset = PresetSampler(spec.preset, total_gpus) if spec.preset else None
        self.jobs_per_hour = spec.jobs_per_hour
        if self.preset is not None and not self.jobs_per_hour:  # the preset's rate, per GPU of this site
            self.jobs_per_hour = self.preset.cluster.jobs_per_hour * total_gpus / self.preset.cluster.gpus

    def next_arrival_gap(self, now: float = 0.0) -> float:
        """Seconds from ``now`` until the next job arrives: Poisson, thinned to follow the daily rhythm."""
        amplitude = self.spec.daily_rhythm
        peak = self.jobs_per_hour * (1.0 + amplitude)
        t = now
        while True:
            t += float(self.rng.exponential(3600.0 / peak))
            if amplitude == 0.0 or self.rng.random() * (1.0 + amplitude) <= rhythm(t, amplitude):
                return t - now

    def draw(self, now: float, warm: bool = False) -> JobSpec:
        """A new job arriving at ``now``.

        A warm job is one found already running when the clock starts: drawn from the running population
        (length-biased: a log-normal's length-biased form has its median times exp(sigma^2)), with a
        uniform share of its work already done, so a warm start is already in steady state.
        """
        if self.preset is not None:
            return self._draw_preset(now, warm)
        rng = self.rng
        cls: JobClass = self.spec.mix[int(rng.choice(len(self.spec.mix), p=self.warm_shares if warm else self.shares))]
        gpus = self._gpus(cls)
        median = cls.median_hours * 3600.0 * (np.exp(cls.sigma**2) if warm else 1.0)
        duration = max(60.0, float(median * np.exp(cls.sigma * rng.standard_normal())))
        lo, hi = self.spec.estimate_factor
        estimate = duration * float(rng.uniform(lo, hi))
        p_lo, p_hi = cls.params_b
        params = float(np.exp(rng.uniform(np.log(p_lo), np.log(p_hi))))
        warm_progress = float(rng.uniform(0.0, 1.0)) * duration if warm else 0.0
        job = JobSpec(
            id=self.next_id,
            kind=cls.kind,
            gpus=gpus,
            arrival_s=now,
            duration_s=duration,
            estimate_s=estimate,
            params_b=params,
            read_mbs_per_gpu=cls.read_mbs_per_gpu,
            checkpoint_s=cls.checkpoint_minutes * 60.0,
            serve_mbs_per_gpu=cls.serve_mbs_per_gpu,
            warm_progress_s=warm_progress,
            tokens_per_gpu=cls.tokens_per_gpu,
            overlap=cls.overlap,
        )
        self.next_id += 1
        return job

    def _draw_preset(self, now: float, warm: bool) -> JobSpec:
        """A Helios-like research job: size, run time and outcome from the preset; modest traffic."""
        rng, preset = self.rng, self.preset
        assert preset is not None
        gpus, duration, outcome = preset.draw(rng, running=warm)  # warm: the running population (see draw)
        lo, hi = self.spec.estimate_factor
        params = float(np.exp(rng.uniform(np.log(0.025), np.log(0.35))))  # ResNet- to BERT-large-sized
        job = JobSpec(
            id=self.next_id,
            kind="research",
            gpus=gpus,
            arrival_s=now,
            duration_s=duration,
            estimate_s=duration * float(rng.uniform(lo, hi)),
            params_b=params,
            read_mbs_per_gpu=20.0,
            checkpoint_s=1800.0,
            serve_mbs_per_gpu=0.0,
            warm_progress_s=float(rng.uniform(0.0, 1.0)) * duration if warm else 0.0,
            outcome=outcome,
        )
        self.next_id += 1
        return job

    def _gpus(self, cls: JobClass) -> int:
        """Log-uniform over the powers of two in range; multi-node sizes rounded to whole nodes."""
        lo, hi = cls.gpus
        choices = [g for g in (2**i for i in range(0, 20)) if lo <= g <= hi] or [lo]
        g = int(choices[int(self.rng.integers(len(choices)))])
        gpn = self.gpus_per_node
        if g > gpn:
            g = -(-g // gpn) * gpn
        return min(g, self.total_gpus - self.total_gpus % gpn if g > gpn else g)
