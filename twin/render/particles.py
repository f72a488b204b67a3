"""Traffic as particles moving along links: count follows load, speed follows utilisation, colour the
mix of traffic kinds. Vectorised: a particle is segment phase + k / n, so nothing is kept per particle
and the whole field is a few numpy operations per frame."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SPACING_PX = 16.0  # particle spacing on a fully loaded link
MAX_PER_SEGMENT = 400


class ParticleField:
    def __init__(self, n_segments: int) -> None:
        self.phase = np.zeros((2, n_segments))  # forward, backward

    def step(self, dt: float, speed_px: np.ndarray, length_px: np.ndarray) -> None:
        """Move every segment's particles on by ``dt`` wall seconds."""
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(length_px > 0, speed_px / length_px, 0.0)
        self.phase = (self.phase + rate * dt) % 1.0


def counts(util: np.ndarray, length_px: np.ndarray) -> np.ndarray:
    """Particles per segment direction: a loaded link is dotted every SPACING_PX pixels, a light one
    sparsely (square root, so that light traffic still shows)."""
    n = np.sqrt(np.clip(util, 0, 1)) * length_px / SPACING_PX
    n = np.where(util > 1e-4, np.maximum(n, 1.0), 0.0)
    return np.minimum(np.round(n), MAX_PER_SEGMENT).astype(np.int64)


def speeds(util: np.ndarray, scale: float) -> np.ndarray:
    """Pixels per wall second: busier links move faster."""
    return scale * (45.0 + 140.0 * np.sqrt(np.clip(util, 0, 1)))


def positions(
    a: np.ndarray,
    b: np.ndarray,
    phase: np.ndarray,
    n: np.ndarray,
    mix: np.ndarray,
    offset_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Screen positions (P, 2) and traffic kinds (P,) of the particles going from a to b.

    ``mix`` is (S, kinds) shares of the traffic; particle k of n on a segment takes the kind whose
    cumulative share first exceeds (k + 0.5) / n, so colours follow the mix; a segment whose traffic is
    of no known kind (measured, not simulated) gives kind ``kinds``. ``offset_px`` shifts the
    lane sideways so that the two directions of a link run side by side.
    """
    busy = np.flatnonzero(n)
    if len(busy) == 0:
        return np.zeros((0, 2)), np.zeros(0, np.int64)
    a, b, phase, n, mix = a[busy], b[busy], phase[busy], n[busy], mix[busy]
    seg = np.repeat(np.arange(len(n)), n)
    starts = np.cumsum(n) - n
    k = np.arange(len(seg)) - starts[seg]
    nn = n[seg]
    t = (phase[seg] + k / nn) % 1.0
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    length[length == 0] = 1.0
    lane = np.column_stack([-d[:, 1], d[:, 0]]) * (offset_px / length)[:, None]  # per segment, then repeated
    xy = (a + lane)[seg] + d[seg] * t[:, None]
    cum = np.cumsum(mix, axis=1)
    total = cum[:, -1:]
    unknown = total[:, 0] == 0  # measured traffic of no known kind (live data): the extra colour
    total[unknown] = 1.0
    cum = cum / total
    q = (k + 0.5) / nn
    kind = np.minimum((cum[seg] < q[:, None]).sum(axis=1), mix.shape[1] - 1)
    return xy, np.where(unknown[seg], mix.shape[1], kind)


class Plan(NamedTuple):
    """What stays of a particle field's picture from frame to frame (only the phases move): each
    particle's segment row, its place along the segment at phase 0, its lane start and run, its kind."""

    row: np.ndarray
    frac: np.ndarray
    base: np.ndarray
    run: np.ndarray
    kind: np.ndarray


def plan(a: np.ndarray, b: np.ndarray, n: np.ndarray, mix: np.ndarray, offset_px: float) -> Plan:
    """``positions`` split into what changes only with the loads, mixes and camera (this), and what
    changes every frame (``place``)."""
    busy = np.flatnonzero(n)
    if len(busy) == 0:
        empty = np.zeros(0, np.int64)
        return Plan(empty, np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2)), empty)
    xy0, kind = positions(a, b, np.zeros(len(n)), n, mix, offset_px)
    seg = np.repeat(busy, n[busy])
    starts = np.cumsum(n[busy]) - n[busy]
    k = np.arange(len(seg)) - np.repeat(starts, n[busy])
    frac = k / n[seg]
    run = (b - a)[seg]
    return Plan(seg, frac, xy0 - run * frac[:, None], run, kind)


def place(p: Plan, phase: np.ndarray) -> np.ndarray:
    """Screen positions (P, 2) of a plan's particles at the segments' phases now."""
    t = (phase[p.row] + p.frac) % 1.0
    return p.base + p.run * t[:, None]


def covered(mask: np.ndarray, xy: np.ndarray, viewport: tuple[int, int, int, int]) -> np.ndarray:
    """Which screen positions fall where ``mask`` (width, height) over the viewport is set; those off
    the viewport are not covered."""
    vx, vy, vw, vh = viewport
    x = np.round(xy[:, 0]).astype(np.int64) - vx
    y = np.round(xy[:, 1]).astype(np.int64) - vy
    inside = (x >= 0) & (x < vw) & (y >= 0) & (y < vh)
    hit = np.zeros(len(xy), bool)
    hit[inside] = mask[x[inside], y[inside]]
    return hit


def stamp(pixels: np.ndarray, xy: np.ndarray, colors: np.ndarray, radius: int, clip: tuple[int, int, int, int]) -> None:
    """Write square dots (corners rounded from radius 2) into a pixels2d array (indexed [x, y]) inside the
    clip rectangle. Dots whose centre lies within ``radius`` of the clip's edge are left out, so that each
    offset of the dot is one scatter into the flat pixel buffer, unchecked."""
    if len(xy) == 0:
        return
    cx, cy, cw, ch = clip
    w, h = pixels.shape
    x0, y0, x1, y1 = max(cx, 0) + radius, max(cy, 0) + radius, min(cx + cw, w) - radius, min(cy + ch, h) - radius
    x = np.round(xy[:, 0]).astype(np.int64)
    y = np.round(xy[:, 1]).astype(np.int64)
    ok = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    if not ok.all():
        x, y, colors = x[ok], y[ok], colors[ok]
    if len(x) == 0:
        return
    size = pixels.itemsize
    sx, sy = pixels.strides[0] // size, pixels.strides[1] // size
    flat = np.lib.stride_tricks.as_strided(pixels, shape=((w - 1) * sx + (h - 1) * sy + 1,), strides=(size,))
    at = x * sx + y * sy
    colors = colors.astype(pixels.dtype, copy=False)
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            if radius > 1 and abs(dx) == radius and abs(dy) == radius:
                continue  # round the corners of bigger dots
            flat[at + (dx * sx + dy * sy)] = colors
