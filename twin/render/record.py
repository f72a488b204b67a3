"""Video of a scenario, headless: every frame advances the simulation by the same simulated time
(speed / fps), however long it takes to draw, and goes to ffmpeg as raw RGB (imageio-ffmpeg ships its
own ffmpeg, so nothing else needs installing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygame

from twin.outputs import commit, discard, temp_path
from twin.render.app import Frame
from twin.source import Source


def record(
    sim: Source,
    frames: int,
    fps: float,
    speed: float,
    size: tuple[int, int],
    layout: str = "hall",
    out: Path | None = None,
    png_dir: Path | None = None,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Render ``frames`` frames to an H.264 file at ``out`` or to numbered PNGs in ``png_dir``."""
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()
    if pygame.display.get_surface() is None:
        pygame.display.set_mode((64, 64))
    surface = pygame.Surface(size).convert()
    frame = Frame(sim, size, layout)
    frame.state.speed = frame.state.effective_speed = speed
    writer = None
    tmp = None
    if png_dir is None:
        import imageio_ffmpeg

        assert out is not None
        tmp = temp_path(out)  # renamed over out when complete; removed if the run fails or is stopped
        writer = imageio_ffmpeg.write_frames(
            str(tmp), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=7, macro_block_size=2
        )
        writer.send(None)
    else:
        png_dir.mkdir(parents=True, exist_ok=True)
    step = speed / fps
    done = False
    try:
        for i in range(frames):
            wall = i / fps
            if i:
                sim.advance(step)
            frame.refresh(wall)
            frame.draw(surface, wall)
            if writer is not None:
                writer.send(pygame.image.tobytes(surface, "RGB"))
            else:
                pygame.image.save(surface, str(png_dir / f"frame-{i:06d}.png"))
            if progress is not None:
                progress(i + 1)
        done = True
    finally:
        if writer is not None:
            try:
                writer.close()
            except Exception:
                if done:
                    raise
        if tmp is not None and not done:
            discard(tmp)
    if tmp is not None and out is not None:
        commit(tmp, out)
    return frames
