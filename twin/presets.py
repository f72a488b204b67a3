"""Workload presets calibrated on SenseTime's Helios GPU datacenter (2020).

The figures are the GPU-job statistics of the four Helios clusters over April-September 2020 (183 days),
from ``helios_cluster_summary.csv`` in the public HeliosArtifact (SC'21, MIT licence). A preset draws a
job's size, run time and outcome *jointly* from a model fitted by a few lines of arithmetic so that its
expectations are the table's (computed exactly, see :class:`JobModel`):

- GPUs per job: 1 GPU with probability ``P_ONE``, else a power of two from 2 up to ``MAX_JOB_GPUS`` (or
  the site) with geometric weights whose ratio is solved so that the mean matches ``mean_gpus``.
- Run time: a mixture of short jobs (debug runs, quick failures: log-normal around a quarter of the
  median) and long ones (log-normal). Which component a job is in, and how long a long job runs,
  depend on its size and outcome: multi-GPU jobs are more often long runs, a long run's median grows
  as GPUs^beta, and each outcome scales it (cancelled runs are the long ones users give up on, failed
  runs end early). One dependence knob is solved so that GPU time per job matches the table's
  GPU-time columns (Earth: 26,782 GPU-seconds, 2.5 times mean size x mean run time: big jobs run
  longer); the outcome scales so that the GPU-time shares of completed, cancelled and failed jobs
  match; the single-GPU long share and the long median so that the run time's median and mean match.
- Outcome: completed, cancelled or failed at the table's GPU-job rates.

Arrivals follow jobs per day with a daily rhythm (busier in the afternoon) when the scenario asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

P_ONE = 0.6  # share of single-GPU jobs (the table gives a median of 1 GPU, not the share)
MAX_JOB_GPUS = 128  # jobs run inside a virtual cluster: tens to a few hundred GPUs in Helios
SHORT_SIGMA, LONG_SIGMA = 1.2, 0.6
SHORT_MEDIAN_SHARE = 0.25  # short jobs' median as a share of the overall median
MULTI_LONG_SHARE = 0.9  # at full dependence, the share of multi-GPU jobs that are long runs
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
    complete_gpu_time_s: float  # GPU-seconds used by completed jobs over the trace
    cancel_gpu_time_s: float
    fail_gpu_time_s: float

    @property
    def jobs_per_hour(self) -> float:
        return self.gpu_jobs / (DAYS * 24.0)

    @property
    def gpu_time_per_job_s(self) -> float:
        return (self.complete_gpu_time_s + self.cancel_gpu_time_s + self.fail_gpu_time_s) / self.gpu_jobs

    @property
    def gpu_time_shares(self) -> np.ndarray:
        """GPU time of completed, cancelled and failed jobs as shares of all GPU jobs' GPU time."""
        t = np.array([self.complete_gpu_time_s, self.cancel_gpu_time_s, self.fail_gpu_time_s])
        return t / t.sum()

    @property
    def rates(self) -> np.ndarray:
        r = np.array([self.complete_rate, self.cancel_rate, self.fail_rate])
        return r / r.sum()

    @property
    def load(self) -> float:
        """Share of the GPUs busy on average, by Little's law: arrival rate x GPU time per job / GPUs."""
        return self.jobs_per_hour / 3600.0 * self.gpu_time_per_job_s / self.gpus

    def targets(self) -> dict[str, float]:
        """The table's figures, named as the report's ``workload`` block names them."""
        complete, cancel, fail = self.gpu_time_shares.tolist()
        return {
            "mean_gpus_per_job": self.mean_gpus,
            "median_gpu_job_runtime_s": self.median_runtime_s,
            "mean_gpu_job_runtime_s": self.mean_runtime_s,
            "complete_rate": self.complete_rate,
            "cancel_rate": self.cancel_rate,
            "fail_rate": self.fail_rate,
            "gpu_time_per_job_s": self.gpu_time_per_job_s,
            "complete_gpu_time_share": complete,
            "cancel_gpu_time_share": cancel,
            "fail_gpu_time_share": fail,
        }


# id, gpu_num, gpu_job_num, avg_run_time_gpu, med_run_time_gpu, avg_gpu_num, {complete,cancel,fail}_rate_gpu,
# {complete,cancel,fail}_gpu_time
HELIOS = {
    "venus": HeliosCluster(
        "Venus", 1022, 125303, 13040.598, 204.0, 6.736, 0.526, 0.272, 0.202, 6373315670.0, 4920266598.0, 1052030340.0
    ),
    "earth": HeliosCluster(
        "Earth", 997, 427148, 5130.609, 234.0, 2.101, 0.735, 0.136, 0.129, 5713038873.0, 4793853520.0, 932310362.0
    ),
    "saturn": HeliosCluster(
        "Saturn", 2080, 698896, 5252.927, 124.0, 4.010, 0.582, 0.272, 0.145, 14375709962.0, 10733792235.0, 2542859066.0
    ),
    "uranus": HeliosCluster(
        "Uranus", 2119, 329117, 9163.725, 280.0, 4.038, 0.607, 0.201, 0.192, 13532231815.0, 10267196772.0, 2761134934.0
    ),
}
PRESETS = tuple(f"helios-{name}" for name in HELIOS)


def cluster_of(preset: str) -> HeliosCluster:
    return HELIOS[preset.removeprefix("helios-")]


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


_erf = np.frompyfunc(math.erf, 1, 1)


def _normal_cdfs(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


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
class JobModel:
    """Size, run time and outcome drawn jointly; every expectation in closed form.

    A job has size ``sizes[i]`` with probability ``size_p[i]`` and outcome ``o`` with ``outcome_p[o]``
    (independent); it is a long run with probability ``long_p[i]``, then log-normal (``LONG_SIGMA``)
    around ``long_median_s[i, o]``, else short: log-normal (``SHORT_SIGMA``) around ``short_median_s``.
    """

    sizes: np.ndarray
    size_p: np.ndarray
    outcome_p: np.ndarray
    long_p: np.ndarray  # per size
    long_median_s: np.ndarray  # [size, outcome]
    short_median_s: float

    def _long_weights(self) -> np.ndarray:
        """Probability of each (size, outcome) long class."""
        return np.outer(self.size_p * self.long_p, self.outcome_p)

    @property
    def short_share(self) -> float:
        return float(self.size_p @ (1 - self.long_p))

    def cdf(self, x: float) -> float:
        """P(run time <= x)."""
        short = _normal_cdf(math.log(x / self.short_median_s) / SHORT_SIGMA)
        long = _normal_cdfs(np.log(x / self.long_median_s) / LONG_SIGMA)
        return self.short_share * short + float((self._long_weights() * long).sum())

    def median_s(self) -> float:
        return math.exp(_bisect(lambda lx: self.cdf(math.exp(lx)) - 0.5, -5.0, 25.0, 100))

    def mean_s(self) -> float:
        short = self.short_share * self.short_median_s * math.exp(SHORT_SIGMA**2 / 2)
        return short + float((self._long_weights() * self.long_median_s).sum()) * math.exp(LONG_SIGMA**2 / 2)

    def mean_gpus(self) -> float:
        return float(self.size_p @ self.sizes)

    def gpu_time_by_outcome_s(self) -> np.ndarray:
        """Expected GPU-seconds per job, split by how the job ends (sums to GPU time per job)."""
        short_mean = self.short_median_s * math.exp(SHORT_SIGMA**2 / 2)
        short = float(self.size_p * (1 - self.long_p) @ self.sizes) * short_mean * self.outcome_p
        long_mean = self.long_median_s * math.exp(LONG_SIGMA**2 / 2)
        return short + (self._long_weights() * long_mean * self.sizes[:, None]).sum(axis=0)

    def gpu_time_per_job_s(self) -> float:
        return float(self.gpu_time_by_outcome_s().sum())

    def gpu_time_shares(self) -> np.ndarray:
        t = self.gpu_time_by_outcome_s()
        return t / t.sum()

    def draw(self, rng: np.random.Generator, running: bool = False) -> tuple[int, float, str]:
        """A job's GPUs, run time and outcome. ``running``: a job found running at a random instant
        instead, which is length-biased: classes weigh by their mean run time, and a log-normal's
        length-biased form has its median times exp(sigma^2)."""
        short_mean = self.short_median_s * math.exp(SHORT_SIGMA**2 / 2)
        long_w = self._long_weights()
        short_w = self.size_p * (1 - self.long_p)
        if running:
            long_w = long_w * self.long_median_s * math.exp(LONG_SIGMA**2 / 2)
            short_w = short_w * short_mean
        total = long_w.sum() + short_w.sum()
        if rng.random() * total < long_w.sum():
            flat = long_w.ravel() / long_w.sum()
            i, o = divmod(int(rng.choice(len(flat), p=flat)), len(self.outcome_p))
            median, sigma = float(self.long_median_s[i, o]), LONG_SIGMA
        else:
            i = int(rng.choice(len(short_w), p=short_w / short_w.sum()))
            o = int(rng.choice(len(self.outcome_p), p=self.outcome_p))
            median, sigma = self.short_median_s, SHORT_SIGMA
        shift = sigma**2 if running else 0.0
        duration = median * math.exp(shift + sigma * float(rng.standard_normal()))
        return int(self.sizes[i]), max(1.0, duration), OUTCOMES[o]


def _model(c: HeliosCluster, sizes: np.ndarray, size_p: np.ndarray, knob: float, p_single: float) -> JobModel:
    """The model at a dependence ``knob`` and single-GPU long share; the long median and the outcome
    scales follow in closed form from the mean run time and the GPU-time shares.

    knob in [0, 1] moves multi-GPU jobs' long share from ``p_single`` (independence) to
    ``MULTI_LONG_SHARE``; beyond 1, long runs' median grows as GPUs^(knob - 1)."""
    multi = p_single + min(knob, 1.0) * (MULTI_LONG_SHARE - p_single)
    long_p = np.where(sizes == 1, p_single, multi)
    beta = max(knob - 1.0, 0.0)
    short_median = SHORT_MEDIAN_SHARE * c.median_runtime_s
    short_mean = short_median * math.exp(SHORT_SIGMA**2 / 2)
    k = math.exp(LONG_SIGMA**2 / 2)
    # Mean run time: short part + k * median * E[long * size^beta] (the outcome scales average to 1).
    median = (c.mean_runtime_s - short_mean * float(size_p @ (1 - long_p))) / (
        k * float(size_p @ (long_p * sizes**beta))
    )
    # GPU time: short part a (outcome-independent) and long part b (scaled per outcome by f).
    r, shares = c.rates, c.gpu_time_shares
    a = short_mean * float(size_p @ ((1 - long_p) * sizes))
    b = k * median * float(size_p @ (long_p * sizes ** (1 + beta)))
    scale = (shares * (a + b) - r * a) / (r * b)
    long_median = median * np.outer(sizes**beta, scale)
    return JobModel(sizes, size_p, r, long_p, long_median, short_median)


@lru_cache(maxsize=32)
def fit_jobs(preset: str, max_gpus: int) -> JobModel:
    """The joint model of a preset's jobs on a site of ``max_gpus`` GPUs (sizes are capped by the site)."""
    c = cluster_of(preset)
    sizes, size_p = size_distribution(c.mean_gpus, max_gpus)

    def at(knob: float) -> JobModel:  # the single-GPU long share that puts the median on the table's
        p = _bisect(lambda p: 0.5 - _model(c, sizes, size_p, knob, p).cdf(c.median_runtime_s), 1e-6, 0.999, 60)
        return _model(c, sizes, size_p, knob, p)

    knob = _bisect(lambda k: at(k).gpu_time_per_job_s() - c.gpu_time_per_job_s, 0.0, 4.0, 60)
    return at(knob)


def rhythm(t_s: float, amplitude: float) -> float:
    """Arrival-rate multiplier at simulated time t (t = 0 is midnight): a day's sine peaking at 15:00."""
    return 1.0 + amplitude * math.sin(2 * math.pi * (t_s / 86400.0 - 0.375))


class PresetSampler:
    """Draws Helios-like jobs: GPU count, run time and outcome together (:meth:`draw`)."""

    def __init__(self, preset: str, max_gpus: int) -> None:
        self.cluster = cluster_of(preset)
        self.model = fit_jobs(preset, int(max_gpus))

    def draw(self, rng: np.random.Generator, running: bool = False) -> tuple[int, float, str]:
        return self.model.draw(rng, running)

    # One field at a time (marginals, each from a whole draw), for traces that need only one.
    def gpus(self, rng: np.random.Generator) -> int:
        return self.draw(rng)[0]

    def duration(self, rng: np.random.Generator) -> float:
        return self.draw(rng)[1]

    def outcome(self, rng: np.random.Generator) -> str:
        return self.draw(rng)[2]
