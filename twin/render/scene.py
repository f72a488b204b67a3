"""The site picture: switches, racks, server cells, links and the particles of traffic on them.

Drawn in three layers so that a frame costs little: a *static* layer (background, blocks, racks,
switch boxes, labels) redrawn only when the camera or the layout changes; a *live* layer (links in their
load colours, server cells in their job colours) redrawn when the simulation's snapshot changes, and
then only the cells whose colour changed; and the particles, written straight into the frame's pixels
every frame.

While the camera moves, a frame draws none of that: it scales the last picture into the view, and the
next picture is drawn behind it a slice per frame, for where the camera is heading, then taken over; the
particles keep a plan made for a nearby camera, moved with the picture. At rest the picture is redrawn
crisp.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, TypeVar

import numpy as np
import pygame

from twin.render import particles as pt
from twin.render import rhythm, style, theme
from twin.render.camera import Camera
from twin.render.layout import LAYOUTS, Layout
from twin.render.text import Text
from twin.snapshot import Snapshot
from twin.topology import CORE, GATEWAY, LEAF, NODE, SPINE, STORAGE, Fabric

FLASH_S = 0.9  # wall seconds a server glows after it gets a new job
GPU_DETAIL_PX = 56  # server cells at least this wide show their GPUs
HOST_DETAIL_PX = 26  # and at least this wide show their host links
SHIMMER_PX = 10  # and at least this wide shimmer with their host links' traffic (narrower: only noise)
GPU_LABEL_PX = 48  # GPUs at least this wide are numbered, and their server named
CHASSIS = 0.4  # a server's colour behind its GPUs, when they are drawn
MANY_CELLS = 1500  # more changed cells than this are written as one numpy assignment, not cell by cell
RESTYLE_S = 0.25  # wall seconds between restyles of the links
MIX_S = 1.0  # and between new mixes of traffic kinds (the particles' colours), which change slowly
MIX_ENTRIES_PER_S = 1_000_000  # flow entries a second of mixes may read: larger sites mix less often
MIX_STEP_ENTRIES = 100_000  # flow entries a frame adds to the next mix (it is made a slice per frame)
LEVELS = 12  # brightness levels of particles pulsing with their job's steps
HOT_MEMBER = 0.9  # a bundle's hottest member is found exactly from this utilisation up
WORK_BUDGET_S = 0.002  # wall seconds a frame gives to restyling links and mixing traffic kinds
BUILD_BUDGET_S = 0.002  # and to drawing the next live layer (restyled links) behind the one shown
SUM_STEP = 50_000  # bundle memberships (or single links) summed per slice of a restyle
LINE_STEP = 400  # links drawn per slice of the next live layer
CELL_STEP = 500  # server cells painted per slice (one by one; the whole site at once is one slice)
GPU_STEP = 40  # servers whose GPUs are drawn per slice
STATIC_STEP = 8  # blocks or switches drawn per slice of a static layer drawn behind the one shown
GLIDE_BUDGET_S = 0.003  # wall seconds a gliding frame gives to drawing the next picture it scales from
GLIDE_MARGIN = 1.15  # that picture is drawn this much zoomed out, so that it covers the view on the way
PLAN_BUDGET_S = 0.002  # and to making the next plan of the particles (in two to four frames on Lingang)
PLAN_STEP = 2000  # active segments planned per slice
GLIDE_COVER = 0.995  # the next picture is begun when the one scaled would soon cover less of the view
GLIDE_SOFT = 1.5  # or be magnified more than this
PLAN_NEAR = 1.25  # a moving camera has particles planned anew when zoomed or moved this much from their plan
CAMERAS_KEPT = 4  # per-camera caches keep the camera shown, the glide's picture's and the next picture's

T = TypeVar("T")


class PlanKey(NamedTuple):
    """What a plan of the particles was made for: it is made anew when any of these changes."""

    camera: Camera
    layout: str
    loads_version: int
    mix_version: int
    text_scale: float


def bundle_sums(bundles, values: np.ndarray, out: np.ndarray) -> Iterator[None]:
    """``bundles.sums(values)`` for 1-D values into ``out``, SUM_STEP memberships per slice: a running
    sum over the members in bundle order, carried from slice to slice, then differenced per run."""
    out[:] = 0.0
    single_row, single_link = bundles.single_row, bundles.single_link
    for lo in range(0, len(single_row), 4 * SUM_STEP):
        out[single_row[lo : lo + 4 * SUM_STEP]] = values[single_link[lo : lo + 4 * SUM_STEP]]
        yield
    order = bundles.order
    if not len(order):
        return
    csum = np.zeros(len(order) + 1)
    for lo in range(0, len(order), SUM_STEP):
        hi = min(lo + SUM_STEP, len(order))
        np.cumsum(values[order[lo:hi]], out=csum[lo + 1 : hi + 1])
        csum[lo + 1 : hi + 1] += csum[lo]
        yield
    run = csum[bundles.run_stop] - csum[bundles.run_start]
    yield
    out += np.bincount(bundles.run_row, weights=run, minlength=bundles.rows)


def fill_outside(surface: pygame.Surface, rect: pygame.Rect, color: tuple[int, int, int]) -> None:
    """Fill the parts of a surface around a rectangle (the rectangle itself is left alone)."""
    full = surface.get_rect()
    inner = rect.clip(full)
    for strip in (
        pygame.Rect(0, 0, full.w, inner.top),
        pygame.Rect(0, inner.bottom, full.w, full.h - inner.bottom),
        pygame.Rect(0, inner.top, inner.left, inner.h),
        pygame.Rect(inner.right, inner.top, full.w - inner.right, inner.h),
    ):
        if strip.w > 0 and strip.h > 0:
            surface.fill(color, strip)


def moved(xy: np.ndarray, move: tuple[float, tuple[float, float]]) -> np.ndarray:
    """Screen points (N, 2) scaled and offset: ``xy * scale + offset`` (as is, when that changes nothing)."""
    scale, offset = move
    if scale == 1.0 and offset == (0.0, 0.0):
        return xy
    return xy * scale + np.asarray(offset)


def map_colors(surface: pygame.Surface, rgb: np.ndarray) -> np.ndarray:
    """``surface.map_rgb`` of many opaque colours at once: (N, 3) uint8 to the surface's pixel values."""
    shifts, losses = surface.get_shifts(), surface.get_losses()
    c = rgb.astype(np.int64)
    out = (
        (c[:, 0] >> losses[0]) << shifts[0] | (c[:, 1] >> losses[1]) << shifts[1] | (c[:, 2] >> losses[2]) << shifts[2]
    )
    return out | surface.get_masks()[3]


class SiteView:
    def __init__(self, fabric: Fabric, text: Text, layout: str | Layout = "hall") -> None:
        """``layout``: a layout's name, or a layout already computed (the show computes the next scene's
        while the current one plays)."""
        self.fabric = fabric
        self.text = text
        self._layouts: dict[str, Layout] = {}
        if isinstance(layout, Layout):
            self._layouts[layout.name] = layout
            layout = layout.name
        self.layout = self._get_layout(layout)
        self.camera: Camera | None = None
        self.fitted = True
        self.snapshot: Snapshot | None = None
        n = fabric.n_nodes
        self.node_rgb = np.tile(np.array(theme.NODE_IDLE, np.uint8), (n, 1))
        self.flash_at = np.full(n, -1e9)
        self.wall = 0.0
        self.selected_job: int | None = None
        self.highlight: tuple[int, ...] = ()  # vertices outlined (the selected job's servers)
        self.highlight_segments = np.zeros(0, np.int64)  # segments its traffic runs on
        self._highlight_key: tuple | None = None
        self._dead_key: bytes | None = None
        self._dead_segments = np.zeros(0, np.int64)
        self._highlight_layer: pygame.Surface | None = None
        self._veil_surf: pygame.Surface | None = None
        self._live_cam: Camera | None = None  # the camera the live layer was last drawn with
        self._static: pygame.Surface | None = None  # kept and redrawn in place: new surfaces cost ~10 ms
        self._live: pygame.Surface | None = None
        self._static_ok = False
        self._live_ok = False
        self._moving = False  # the camera moved since the last frame: thousands of host links wait
        self._coarse = False  # the links on the live layer were drawn without them
        self._drawn_rgb: np.ndarray | None = None
        self._links_dirty = True
        self._loads_work: Iterator[None] | None = None  # the next restyle, being made a slice per frame
        self._build: Iterator[None] | None = None  # the next live layer, being drawn a slice per frame
        self._next_live: pygame.Surface | None = None
        self._loads = style.segment_loads(self.layout.segments, np.zeros(fabric.n_links), fabric.link_cap)
        self._mix = np.zeros((2, len(self.layout.segments), 4))
        self.particles = pt.ParticleField(len(self.layout.segments))
        self._kind_load = np.zeros((4, fabric.n_links))
        self._last_restyle = -1e9
        self._last_mix = -1e9
        self._mix_work: Iterator[None] | None = None  # the next mix, being made a slice per frame
        self._mix_for: str | None = None  # the layout the mixes were made for
        self._cap_for: tuple | None = None
        self._single_for: str | None = None
        self._single_link = np.zeros(0, np.int64)
        self._cap_sums = np.zeros(0)
        self._restyle_due = False
        self.timings: dict[str, float] = {}
        self._memos: dict[str, dict[tuple, object]] = {}  # per camera and layout: see _memo
        self._speed_px: np.ndarray | None = None  # particle speeds per direction and segment, per restyle
        self._speed_version = 0
        self._glide_work: Iterator[None] | None = None  # the next picture a glide scales, a slice a frame
        self._spare_static: pygame.Surface | None = None  # what it is drawn on (with _next_live)
        self._last_cam: Camera | None = None  # the camera of the last frame drawn
        self._glide_frames = 4.0  # frames the next picture took to draw, lately
        self._glide_calls = 0  # frames the one being drawn has taken so far
        self._cell_px_key: tuple | None = None
        self._rgb = np.zeros((0, 3), np.uint8)
        self._rgb_inputs: tuple[np.ndarray, ...] | None = None  # what the server colours were made from
        self._cell_px: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._flash_until = -1e9  # wall time the last flash ends
        self._updates = 0  # snapshots taken
        self.sim_now: float | None = None  # the source's clock, as last ticked
        self.sim_per_frame = 0.0  # simulated seconds a frame advances (fast attack, slow release)
        self._rhythm: dict[str, np.ndarray] | None = None  # per segment direction: main rhythmic job, share
        self._rhythm_ids = np.zeros(0, np.int64)  # the rhythmic jobs (index -> job id)
        self._rhythm_jobs = np.zeros((3, 0))  # their step period, communication share and phase offset
        self._palette_key: tuple | None = None
        self._palette = np.zeros(0, np.int64)
        self._cells_key: tuple | None = None  # what the cells on the live layer were last drawn from
        self._hot_key: tuple | None = None
        self._loads_version = 0
        self._mix_version = 0
        self._plan_key: PlanKey | None = None
        self._plan: tuple | None = None  # the particles' plan, its fine dots, active segments and camera
        self._plan_work: Iterator[None] | None = None  # the next plan, being made a slice per frame
        self._rate_key: tuple | None = None
        self._rate = np.zeros((2, 0))
        self._hot = np.zeros(0, np.int64)

    # --- state --------------------------------------------------------------------------------------

    def _get_layout(self, name: str) -> Layout:
        if name not in self._layouts:
            self._layouts[name] = LAYOUTS[name](self.fabric)
        return self._layouts[name]

    def relabel_blocks(self, labels: list[str]) -> None:
        """Other names for the hall's blocks (one per rack on a leaf-spine site), if there are as many."""
        hall = self._get_layout("hall")
        if len(labels) == len(hall.block_labels):
            self._layouts["hall"] = dataclasses.replace(hall, block_labels=tuple(labels))
            if self.layout.name == "hall":
                self.layout = self._layouts["hall"]
            self._invalidate()

    def set_layout(self, name: str) -> None:
        self.layout = self._get_layout(name)
        self.particles = pt.ParticleField(len(self.layout.segments))
        self._restyle_links()
        if self.camera is not None:
            self.camera = Camera.fit(self.layout.bounds, self.camera.viewport)
        self.fitted = True
        self._invalidate()

    def set_viewport(self, viewport: tuple[int, int, int, int]) -> None:
        if self.camera is None or self.fitted:
            self.camera = Camera.fit(self.layout.bounds, viewport)
        else:
            self.camera = self.camera.resized(viewport)
        self._invalidate()

    def set_camera(self, camera: Camera, fitted: bool = False) -> None:
        self.fitted = fitted
        if camera != self.camera:  # a scripted camera at rest sets the same view every frame
            self.camera = camera
            self._moving = True
            self._invalidate()

    def fit(self) -> None:
        assert self.camera is not None
        self.set_camera(Camera.fit(self.layout.bounds, self.camera.viewport), fitted=True)

    def _invalidate(self) -> None:
        self._static_ok = False
        self._live_ok = False
        self._build = None
        self._speed_px = None  # the text scale may have changed

    def _memo(self, name: str, make: Callable[[], T]) -> T:
        """``make()`` for the current camera and layout, kept for the last CAMERAS_KEPT of them (a glide
        works with three: the camera shown, that of the picture it scales, and that of the next one)."""
        kept = self._memos.setdefault(name, {})
        key = (self.camera, self.layout.name)
        if key not in kept:
            if len(kept) >= CAMERAS_KEPT:
                del kept[next(iter(kept))]
            kept[key] = make()
        return kept[key]  # type: ignore[return-value]

    @contextmanager
    def _at(self, camera: Camera) -> Iterator[None]:
        """Work as if the camera were ``camera`` (a glide draws over a picture drawn for another one)."""
        shown, self.camera = self.camera, camera
        try:
            yield
        finally:
            self.camera = shown

    def update(self, snap: Snapshot, wall: float) -> None:
        """Take a new snapshot: new job colours (flashing where a server just got a job), new loads."""
        old = self.snapshot.node_job if self.snapshot is not None else None
        self.snapshot = snap
        self._updates += 1
        self.wall = wall
        if old is not None:
            started = (snap.node_job >= 0) & (snap.node_job != old)
            self.flash_at[started] = wall
            if started.any():
                self._flash_until = wall + FLASH_S
        self._restyle_due = True
        self._rhythm_jobs = self._job_rhythm(self._rhythm_ids)
        if wall - self._last_restyle >= RESTYLE_S:
            self._apply_restyle(wall)

    def _job_rhythm(self, ids: np.ndarray) -> np.ndarray:
        """Step period, communication share and phase offset of the given jobs in the latest snapshot (a
        job no longer running has no rhythm). The offset puts each job's communication where the
        simulation has it: a step computes first and communicates last, and the snapshot says where in
        its step the job is at the snapshot's time."""
        out = np.zeros((3, len(ids)))
        if self.snapshot is None or not len(ids):
            return out
        known = {j.id: j for j in self.snapshot.jobs}
        for i, job_id in enumerate(ids.tolist()):
            job = known.get(job_id)
            if job is not None and job.step_s > 0:
                out[0, i], out[1, i] = job.step_s, job.comm_share
                out[2, i] = rhythm.step_offset(job.step_phase, self.snapshot.time_s, job.step_s, job.comm_share)
        return out

    def _apply_restyle(self, wall: float) -> None:
        """Link colours and particle mixes follow the latest snapshot, at most every RESTYLE_S: a full
        redraw of the links is the costliest thing a frame can do, and the eye does not need it faster.
        The first snapshot (or a new layout) is styled at once; later ones a slice per frame (a restyle
        still in the making lets the next one wait)."""
        if self._mix_for != self.layout.name:
            self._restyle_links()
        elif self._loads_work is None:
            self._loads_work = self._restyle_steps()
        else:
            return
        self._restyle_due = False
        self._last_restyle = wall
        entries = len(self.snapshot.flows.get("entry_link", ()))
        if self._mix_work is None and wall - self._last_mix >= MIX_S * max(1.0, entries / MIX_ENTRIES_PER_S):
            self._mix_work = self._make_mix(self.snapshot.flows)
            self._last_mix = wall

    def _make_mix(self, flows: dict[str, np.ndarray]) -> Iterator[None]:
        """The traffic kinds on every link and their mix on every bundled segment (a single link's mix is
        read from the links when drawn), one slice of work per step: on the largest site this is tens of
        milliseconds, so each frame does a few of them. The mix in use is replaced when the new one is
        whole."""
        layout, n_links = self.layout, self.fabric.n_links
        total = len(flows.get("entry_link", ()))
        kind_load = np.zeros((4, n_links))
        for lo in range(0, total, MIX_STEP_ENTRIES):  # style.kind_link_load, a slice at a time
            flow = flows["entry_flow"][lo : lo + MIX_STEP_ENTRIES]
            weight = flows["entry_frac"][lo : lo + MIX_STEP_ENTRIES] * flows["rate"][flow]
            key = flows["kind"][flow].astype(np.int64) * n_links + flows["entry_link"][lo : lo + MIX_STEP_ENTRIES]
            np.add.at(kind_load.reshape(-1), key, weight)
            yield
        bundles = layout.segments.bundles
        mix = np.zeros((4, bundles.rows))
        for k in range(4):
            yield from bundle_sums(bundles, kind_load[k], mix[k])
            mix[k, bundles.single_row] = 0.0  # a single link's mix is read from the links when drawn
        yield from self._rhythm_steps(flows, kind_load)
        if layout is self.layout:
            self._kind_load = kind_load
            self._set_mix(mix)

    def _rhythm_steps(self, flows: dict[str, np.ndarray], kind_load: np.ndarray) -> Iterator[None]:
        """Which rhythmic job (if any) leads the traffic on each segment direction, and its share: made
        with the mix, a slice at a time, and only if some job has a step rhythm."""
        jobs = [j for j in self.snapshot.jobs if j.step_s > 0 and 0 < j.comm_share < 1]
        if not jobs or "job" not in flows:
            self._rhythm, self._rhythm_ids = None, np.zeros(0, np.int64)
            return
        layout, n_links = self.layout, self.fabric.n_links
        ids = np.array(sorted(j.id for j in jobs), np.int64)
        at = np.minimum(np.searchsorted(ids, flows["job"]), len(ids) - 1)
        flow_job = np.where(ids[at] == flows["job"], at, -1)
        per_link: dict[str, np.ndarray] = {}
        yield from rhythm.link_main_job(flows, flow_job, n_links, per_link)
        bundles = layout.segments.bundles
        total = np.zeros(bundles.rows)
        yield from bundle_sums(bundles, kind_load.sum(axis=0), total)
        # A row's main job: that of its member link with the most of its own main job's traffic.
        best = np.zeros(bundles.rows)
        job = np.full(bundles.rows, -1, np.int64)
        links = np.flatnonzero(per_link["job"][: len(bundles.link_ptr) - 1] >= 0)
        ptr, per = bundles.link_ptr, np.diff(bundles.link_ptr)
        for keep in (False, True):  # the most traffic per row, then the job that has it
            for lo in range(0, len(links), SUM_STEP // 4):
                some = links[lo : lo + SUM_STEP // 4]
                first, count = ptr[some], per[some]
                member = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
                rows, link = bundles.link_rows[member], np.repeat(some, count)
                if not keep:
                    np.maximum.at(best, rows, per_link["load"][link])
                else:
                    top = per_link["load"][link] >= best[rows]
                    job[rows[top]] = per_link["job"][link[top]]
                yield
        share = np.divide(best, total, out=np.zeros(bundles.rows), where=total > 0)
        yield
        if layout is self.layout:
            n = len(layout.segments)
            self._rhythm = {
                "job": np.stack([job[:n], job[n:]]),
                "share": np.clip(np.stack([share[:n], share[n:]]), 0, 1),
            }
            self._rhythm_ids = ids
            self._rhythm_jobs = self._job_rhythm(ids)

    def segment_levels(self, segments: np.ndarray | None = None) -> np.ndarray | None:
        """Particle brightness (2, segments) now, from the rhythm of the jobs leading their traffic (of
        the given segments, else all); None when no job has a rhythm."""
        if self._rhythm is None or not len(self._rhythm_ids):
            return None
        step, comm, offset = self._rhythm_jobs
        now = self.sim_now if self.sim_now is not None else (self.snapshot.time_s if self.snapshot else 0.0)
        amp = rhythm.pulse_amplitude(step, comm, self.sim_per_frame)
        levels = rhythm.job_levels(now, step, comm, offset, amp)
        job, share = self._rhythm["job"], self._rhythm["share"]
        if segments is not None:
            job, share = job[:, segments], share[:, segments]
        return rhythm.segment_levels(levels, job, share)

    def _set_mix(self, mix: np.ndarray) -> None:
        n = len(self.layout.segments)
        self._mix = np.stack([mix[:, :n].T, mix[:, n:].T])
        self._mix_for = self.layout.name
        self._mix_version += 1

    def _restyle_links(self) -> None:
        """Restyle the links at once."""
        self._loads_work = None
        for _ in self._restyle_steps():
            pass

    def _restyle_steps(self) -> Iterator[None]:
        """The links' loads from the latest snapshot, a slice at a time; applied when whole."""
        load = self.snapshot.link_load if self.snapshot is not None else np.zeros(self.fabric.n_links)
        layout = self.layout
        seg = layout.segments
        loads: dict[str, np.ndarray] = {}
        yield from self._segment_loads(load, loads)
        if layout is not self.layout:
            return
        self._loads = loads
        self._loads_version += 1
        if self._mix_for != self.layout.name:  # a new layout (or the first snapshot): its mix at once
            if self.snapshot is not None:
                self._kind_load = style.kind_link_load(self.snapshot.flows, self.fabric.n_links)
            self._set_mix(seg.bundles.sums(self._kind_load))
            self._mix_work = None
        self._speed_px = None
        self._links_dirty = True

    def _segment_loads(self, load: np.ndarray, out: dict[str, np.ndarray]) -> Iterator[None]:
        """Per segment and direction, as ``style.segment_loads`` gives them: load, utilisation and the
        hottest member's utilisation, summed per run of bundled links (the largest site's trays hold a
        million memberships), into ``out`` a slice at a time. The hottest member is exact wherever it is
        HOT_MEMBER or more (what a link's colour tells apart); below, a bundle's own utilisation stands
        in for it."""
        seg, cap = self.layout.segments, self.fabric.link_cap
        bundles, n = seg.bundles, len(seg)
        if self._cap_for != (self.layout.name, len(seg)):
            self._cap_sums = bundles.sums(cap)
            self._cap_for = (self.layout.name, len(seg))
        sums = np.zeros(bundles.rows)
        yield from bundle_sums(bundles, load, sums)
        yield
        util = np.divide(sums, self._cap_sums, out=np.zeros_like(sums), where=self._cap_sums > 0)
        peak = util.copy()
        yield
        n_links = len(bundles.link_ptr) - 1
        hot = np.flatnonzero(load[:n_links] >= HOT_MEMBER * cap[:n_links])
        if len(hot):
            first, count = bundles.link_ptr[hot], np.diff(bundles.link_ptr)[hot]
            at = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
            np.maximum.at(peak, bundles.link_rows[at], np.repeat(load[hot] / cap[hot], count))
            yield
        out |= {"fwd_load": sums[:n], "rev_load": sums[n:], "fwd_util": util[:n], "rev_util": util[n:]}
        out |= {"fwd_peak": peak[:n], "rev_peak": peak[n:]}
        out["util"] = np.maximum(out["fwd_util"], out["rev_util"])
        out["peak"] = np.maximum(out["fwd_peak"], out["rev_peak"])

    def tick(self, wall: float, now: float | None = None) -> None:
        """Advance wall-clock effects (flashes, pulses, particles) without a new snapshot; ``now`` is the
        source's clock (the jobs' step rhythm follows it)."""
        dt = min(max(wall - self.wall, 0.0), 0.1)
        self.wall = wall
        if now is not None:
            step = now - self.sim_now if self.sim_now is not None and now >= self.sim_now else 0.0
            self.sim_per_frame = max(step, 0.9 * self.sim_per_frame)
            self.sim_now = now
        if self._restyle_due and wall - self._last_restyle >= RESTYLE_S:
            self._apply_restyle(wall)
        self._work(WORK_BUDGET_S)
        if self.camera is None:
            return
        if self._speed_px is None:
            s = self.text.scale
            self._speed_px = np.stack([pt.speeds(self._loads["fwd_util"], s), pt.speeds(self._loads["rev_util"], s)])
            self._speed_version += 1
        # Only the particles this level of detail can show move; the rest wait where they are. Those are
        # the particles of the plan shown, made for this camera or (while it moves) one near it.
        with self._at(self._plan[3] if self._plan is not None else self.camera):
            act = self._active_segments()
            key = (self.camera, self.layout.name, self._speed_version)
            if self._rate_key != key:  # phase per wall second, per restyle and camera
                length = self._segment_lengths()[act]
                with np.errstate(divide="ignore", invalid="ignore"):
                    self._rate = np.where(length > 0, self._speed_px[:, act] / length, 0.0)
                self._rate_key = key
        self.particles.phase[:, act] = (self.particles.phase[:, act] + self._rate * dt) % 1.0

    def _work(self, budget_s: float) -> None:
        """Slices of the restyle under way, then of the next mix, until the frame's budget is spent."""
        deadline = time.perf_counter() + budget_s
        while True:
            if self._loads_work is not None:
                if next(self._loads_work, StopIteration) is StopIteration:
                    self._loads_work = None
            elif self._mix_work is not None:
                if next(self._mix_work, StopIteration) is StopIteration:
                    self._mix_work = None
            else:
                return
            if time.perf_counter() >= deadline:
                return

    # --- drawing -----------------------------------------------------------------------------------

    def draw(self, surface: pygame.Surface) -> None:
        assert self.camera is not None
        t0 = pygame.time.get_ticks()
        view = pygame.Rect(self.camera.viewport)
        fill_outside(surface, view, theme.BG)
        surface.set_clip(view)
        glide = self._moving and self._glide(surface, view)
        if not glide:
            self._glide_work = None
            self._draw_crisp(surface, view)
        # Over a glide's picture, pulses are placed for the camera it was drawn with and moved as it is, and
        # the particles for that of their plan: nothing per segment is worked out again every frame.
        drawn = self._live_cam if glide else self.camera
        move = self.camera.affine_from(drawn)
        with self._at(drawn):
            self._draw_pulses(surface, move)
        self._draw_particles(surface)
        self._draw_highlight(surface)
        self._draw_faults(surface)
        if self.snapshot is not None and self.snapshot.banner:  # the data is not current: dim what is shown
            surface.blit(self._veil(view.size), view.topleft)
        surface.set_clip(None)
        self._last_cam = self.camera
        self._moving = False
        self.timings["site_ms"] = float(pygame.time.get_ticks() - t0)

    def _draw_crisp(self, surface: pygame.Surface, view: pygame.Rect) -> None:
        """The picture at the current camera: static layer, links and cells, each redrawn only if stale."""
        # New link colours are drawn onto the next live layer a slice per frame, behind the one shown, and
        # swapped in when whole: redrawing every link in one frame is the costliest thing a frame can do
        # on the largest site, and a few frames late is not to be seen. A new camera draws at once.
        if self._static is None or self._static.get_size() != surface.get_size():
            self._static = surface.copy()
            self._live = surface.copy()
            self._static_ok = False
        if not self._static_ok:
            self._draw_static(self._static)
            self._static_ok = True
            self._live_ok = False
        now = not self._live_ok or (self._coarse and not self._moving) or (self._moving and self._links_dirty)
        if now:  # a new camera, or the camera came to rest (add the detail)
            self._live_ok = True
            self._build = None
            self._live.blit(self._static, (0, 0))
            self._coarse = self._moving
            self._draw_links(self._live, detail=not self._moving)
            self._drawn_rgb = None
            self._links_dirty = False
        elif self._links_dirty and self._build is None and not self._plan_stale():
            # (a new plan of the particles is made first, in a frame of its own: costs are not stacked)
            self._build = self._build_steps(surface)
            self._links_dirty = False
        if self._build is not None:
            deadline = time.perf_counter() + BUILD_BUDGET_S
            while next(self._build, StopIteration) is not StopIteration:
                if time.perf_counter() >= deadline:
                    break
            else:
                self._build = None
        self._draw_cells(self._live)
        self._live_cam = self.camera
        surface.blit(self._live, view.topleft, view)

    def _build_steps(self, surface: pygame.Surface) -> Iterator[None]:
        """Draw the next live layer (static layer, links, cells) a slice at a time, then show it."""
        if self._next_live is None or self._next_live.get_size() != surface.get_size():
            self._next_live = surface.copy()
        layer = self._next_live
        layer.blit(self._static, (0, 0))
        yield
        yield from self._link_steps(layer, detail=True)
        rgb = self._cell_rgb()
        yield from self._paint_cells(layer, rgb, None)
        self._live, self._next_live = layer, self._live
        self._drawn_rgb = rgb
        self._coarse = False

    def _glide(self, surface: pygame.Surface, view: pygame.Rect) -> bool:
        """While the camera moves, show the last picture scaled and moved to the new camera (a few
        milliseconds, where redrawing everything costs tens), and go on drawing the next one if it is
        due. Returns False when that picture is too far from the new view (zoomed more than 2x, or
        covering under 80% of it; a jump, not a glide): then a crisp frame is drawn, and the glide goes on
        from it."""
        old, cam, live = self._live_cam, self.camera, self._live
        if old is None or live is None or old.viewport != cam.viewport or live.get_size() != surface.get_size():
            return False
        if not 0.5 <= cam.zoom / old.zoom <= 2.0:
            return False
        x0, y0, x1, y1 = cam.source_rect(old)
        ox, oy, ow, oh = old.viewport
        cx0, cy0, cx1, cy1 = max(x0, ox), max(y0, oy), min(x1, ox + ow), min(y1, oy + oh)
        if cx1 - cx0 < 1 or cy1 - cy0 < 1:
            return False
        fx, fy = view.w / (x1 - x0), view.h / (y1 - y0)  # new pixels per old pixel
        dest = pygame.Rect(
            round(view.x + (cx0 - x0) * fx),
            round(view.y + (cy0 - y0) * fy),
            round((cx1 - cx0) * fx),
            round((cy1 - cy0) * fy),
        )
        if dest.w * dest.h < 0.8 * view.w * view.h:
            return False
        src = pygame.Rect(round(cx0), round(cy0), round(cx1 - cx0), round(cy1 - cy0)).clip(live.get_rect())
        if dest.size != view.size or dest.topleft != view.topleft:
            surface.fill(theme.BG, view)
        dest = dest.clip(surface.get_rect())
        if dest.w > 0 and dest.h > 0:  # scaled straight into the frame: no new surface, no second copy
            pygame.transform.scale(live.subsurface(src), dest.size, surface.subsurface(dest))
        self._static_ok = False  # the crisp picture is redrawn once the camera rests
        # The next picture is begun in time to be done before this one wears out where the camera goes.
        soon = cam.ahead(self._last_cam or cam, self._glide_frames + 1, 1.0)
        worn = soon.covered_by(old) < GLIDE_COVER or soon.zoom / old.zoom > GLIDE_SOFT
        if worn or self._glide_work is not None:
            self._draw_next_picture(surface)
        return True

    def _draw_next_picture(self, surface: pygame.Surface) -> None:
        """Go on drawing the next picture the glide scales, for where the camera is heading, within the
        frame's budget; when one is done, start the next. Drawing one takes a few frames, so the glide
        never strays far from the picture it scales, and no frame of it draws a whole picture."""
        if self._glide_work is None:
            ahead = self.camera.ahead(self._last_cam or self.camera, 2 * self._glide_frames + 2, GLIDE_MARGIN)
            self._glide_work, self._glide_calls = self._picture_steps(surface, ahead), 0
        self._glide_calls += 1
        deadline = time.perf_counter() + GLIDE_BUDGET_S
        while next(self._glide_work, StopIteration) is not StopIteration:
            if time.perf_counter() >= deadline:
                return
        self._glide_work = None
        self._glide_frames = 0.5 * self._glide_frames + 0.5 * self._glide_calls

    def _picture_steps(self, surface: pygame.Surface, camera: Camera) -> Iterator[None]:
        """A picture for a glide to scale (static layer, links but not host links, cells), drawn for
        ``camera`` a slice at a time; when whole it replaces the one the glide scales."""
        if self._spare_static is None or self._spare_static.get_size() != surface.get_size():
            self._spare_static = surface.copy()
        if self._next_live is None or self._next_live.get_size() != surface.get_size():
            self._next_live = surface.copy()
        static, live, layout = self._spare_static, self._next_live, self.layout
        yield from self._slices_at(camera, self._static_steps(static))
        live.blit(static, (0, 0))
        yield
        rgb = self._cell_rgb()
        yield from self._slices_at(camera, self._link_steps(live, detail=False), self._paint_cells(live, rgb, None))
        if layout is not self.layout or camera.viewport != self.camera.viewport:
            return  # the view changed under it
        self._static, self._spare_static = static, self._static
        self._live, self._next_live = live, self._live
        self._live_cam, self._drawn_rgb, self._coarse = camera, rgb, True

    def _slices_at(self, camera: Camera, *work: Iterator[None]) -> Iterator[None]:
        """Slices of drawing work done as if the camera were ``camera``, one after the other."""
        for steps in work:
            while True:
                with self._at(camera):
                    if next(steps, StopIteration) is StopIteration:
                        break
                yield

    def _visible(self, rects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Screen rects (x, y, w, h) and a mask of those that fall inside the viewport."""
        cam = self.camera
        xy = cam.to_screen(rects[:, :2])
        wh = rects[:, 2:] * cam.zoom
        vx, vy, vw, vh = cam.viewport
        vis = (xy[:, 0] + wh[:, 0] >= vx) & (xy[:, 0] <= vx + vw) & (xy[:, 1] + wh[:, 1] >= vy) & (xy[:, 1] <= vy + vh)
        return np.column_stack([xy, wh]), vis

    def _draw_static(self, surf: pygame.Surface) -> None:
        for _ in self._static_steps(surf):
            pass

    def _static_steps(self, surf: pygame.Surface) -> Iterator[None]:
        """The static layer: background, pods, blocks, racks, switches and their labels, a slice at a time."""
        surf.fill(theme.BG)
        yield
        cam, lay, fab = self.camera, self.layout, self.fabric
        assert cam is not None
        zoom = cam.zoom
        # Pods (three tiers), blocks and racks. With pods, a block is named only when it is large: the
        # whole site names its pods.
        if len(lay.pods):
            rects, vis = self._visible(lay.pods)
            radius = max(3, round(0.4 * zoom))
            for i in np.flatnonzero(vis):
                r = pygame.Rect(*np.round(rects[i]).astype(int))
                pygame.draw.rect(surf, theme.BLOCK_EDGE, r, width=1, border_radius=radius)
                if r.w > 50:
                    label = self.text.render(lay.pod_labels[i], 13 if r.w > 160 else 11, theme.TEXT_DIM)
                    surf.blit(label, (r.x + 4, r.bottom + 2))
        if len(lay.blocks):
            rects, vis = self._visible(lay.blocks)
            radius = max(2, round(0.25 * zoom))
            named = 140 if len(lay.pods) else 70
            for k, i in enumerate(np.flatnonzero(vis)):
                if k % STATIC_STEP == STATIC_STEP - 1:
                    yield
                r = pygame.Rect(*np.round(rects[i]).astype(int))
                pygame.draw.rect(surf, theme.BLOCK, r, border_radius=radius)
                pygame.draw.rect(surf, theme.BLOCK_EDGE, r, width=1, border_radius=radius)
                if r.w > named:
                    label = self.text.render(lay.block_labels[i], 13 if r.w > 140 else 11, theme.TEXT_FAINT)
                    surf.blit(label, (r.x + 4, r.bottom + 2))
            yield
            rects, vis = self._visible(lay.racks)
            for j, r in enumerate(np.round(rects[vis]).astype(int).tolist()):
                surf.fill(theme.RACK, r)
                if j % (20 * STATIC_STEP) == 20 * STATIC_STEP - 1:
                    yield
            yield
        for x0, y0, x1, y1 in lay.bus:
            a, b = cam.to_screen(np.array([[x0, y0], [x1, y1]]))
            pygame.draw.line(surf, theme.BUS, a, b, max(2, round(0.12 * zoom)))
        # Switches, storage and the gateway.
        rects, vis = self._visible(lay.rect)
        kinds = fab.kind
        chosen = np.flatnonzero(vis & (kinds != NODE))
        colors = {
            LEAF: theme.SWITCH["leaf"],
            SPINE: theme.SWITCH["spine"],
            CORE: theme.SWITCH["core"],
            STORAGE: theme.STORAGE,
            GATEWAY: theme.GATEWAY,
        }
        boxes = np.round(rects[chosen]).astype(int)
        tiny = (boxes[:, 2] < 8) & np.isin(kinds[chosen], (LEAF, SPINE, CORE))
        small = boxes[tiny]
        small[:, 2:] = np.maximum(small[:, 2:], 1)
        for j, (v, xywh) in enumerate(zip(chosen[tiny].tolist(), small.tolist(), strict=True)):
            surf.fill(colors[int(kinds[v])], xywh)  # thousands of switch tiles a few pixels wide: no corners
            if j % (20 * STATIC_STEP) == 20 * STATIC_STEP - 1:
                yield
        yield
        for j, (v, xywh) in enumerate(zip(chosen[~tiny].tolist(), boxes[~tiny].tolist(), strict=True)):
            if j % STATIC_STEP == STATIC_STEP - 1:
                yield
            r = pygame.Rect(xywh)
            k = kinds[v]
            pygame.draw.rect(surf, colors[int(k)], r, border_radius=max(1, min(r.h // 4, 6)))
            name = fab.names[v]
            if k in (STORAGE, GATEWAY) or (k in (SPINE, CORE) and r.w > 60) or r.w > 90:
                size = 14 if k in (STORAGE, GATEWAY) else 11
                label = self.text.render(name, size, theme.TEXT if k in (STORAGE, GATEWAY) else theme.TEXT_DIM)
                if label.get_width() <= r.w * 1.6:
                    surf.blit(
                        label,
                        label.get_rect(center=r.center)
                        if label.get_width() < r.w
                        else label.get_rect(midtop=(r.centerx, r.bottom + 2)),
                    )
        self._draw_tier_labels(surf)

    def _draw_tier_labels(self, surf: pygame.Surface) -> None:
        """What a row of switches is ("rail 3 cores"), above it, where the labels do not crowd."""
        labels = self.layout.tier_labels
        if not labels:
            return
        at = self.camera.to_screen(np.array([(x, y) for _, x, y in labels], float))
        rendered = [self.text.render(text, 13, theme.TEXT_FAINT) for text, _, _ in labels]
        room = np.diff(at[:, 0]).min() if len(at) > 1 else float("inf")
        if room < max(r.get_width() for r in rendered) + 12:
            rendered = [self.text.render(text, 11, theme.TEXT_FAINT) for text, _, _ in labels]
            if room < max(r.get_width() for r in rendered) + 8:
                return
        for label, (x, y) in zip(rendered, at.tolist(), strict=True):
            surf.blit(label, label.get_rect(midbottom=(round(x), round(y) - 3)))

    def _segment_screen(self) -> tuple[np.ndarray, np.ndarray]:
        """Segment end points on screen, recomputed only when the camera or layout moves."""
        seg = self.layout.segments
        return self._memo("segment_screen", lambda: (self.camera.to_screen(seg.a), self.camera.to_screen(seg.b)))

    def _segment_lengths(self) -> np.ndarray:
        a, b = self._segment_screen()
        return self._memo("segment_lengths", lambda: np.hypot(*(b - a).T))

    def _shimmer_allowed(self) -> bool:
        return self.layout.cell_w * self.camera.zoom >= SHIMMER_PX

    def _active_segments(self) -> np.ndarray:
        """Segments that can show anything at this level of detail (a line, or host links' shimmer) and
        meet the viewport: on the largest site a few thousand of its hundred thousand, and all the rest
        is skipped when drawing and moving particles."""

        def active() -> np.ndarray:
            can = self._segments_shown() | (self.layout.segments.detail & self._shimmer_allowed())
            return np.flatnonzero(can & self._segments_inside())

        return self._memo("active", active)

    def _segments_shown(self) -> np.ndarray:
        """Segments drawn as lines at this zoom (host links only close up), cached per camera."""
        show_detail = self.layout.cell_w * self.camera.zoom >= HOST_DETAIL_PX
        return self._memo("shown", lambda: ~self.layout.segments.detail | show_detail)

    def _segments_inside(self) -> np.ndarray:
        """Segments whose bounding box meets the viewport (zoomed in, most of the site is off screen)."""
        a, b = self._segment_screen()
        vx, vy, vw, vh = self.camera.viewport
        return self._memo(
            "inside",
            lambda: (
                ~(
                    ((a[:, 0] < vx) & (b[:, 0] < vx))
                    | ((a[:, 0] > vx + vw) & (b[:, 0] > vx + vw))
                    | ((a[:, 1] < vy) & (b[:, 1] < vy))
                    | ((a[:, 1] > vy + vh) & (b[:, 1] > vy + vh))
                )
            ),
        )

    def _draw_links(self, surf: pygame.Surface, detail: bool = True) -> None:
        for _ in self._link_steps(surf, detail):
            pass

    def _link_steps(self, surf: pygame.Surface, detail: bool = True) -> Iterator[None]:
        """The links in their load colours and widths, hot ones on top, LINE_STEP at a time."""
        a, b = self._segment_screen()
        shown = self._segments_shown() & (detail | ~self.layout.segments.detail)
        act = self._active_segments()
        act = act[shown[act]]
        util, peak = self._loads["util"][act], self._loads["peak"][act]
        pulse = 0.5 + 0.5 * math.sin(self.wall * 6.0)
        scale = max(1.0, self.text.scale * min(1.6, self.camera.zoom / 12))
        order = np.argsort(util, kind="stable")  # hot links on top
        colors = style.link_colors(util[order], peak[order], pulse)
        widths = style.link_widths(util[order], scale)
        idx = act[order]
        yield
        for lo in range(0, len(idx), LINE_STEP):
            part = slice(lo, lo + LINE_STEP)
            lists = (colors[part].tolist(), a[idx[part]].tolist(), b[idx[part]].tolist())
            for color, p, q, w in zip(*lists, widths[part].astype(int).tolist(), strict=True):
                pygame.draw.line(surf, color, p, q, w)
            yield

    def _draw_cells(self, surf: pygame.Surface) -> None:
        """Server cells in their job colours; only cells whose colour changed are redrawn."""
        if self.snapshot is None:
            return
        flashing = self.wall < self._flash_until
        key = (self._updates, flashing)
        if self._drawn_rgb is not None and not flashing and key == self._cells_key:
            return  # nothing new since the last frame: the usual case, most frames
        self._cells_key = key
        rgb = self._cell_rgb()
        for _ in self._paint_cells(surf, rgb, self._drawn_rgb):
            pass
        self._drawn_rgb = rgb

    def _cell_rgb(self) -> np.ndarray:
        """The servers' colours now: job, load, a flash where a job just started, no data."""
        snap = self.snapshot
        flash = np.clip(1.0 - (self.wall - self.flash_at) / FLASH_S, 0.0, 1.0) * 0.6
        no_data = snap.no_data if len(snap.no_data) == len(flash) else np.zeros(len(flash), bool)
        now = (snap.node_job, snap.node_util, flash, no_data)
        if self._rgb_inputs is None or len(self._rgb) != len(flash):
            self._rgb = style.node_colors(*now)
        else:  # only the servers whose job, load, flash or data changed (a few hundred of 12,500)
            was = self._rgb_inputs
            redo = np.flatnonzero(np.logical_or.reduce([a != b for a, b in zip(now, was, strict=True)]))
            if len(redo):
                self._rgb = self._rgb.copy()
                self._rgb[redo] = style.node_colors(*(a[redo] for a in now))
        self._rgb_inputs = tuple(np.array(a, copy=True) for a in now)
        return self._rgb

    def _paint_cells(self, surf: pygame.Surface, rgb: np.ndarray, drawn: np.ndarray | None) -> Iterator[None]:
        """Paint the cells whose colour differs from ``drawn`` (all, if None), a slice at a time."""
        if self.layout.cell_w * self.camera.zoom < 3 and len(self.layout.racks):
            if drawn is None or not np.array_equal(rgb, drawn):
                self._draw_racks(surf, rgb)
            return
        rects, vis = self._node_rects()
        changed = vis if drawn is None else vis & (rgb != drawn).any(axis=1)
        if not changed.any():
            return
        zoom_w = self.layout.cell_w * self.camera.zoom
        # Zoomed in to its GPUs, a server is a dark chassis in its job's colour and its GPUs light up in it.
        chassis = zoom_w >= GPU_DETAIL_PX
        mapped = map_colors(surf, (rgb * CHASSIS).astype(np.uint8) if chassis else rgb)
        w, h = surf.get_size()
        if changed.sum() > MANY_CELLS:  # the whole site in view: every changed cell's pixels at once
            node, xs, ys = self._cell_pixels(rects, vis, (w, h))
            mine = changed[node]
            px = pygame.surfarray.pixels2d(surf)
            px[xs[mine], ys[mine]] = mapped[node[mine]]
            del px
        else:
            cells = np.flatnonzero(changed)
            r = np.round(rects[cells]).astype(np.int64)
            x0 = np.clip(r[:, 0], 0, w)
            y0 = np.clip(r[:, 1], 0, h)
            x1 = np.clip(r[:, 0] + np.maximum(r[:, 2], 1), 0, w)
            y1 = np.clip(r[:, 1] + np.maximum(r[:, 3], 1), 0, h)
            colors = mapped[cells].tolist()
            for lo in range(0, len(cells), CELL_STEP):
                px = pygame.surfarray.pixels2d(surf)
                for i in range(lo, min(lo + CELL_STEP, len(cells))):
                    px[x0[i] : x1[i], y0[i] : y1[i]] = colors[i]
                del px
                yield
        if chassis:
            nodes = np.flatnonzero(changed)
            for lo in range(0, len(nodes), GPU_STEP):
                self._draw_gpus(surf, nodes[lo : lo + GPU_STEP], rects)
                yield

    def _node_rects(self) -> tuple[np.ndarray, np.ndarray]:
        """The servers' screen rects and visibility, cached per camera."""
        return self._memo("node_rects", lambda: self._visible(self.layout.rect[self.fabric.node_gid]))

    def _cell_pixels(
        self, rects: np.ndarray, vis: np.ndarray, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pixel of every visible server cell: its server, x and y (cached per camera)."""
        key = (self.camera, self.layout.name, size)
        if self._cell_px_key != key or self._cell_px is None:
            w, h = size
            idx = np.flatnonzero(vis)
            r = np.round(rects[idx]).astype(np.int64)
            x0, y0 = np.clip(r[:, 0], 0, w), np.clip(r[:, 1], 0, h)
            cw = np.clip(r[:, 0] + np.maximum(r[:, 2], 1), 0, w) - x0
            ch = np.clip(r[:, 1] + np.maximum(r[:, 3], 1), 0, h) - y0
            count = cw * ch
            owner = np.repeat(np.arange(len(idx)), count)
            k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
            self._cell_px = (idx[owner], x0[owner] + k % cw[owner], y0[owner] + k // cw[owner])
            self._cell_px_key = key
        return self._cell_px

    def _draw_racks(self, surf: pygame.Surface, rgb: np.ndarray) -> None:
        """Zoomed far out, servers are too small to see: each rack takes the mean colour of its servers."""
        rack = self.fabric.node_rack
        n = np.bincount(rack).astype(float)
        mean = np.stack([np.bincount(rack, weights=rgb[:, c].astype(float)) / n for c in range(3)], axis=1)
        rects, vis = self._visible(self.layout.racks)
        for r in np.flatnonzero(vis):
            x, y, w, h = np.round(rects[r]).astype(int)
            surf.fill(tuple(int(v) for v in mean[r]), pygame.Rect(x, y, max(w, 1), max(h, 1)))

    def _draw_gpus(self, surf: pygame.Surface, nodes: np.ndarray, rects: np.ndarray) -> None:
        """Zoomed in: each server shows its GPUs, each in its owner's colour (or dark when free)."""
        owner = self.snapshot.gpu_owner[nodes]  # (N, gpus per node)
        gpn = owner.shape[1]
        cols = min(gpn, 8)
        rows = math.ceil(gpn / cols)
        colors = np.where(owner[..., None] >= 0, style.job_colors(np.maximum(owner, 0)), np.array(theme.BG, np.uint8))
        r = rects[nodes]
        gw, gh = r[:, 2] / cols, r[:, 3] / rows
        g = np.arange(gpn)
        x = r[:, 0, None] + (g % cols) * gw[:, None] + 2
        y = r[:, 1, None] + (g // cols) * gh[:, None] + 2
        w = np.broadcast_to(np.maximum(1, np.round(gw - 4))[:, None], x.shape)
        h = np.broadcast_to(np.maximum(1, np.round(gh - 4))[:, None], x.shape)
        boxes = np.stack([np.round(x), np.round(y), w, h], -1).astype(int).reshape(-1, 4).tolist()
        for color, box in zip(colors.reshape(-1, 3).tolist(), boxes, strict=True):
            pygame.draw.rect(surf, color, box, border_radius=2)
        if not len(nodes) or gw[0] < GPU_LABEL_PX:
            return
        # Close enough to tell GPUs apart: each is numbered, and the server named under it.
        size = 13 if gw[0] >= 2 * GPU_LABEL_PX else 11
        for i, n in enumerate(nodes.tolist()):
            for k, box in enumerate(boxes[i * gpn : (i + 1) * gpn]):
                label = self.text.render(f"GPU {k}", size, theme.TEXT_DIM if owner[i, k] < 0 else theme.BG)
                surf.blit(label, label.get_rect(midtop=(box[0] + box[2] // 2, box[1] + 4)))
            name = self.text.render(self.fabric.names[int(self.fabric.node_gid[n])], size, theme.TEXT_DIM)
            surf.blit(name, (round(r[i, 0]), round(r[i, 1] + r[i, 3]) + 2))

    def segments_all_of(self, links: np.ndarray) -> np.ndarray:
        """Segments every one of whose links is among the given ones (a cable tray stays unmarked while
        any of the cables bundled in it still works)."""
        seg = self.layout.segments
        mark = np.zeros(self.fabric.n_links, float)
        mark[links] = 1.0
        ones = np.ones(self.fabric.n_links)
        hit = style.sum_runs(mark[seg.fwd], seg.fwd_ptr) + style.sum_runs(mark[seg.rev], seg.rev_ptr)
        total = style.sum_runs(ones[seg.fwd], seg.fwd_ptr) + style.sum_runs(ones[seg.rev], seg.rev_ptr)
        return np.flatnonzero((total > 0) & (hit >= total))

    def segments_of_links(self, links: np.ndarray) -> np.ndarray:
        """Segments that carry any of the given directed links, either way."""
        seg = self.layout.segments
        mark = np.zeros(self.fabric.n_links, float)
        mark[links] = 1.0
        hit = (style.sum_runs(mark[seg.fwd], seg.fwd_ptr) > 0) | (style.sum_runs(mark[seg.rev], seg.rev_ptr) > 0)
        return np.flatnonzero(hit)

    def _draw_pulses(self, surf: pygame.Surface, move: tuple[float, tuple[float, float]] = (1.0, (0.0, 0.0))) -> None:
        """Saturated links pulse every frame (the live layer is only restyled a few times a second);
        ``move``: scale and offset from this camera's screen to the frame's (see ``Camera.affine_from``)."""
        key = (self._loads_version, self.camera, self.layout.name)
        if self._hot_key != key:  # new loads or a new camera: the saturated links shown
            act = self._active_segments()
            self._hot = act[(self._loads["peak"][act] >= 0.98) & self._segments_shown()[act]]
            self._hot_key = key
        hot = self._hot
        if not len(hot):
            return
        a, b = (moved(e[hot], move) for e in self._segment_screen())
        pulse = 0.5 + 0.5 * math.sin(self.wall * 6.0)
        colors = style.link_colors(self._loads["util"][hot], self._loads["peak"][hot], pulse)
        widths = style.link_widths(self._loads["util"][hot], max(1.0, self.text.scale * 1.5))
        for i in range(len(hot)):
            pygame.draw.line(surf, colors[i], a[i], b[i], int(widths[i]) + 1)

    def _draw_highlight(self, surf: pygame.Surface) -> None:
        """The selected job's servers and paths: drawn once per camera and selection onto a colour-keyed
        layer (a big job has thousands of segments), then blitted each frame (RLE makes that cheap)."""
        if not self.highlight or self._moving:  # redrawn when the camera rests: a glide stays smooth
            return
        key = (self.camera, self.highlight, self.highlight_segments.tobytes(), surf.get_size())
        if self._highlight_key != key:
            self._highlight_key = key
            layer = pygame.Surface(surf.get_size())
            layer.fill((0, 0, 0))
            a, b = self._segment_screen()
            width = max(2, round(2 * self.text.scale))
            segs = self.highlight_segments
            segs = segs[self._segments_shown()[segs]]  # the links drawn at this zoom (host links close up)
            for p, q in zip(a[segs].tolist(), b[segs].tolist(), strict=True):
                pygame.draw.line(layer, theme.TEXT, p, q, width)
            rects, vis = self._visible(self._highlight_boxes())
            for i in np.flatnonzero(vis):
                r = pygame.Rect(*np.round(rects[i]).astype(int)).inflate(4, 4)
                pygame.draw.rect(layer, theme.TEXT, r, width=2, border_radius=2)
            layer.set_colorkey((0, 0, 0), pygame.RLEACCEL)
            self._highlight_layer = layer
        surf.blit(self._highlight_layer, (0, 0))

    def _highlight_boxes(self) -> np.ndarray:
        """What outlines the selected job: its servers close up; further out, where server cells are too
        small to outline one by one (the outlines ran together into white blobs), the racks holding them."""
        gids = np.array(self.highlight, np.int64)
        node_gid, racks = self.fabric.node_gid, self.layout.racks
        if self.layout.cell_w * self.camera.zoom >= HOST_DETAIL_PX or not len(racks) or not len(node_gid):
            return self.layout.rect[gids]
        node_of = np.full(len(self.layout.rect), -1)
        node_of[node_gid] = np.arange(len(node_gid))
        nodes = node_of[gids]
        held = np.unique(self.fabric.node_rack[nodes[nodes >= 0]])
        return np.concatenate([racks[held], self.layout.rect[gids[nodes < 0]]])

    def _veil(self, size: tuple[int, int]) -> pygame.Surface:
        if self._veil_surf is None or self._veil_surf.get_size() != size:
            self._veil_surf = pygame.Surface(size, pygame.SRCALPHA)
            self._veil_surf.fill((*theme.BG, 150))
        return self._veil_surf

    def _draw_faults(self, surf: pygame.Surface) -> None:
        """Failed components flash red; dead cables are drawn red (recovery simply takes it away)."""
        snap = self.snapshot
        if snap is None or not (snap.down.any() or snap.dead_links.any()):
            return
        flash = 0.5 + 0.5 * math.sin(self.wall * 7.0)
        color = tuple(int(h * (0.55 + 0.45 * flash)) for h in theme.HOT)
        width = max(2, round(3 * self.text.scale))
        if snap.dead_links.any():
            key = snap.dead_links.tobytes()
            if key != self._dead_key:
                self._dead_key = key
                self._dead_segments = self.segments_all_of(np.flatnonzero(snap.dead_links))
            a, b = self._segment_screen()
            for p, q in zip(a[self._dead_segments].tolist(), b[self._dead_segments].tolist(), strict=True):
                pygame.draw.line(surf, color, p, q, width)
        rects, vis = self._visible(self.layout.rect)
        for v in np.flatnonzero(snap.down & vis):
            r = pygame.Rect(*np.round(rects[v]).astype(int))
            if r.w < 3 or r.h < 3:
                r = r.inflate(4, 4)
            veil = pygame.Surface(r.size, pygame.SRCALPHA)
            veil.fill((*theme.HOT, round(90 + 90 * flash)))
            surf.blit(veil, r.topleft)
            pygame.draw.rect(surf, color, r.inflate(4, 4), width=width, border_radius=3)

    def _row_mix(self, d: int, segments: np.ndarray) -> np.ndarray:
        """The traffic kinds' mix on segments one way: a bundle's from the last mix, a single link's
        straight from the links' kinds."""
        mix = self._mix[d][segments]
        bundles = self.layout.segments.bundles
        if self._single_for != self.layout.name:
            self._single_link = np.full(bundles.rows, -1, np.int64)
            self._single_link[bundles.single_row] = bundles.single_link
            self._single_for = self.layout.name
        link = self._single_link[d * len(self.layout.segments) + segments]
        one = link >= 0
        mix[one] = self._kind_load[:, link[one]].T
        return mix

    def _draw_particles(self, surf: pygame.Surface) -> None:
        """The particles of the latest plan, placed for its camera and moved to this one."""
        if not self._plan_ready():
            return
        planned, fine_dots, act, cam = self._plan
        with self._at(cam):
            phase = self.particles.phase[:, act]
            levels = self.segment_levels(act)
            cover = self._cells_cover()
        phase = np.concatenate([phase[0], phase[1], phase[0], phase[1]])
        xy, kind, row = pt.place(planned, phase), planned.kind, planned.row
        if cover is not None:  # none over the servers, where the lines they ride are hidden
            keep = ~pt.covered(cover, xy, cam.viewport)
            fine_dots = int(np.count_nonzero(keep[:fine_dots]))
            xy, kind, row = xy[keep], kind[keep], row[keep]
        xy = moved(xy, self.camera.affine_from(cam))
        if not len(xy):
            return
        colors = np.array([surf.map_rgb(c) for c in (*theme.TRAFFIC, theme.MEASURED)], np.int64)
        if levels is not None:  # brighter while a job communicates, dimmer while it computes
            colors = self._pulse_palette(surf)
            level = np.round(np.clip(levels, 0, 1) * (LEVELS - 1)).astype(np.int64)
            kind = kind * LEVELS + np.concatenate([level[0], level[1], level[0], level[1]])[row]
        radius = 1 if self.text.scale < 0.8 else 2 if self.text.scale < 1.6 else 3
        px = pygame.surfarray.pixels2d(surf)
        for part, r in ((slice(0, fine_dots), max(0, radius - 2)), (slice(fine_dots, None), radius)):
            pt.stamp(px, xy[part], colors[kind[part]], r, self.camera.viewport)
        del px

    def _plan_ready(self) -> bool:
        """Bring the particles' plan on: a new one (new loads, mixes or camera) is made a slice per frame
        within PLAN_BUDGET_S while the last one is shown, moved to the camera; made at once only if there
        is none, or the last one is for another layout or too far from the camera (zoomed over 2x)."""
        if self._plan_key == self._plan_key_now():
            return self._plan is not None
        if self._moving and self._plan_work is None and self._plan_close(PLAN_NEAR):
            return True  # a moving camera: a plan made for a camera near it serves a while longer
        if not self._plan_close():
            self._plan_work = None
            for _ in self._plan_steps(self.camera):
                pass
            return True
        if self._plan_work is None:
            self._plan_work = self._plan_steps(self.camera)
        deadline = time.perf_counter() + PLAN_BUDGET_S
        while next(self._plan_work, StopIteration) is not StopIteration:
            if time.perf_counter() >= deadline:
                return True
        self._plan_work = None
        return True

    def _plan_close(self, near: float = 2.0) -> bool:
        """Whether the last plan can stand in for the camera's: same layout and viewport, zoomed in or out
        by ``near`` at most and moved by less than ``near - 1`` of the viewport."""
        if self._plan is None or self._plan_key is None:
            return False
        cam, key = self._plan[3], self._plan_key
        same = key.layout == self.layout.name and key.text_scale == self.text.scale
        same = same and cam.viewport == self.camera.viewport
        if not same or not 1 / near <= self.camera.zoom / cam.zoom <= near:
            return False
        scale, (dx, dy) = self.camera.affine_from(cam)
        vx, vy, vw, vh = cam.viewport
        shift = np.hypot(vx + vw / 2 - (vx + vw / 2) * scale - dx, vy + vh / 2 - (vy + vh / 2) * scale - dy)
        return bool(shift <= (near - 1) * max(vw, vh))

    def _plan_steps(self, camera: Camera) -> Iterator[None]:
        """The particles' plan for ``camera``, PLAN_STEP active segments a slice; it replaces the last
        one when whole. Rows count segments across the four groups of all active ones (shimmer forward
        and back, then lines forward and back), and fine dots come first, as in ``_particle_inputs``."""
        with self._at(camera):
            act, key = self._active_segments(), self._plan_key_now()
        m = len(act)
        fine: list[pt.Plan] = []
        full: list[pt.Plan] = []
        for lo in range(0, m, PLAN_STEP):
            part = act[lo : lo + PLAN_STEP]
            with self._at(camera):
                ends, n, mix, lane = self._particle_inputs(part)
            p = pt.plan(*ends, n, mix, lane)
            group, j = np.divmod(p.row, len(part))
            p = p._replace(row=group * m + lo + j)
            cut = int(n[: 2 * len(part)].sum())
            fine.append(pt.Plan(*(f[:cut] for f in p)))
            full.append(pt.Plan(*(f[cut:] for f in p)))
            yield
        parts = fine + full
        planned = (
            pt.Plan(*(np.concatenate([q[i] for q in parts]) for i in range(5)))
            if parts
            else pt.plan(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros((0, 4)), 0.0)
        )
        with self._at(camera):
            self._cells_cover()  # worked out with the plan, kept per camera: drawing it only looks it up
        self._plan = (planned, sum(len(f.row) for f in fine), act, camera)
        self._plan_key = key

    def _cells_cover(self) -> np.ndarray | None:
        """Where server cells cover the links drawn beneath them, as a (width, height) mask of the viewport;
        None unless host links are drawn as lines (zoomed in far enough). Particles there would float over
        the servers (or a GPU's face) on a line nobody sees, so they are not drawn."""

        def cover() -> np.ndarray | None:
            if self.layout.cell_w * self.camera.zoom < HOST_DETAIL_PX:
                return None
            vx, vy, vw, vh = self.camera.viewport
            mask = np.zeros((vw, vh), bool)
            rects, vis = self._node_rects()
            r = np.round(rects[vis]).astype(np.int64) - (vx, vy, 0, 0)
            x0, y0 = np.clip(r[:, 0], 0, vw), np.clip(r[:, 1], 0, vh)
            x1, y1 = np.clip(r[:, 0] + r[:, 2], 0, vw), np.clip(r[:, 1] + r[:, 3], 0, vh)
            for a, b, c, d in zip(x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist(), strict=True):
                mask[a:b, c:d] = True
            return mask

        return self._memo("cells_cover", cover)

    def _plan_key_now(self) -> PlanKey:
        return PlanKey(self.camera, self.layout.name, self._loads_version, self._mix_version, self.text.scale)

    def _plan_stale(self) -> bool:
        return self._plan_key != self._plan_key_now()

    def _particle_inputs(self, act: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray, float]:
        """The particles of the active segments, both directions and both dot sizes in one go: segment
        ends, counts, mixes and lane offset, fine dots first (then a plan of them is made again only when
        the loads, the mixes or the camera change)."""
        a, b = self._segment_screen()
        a, b, length = a[act], b[act], self._segment_lengths()[act]
        shown = self._segments_shown()[act]
        # Host links too small to draw as lines still shimmer with their traffic inside the racks: one in
        # five of them, in fine dots, so that the job colours stay readable; drawn as lines, they keep the
        # fine dots until the servers are big enough to show their GPUs (a rail unit's servers each have a
        # link to every leaf: full dots would hide the servers under a cloud).
        fine = self.layout.segments.detail[act] & (self.layout.cell_w * self.camera.zoom < GPU_DETAIL_PX)
        shimmer = (~shown | fine) & (length >= 6) & ((act * 2654435761) % 5 == 0)
        shown = shown & ~fine
        lane = max(1.5, 2.0 * self.text.scale)
        util = [self._loads["fwd_util"][act], self._loads["rev_util"][act]]
        n = np.concatenate([pt.counts(util[d] * mask, length) for mask in (shimmer, shown) for d in (0, 1)])
        mixes = [self._row_mix(0, act), self._row_mix(1, act)]
        ends = (np.concatenate([a, b, a, b]), np.concatenate([b, a, b, a]))
        return ends, n, np.concatenate([*mixes, *mixes]), lane

    def _pulse_palette(self, surf: pygame.Surface) -> np.ndarray:
        """Every particle colour at every brightness level, mapped for the surface: kind * LEVELS + level."""
        key = (surf.get_shifts(), surf.get_losses(), surf.get_masks())
        if self._palette_key != key:
            base = np.array([*theme.TRAFFIC, theme.MEASURED], float)
            scale = np.linspace(0, 1, LEVELS)
            rgb = style.dim_colors(base, scale)
            self._palette = map_colors(surf, rgb.reshape(-1, 3)).astype(np.int64)
            self._palette_key = key
        return self._palette

    # --- picking -----------------------------------------------------------------------------------

    def pick(self, screen: tuple[int, int]) -> tuple[str, int] | None:
        """What is under a screen point: ('vertex', gid), ('segment', s) or None."""
        return pick(self.layout, self.camera, screen, self._segments_shown())


def pick(
    layout: Layout,
    camera: Camera,
    screen: tuple[float, float],
    shown: np.ndarray | None = None,
    tolerance_px: float = 6.0,
) -> tuple[str, int] | None:
    """Hit-test: the vertex box under the point (smallest first), else the nearest shown segment."""
    wx, wy = camera.to_world(screen)
    r = layout.rect
    inside = (wx >= r[:, 0]) & (wx <= r[:, 0] + r[:, 2]) & (wy >= r[:, 1]) & (wy <= r[:, 1] + r[:, 3])
    if inside.any():
        hits = np.flatnonzero(inside)
        return "vertex", int(hits[np.argmin(r[hits, 2] * r[hits, 3])])
    seg = layout.segments
    if len(seg) == 0:
        return None
    a, b = seg.a, seg.b
    d = b - a
    t = np.clip(((wx - a[:, 0]) * d[:, 0] + (wy - a[:, 1]) * d[:, 1]) / np.maximum((d**2).sum(1), 1e-12), 0, 1)
    dist = np.hypot(a[:, 0] + t * d[:, 0] - wx, a[:, 1] + t * d[:, 1] - wy) * camera.zoom
    if shown is not None:
        dist = np.where(shown, dist, np.inf)
    s = int(np.argmin(dist))
    return ("segment", s) if dist[s] <= tolerance_px else None
