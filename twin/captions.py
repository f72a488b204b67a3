"""Captions timed to what really happens: a playlist's caption rules matched against the simulation's
event log (job starts, checkpoints) and its metrics (congestion), one caption on screen at a time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from twin.playlist import Caption
from twin.simulation import Simulation

KIND_WORDS = {
    "pretrain": "pre-training",
    "finetune": "fine-tuning",
    "research": "research",
    "eval": "evaluation",
    "inference": "inference",
}
EVENT_OF = {"job-start": "start", "checkpoint": "checkpoint"}
STALE_S = 10.0  # scene seconds a caption may wait for its turn before it is dropped


@dataclass(frozen=True)
class Shown:
    text: str
    since_s: float
    until_s: float


class CaptionTrack:
    """Follows one scene's simulation; ``update(t)`` returns the caption to show at scene time t."""

    def __init__(self, rules: tuple[Caption, ...], sim: Simulation, queue_size: int = 3) -> None:
        self.rules = rules
        self.sim = sim
        self.fired = [0] * len(rules)
        self.seen = sim.log_count
        self.pending: deque[tuple[str, float, float]] = deque(maxlen=queue_size)  # text, hold, when fired
        self.current: Shown | None = None
        self.history: list[tuple[float, str]] = []  # (scene time, text): what was shown
        self._t = 0.0

    def _fire(self, i: int, text: str) -> None:
        self.fired[i] += 1
        self.pending.append((text, self.rules[i].hold_s, self._t))

    def update(self, t: float) -> Shown | None:
        sim = self.sim
        self._t = t
        for i, rule in enumerate(self.rules):
            if self.fired[i] >= rule.times:
                continue
            if rule.on == "start" or (rule.on == "time" and t >= rule.at_s):
                self._fire(i, rule.text.format(**self._fields()))
        events = sim.new_log_entries(self.seen)
        self.seen = sim.log_count
        for _, what, job_id in events:
            if what == "fault":  # something broke: {alert} says what and what it hit
                for i, rule in enumerate(self.rules):
                    if rule.on == "fault" and self.fired[i] < rule.times:
                        self._fire(i, rule.text.format(**self._fields()))
                continue
            job = sim.running.get(job_id)
            if job is None:
                continue
            for i, rule in enumerate(self.rules):
                if self.fired[i] < rule.times and EVENT_OF.get(rule.on) == what and job.spec.gpus >= rule.min_gpus:
                    self._fire(i, rule.text.format(**self._fields(job.spec)))
        latest = sim.series.latest()
        for i, rule in enumerate(self.rules):
            hot = latest.get("max_link_util", 0.0) >= rule.threshold
            if rule.on == "congestion" and self.fired[i] < rule.times and hot:
                self._fire(i, rule.text.format(**self._fields()))
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

    def _fields(self, spec=None) -> dict[str, object]:
        sim = self.sim
        util = sim.flows.link_load / np.where(sim.fabric.link_cap > 0, sim.fabric.link_cap, np.inf)
        lk = int(np.argmax(util)) if len(util) else 0
        link = f"{sim.fabric.names[int(sim.fabric.link_src[lk])]} to {sim.fabric.names[int(sim.fabric.link_dst[lk])]}"
        fields: dict[str, object] = {
            "util": round(100 * float(util.max() if len(util) else 0)),
            "link": link,
            "id": "",
            "kind": "",
            "gpus": 0,
            "params_b": 0,
            "alert": sim.alerts[-1][1] if getattr(sim, "alerts", None) else "",
        }
        if spec is not None:
            fields.update(
                id=spec.id, kind=KIND_WORDS.get(spec.kind, spec.kind), gpus=spec.gpus, params_b=round(spec.params_b)
            )
        return fields
