"""Recorded telemetry: per-minute counts of a real cluster's virtual clusters (VCs), as in Helios's
``earth_<vc>_per_minute_2020-05.csv.gz``: GPUs in the VC, GPUs running, GPU jobs running and pending
(all jobs where a file has no GPU-job columns).

Each VC's file becomes a few numpy arrays. Problems are kept, not raised, where the rest is still usable:
malformed lines are skipped and counted with their line numbers, and a stretch with no rows is a gap
(``at`` answers None there), never filled in.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError
from twin.trace import format_time, open_text, parse_time

REQUIRED = ("time", "total_gpu_num", "running_gpu_num", "running_gpujob_num", "pending_gpujob_num")
FALLBACK = {"running_gpujob_num": "running_job_num", "pending_gpujob_num": "pending_job_num"}  # all jobs
FILE_PATTERN = re.compile(r"^(?:(?P<cluster>[a-z0-9]+)_)?(?P<vc>[A-Za-z0-9]+)_per_minute.*\.csv(?:\.gz)?$")
SIZES_FILE = "_vc_gpu_number_daily.csv"
GAP_S = 120.0  # a minute with no row is a hiccup; two or more missing minutes are a gap


class TelemetryError(ScenarioError):
    """Telemetry that cannot be used at all."""


@dataclass
class VcSeries:
    name: str
    source: Path
    time: np.ndarray  # epoch seconds, increasing
    total_gpus: np.ndarray
    running_gpus: np.ndarray
    running_jobs: np.ndarray
    pending_jobs: np.ndarray
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, what was wrong)
    size: int = 0  # GPUs to lay out for the VC: the most it ever had

    def at(self, t: float) -> dict[str, int] | None:
        """The minute in force at time t, or None in a gap (or outside the recording)."""
        i = int(np.searchsorted(self.time, t, side="right")) - 1
        last = i == len(self.time) - 1
        if i < 0 or t - self.time[i] >= (60.0 if last else GAP_S):  # the last row covers its own minute
            return None
        return {
            "gpus": int(self.total_gpus[i]),
            "running_gpus": int(self.running_gpus[i]),
            "running_jobs": int(self.running_jobs[i]),
            "pending_jobs": int(self.pending_jobs[i]),
        }

    def gaps(self) -> list[tuple[float, float]]:
        """(from, to) of every stretch without rows longer than a minute."""
        if len(self.time) < 2:
            return []
        d = np.diff(self.time)
        where = np.flatnonzero(d >= GAP_S)
        return [(float(self.time[i] + 60), float(self.time[i + 1])) for i in where]


def read_vc(path: Path, name: str | None = None) -> VcSeries:
    """One VC's per-minute file (.csv or .csv.gz)."""
    name = name or vc_name(path)
    f, raw = open_text(path)
    rows: list[tuple[float, int, int, int, int]] = []
    malformed: list[tuple[int, str]] = []
    with f, raw:
        try:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise TelemetryError(str(path), "line 1", "expected a CSV header row, got an empty file")
            wanted = [c if c in header else FALLBACK.get(c, c) for c in REQUIRED]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise TelemetryError(str(path), "line 1", f"expected columns {', '.join(missing)}")
            idx = [header.index(c) for c in wanted]
            last = float("-inf")
            for line, row in enumerate(reader, start=2):
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    malformed.append((line, f"expected {len(header)} fields, got {len(row)}"))
                    continue
                try:
                    t = parse_time(row[idx[0]])
                    values = [int(float(row[i])) for i in idx[1:]]
                except ValueError as err:
                    malformed.append((line, str(err).split(":")[0] or "a number or time that does not parse"))
                    continue
                if min(values) < 0:
                    malformed.append((line, "negative count"))
                    continue
                if t <= last:
                    malformed.append((line, "time not after the previous row"))
                    continue
                last = t
                rows.append((t, *values))
        except (UnicodeDecodeError, csv.Error, OSError, EOFError) as err:
            raise TelemetryError(str(path), "", f"expected readable CSV ({err.__class__.__name__})") from None
    arr = np.array(rows, float).reshape(-1, 5)
    vc = VcSeries(
        name=name,
        source=path,
        time=arr[:, 0],
        total_gpus=arr[:, 1].astype(np.int64),
        running_gpus=arr[:, 2].astype(np.int64),
        running_jobs=arr[:, 3].astype(np.int64),
        pending_jobs=arr[:, 4].astype(np.int64),
        malformed=malformed,
    )
    vc.size = int(vc.total_gpus.max()) if len(vc.time) else 0
    return vc


def vc_name(path: Path) -> str:
    m = FILE_PATTERN.match(path.name)
    return m.group("vc") if m else path.name.split(".")[0]


@dataclass
class Telemetry:
    """All the VCs of one directory, and what was said about them while loading."""

    vcs: list[VcSeries]
    notes: list[str]  # one line each: skipped VCs, malformed lines, gaps

    @property
    def start(self) -> float:
        return min(float(v.time[0]) for v in self.vcs)

    @property
    def end(self) -> float:
        return max(float(v.time[-1]) for v in self.vcs) + 60.0

    def at(self, t: float) -> dict[str, dict[str, int] | None]:
        return {v.name: v.at(t) for v in self.vcs}

    def report(self, t: float) -> dict[str, object]:
        """What scripts read: the minute at t, per VC (null for a VC in a gap)."""
        return {"time": format_time(t), "vcs": self.at(t)}


def load_telemetry(folder: Path) -> Telemetry:
    """Every ``*_per_minute_*.csv[.gz]`` of a folder; VC sizes from a ``*_vc_gpu_number_daily.csv`` there
    when it has the VC, else from the most GPUs the VC's own file ever shows."""
    if not folder.exists():
        raise TelemetryError(str(folder), "", "folder not found")
    if not folder.is_dir():
        raise TelemetryError(str(folder), "", "expected a folder of per-minute telemetry files")
    files = sorted(p for p in folder.iterdir() if FILE_PATTERN.match(p.name))
    if not files:
        raise TelemetryError(str(folder), "", "expected per-minute telemetry files (<vc>_per_minute_*.csv or .csv.gz)")
    sizes = _daily_sizes(folder)
    vcs, notes = [], []
    for path in files:
        vc = read_vc(path)
        if vc.malformed:
            line, what = vc.malformed[0]
            notes.append(f"{path}: {len(vc.malformed)} malformed lines skipped (first: line {line}: {what})")
        if not len(vc.time):
            notes.append(f"{path}: no data rows; VC {vc.name} skipped")
            continue
        days = [g for day, g in sizes.get(vc.name, []) if vc.time[0] - 86400 < day <= vc.time[-1]]
        if days:  # the VC's allocation on the recorded days
            vc.size = max(vc.size, *days)
        gaps = vc.gaps()
        if gaps:
            longest = max(gaps, key=lambda g: g[1] - g[0])
            notes.append(
                f"{path}: {len(gaps)} gaps in time, shown as gaps (longest {(longest[1] - longest[0]) / 3600:.1f} h "
                f"from {format_time(longest[0])})"
            )
        vcs.append(vc)
    if not vcs:
        skipped = ", ".join(vc_name(p) for p in files)
        raise TelemetryError(
            str(folder), "", f"expected at least one VC with data rows; every file was empty ({skipped})"
        )
    return Telemetry(vcs, notes)


def _daily_sizes(folder: Path) -> dict[str, list[tuple[float, int]]]:
    """(day, GPUs) per VC from a daily allocation file, if the folder has one."""
    sizes: dict[str, list[tuple[float, int]]] = {}
    for path in folder.glob(f"*{SIZES_FILE}"):
        try:
            with path.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    try:
                        day = parse_time(row.get("date") or "")
                    except ValueError:
                        continue
                    for vc, value in row.items():
                        if vc in ("date", "total") or vc is None:
                            continue
                        try:
                            sizes.setdefault(vc, []).append((day, int(float(value))))
                        except (TypeError, ValueError):
                            continue
        except (OSError, UnicodeDecodeError, csv.Error):
            continue  # sizes then come from the per-minute files
    return sizes
