"""World-to-screen transform: zoom about a point, pan, fit. Pure arithmetic, no pygame."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

MIN_ZOOM, MAX_ZOOM = 0.5, 2000.0  # pixels per world unit


@dataclass(frozen=True)
class Camera:
    """``screen = (world - center) * zoom + viewport centre``. Immutable: every move returns a new one."""

    center: tuple[float, float]
    zoom: float
    viewport: tuple[int, int, int, int]  # x, y, w, h on screen

    def to_screen(self, world: np.ndarray) -> np.ndarray:
        vx, vy, vw, vh = self.viewport
        cx, cy = self.center
        out = np.empty_like(np.asarray(world, float))
        out[..., 0] = (world[..., 0] - cx) * self.zoom + vx + vw / 2
        out[..., 1] = (world[..., 1] - cy) * self.zoom + vy + vh / 2
        return out

    def to_world(self, screen: tuple[float, float]) -> tuple[float, float]:
        vx, vy, vw, vh = self.viewport
        return (
            (screen[0] - vx - vw / 2) / self.zoom + self.center[0],
            (screen[1] - vy - vh / 2) / self.zoom + self.center[1],
        )

    def source_rect(self, old: Camera) -> tuple[float, float, float, float]:
        """Where, in a picture drawn with camera ``old``, lies what this camera shows in its viewport
        (x0, y0, x1, y1 in ``old``'s screen pixels): a glide reuses that picture, scaled and moved."""
        vx, vy, vw, vh = self.viewport
        corners = np.array([self.to_world((vx, vy)), self.to_world((vx + vw, vy + vh))])
        (x0, y0), (x1, y1) = old.to_screen(corners)
        return float(x0), float(y0), float(x1), float(y1)

    def covered_by(self, old: Camera) -> float:
        """The share of this camera's view that a picture drawn with camera ``old`` shows."""
        x0, y0, x1, y1 = self.source_rect(old)
        ox, oy, ow, oh = old.viewport
        w = max(0.0, min(x1, ox + ow) - max(x0, ox))
        h = max(0.0, min(y1, oy + oh) - max(y0, oy))
        return w * h / max((x1 - x0) * (y1 - y0), 1e-12)

    def affine_from(self, old: Camera) -> tuple[float, tuple[float, float]]:
        """``(scale, offset)`` taking a point on screen under camera ``old`` to where this camera shows it:
        ``new = old * scale + offset`` (a glide moves what was drawn for ``old`` this way)."""
        ox, oy, ow, oh = old.viewport
        nx, ny, nw, nh = self.viewport
        scale = self.zoom / old.zoom
        off_x = nx + nw / 2 - (ox + ow / 2) * scale + (old.center[0] - self.center[0]) * self.zoom
        off_y = ny + nh / 2 - (oy + oh / 2) * scale + (old.center[1] - self.center[1]) * self.zoom
        return scale, (off_x, off_y)

    def ahead(self, last: Camera, frames: float, margin: float) -> Camera:
        """Where this camera will be in ``frames`` frames if it goes on moving as it did since ``last``,
        zoomed out by ``margin`` (a picture drawn there covers the view on the way, whatever the error)."""
        grow = (self.zoom / last.zoom) ** frames
        center = tuple(c + frames * (c - p) for c, p in zip(self.center, last.center, strict=True))
        zoom = float(np.clip(self.zoom * grow / margin, MIN_ZOOM, MAX_ZOOM))
        return replace(self, center=center, zoom=zoom)

    def zoom_at(self, screen: tuple[float, float], factor: float) -> Camera:
        """Zoom by ``factor`` keeping the world point under ``screen`` where it is."""
        wx, wy = self.to_world(screen)
        zoom = float(np.clip(self.zoom * factor, MIN_ZOOM, MAX_ZOOM))
        vx, vy, vw, vh = self.viewport
        center = (wx - (screen[0] - vx - vw / 2) / zoom, wy - (screen[1] - vy - vh / 2) / zoom)
        return replace(self, center=center, zoom=zoom)

    def pan(self, dx: float, dy: float) -> Camera:
        """Move the picture by (dx, dy) screen pixels."""
        return replace(self, center=(self.center[0] - dx / self.zoom, self.center[1] - dy / self.zoom))

    def resized(self, viewport: tuple[int, int, int, int]) -> Camera:
        return replace(self, viewport=viewport)

    @staticmethod
    def fit(
        bounds: tuple[float, float, float, float],
        viewport: tuple[int, int, int, int],
        margin: float = 0.04,
        clear_bottom: int = 0,
        clear_right: int = 0,
    ) -> Camera:
        """The camera that shows ``bounds`` whole, centred, inside ``viewport``; ``clear_bottom`` and
        ``clear_right``: screen pixels at the foot and the right of the viewport to leave free (the show's
        captions sit at the foot, the card of the job it follows at the right)."""
        x0, y0, x1, y1 = bounds
        vw, vh = max(viewport[2] - clear_right, 1), max(viewport[3] - clear_bottom, 1)
        zoom = min(vw * (1 - 2 * margin) / max(x1 - x0, 1e-9), vh * (1 - 2 * margin) / max(y1 - y0, 1e-9))
        zoom = float(np.clip(zoom, MIN_ZOOM, MAX_ZOOM))
        return Camera(((x0 + x1) / 2 + clear_right / 2 / zoom, (y0 + y1) / 2 + clear_bottom / 2 / zoom), zoom, viewport)
