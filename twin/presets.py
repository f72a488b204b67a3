"""Workload presets calibrated on SenseTime's Helios GPU datacenter (2020).

The figures are the GPU-job statistics of the four Helios clusters over April-September 2020 (183 days),
from ``helios_cluster_summary.csv`` in the public HeliosArtifact (SC'21, MIT licence). From them a preset
builds three distributions, each fitted by a few lines of arithmetic so that its summary matches the
table:

- GPUs per job: 1 GPU with probability ``P_ONE``, else a power of two from 2 up to 2,048 (or the
  cluster) with geometric weights whose ratio is solved so that the mean matches ``mean_gpus``.
- Run time: a mixture of short jobs (debug runs, quick failures: log-normal around a quarter of the
  median) and long ones (log-normal, sigma 1); the long share and median are solved so that the
  mixture's median and mean match the table. A single log-normal would need sigma ~2.5 to get Earth's
  mean/median ratio of 22, which makes a week's mean swing by 20% from seed to seed.
- Outcome: completed, cancelled or failed at the table's GPU-job rates, independent of size and length
  (the table does not say how they correlate).

Arrivals follow jobs per day with a daily rhythm (busier in the afternoon) when the scenario asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

P_ONE = 0.6  # share of single-GPU jobs (the table gives a median of 1 GPU, not the share)
SHORT_SIGMA, LONG_SIGMA = 1.2, 1.0
SHORT_MEDIAN_SHARE = 0.25  # short jobs' median as a share of the overall median
MAX_JOB_GPUS = 2048
OUTCOMES = ("completed", "cancelled", "failed")
DAYS = 183  # April to September 2020


@dataclass(frozen=True)
class HeliosCluster:
    """One row of the Helios summary, GPU jobs only."""

    name: str
    gpus: int
    gpu_jobs: int
    mean_runtime_s: float
    median_runtime_s: float
    mean_gpus: float
    complete_rate: float
    cancel_rate: float
    fail_rate: float

    @property
    def jobs_per_hour(self) -> float:
        return self.gpu_jobs / (DAYS * 24.0)

    def targets(self) -> dict[str, float]:
        """The table's figures, named as the report's ``workload`` block names them."""
        return {
            "mean_gpus_per_job": self.mean_gpus,
            "median_gpu_job_runtime_s": self.median_runtime_s,
            "mean_gpu_job_runtime_s": self.mean_runtime_s,
            "complete_rate": self.complete_rate,
            "cancel_rate": self.cancel_rate,
            "fail_rate": self.fail_rate,
        }


# id, gpu_num, gpu_job_num, avg_run_time_gpu, med_run_time_gpu, avg_gpu_num, {complete,cancel,fail}_rate_gpu
HELIOS = {
    "venus": HeliosCluster("Venus", 1022, 125303, 13040.598, 204.0, 6.736, 0.526, 0.272, 0.202),
    "earth": HeliosCluster("Earth", 997, 427148, 5130.609, 234.0, 2.101, 0.735, 0.136, 0.129),
    "saturn": HeliosCluster("Saturn", 2080, 698896, 5252.927, 124.0, 4.010, 0.582, 0.272, 0.145),
    "uranus": HeliosCluster("Uranus", 2119, 329117, 9163.725, 280.0, 4.038, 0.607, 0.201, 0.192),
}
PRESETS = tuple(f"helios-{name}" for name in HELIOS)


def cluster_of(preset: str) -> HeliosCluster:
    return HELIOS[preset.removeprefix("helios-")]


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _bisect(f, lo: float, hi: float, iterations: int = 200) -> float:
    """Root of an increasing function f on [lo, hi]."""
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def size_distribution(mean_gpus: float, max_gpus: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes (1, 2, 4, ...) and their probabilities, with mean ``mean_gpus`` (as near as the cap allows)."""
    top = min(MAX_JOB_GPUS, max_gpus)
    sizes = np.array([2**k for k in range(int(math.log2(top)) + 1)], float)
    tail = sizes[1:]
    if len(tail) == 0:
        return sizes, np.ones(1)
    ks = np.arange(1, len(sizes), dtype=float)

    def probs(ratio: float) -> np.ndarray:
        w = ratio**ks
        return np.concatenate(([P_ONE], (1 - P_ONE) * w / w.sum()))

    target = min(mean_gpus, float(tail.max()) * 0.999)
    ratio = _bisect(lambda r: float(probs(r) @ sizes) - target, 1e-6, 4.0)
    return sizes, probs(ratio)


@dataclass(frozen=True)
class RuntimeMixture:
    short_median_s: float
    long_median_s: float
    long_share: float

    def median_mean(self) -> tuple[float, float]:
        """The mixture's median (by bisection on its CDF) and mean, for checking the fit."""
        p = self.long_share

        def cdf(x: float) -> float:
            s = _normal_cdf(math.log(x / self.short_median_s) / SHORT_SIGMA)
            return (1 - p) * s + p * _normal_cdf(math.log(x / self.long_median_s) / LONG_SIGMA)

        median = math.exp(_bisect(lambda lx: cdf(math.exp(lx)) - 0.5, -5.0, 20.0))
        mean = (1 - p) * self.short_median_s * math.exp(SHORT_SIGMA**2 / 2) + p * self.long_median_s * math.exp(
            LONG_SIGMA**2 / 2
        )
        return median, mean

    def draw(self, rng: np.random.Generator) -> float:
        long = rng.random() < self.long_share
        median, sigma = (self.long_median_s, LONG_SIGMA) if long else (self.short_median_s, SHORT_SIGMA)
        return float(median * math.exp(sigma * rng.standard_normal()))


def runtime_mixture(median_s: float, mean_s: float) -> RuntimeMixture:
    """The short/long mixture whose median and mean are the given ones."""
    short = SHORT_MEDIAN_SHARE * median_s
    short_mean = short * math.exp(SHORT_SIGMA**2 / 2)

    def fitted(p: float) -> RuntimeMixture:
        long_median = (mean_s - (1 - p) * short_mean) / (p * math.exp(LONG_SIGMA**2 / 2))
        return RuntimeMixture(short, max(long_median, short), p)

    def excess(p: float) -> float:  # CDF at the target median minus one half: falls as p grows
        m = fitted(p)
        below_short = _normal_cdf(math.log(median_s / m.short_median_s) / SHORT_SIGMA)
        below_long = _normal_cdf(math.log(median_s / m.long_median_s) / LONG_SIGMA)
        return 0.5 - ((1 - p) * below_short + p * below_long)

    return fitted(_bisect(excess, 1e-4, 0.9999))


def rhythm(t_s: float, amplitude: float) -> float:
    """Arrival-rate multiplier at simulated time t (t = 0 is midnight): a day's sine peaking at 15:00."""
    return 1.0 + amplitude * math.sin(2 * math.pi * (t_s / 86400.0 - 0.375))


class PresetSampler:
    """Draws GPU count, run time and outcome of Helios-like jobs."""

    def __init__(self, preset: str, max_gpus: int) -> None:
        self.cluster = cluster_of(preset)
        c = self.cluster
        self.sizes, self.size_p = size_distribution(c.mean_gpus, max_gpus)
        self.runtime = runtime_mixture(c.median_runtime_s, c.mean_runtime_s)
        rates = np.array([c.complete_rate, c.cancel_rate, c.fail_rate])
        self.outcome_p = rates / rates.sum()

    def gpus(self, rng: np.random.Generator) -> int:
        return int(self.sizes[int(rng.choice(len(self.sizes), p=self.size_p))])

    def duration(self, rng: np.random.Generator) -> float:
        return max(1.0, self.runtime.draw(rng))

    def outcome(self, rng: np.random.Generator) -> str:
        return OUTCOMES[int(rng.choice(3, p=self.outcome_p))]
