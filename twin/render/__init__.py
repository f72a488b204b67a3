"""The live view: pygame drawing of a simulation's snapshots. The only package that imports pygame."""

import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def prefer_native_framebuffer(environ: dict[str, str] = os.environ, platform: str = sys.platform) -> None:
    """Present frames through X11's shared-memory framebuffer rather than an OpenGL texture.

    SDL 2 on X11 presents the window surface through a streaming texture by default. Where OpenGL is a
    software renderer (no GPU, Xvfb, many kiosk PCs) that costs 13 to 22 ms a frame at 1920x1080, most
    of it waiting on the rasteriser's threads; the shared-memory path copies the same pixels in under
    1 ms and needs no GPU. Our frames are drawn in software either way, so nothing is lost where a GPU
    exists. A value the user set in the environment is kept; other platforms keep SDL's choice.
    """
    if platform.startswith("linux"):
        environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")


prefer_native_framebuffer()
