"""The heads-up display: what a visitor reads from three metres. Sizes are for a 1080-pixel-high screen
and scale with the window; text surfaces come from a cache, so a frame re-renders only what changed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pygame

from twin.render import style, theme
from twin.render.text import Text
from twin.snapshot import JobView

PANEL_W = 440  # right-hand panel width at 1080p
KIND_LABEL = {
    "pretrain": "pre-training",
    "finetune": "fine-tuning",
    "research": "research",
    "eval": "evaluation",
    "inference": "inference",
}
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
        self._panels: dict[tuple, pygame.Surface] = {}  # translucent boxes by size
        self._legend_key: tuple | None = None
        self._legend_surf: pygame.Surface | None = None

    def viewport(self, size: tuple[int, int], visible: bool) -> tuple[int, int, int, int]:
        """The part of the window left for the site picture."""
        w, h = size
        s = self.text.scale
        if not visible:
            return (0, 0, w, h)
        top, bottom = round(112 * s), round(64 * s)
        return (round(12 * s), top, w - round((PANEL_W + 36) * s), h - top - bottom)

    def draw(
        self,
        surf: pygame.Surface,
        st: HudState,
        metrics: dict[str, float],
        series: dict[str, np.ndarray],
        jobs: tuple[JobView, ...],
        now: float,
        alerts: tuple[tuple[float, str, bool], ...] = (),
    ) -> None:
        s = self.text.scale
        w, h = surf.get_size()
        self._title(surf, st, now, s)
        panel = pygame.Rect(w - round((PANEL_W + 20) * s), round(20 * s), round(PANEL_W * s), h - round(40 * s))
        self._panel(surf, panel)
        y = self._figures(surf, panel, st, metrics, series, s)
        self._jobs(surf, panel, y, jobs, st, s)
        self._legend(surf, s, h, panel.x - round(40 * s))
        self._alerts(surf, alerts, now, s, h, panel.x)
        if st.inspector:
            self._inspector(surf, st.inspector, s, panel.x)
        if st.notice:
            label = self.text.render(st.notice, 16, theme.TEXT, "semibold")
            box = label.get_rect(midbottom=(panel.x // 2, h - round(70 * s))).inflate(round(28 * s), round(14 * s))
            self._panel(surf, box)
            surf.blit(label, label.get_rect(center=box.center))
        if st.show_help:
            self._help(surf, s)

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

    def _title(self, surf: pygame.Surface, st: HudState, now: float, s: float) -> None:
        x, y = round(24 * s), round(18 * s)
        title = self.text.render(st.site, 30, theme.TEXT, "bold")
        surf.blit(title, (x, y))
        blurb = self.text.render(st.blurb, 15, theme.TEXT_DIM)
        surf.blit(blurb, (x, y + title.get_height() + round(2 * s)))
        when = fmt_clock(now) if st.epoch is None else fmt_date(st.epoch + now)
        clock = self.text.render(when, 22, theme.TEXT, "semibold")
        cy = y + title.get_height() + blurb.get_height() + round(8 * s)
        surf.blit(clock, (x, cy))
        if st.paused:
            speed, color = "paused", theme.WARN
        elif st.effective_speed < st.speed * 0.9:
            speed, color = f"{fmt_speed(st.speed)}  (running at {fmt_speed(st.effective_speed)})", theme.WARN
        else:
            speed, color = fmt_speed(st.speed), theme.ACCENT
        label = self.text.render(speed, 18, color, "semibold")
        surf.blit(label, (x + clock.get_width() + round(18 * s), cy + (clock.get_height() - label.get_height()) // 2))

    def _figures(
        self,
        surf: pygame.Surface,
        panel: pygame.Rect,
        st: HudState,
        m: dict[str, float],
        series: dict[str, np.ndarray],
        s: float,
    ) -> int:
        pad = round(20 * s)
        x, y, inner = panel.x + pad, panel.y + pad, panel.w - 2 * pad
        surf.blit(self.text.render("COMPUTE IN USE", 13, theme.TEXT_DIM, "semibold"), (x, y))
        y += round(20 * s)
        pflops = m.get("pflops", 0.0)
        if not math.isfinite(pflops):  # recorded telemetry with a gap here
            pflops = 0.0
        big = self.text.render(_fmt(m, "pflops", "{:,.0f}"), 46, theme.TEXT, "bold")
        surf.blit(big, (x, y))
        unit = self.text.render(f"/ {st.peak_pflops:,.0f} PFLOPS", 18, theme.TEXT_DIM, "semibold")
        surf.blit(unit, (x + big.get_width() + round(10 * s), y + big.get_height() - unit.get_height() - round(8 * s)))
        y += big.get_height() + round(6 * s)
        frac = pflops / st.peak_pflops if st.peak_pflops else 0.0
        self._bar(surf, pygame.Rect(x, y, inner, round(12 * s)), frac, theme.ACCENT)
        y += round(20 * s)
        self._sparkline(
            surf, pygame.Rect(x, y, inner, round(44 * s)), series.get("pflops"), st.peak_pflops, theme.ACCENT
        )
        y += round(56 * s)
        rows = (
            ("GPUs allocated", _fmt(m, "gpu_allocation", "{:.1%}"), "gpu_allocation", 1.0, theme.GOOD),
            ("Facility power", _fmt(m, "facility_mw", "{:.2f} MW"), "facility_mw", None, theme.WARN),
            ("Hottest link", _fmt(m, "max_link_util", "{:.0%}"), "max_link_util", 1.0, theme.HOT),
        )
        half = (inner - round(12 * s)) // 2
        for label, value, key, top, color in rows:
            surf.blit(self.text.render(label, 14, theme.TEXT_DIM), (x, y))
            val = self.text.render(value, 24, theme.TEXT, "semibold")
            surf.blit(val, (x, y + round(18 * s)))
            if key == "max_link_util" and st.hottest:
                name = self.text.render(st.hottest, 11, theme.TEXT_FAINT)
                if name.get_width() < half:
                    surf.blit(name, (x + val.get_width() + round(8 * s), y + round(30 * s)))
            spark = pygame.Rect(x + half + round(12 * s), y + round(6 * s), half, round(38 * s))
            self._sparkline(surf, spark, series.get(key), top, color)
            twin = series.get(f"sim_{key}")
            if twin is not None and np.isfinite(twin).any():  # a simulated twin beside a recording
                self._trace_line(surf, spark, twin, theme.TEXT)
                tag = self.text.render("simulated", 11, theme.TEXT)
                surf.blit(tag, (spark.right - tag.get_width(), spark.y - tag.get_height()))
            y += round(56 * s)
        jobs = (
            ("running", _fmt(m, "jobs_running", "{:,.0f}")),
            ("queued", _fmt(m, "jobs_queued", "{:,.0f}")),
            ("done", _fmt(m, "jobs_done", "{:,.0f}")),
            ("mean wait", fmt_duration(m["mean_wait_s"]) if math.isfinite(m.get("mean_wait_s", 0.0)) else "-"),
        )
        col = inner // 4
        for i, (label, value) in enumerate(jobs):
            surf.blit(self.text.render(value, 24, theme.TEXT, "semibold"), (x + i * col, y))
            surf.blit(self.text.render(label, 13, theme.TEXT_DIM), (x + i * col, y + round(30 * s)))
        return y + round(64 * s)

    def _jobs(
        self, surf: pygame.Surface, panel: pygame.Rect, y: int, jobs: tuple[JobView, ...], st: HudState, s: float
    ) -> None:
        pad = round(20 * s)
        x, inner = panel.x + pad, panel.w - 2 * pad
        surf.blit(self.text.render("BIGGEST JOBS", 13, theme.TEXT_DIM, "semibold"), (x, y))
        y += round(24 * s)
        self.job_rows = []
        row_h = round(50 * s)
        space = panel.bottom - pad - y
        for job in sorted(jobs, key=lambda j: (-j.gpus, j.id))[: max(0, space // row_h)]:
            color = tuple(int(c) for c in style.job_colors(np.array([job.id]))[0])
            row = pygame.Rect(x - round(6 * s), y - round(4 * s), inner + round(12 * s), row_h - round(4 * s))
            if st.selected_job == job.id:
                pygame.draw.rect(surf, theme.PANEL_EDGE, row, border_radius=round(6 * s))
            self.job_rows.append((row, job.id))
            pygame.draw.rect(
                surf, color, pygame.Rect(x, y + round(3 * s), round(12 * s), round(12 * s)), border_radius=round(3 * s)
            )
            head = f"{KIND_LABEL[job.kind]} #{job.id}" if job.kind in KIND_LABEL else job.kind
            surf.blit(self.text.render(head, 16, theme.TEXT, "semibold"), (x + round(20 * s), y))
            size = f"  {job.params_b:,.0f}B" if job.params_b > 0 else ""
            detail = f"{job.gpus:,} GPUs{size}  {job.phase}"
            if job.speed < 0.995 and job.phase != "checkpoint":
                detail += f"  {job.speed:.0%} speed"
            right = self.text.render(detail, 13, theme.TEXT_DIM)
            surf.blit(right, (x + inner - right.get_width(), y + round(3 * s)))
            self._bar(
                surf,
                pygame.Rect(x + round(20 * s), y + round(26 * s), inner - round(20 * s), round(7 * s)),
                job.progress,
                color,
            )
            y += row_h

    def _bar(self, surf: pygame.Surface, rect: pygame.Rect, frac: float, color: tuple[int, int, int]) -> None:
        radius = rect.h // 2
        pygame.draw.rect(surf, theme.BG_GLOW, rect, border_radius=radius)
        filled = rect.copy()
        filled.w = max(rect.h, round(rect.w * min(max(frac, 0.0), 1.0)))
        pygame.draw.rect(surf, color, filled, border_radius=radius)

    def _sparkline(
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

    def _trace_line(self, surf: pygame.Surface, rect: pygame.Rect, values: np.ndarray, color) -> None:
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
    ) -> None:
        """The fault ticker: the latest news, newest at the bottom, fading after a simulated hour."""
        recent = [a for a in alerts if now - a[0] < 3600.0][-3:]
        if not recent:
            return
        x = round(24 * s)
        y = h - round(52 * s) - len(recent) * round(30 * s)
        for when, text, bad in recent:
            line = f"{fmt_clock(when)[-8:-3]}  {text}"
            label = self.text.render(line, 17, theme.TEXT, "semibold")
            box = pygame.Rect(x, y, min(label.get_width() + round(40 * s), right - x - round(12 * s)), round(26 * s))
            self._panel(surf, box, 235)
            dot = theme.HOT if bad else theme.GOOD
            pygame.draw.circle(surf, dot, (box.x + round(14 * s), box.centery), round(5 * s))
            surf.blit(label, (box.x + round(26 * s), box.centery - label.get_height() // 2))
            y += round(30 * s)

    def _legend(self, surf: pygame.Surface, s: float, h: int, room: int) -> None:
        """The colour key along the bottom, drawn once per scale and shrunk if the room is narrow."""
        key = (s, room)
        if self._legend_key != key or self._legend_surf is None:
            self._legend_key = key
            self._legend_surf = self._draw_legend(s, room)
        surf.blit(self._legend_surf, (round(24 * s), h - round(44 * s)))

    def _draw_legend(self, s: float, room: int) -> pygame.Surface:
        strip = pygame.Surface((round(1400 * s), round(24 * s)), pygame.SRCALPHA)
        x, y = 0, 0
        for color, label in zip(theme.TRAFFIC, theme.TRAFFIC_LABELS, strict=True):
            pygame.draw.circle(strip, color, (x + round(6 * s), y + round(10 * s)), round(6 * s))
            text = self.text.render(label, 15, theme.TEXT_DIM)
            strip.blit(text, (x + round(18 * s), y + round(10 * s) - text.get_height() // 2))
            x += text.get_width() + round(44 * s)
        pygame.draw.rect(strip, theme.NODE_IDLE, pygame.Rect(x, y + round(3 * s), round(22 * s), round(14 * s)))
        text = self.text.render("idle server", 15, theme.TEXT_DIM)
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


def _fmt(m: dict[str, float], key: str, fmt: str) -> str:
    """A figure for the HUD; a dash where there is no value (a gap in recorded telemetry)."""
    value = m.get(key, 0.0)
    return fmt.format(value) if math.isfinite(value) else "-"
