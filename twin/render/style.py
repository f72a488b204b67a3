"""State into style: pure functions from simulation arrays to colours, widths and particle counts.

Nothing here draws; the scene feeds these arrays to pygame. Keeping them pure makes the picture
testable: a busy node's colour is ``job_colors([job])`` and nothing else.
"""

from __future__ import annotations

import numpy as np

from twin.render import theme
from twin.render.layout import Segments

GOLDEN_ANGLE = 0.38196601125  # of a turn: successive job ids get well-separated hues


def job_colors(job_ids: np.ndarray) -> np.ndarray:
    """A stable, distinct colour per job id, (N, 3) uint8. Saturated enough to read from afar."""
    ids = np.asarray(job_ids, np.int64)
    h = (ids * GOLDEN_ANGLE + 0.58) % 1.0
    s = 0.55 + 0.2 * ((ids * 7) % 3) / 2
    v = 0.80 + 0.15 * ((ids * 5) % 2)
    return _hsv_to_rgb(h, s, v)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return (np.stack([r, g, b], -1) * 255).round().astype(np.uint8)


def node_colors(
    node_job: np.ndarray, node_util: np.ndarray, flash: np.ndarray | None = None, no_data: np.ndarray | None = None
) -> np.ndarray:
    """Server cell colours: idle servers dim, busy ones in their job's colour, brighter when working
    hard; ``flash`` (0..1) blends towards white for servers that just got a job; servers with ``no_data``
    are grey, so missing data never reads as an idle server."""
    out = np.empty((len(node_job), 3), np.float64)
    busy = node_job >= 0
    out[~busy] = theme.NODE_IDLE
    if busy.any():
        base = job_colors(node_job[busy]).astype(float)
        shade = 0.55 + 0.45 * np.clip(node_util[busy], 0, 1)[:, None]
        out[busy] = base * shade + np.array(theme.NODE_IDLE) * (1 - shade)
    if flash is not None:
        f = np.clip(flash, 0, 1)[:, None]
        out = out * (1 - f) + 255.0 * f
    if no_data is not None and len(no_data) == len(out):
        out[no_data] = theme.NO_DATA
    return out.round().astype(np.uint8)


def segment_loads(seg: Segments, link_load: np.ndarray, link_cap: np.ndarray) -> dict[str, np.ndarray]:
    """Per segment and direction: load (bytes/s), utilisation (load over capacity) and the hottest
    member link's utilisation (a bundle can hide one saturated cable in an average)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        member_util = np.where(link_cap > 0, link_load / link_cap, 0.0)
    out = {}
    for name, ptr, members in (("fwd", seg.fwd_ptr, seg.fwd), ("rev", seg.rev_ptr, seg.rev)):
        load = sum_runs(link_load[members], ptr)
        cap = sum_runs(link_cap[members], ptr)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{name}_util"] = np.where(cap > 0, load / cap, 0.0)
        out[f"{name}_load"] = load
        out[f"{name}_peak"] = _max_runs(member_util[members], ptr)
    out["util"] = np.maximum(out["fwd_util"], out["rev_util"])
    out["peak"] = np.maximum(out["fwd_peak"], out["rev_peak"])
    return out


def sum_runs(values: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    csum = np.concatenate(([0.0], np.cumsum(values)))
    return csum[ptr[1:]] - csum[ptr[:-1]]


def _max_runs(values: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    out = np.zeros(len(ptr) - 1)
    nonempty = ptr[1:] > ptr[:-1]
    if nonempty.any() and len(values):
        out[nonempty] = np.maximum.reduceat(values, ptr[:-1][nonempty])
    return out


def link_colors(util: np.ndarray, peak: np.ndarray, pulse: float) -> np.ndarray:
    """Idle links dim; loaded ones glow accent blue, then amber; a saturated one pulses red."""
    u = np.clip(util, 0, 1)[:, None]
    idle, accent, warn, hot = (np.array(c, float) for c in (theme.LINK_IDLE, theme.ACCENT, theme.WARN, theme.HOT))
    low = idle + (accent - idle) * np.clip(u / 0.6, 0, 1)
    high = accent + (warn - accent) * np.clip((u - 0.6) / 0.35, 0, 1)
    out = np.where(u < 0.6, low, high)
    saturated = (peak >= 0.98)[:, None]
    out = np.where(saturated, warn + (hot - warn) * (0.5 + 0.5 * pulse), out)
    return out.round().astype(np.uint8)


def link_widths(util: np.ndarray, scale: float) -> np.ndarray:
    """Line width in pixels: thicker with load."""
    return np.maximum(1, np.round(scale * (1.0 + 3.0 * np.sqrt(np.clip(util, 0, 1))))).astype(int)


def kind_link_load(flows: dict[str, np.ndarray], n_links: int, n_kinds: int = 4) -> np.ndarray:
    """(kinds, links) bytes/s: how much of each kind of traffic every directed link carries."""
    if len(flows.get("entry_link", ())) == 0:
        return np.zeros((n_kinds, n_links))
    f = flows["entry_flow"]
    weight = flows["entry_frac"] * flows["rate"][f]
    key = flows["kind"][f].astype(np.int64) * n_links + flows["entry_link"]
    return np.bincount(key, weights=weight, minlength=n_kinds * n_links).reshape(n_kinds, n_links)


def dim_colors(base: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Colours (K, 3) at brightness levels (L,) 0..1, blended towards the background (0: invisible on
    it, 1: the colour itself): (K, L, 3) uint8."""
    bg = np.array(theme.BG, float)
    lv = np.clip(np.asarray(levels, float), 0, 1)[None, :, None]
    return (bg + (np.asarray(base, float)[:, None, :] - bg) * lv).round().astype(np.uint8)
