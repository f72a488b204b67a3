"""The heads-up display: what a visitor reads from three metres. Sizes are for a 1080-pixel-high screen
and scale with the window; text surfaces come from a cache, so a frame re-renders only what changed.

Everything the HUD shows in a frame arrives as one ``HudModel``. The right-hand panel is a stack of
small section objects (``SIDE_PANEL``), each drawing itself below the last; a new figure on the panel is
one new class in that list. Overlays (title, legend, alerts, inspector, notice, help) are drawn around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pygame

from twin.names import JOB_KIND_WORDS
from twin.render import style, theme
from twin.render.text import Text
from twin.snapshot import JobView, Snapshot

PANEL_W = 440  # right-hand panel width at 1080p
PANEL_REFRESH_S = 0.5  # wall seconds between redraws of the side panel's figures (they change ~2x a second)
HELP = (
    ("wheel", "zoom about the cursor"),
    ("drag", "pan"),
    ("double-click", "fit the site"),
    ("click", "inspect; click a job to follow it"),
    ("space", "pause / resume"),
    ("+ / -", "simulation speed"),
    ("L", "switch layout"),
    ("H", "hide the HUD"),
    ("F", "fullscreen"),
    ("S", "save a screenshot"),
    ("[ ]", "an hour back / on (recorded telemetry)"),
    ("?", "this help"),
    ("Esc / Q", "quit"),
)


@dataclass
class HudState:
    """What the HUD shows besides the snapshot: clock speed, pause, inspector lines, overlays."""

    site: str
    blurb: str
    peak_pflops: float
    speed: float = 1.0
    effective_speed: float = 1.0
    paused: bool = False
    show_help: bool = False
    inspector: tuple[str, tuple[str, ...]] | None = None  # title, lines
    notice: str = ""
    selected_job: int | None = None
    hottest: str = ""  # name of the most loaded link
    epoch: float | None = None  # calendar time at simulated 0 (recorded telemetry): the clock shows dates


@dataclass(frozen=True)
class HudModel:
    """One frame of the HUD: the view's state, the latest snapshot, the latest metrics and the series."""

    state: HudState
    snap: Snapshot
    metrics: dict[str, float]
    series: dict[str, np.ndarray]
    now: float


def fmt_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d  %H:%M")


def fmt_clock(t: float) -> str:
    day, rem = divmod(int(t), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"Day {day + 1}  {h:02d}:{m:02d}:{s:02d}"


def fmt_speed(x: float) -> str:
    return f"x{x:,.0f}" if x >= 1 else f"x{x:g}"


def fmt_duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


class Hud:
    def __init__(self, text: Text) -> None:
        self.text = text
        self.job_rows: list[tuple[pygame.Rect, int]] = []  # clickable job rows
        self.job_labels: list[tuple[pygame.Rect, pygame.Rect | None]] = []  # name and detail drawn per row
        self._panels: dict[tuple, pygame.Surface] = {}  # translucent boxes by size
        self._legend_key: tuple | None = None
        self._legend_surf: pygame.Surface | None = None
        self._side: pygame.Surface | None = None  # the side panel as last drawn, at its screen position
        self._side_key: tuple | None = None
        self._side_wall = -1e9
        self.inspector_box: pygame.Rect | None = None  # where the inspector card was drawn last frame, if it was

    def viewport(self, size: tuple[int, int], visible: bool) -> tuple[int, int, int, int]:
        """The part of the window left for the site picture."""
        w, h = size
        s = self.text.scale
        if not visible:
            return (0, 0, w, h)
        top, bottom = round(112 * s), round(64 * s)
        return (round(12 * s), top, w - round((PANEL_W + 36) * s), h - top - bottom)

    def draw(self, surf: pygame.Surface, model: HudModel, wall: float | None = None) -> None:
        """Draw the HUD. Given the ``wall`` clock, the side panel is redrawn at most every PANEL_REFRESH_S
        (or at once when the selection or the size changes) and otherwise blitted as last drawn: its
        figures change a couple of times a second, and drawing it costs a few milliseconds."""
        s = self.text.scale
        w, h = surf.get_size()
        st = model.state
        self.inspector_box = None
        self._title(surf, model, s)
        panel = pygame.Rect(w - round((PANEL_W + 20) * s), round(20 * s), round(PANEL_W * s), h - round(40 * s))
        self._side_panel(surf, panel, model, wall)
        live = model.snap.data_age_s is not None
        self._legend(surf, s, h, panel.x - round(40 * s), bool(model.snap.no_data.any()), live)
        self._alerts(surf, model.snap.alerts, model.now, s, h, panel.x, st.epoch)
        if st.inspector:
            self._inspector(surf, st.inspector, s, panel.x)
        if st.notice:
            label = self.text.render(st.notice, 16, theme.TEXT, "semibold")
            box = label.get_rect(midbottom=(panel.x // 2, h - round(70 * s))).inflate(round(28 * s), round(14 * s))
            self._panel(surf, box)
            surf.blit(label, label.get_rect(center=box.center))
        if st.show_help:
            self._help(surf, s)

    def _side_panel(self, surf: pygame.Surface, panel: pygame.Rect, model: HudModel, wall: float | None) -> None:
        """The right-hand panel, from the cache unless it is due (it lies on the plain background outside
        the site picture, so it is kept opaque, background included)."""
        st = model.state
        key = (surf.get_size(), panel, self.text.scale, st.selected_job, st.peak_pflops)
        due = wall is None or key != self._side_key or not 0 <= wall - self._side_wall < PANEL_REFRESH_S
        if due or self._side is None:
            if self._side is None or self._side.get_size() != surf.get_size():
                self._side = pygame.Surface(surf.get_size()).convert(surf)
            target = self._side
            target.fill(theme.BG, panel)
            self._panel(target, panel)
            pad = round(20 * self.text.scale)
            y = panel.y + pad
            for section in SIDE_PANEL:
                box = pygame.Rect(panel.x + pad, y, panel.w - 2 * pad, panel.bottom - pad - y)
                y = section.draw(self, target, box, model)
            self._side_key, self._side_wall = key, -1e9 if wall is None else wall
        surf.blit(self._side, panel.topleft, panel)

    def _panel(self, surf: pygame.Surface, rect: pygame.Rect, alpha: int = 225) -> None:
        """A translucent rounded box; drawn once per size and kept (a few dozen sizes at most)."""
        radius = max(4, round(10 * self.text.scale))
        key = (rect.size, alpha, radius)
        panels = self._panels
        box = panels.get(key)
        if box is None:
            if len(panels) > 64:
                panels.clear()
            box = panels[key] = pygame.Surface(rect.size, pygame.SRCALPHA)
            pygame.draw.rect(box, (*theme.PANEL, alpha), box.get_rect(), border_radius=radius)
            pygame.draw.rect(box, (*theme.PANEL_EDGE, 255), box.get_rect(), width=1, border_radius=radius)
        surf.blit(box, rect.topleft)

    def _title(self, surf: pygame.Surface, model: HudModel, s: float) -> None:
        st, now, snap = model.state, model.now, model.snap
        x, y = round(24 * s), round(18 * s)
        title = self.text.render(st.site, 30, theme.TEXT, "bold")
        surf.blit(title, (x, y))
        blurb = self.text.render(st.blurb, 15, theme.TEXT_DIM)
        surf.blit(blurb, (x, y + title.get_height() + round(2 * s)))
        when = fmt_clock(now) if st.epoch is None else fmt_date(st.epoch + now)
        clock = self.text.render(when, 22, theme.TEXT, "semibold")
        cy = y + title.get_height() + blurb.get_height() + round(8 * s)
        surf.blit(clock, (x, cy))
        if snap.data_age_s is not None:  # live data: how old it is, not how fast a clock runs
            age = snap.data_age_s
            speed = f"LIVE   data {fmt_duration(age)} old"
            color = theme.GOOD if age < 30 and not snap.banner else theme.WARN
        elif st.paused:
            speed, color = "paused", theme.WARN
        elif st.effective_speed < st.speed * 0.9:
            speed, color = f"{fmt_speed(st.speed)}  (running at {fmt_speed(st.effective_speed)})", theme.WARN
        else:
            speed, color = fmt_speed(st.speed), theme.ACCENT
        label = self.text.render(speed, 18, color, "semibold")
        surf.blit(label, (x + clock.get_width() + round(18 * s), cy + (clock.get_height() - label.get_height()) // 2))
        if snap.notice:
            note = self.text.render(snap.notice, 15, theme.TEXT_FAINT)
            surf.blit(note, (x, cy + clock.get_height() + round(4 * s)))
        if snap.banner:
            self._banner(surf, snap.banner, s)

    def _banner(self, surf: pygame.Surface, text: str, s: float) -> None:
        """A problem with the data itself, across the top of the picture until it clears."""
        label = self.text.render(text, 20, theme.TEXT, "semibold")
        view = self.viewport(surf.get_size(), True)
        box = label.get_rect(midtop=(view[0] + view[2] // 2, view[1] + round(8 * s))).inflate(
            round(40 * s), round(18 * s)
        )
        self._panel(surf, box, 245)
        pygame.draw.rect(surf, theme.HOT, box, width=max(2, round(2 * s)), border_radius=max(4, round(10 * s)))
        surf.blit(label, label.get_rect(center=box.center))

    def bar(self, surf: pygame.Surface, rect: pygame.Rect, frac: float, color: tuple[int, int, int]) -> None:
        radius = rect.h // 2
        pygame.draw.rect(surf, theme.BG_GLOW, rect, border_radius=radius)
        filled = rect.copy()
        filled.w = max(rect.h, round(rect.w * min(max(frac, 0.0), 1.0)))
        pygame.draw.rect(surf, color, filled, border_radius=radius)

    def sparkline(
        self,
        surf: pygame.Surface,
        rect: pygame.Rect,
        values: np.ndarray | None,
        top: float | None,
        color: tuple[int, int, int],
    ) -> None:
        pygame.draw.rect(surf, theme.BG_GLOW, rect, border_radius=round(4 * self.text.scale))
        if values is None or len(values) < 2 or not np.isfinite(values).any():
            return
        finite = values[np.isfinite(values)]
        hi = top if top else float(finite.max()) * 1.1 or 1.0
        lo = 0.0 if top else float(finite.min()) * 0.9
        span = max(hi - lo, 1e-9)
        xs = rect.x + np.linspace(0, rect.w - 1, len(values))
        ys = rect.bottom - 2 - (np.clip(values, lo, hi) - lo) / span * (rect.h - 4)
        shade = tuple(int(c * 0.35 + b * 0.65) for c, b in zip(color, theme.BG_GLOW, strict=True))
        # A gap in the data (NaN) is drawn as a gap: each run of real values is its own line.
        ok = np.isfinite(values)
        edges = np.flatnonzero(np.diff(np.r_[False, ok, False].astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            points = np.column_stack([xs[a:b], ys[a:b]]).tolist()
            if len(points) < 2:
                continue
            fill = [(points[0][0], rect.bottom - 1), *points, (points[-1][0], rect.bottom - 1)]
            pygame.draw.polygon(surf, shade, fill)
            pygame.draw.lines(surf, color, False, points, max(1, round(2 * self.text.scale)))

    def trace_line(self, surf: pygame.Surface, rect: pygame.Rect, values: np.ndarray, color) -> None:
        """A thin line over a 0..1 sparkline, gaps left as gaps."""
        xs = rect.x + np.linspace(0, rect.w - 1, len(values))
        ys = rect.bottom - 2 - np.clip(values, 0.0, 1.0) * (rect.h - 4)
        ok = np.isfinite(values)
        edges = np.flatnonzero(np.diff(np.r_[False, ok, False].astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            if b - a >= 2:
                pygame.draw.lines(surf, color, False, np.column_stack([xs[a:b], ys[a:b]]).tolist(), 1)

    def _alerts(
        self,
        surf: pygame.Surface,
        alerts: tuple[tuple[float, str, bool], ...],
        now: float,
        s: float,
        h: int,
        right: int,
        epoch: float | None = None,
    ) -> None:
        """The fault ticker: the latest news, newest at the bottom, fading after a simulated hour."""
        recent = [a for a in alerts if now - a[0] < 3600.0][-3:]
        if not recent:
            return
        x = round(24 * s)
        y = h - round(52 * s) - len(recent) * round(30 * s)
        for when, text, bad in recent:
            stamp = fmt_clock(when)[-8:-3] if epoch is None else fmt_date(epoch + when)[-5:]
            line = f"{stamp}  {text}"
            label = self.text.render(line, 17, theme.TEXT, "semibold")
            box = pygame.Rect(x, y, min(label.get_width() + round(40 * s), right - x - round(12 * s)), round(26 * s))
            self._panel(surf, box, 235)
            dot = theme.HOT if bad else theme.GOOD
            pygame.draw.circle(surf, dot, (box.x + round(14 * s), box.centery), round(5 * s))
            surf.blit(label, (box.x + round(26 * s), box.centery - label.get_height() // 2))
            y += round(30 * s)

    def _legend(
        self, surf: pygame.Surface, s: float, h: int, room: int, no_data: bool = False, live: bool = False
    ) -> None:
        """The colour key along the bottom, drawn once per scale and shrunk if the room is narrow."""
        key = (s, room, no_data, live)
        if self._legend_key != key or self._legend_surf is None:
            self._legend_key = key
            self._legend_surf = self._draw_legend(s, room, no_data, live)
        surf.blit(self._legend_surf, (round(24 * s), h - round(44 * s)))

    def _draw_legend(self, s: float, room: int, no_data: bool, live: bool) -> pygame.Surface:
        strip = pygame.Surface((round(1400 * s), round(24 * s)), pygame.SRCALPHA)
        x, y = 0, 0
        kinds = (
            ((theme.MEASURED, "measured traffic"),) if live else zip(theme.TRAFFIC, theme.TRAFFIC_LABELS, strict=True)
        )
        for color, label in kinds:
            pygame.draw.circle(strip, color, (x + round(6 * s), y + round(10 * s)), round(6 * s))
            text = self.text.render(label, 15, theme.TEXT_DIM)
            strip.blit(text, (x + round(18 * s), y + round(10 * s) - text.get_height() // 2))
            x += text.get_width() + round(44 * s)
        pygame.draw.rect(strip, theme.NODE_IDLE, pygame.Rect(x, y + round(3 * s), round(22 * s), round(14 * s)))
        text = self.text.render("idle server", 15, theme.TEXT_DIM)
        strip.blit(text, (x + round(30 * s), y + round(10 * s) - text.get_height() // 2))
        x += text.get_width() + round(64 * s)
        if no_data:  # live data missing for some servers
            pygame.draw.rect(strip, theme.NO_DATA, pygame.Rect(x, y + round(3 * s), round(22 * s), round(14 * s)))
            text = self.text.render("no data", 15, theme.TEXT_DIM)
            strip.blit(text, (x + round(30 * s), y + round(10 * s) - text.get_height() // 2))
            x += text.get_width() + round(64 * s)
        ramp = style.link_colors(np.linspace(0, 1, 6), np.zeros(6), 0.0)
        for i, c in enumerate(ramp):
            pygame.draw.rect(
                strip,
                tuple(int(v) for v in c),
                pygame.Rect(x + i * round(9 * s), y + round(6 * s), round(9 * s), round(8 * s)),
            )
        text = self.text.render("link load", 15, theme.TEXT_DIM)
        strip.blit(text, (x + round(62 * s), y + round(10 * s) - text.get_height() // 2))
        width = x + round(62 * s) + text.get_width()
        strip = strip.subsurface(pygame.Rect(0, 0, min(width, strip.get_width()), strip.get_height())).copy()
        if width > room > 0:  # a narrow window (half a split screen): shrink it to fit
            strip = pygame.transform.smoothscale(strip, (room, max(1, round(strip.get_height() * room / width))))
        return strip

    def _inspector(self, surf: pygame.Surface, info: tuple[str, tuple[str, ...]], s: float, right: int) -> None:
        title, lines = info
        head = self.text.render(title, 18, theme.TEXT, "semibold")
        rendered = [self.text.render(line, 14, theme.TEXT_DIM) for line in lines]
        w = max([head.get_width(), *(r.get_width() for r in rendered)]) + round(32 * s)
        h = head.get_height() + sum(r.get_height() + round(3 * s) for r in rendered) + round(30 * s)
        box = pygame.Rect(right - w - round(16 * s), surf.get_height() - h - round(70 * s), w, h)
        self._panel(surf, box, 240)
        self.inspector_box = box
        y = box.y + round(14 * s)
        surf.blit(head, (box.x + round(16 * s), y))
        y += head.get_height() + round(6 * s)
        for r in rendered:
            surf.blit(r, (box.x + round(16 * s), y))
            y += r.get_height() + round(3 * s)

    def draw_help(self, surf: pygame.Surface) -> None:
        """The keys and mouse, centred: also shown when the rest of the HUD is hidden."""
        self._help(surf, self.text.scale)

    def _help(self, surf: pygame.Surface, s: float) -> None:
        rows = [
            (self.text.render(k, 18, theme.ACCENT, "semibold"), self.text.render(v, 18, theme.TEXT)) for k, v in HELP
        ]
        key_w = max(k.get_width() for k, _ in rows)
        w = key_w + max(v.get_width() for _, v in rows) + round(90 * s)
        h = sum(max(k.get_height(), v.get_height()) + round(8 * s) for k, v in rows) + round(90 * s)
        box = pygame.Rect(0, 0, w, h)
        box.center = surf.get_rect().center
        self._panel(surf, box, 245)
        title = self.text.render("Keys and mouse", 22, theme.TEXT, "bold")
        surf.blit(title, (box.x + round(30 * s), box.y + round(22 * s)))
        y = box.y + round(66 * s)
        for k, v in rows:
            surf.blit(k, (box.x + round(30 * s), y))
            surf.blit(v, (box.x + round(60 * s) + key_w, y))
            y += max(k.get_height(), v.get_height()) + round(8 * s)


class Compute:
    """Delivered PFLOPS against the allocated GPUs' peak and the site's: the headline figure, a bar and
    its last hour. Sources that cannot know what the GPUs achieve (telemetry gives utilisation only)
    show PFLOPS in use (busy GPUs x peak) instead, under that name."""

    def draw(self, hud: Hud, surf: pygame.Surface, box: pygame.Rect, model: HudModel) -> int:
        text, s, m, st = hud.text, hud.text.scale, model.metrics, model.state
        x, y, inner = box.x, box.y, box.w
        delivered = m.get("pflops_delivered", math.nan)
        honest = math.isfinite(delivered)
        key = "pflops_delivered" if honest else "pflops"
        title = "COMPUTE DELIVERED" if honest else "COMPUTE IN USE"
        surf.blit(text.render(title, 13, theme.TEXT_DIM, "semibold"), (x, y))
        y += round(20 * s)
        value = m.get(key, 0.0)
        if not math.isfinite(value):  # recorded telemetry with a gap here
            value = 0.0
        big = text.render(_fmt(m, key, "{:,.0f}"), 46, theme.TEXT, "bold")
        surf.blit(big, (x, y))
        unit = text.render(f"/ {st.peak_pflops:,.0f} PFLOPS", 18, theme.TEXT_DIM, "semibold")
        surf.blit(unit, (x + big.get_width() + round(10 * s), y + big.get_height() - unit.get_height() - round(8 * s)))
        y += big.get_height() + round(6 * s)
        bar = pygame.Rect(x, y, inner, round(12 * s))
        peak = st.peak_pflops
        allocated = m.get("gpu_allocation", math.nan) * peak
        if honest and math.isfinite(allocated) and peak:
            hud.bar(surf, bar, allocated / peak, theme.ACCENT_DIM)  # the allocated GPUs' peak behind
            filled = bar.copy()
            filled.w = max(bar.h, round(bar.w * min(max(value / peak, 0.0), 1.0)))
            pygame.draw.rect(surf, theme.ACCENT, filled, border_radius=bar.h // 2)
        else:
            hud.bar(surf, bar, value / peak if peak else 0.0, theme.ACCENT)
        y += round(18 * s)
        if honest and math.isfinite(allocated) and allocated > 0:
            note = f"of {allocated:,.0f} allocated: {value / allocated:.0%} of their peak (MFU)"
            surf.blit(text.render(note, 13, theme.TEXT_DIM), (x, y))
            y += round(20 * s)
        spark = pygame.Rect(x, y, inner, round(44 * s))
        hud.sparkline(surf, spark, model.series.get(key), peak, theme.ACCENT)
        return y + round(56 * s)


class Figures:
    """A figure per row, its value on the left and its sparkline on the right."""

    ROWS = (  # label, series key, format, sparkline top (None: scale to the data), colour
        ("GPUs allocated", "gpu_allocation", "{:.1%}", 1.0, theme.GOOD),
        ("Facility power", "facility_mw", "{:.2f} MW", None, theme.WARN),
        ("Hottest link", "max_link_util", "{:.0%}", 1.0, theme.HOT),
    )

    def draw(self, hud: Hud, surf: pygame.Surface, box: pygame.Rect, model: HudModel) -> int:
        text, s, st = hud.text, hud.text.scale, model.state
        x, y, inner = box.x, box.y, box.w
        half = (inner - round(12 * s)) // 2
        for label, key, fmt, top, color in self.ROWS:
            surf.blit(text.render(label, 14, theme.TEXT_DIM), (x, y))
            val = text.render(_fmt(model.metrics, key, fmt), 24, theme.TEXT, "semibold")
            surf.blit(val, (x, y + round(18 * s)))
            if key == "max_link_util" and st.hottest:
                name = text.render(st.hottest, 11, theme.TEXT_FAINT)
                if name.get_width() < half:
                    surf.blit(name, (x + val.get_width() + round(8 * s), y + round(30 * s)))
            spark = pygame.Rect(x + half + round(12 * s), y + round(6 * s), half, round(38 * s))
            hud.sparkline(surf, spark, model.series.get(key), top, color)
            twin = model.series.get(f"sim_{key}")
            if twin is not None and np.isfinite(twin).any():  # a simulated twin beside a recording
                hud.trace_line(surf, spark, twin, theme.TEXT)
                tag = text.render("simulated", 11, theme.TEXT)
                surf.blit(tag, (spark.right - tag.get_width(), spark.y - tag.get_height()))
            y += round(56 * s)
        return y


class JobCounts:
    """Jobs running, queued and done, and the mean wait, in four columns."""

    def draw(self, hud: Hud, surf: pygame.Surface, box: pygame.Rect, model: HudModel) -> int:
        text, s, m = hud.text, hud.text.scale, model.metrics
        wait = m.get("mean_wait_s", 0.0)
        counts = (
            ("running", _fmt(m, "jobs_running", "{:,.0f}")),
            ("queued", _fmt(m, "jobs_queued", "{:,.0f}")),
            ("done", _fmt(m, "jobs_done", "{:,.0f}")),
            ("mean wait", fmt_duration(wait) if math.isfinite(wait) else "-"),
        )
        col = box.w // 4
        for i, (label, value) in enumerate(counts):
            surf.blit(text.render(value, 24, theme.TEXT, "semibold"), (box.x + i * col, box.y))
            surf.blit(text.render(label, 13, theme.TEXT_DIM), (box.x + i * col, box.y + round(30 * s)))
        return box.y + round(64 * s)


class BiggestJobs:
    """The largest running jobs, each clickable: colour, name, size, phase and progress."""

    def draw(self, hud: Hud, surf: pygame.Surface, box: pygame.Rect, model: HudModel) -> int:
        text, s, st = hud.text, hud.text.scale, model.state
        x, y, inner = box.x, box.y, box.w
        surf.blit(text.render("BIGGEST JOBS", 13, theme.TEXT_DIM, "semibold"), (x, y))
        y += round(24 * s)
        hud.job_rows = []
        hud.job_labels = []
        row_h = round(50 * s)
        space = box.bottom - y
        for job in model.snap.biggest_jobs(max(0, space // row_h)):
            color = tuple(int(c) for c in style.job_colors(np.array([job.id]))[0])
            row = pygame.Rect(x - round(6 * s), y - round(4 * s), inner + round(12 * s), row_h - round(4 * s))
            if st.selected_job == job.id:
                pygame.draw.rect(surf, theme.PANEL_EDGE, row, border_radius=round(6 * s))
            hud.job_rows.append((row, job.id))
            swatch = pygame.Rect(x, y + round(3 * s), round(12 * s), round(12 * s))
            pygame.draw.rect(surf, color, swatch, border_radius=round(3 * s))
            head = text.render(job_title(job), 16, theme.TEXT, "semibold")
            head_rect = surf.blit(head, (x + round(20 * s), y))
            room = inner - round(20 * s) - head.get_width() - round(12 * s)
            right = next(
                (r for r in (text.render(d, 13, theme.TEXT_DIM) for d in job_details(job)) if r.get_width() <= room),
                None,
            )
            detail_rect = None
            if right is not None:  # the longest detail that fits beside the name; none if none does
                detail_rect = surf.blit(right, (x + inner - right.get_width(), y + round(3 * s)))
            hud.job_labels.append((head_rect, detail_rect))
            if math.isfinite(job.progress):  # a live job's progress is not known: no bar rather than 0%
                bar = pygame.Rect(x + round(20 * s), y + round(26 * s), inner - round(20 * s), round(7 * s))
                hud.bar(surf, bar, job.progress, color)
            y += row_h
        return y


SIDE_PANEL = (Compute(), Figures(), JobCounts(), BiggestJobs())  # top to bottom


def job_title(job: JobView) -> str:
    return f"{JOB_KIND_WORDS[job.kind]} #{job.id}" if job.kind in JOB_KIND_WORDS else job.kind


def model_size(params_b: float) -> str:
    """A model's parameters as the job list says them: 101B, 2.5B, 0.35B (a small model is not "0B")."""
    if params_b >= 9.5:
        return f"{params_b:,.0f}B"
    return f"{params_b:.2g}B" if params_b < 1 else f"{params_b:.1f}".rstrip("0").rstrip(".") + "B"


def job_details(job: JobView) -> tuple[str, ...]:
    """What the job list says beside a job's name, longest first: the view shows the longest that fits."""
    size = f"  {model_size(job.params_b)}" if job.params_b > 0 else ""
    gpus = f"{job.gpus:,} GPU{'' if job.gpus == 1 else 's'}"
    full = f"{gpus}{size}  {job.phase}"
    if job.speed < 0.995 and job.phase != "checkpoint":
        full += f"  {job.speed:.0%} speed"
    return tuple(dict.fromkeys((full, f"{gpus}  {job.phase}", f"{gpus}{size}", gpus)))


def _fmt(m: dict[str, float], key: str, fmt: str) -> str:
    """A figure for the HUD; a dash where there is no value (a gap in recorded telemetry)."""
    value = m.get(key, 0.0)
    return fmt.format(value) if math.isfinite(value) else "-"
