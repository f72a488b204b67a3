"""A PNG chart of a policy comparison: one panel per figure, one bar per policy (and setting), with the
spread over seeds as a whisker. Drawn with pygame on an off-screen surface, in the view's dark theme."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twin.compare import TABLE

PANELS = ("mean_gpu_utilization", "mean_wait_s", "p95_wait_s", "mean_jct_s", "spine_traffic_tb", "lost_gpu_hours")


def save_chart(summary: Sequence[dict[str, Any]], title: str, path: Path, size: tuple[int, int] = (1600, 900)) -> None:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from twin.render import style, theme
    from twin.render.text import Text

    pygame.font.init()
    w, h = size
    surf = pygame.Surface(size)
    surf.fill(theme.BG)
    text = Text(h / 1080)
    s = text.scale
    surf.blit(text.render(title, 30, theme.TEXT, "bold"), (round(40 * s), round(28 * s)))
    labels = {key: (name, fmt) for name, key, fmt in TABLE}
    cols, rows = 3, 2
    top, pad = round(110 * s), round(40 * s)
    pw, ph = (w - pad * (cols + 1)) // cols, (h - top - pad * (rows + 1)) // rows
    bars = [(f"{r['policy']}" + (f" {r['variant']}" if r["variant"] else ""), r) for r in summary]
    colors = [tuple(int(c) for c in style.job_colors([i * 3 + 1])[0]) for i in range(len(bars))]
    for n, key in enumerate(PANELS):
        x0 = pad + (n % cols) * (pw + pad)
        y0 = top + (n // cols) * (ph + pad)
        panel = pygame.Rect(x0, y0, pw, ph)
        pygame.draw.rect(surf, theme.PANEL, panel, border_radius=round(10 * s))
        name, fmt = labels[key]
        surf.blit(text.render(name.upper(), 16, theme.TEXT_DIM, "semibold"), (x0 + round(16 * s), y0 + round(12 * s)))
        values = [r[key] for _, r in bars]
        spreads = [r.get(f"{key}_sd", 0.0) for _, r in bars]
        top_value = max([v + sd for v, sd in zip(values, spreads, strict=True)] + [1e-9])
        area = pygame.Rect(x0 + round(16 * s), y0 + round(70 * s), pw - round(32 * s), ph - round(122 * s))
        slot = area.w / max(len(bars), 1)
        for i, ((label, _), v, sd) in enumerate(zip(bars, values, spreads, strict=True)):
            bh = round(area.h * v / top_value)
            bar = pygame.Rect(round(area.x + i * slot + slot * 0.15), area.bottom - bh, round(slot * 0.7), bh)
            pygame.draw.rect(surf, colors[i], bar, border_top_left_radius=4, border_top_right_radius=4)
            label_y = bar.y
            if sd > 0:  # the spread over seeds, one standard deviation each way
                y1, y2 = area.bottom - area.h * (v + sd) / top_value, area.bottom - area.h * max(v - sd, 0) / top_value
                pygame.draw.line(surf, theme.TEXT_DIM, (bar.centerx, y1), (bar.centerx, y2), max(1, round(2 * s)))
                label_y = min(label_y, round(y1))
            value = text.render(fmt.format(v), 14, theme.TEXT, "semibold")
            surf.blit(value, value.get_rect(midbottom=(bar.centerx, label_y - round(4 * s))))
            name_label = text.render(label, 13, theme.TEXT_DIM)
            surf.blit(name_label, name_label.get_rect(midtop=(bar.centerx, area.bottom + round(8 * s))))
    pygame.image.save(surf, str(path))
