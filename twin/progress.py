"""A one-line progress bar on stderr: fraction, elapsed and remaining time. Quiet when not a terminal,
apart from a final line, so logs and CI output stay readable."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: float, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1e-12)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.tty = self.stream.isatty()
        self._last = -1.0

    def update(self, done: float) -> None:
        frac = min(max(done / self.total, 0.0), 1.0)
        now = time.monotonic()
        if not self.tty or (now - self._last < 0.1 and frac < 1.0):
            return
        self._last = now
        elapsed = now - self.start
        eta = elapsed / frac * (1 - frac) if frac > 0 else 0.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {frac:6.1%}  {elapsed:5.1f}s elapsed, {eta:5.1f}s left ")
        self.stream.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.tty:
            self.update(self.total)
            self.stream.write("\n")
        else:
            self.stream.write(f"{self.label}: done in {elapsed:.1f}s\n")
        self.stream.flush()
