"""Captions timed to what really happens: a playlist's caption rules matched against the snapshots' event
log (job starts, checkpoints, faults) and metrics (congestion), one caption on screen at a time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from twin.names import job_kind_word
from twin.playlist import Caption
from twin.snapshot import LogEntry, Snapshot
from twin.topology import Fabric

EVENT_OF = {"job-start": "start", "checkpoint": "checkpoint"}
STALE_S = 10.0  # scene seconds a caption may wait for its turn before it is dropped


@dataclass(frozen=True)
class Shown:
    text: str
    since_s: float
    until_s: float


class CaptionTrack:
    """Follows one scene's snapshots; ``update(t, snap)`` returns the caption to show at scene time t."""

    def __init__(self, rules: tuple[Caption, ...], fabric: Fabric, seen: int = 0, queue_size: int = 3) -> None:
        """``seen``: the last log entry already in the past when the scene starts (not news)."""
        self.rules = rules
        self.fabric = fabric
        self.fired = [0] * len(rules)
        self.seen = seen
        self.pending: deque[tuple[str, float, float]] = deque(maxlen=queue_size)  # text, hold, when fired
        self.current: Shown | None = None
        self.history: list[tuple[float, str]] = []  # (scene time, text): what was shown
        self._t = 0.0

    def _fire(self, i: int, text: str) -> None:
        self.fired[i] += 1
        self.pending.append((text, self.rules[i].hold_s, self._t))

    def update(self, t: float, snap: Snapshot) -> Shown | None:
        self._t = t
        fields = self._fields(snap)
        for i, rule in enumerate(self.rules):
            if self.fired[i] >= rule.times:
                continue
            if rule.on == "start" or (rule.on == "time" and t >= rule.at_s):
                self._fire(i, rule.text.format(**fields))
        events = snap.new_events(self.seen)
        self.seen = max(self.seen, snap.last_seq)
        for entry in events:
            if entry.what == "fault":  # something broke: {alert} says what and what it hit
                for i, rule in enumerate(self.rules):
                    if rule.on == "fault" and self.fired[i] < rule.times:
                        self._fire(i, rule.text.format(**fields))
                continue
            if entry.job_id < 0:
                continue
            for i, rule in enumerate(self.rules):
                if self.fired[i] < rule.times and EVENT_OF.get(rule.on) == entry.what and entry.gpus >= rule.min_gpus:
                    self._fire(i, rule.text.format(**(fields | job_fields(entry))))
        for i, rule in enumerate(self.rules):
            hot = snap.metrics.get("max_link_util", 0.0) >= rule.threshold
            if rule.on == "congestion" and self.fired[i] < rule.times and hot:
                self._fire(i, rule.text.format(**fields))
        if self.current is None or t >= self.current.until_s:
            while self.pending and t - self.pending[0][2] > STALE_S:  # news that waited too long is old news
                self.pending.popleft()
            if self.pending:
                text, hold, _ = self.pending.popleft()
                self.current = Shown(text, t, t + hold)
                self.history.append((t, text))
        if self.current is not None and t >= self.current.until_s:
            self.current = None
        return self.current

    def _fields(self, snap: Snapshot) -> dict[str, object]:
        """What a caption's text may quote: the hottest link now and the latest alert."""
        fab, lk = self.fabric, snap.hottest
        link = f"{fab.names[int(fab.link_src[lk])]} to {fab.names[int(fab.link_dst[lk])]}" if lk >= 0 else ""
        return {
            "util": round(100 * float(snap.link_util[lk])) if lk >= 0 else 0,
            "link": link,
            "id": "",
            "kind": "",
            "gpus": 0,
            "params_b": 0,
            "alert": snap.alerts[-1][1] if snap.alerts else "",
        }


def job_fields(entry: LogEntry) -> dict[str, object]:
    """A job's own fields for a caption, from the log entry that names it."""
    return {
        "id": entry.job_id,
        "kind": job_kind_word(entry.kind),
        "gpus": entry.gpus,
        "params_b": round(entry.params_b),
    }
