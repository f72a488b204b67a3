"""Recorded telemetry: per-minute counts of a real cluster's virtual clusters (VCs), as in Helios's
``earth_<vc>_per_minute_2020-05.csv.gz``: GPUs in the VC, GPUs running, GPU jobs running and pending
(all jobs where a file has no GPU-job columns).

Each VC's file becomes a few numpy arrays. Problems are kept, not raised, where the rest is still usable:
malformed lines (a value that does not parse, is not finite or is out of range, a line too long, an
impossible minute such as more GPUs busy than the VC has) are skipped and counted with their line
numbers, and a stretch with no rows is a gap (``at`` answers None there), never filled in. A file that
cannot be read at all (not a regular file, a truncated or corrupt ``.gz``) is one error naming it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError
from twin.trace import csv_rows, format_time, open_text, parse_time

REQUIRED = ("time", "total_gpu_num", "running_gpu_num", "running_gpujob_num", "pending_gpujob_num")
FALLBACK = {"running_gpujob_num": "running_job_num", "pending_gpujob_num": "pending_job_num"}  # all jobs
FILE_PATTERN = re.compile(r"^(?:(?P<cluster>[a-z0-9]+)_)?(?P<vc>[A-Za-z0-9]+)_per_minute.*\.csv(?:\.gz)?$")
SIZES_FILE = "_vc_gpu_number_daily.csv"
GAP_S = 120.0  # a minute with no row is a hiccup; two or more missing minutes are a gap
MAX_VC_GPUS = 65_536  # GPUs in one VC's recording
MAX_JOBS = 10_000_000  # jobs running or pending in one VC at one minute
MAX_MIRROR_GPUS = 65_536  # all VCs together, each laid out in whole racks of 32 GPUs
MAX_FILES = 1_000  # per-minute files in one folder
MAX_ROWS = 1_100_000  # minutes read from one file: two years


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
        lines = csv_rows(path, f, TelemetryError)
        _, first, problem = next(lines, (1, [], "an empty file"))
        header = [h.strip() for h in first]
        if problem or not header:
            raise TelemetryError(str(path), "line 1", f"expected a CSV header row, got {problem or 'an empty line'}")
        wanted = [c if c in header else FALLBACK.get(c, c) for c in REQUIRED]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise TelemetryError(str(path), "line 1", f"expected columns {', '.join(missing)}")
        idx = [header.index(c) for c in wanted]
        last = float("-inf")
        for line, row, problem in lines:
            if problem:
                malformed.append((line, problem))
                continue
            if not row or not any(cell.strip() for cell in row):
                continue
            what = _problem(row, len(header), idx, last)
            if isinstance(what, str):
                malformed.append((line, what))
                continue
            if len(rows) >= MAX_ROWS:
                malformed.append((line, f"past {MAX_ROWS:,} minutes: the rest of the file is not read"))
                break
            last = what[0]
            rows.append(what)
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


def _problem(row: list[str], fields: int, idx: list[int], last: float) -> str | tuple[float, int, int, int, int]:
    """A row's values (time, GPUs, busy GPUs, running jobs, pending jobs), or what is wrong with it."""
    if len(row) != fields:
        return f"expected {fields} fields, got {len(row)}"
    try:
        t = parse_time(row[idx[0]])
    except ValueError as err:
        return str(err)
    values = []
    for i in idx[1:]:
        try:
            value = float(row[i])
        except ValueError:
            return "a number that does not parse"
        if not math.isfinite(value):
            return f"not a finite number: {row[i].strip()[:40]!r}"
        values.append(value)
    gpus, busy, running, pending = values
    if min(values) < 0:
        return "negative count"
    if gpus > MAX_VC_GPUS:
        return f"more than {MAX_VC_GPUS:,} GPUs in one VC: {gpus:,.0f}"
    if busy > gpus:
        return f"impossible: {busy:,.0f} GPUs busy of {gpus:,.0f}"
    if running > MAX_JOBS or pending > MAX_JOBS:
        return f"more than {MAX_JOBS:,} jobs: {max(running, pending):,.0f}"
    if t <= last:
        return "time not after the previous row"
    return (t, int(gpus), int(busy), int(running), int(pending))


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
    try:
        files = sorted(p for p in folder.iterdir() if FILE_PATTERN.match(p.name))
    except OSError as err:
        raise TelemetryError(str(folder), "", f"cannot be listed ({err.strerror or err})") from None
    if not files:
        raise TelemetryError(str(folder), "", "expected per-minute telemetry files (<vc>_per_minute_*.csv or .csv.gz)")
    if len(files) > MAX_FILES:
        raise TelemetryError(str(folder), "", f"expected at most {MAX_FILES:,} per-minute files, found {len(files):,}")
    vcs: list[VcSeries] = []
    notes: list[str] = []
    sizes = _daily_sizes(folder, notes)
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
    laid_out = sum(-(-max(v.size, 1) // 32) * 32 for v in vcs)
    if laid_out > MAX_MIRROR_GPUS:
        big = max(vcs, key=lambda v: v.size)
        raise TelemetryError(
            str(folder),
            "",
            f"expected VCs adding up to at most {MAX_MIRROR_GPUS:,} GPUs, got {laid_out:,} "
            f"(the largest, {big.name}, has {big.size:,})",
        )
    return Telemetry(vcs, notes)


def _daily_sizes(folder: Path, notes: list[str]) -> dict[str, list[tuple[float, int]]]:
    """(day, GPUs) per VC from a daily allocation file, if the folder has one. A value that is not a whole
    number from 0 to MAX_VC_GPUS is skipped with a note; a file that cannot be read is noted and left out
    (sizes then come from the per-minute files)."""
    sizes: dict[str, list[tuple[float, int]]] = {}
    for path in sorted(folder.glob(f"*{SIZES_FILE}"))[:MAX_FILES]:
        bad: list[int] = []
        try:
            f, raw = open_text(path)
            with f, raw:
                rows = csv_rows(path, f, TelemetryError)
                _, header, problem = next(rows, (1, [], "an empty file"))
                header = [h.strip() for h in header]
                for line, row, problem in rows:
                    if problem or len(row) != len(header):
                        bad.append(line)
                        continue
                    record = dict(zip(header, row, strict=True))
                    try:
                        day = parse_time(record.get("date") or "")
                    except ValueError:
                        bad.append(line)
                        continue
                    for vc, value in record.items():
                        if vc in ("date", "total"):
                            continue
                        try:
                            gpus = float(value)
                        except ValueError:
                            gpus = -1.0
                        if not 0 <= gpus <= MAX_VC_GPUS:
                            bad.append(line)
                            continue
                        sizes.setdefault(vc, []).append((day, int(gpus)))
        except ScenarioError as err:
            notes.append(f"{err}; VC sizes come from the per-minute files")
            continue
        if bad:
            notes.append(
                f"{path}: {len(bad)} values skipped (not a date, or not a GPU count from 0 to {MAX_VC_GPUS:,}; "
                f"first: line {bad[0]})"
            )
    return sizes
