"""The step rhythm of training jobs: each step computes, then communicates (all-reduce), so the traffic of
a job comes in bursts, one per step. The view shows it by brightening a job's particles during the
communication part of each step and dimming them during the compute part.

Honest and calm: the brightness averaged over a step is the same whether the pulse shows or not (a
job's rhythmic traffic is drawn at ``mean_level`` when steady), and the pulse fades out to that steady
level when a step passes in too few frames to be drawn without aliasing (high simulation speeds).
All pure functions of numpy arrays, per job or per link: nothing per particle.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MEAN = 0.6  # a rhythmic job's particle brightness averaged over a step (or more, if it mostly talks)
EDGE = 0.12  # width of the soft edges of the communication window, as a share of the step
FADE_FRAMES = (2.0, 6.0)  # the shorter part of a step lasting this many frames: no pulse .. full pulse
STEP_ENTRIES = 100_000  # flow entries per slice when finding each link's main job


def pulse_amplitude(step_s, comm_share, sim_s_per_frame: float):
    """How much of the pulse to show (0..1): all of it when the shorter part of a step (communication or
    compute) lasts FADE_FRAMES[1] frames or more, none below FADE_FRAMES[0] (it would alias into a
    flicker), a smooth fade between. No rhythm (``step_s`` 0, or nothing or everything communicated):
    0. A paused clock (0 simulated seconds per frame) shows the pulse, frozen."""
    step = np.asarray(step_s, float)
    share = np.asarray(comm_share, float)
    has = (step > 0) & (share > 0) & (share < 1)
    if sim_s_per_frame <= 0:
        return np.where(has, 1.0, 0.0)
    frames = step * np.minimum(share, 1 - share) / sim_s_per_frame
    lo, hi = FADE_FRAMES
    x = np.clip((frames - lo) / (hi - lo), 0.0, 1.0)
    return np.where(has, x * x * (3 - 2 * x), 0.0)


def comm_window(phase, comm_share, edge: float = EDGE):
    """1 during the communication part of a step (phase 0 to ``comm_share``), 0 during compute, with
    linear edges ``edge`` wide centred on the boundaries (narrowed to fit short parts), so that its mean
    over a step is exactly ``comm_share``."""
    share = np.asarray(comm_share, float)
    e = np.maximum(np.minimum(edge, np.minimum(share, 1 - share)), 1e-9)
    q = (np.asarray(phase, float) + 0.5 - share / 2) % 1.0 - 0.5  # from the window's middle
    return np.clip((share / 2 - np.abs(q)) / e + 0.5, 0.0, 1.0)


def dim_level(comm_share):
    """Brightness during the compute part of a step, at full pulse (1 during communication): as dim as
    keeps the step's mean at MEAN."""
    share = np.asarray(comm_share, float)
    return np.clip((MEAN - share) / np.maximum(1 - share, 1e-9), 0.0, 1.0)


def mean_level(comm_share):
    """A rhythmic job's brightness averaged over a step, which it keeps when the pulse does not show."""
    share = np.asarray(comm_share, float)
    return share + (1 - share) * dim_level(share)


def job_levels(time_s: float, step_s, comm_share, offset, amplitude):
    """Each job's particle brightness now (0..1): the mean level, plus ``amplitude`` of the swing between
    the dim level (compute) and 1 (communication). ``offset`` (0..1) sets where in its step each job is
    at time 0."""
    step = np.asarray(step_s, float)
    phase = np.where(step > 0, time_s / np.where(step > 0, step, 1.0) + np.asarray(offset, float), 0.0) % 1.0
    dim = dim_level(comm_share)
    full = dim + (1 - dim) * comm_window(phase, comm_share)
    mean = mean_level(comm_share)
    return mean + np.asarray(amplitude, float) * (full - mean)


def step_offset(step_phase: float, time_s: float, step_s: float, comm_share: float) -> float:
    """The ``offset`` of ``job_levels`` for a job that is ``step_phase`` (0..1) into its step at ``time_s``:
    its steps compute first and communicate for their last ``comm_share``, which ``job_levels`` puts at
    phase 0."""
    return (step_phase - (1.0 - comm_share) - time_s / step_s) % 1.0


def link_main_job(
    flows: dict[str, np.ndarray], flow_job: np.ndarray, n_links: int, out: dict[str, np.ndarray]
) -> Iterator[None]:
    """Each link's main rhythmic job and that job's share of the link's load, a slice at a time, into
    ``out`` ("job": index into the rhythmic jobs or -1, "share"). ``flow_job`` gives each flow's
    rhythmic job index (-1: none). The main job is the one of the link's largest rhythmic entry."""
    total = len(flows.get("entry_link", ()))
    load = np.zeros(n_links)
    best = np.zeros(n_links)
    for lo in range(0, total, STEP_ENTRIES):
        flow = flows["entry_flow"][lo : lo + STEP_ENTRIES]
        link = flows["entry_link"][lo : lo + STEP_ENTRIES]
        w = flows["entry_frac"][lo : lo + STEP_ENTRIES] * flows["rate"][flow]
        np.add.at(load, link, w)
        mine = flow_job[flow] >= 0
        np.maximum.at(best, link[mine], w[mine])
        yield
    job = np.full(n_links, -1, np.int64)
    for lo in range(0, total, STEP_ENTRIES):
        flow = flows["entry_flow"][lo : lo + STEP_ENTRIES]
        link = flows["entry_link"][lo : lo + STEP_ENTRIES]
        w = flows["entry_frac"][lo : lo + STEP_ENTRIES] * flows["rate"][flow]
        top = (flow_job[flow] >= 0) & (w > 0) & (w >= best[link])
        job[link[top]] = flow_job[flow[top]]
        yield
    main = np.zeros(n_links)
    for lo in range(0, total, STEP_ENTRIES):
        flow = flows["entry_flow"][lo : lo + STEP_ENTRIES]
        link = flows["entry_link"][lo : lo + STEP_ENTRIES]
        w = flows["entry_frac"][lo : lo + STEP_ENTRIES] * flows["rate"][flow]
        same = (flow_job[flow] >= 0) & (flow_job[flow] == job[link])
        np.add.at(main, link[same], w[same])
        yield
    out["job"] = job
    out["share"] = np.divide(main, load, out=np.zeros(n_links), where=load > 0)
    out["load"] = main


def segment_levels(levels: np.ndarray, job: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Particle brightness of segments now: their main job's level for that job's share of the traffic,
    full brightness for the rest."""
    own = np.where(job >= 0, levels[np.maximum(job, 0)] if len(levels) else 1.0, 1.0)
    return 1.0 + share * (own - 1.0)
