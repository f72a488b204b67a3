"""Fonts from assets/, loaded once per size, and a bounded cache of rendered text surfaces."""

from __future__ import annotations

from collections import OrderedDict

import pygame

from twin.render import theme
from twin.resources import ASSETS


class Text:
    """Renders text at sizes given for a 1080-pixel-high screen, scaled to the window."""

    def __init__(self, scale: float = 1.0, cache_size: int = 1500) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self.scale = scale
        self._fonts: dict[tuple[str, int], pygame.font.Font] = {}
        self._cache: OrderedDict[tuple, pygame.Surface] = OrderedDict()
        self._cache_size = cache_size

    def set_scale(self, scale: float) -> None:
        if abs(scale - self.scale) > 1e-6:
            self.scale = scale
            self._cache.clear()

    def px(self, size: float) -> int:
        return max(8, round(size * self.scale))

    def font(self, size: float, weight: str = "regular") -> pygame.font.Font:
        key = (weight, self.px(size))
        if key not in self._fonts:
            path = ASSETS / "fonts" / theme.FONT_FILES[weight]
            self._fonts[key] = pygame.font.Font(str(path), key[1])
        return self._fonts[key]

    def render(self, text: str, size: float, color: tuple[int, int, int] = theme.TEXT, weight: str = "regular"):
        key = (text, size, color, weight, self.scale)
        surf = self._cache.get(key)
        if surf is None:
            surf = self.font(size, weight).render(text, True, color)
            self._cache[key] = surf
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return surf
