"""Job traces: a job log in the Helios ``cluster_log.csv`` format (or any CSV, through a column mapping)
read as a stream of jobs, one row at a time, so a trace of millions of rows never sits in memory.

Bad rows (a missing field, an end before the start, negative GPUs, a time that does not parse) are
counted by reason with their line numbers; reading goes on unless ``strict``.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from twin.errors import ScenarioError

FIELDS = ("id", "gpus", "state", "submit", "start", "end", "duration")
HELIOS_COLUMNS = {
    "id": "job_id",
    "gpus": "gpu_num",
    "state": "state",
    "submit": "submit_time",
    "start": "start_time",
    "end": "end_time",
    "duration": "duration",
}
OUTCOME_OF_STATE = {
    "COMPLETED": "completed",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "PASS": "completed",  # Philly-style
    "PASSED": "completed",
    "KILLED": "cancelled",
}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
REORDER_WINDOW = 10_000  # rows held to put slightly out-of-order submit times back in order


class TraceError(ScenarioError):
    """A trace that cannot be read at all, or a bad row under --strict."""


@dataclass(frozen=True)
class TraceJob:
    line: int
    job_id: str
    gpus: int
    submit: float  # seconds since the epoch
    runtime_s: float
    recorded_wait_s: float | None  # start - submit, where the trace has a start time
    outcome: str  # completed | cancelled | failed


@dataclass
class TraceStats:
    """What reading found: rows, jobs, rows skipped on purpose, bad rows by reason with line numbers."""

    rows: int = 0
    bytes_read: int = 0  # of the file on disk (compressed, for .gz), for progress bars
    jobs: int = 0
    cpu_jobs: int = 0  # no GPUs: not ours to place
    never_ran: int = 0  # no start time or zero run time: cancelled while pending
    outside: int = 0  # outside --from/--to
    bad: Counter = field(default_factory=Counter)
    examples: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first few

    def problem(self, line: int, reason: str) -> None:
        self.bad[reason.split(":")[0]] += 1
        if len(self.examples) < 20:
            self.examples.append((line, reason))

    @property
    def bad_rows(self) -> int:
        return sum(self.bad.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "jobs": self.jobs,
            "cpu_jobs_skipped": self.cpu_jobs,
            "never_ran_skipped": self.never_ran,
            "outside_window": self.outside,
            "bad_rows": self.bad_rows,
            "bad_by_reason": dict(sorted(self.bad.items())),
            "bad_examples": [{"line": line, "reason": reason} for line, reason in self.examples],
        }


def parse_columns(text: str) -> dict[str, str]:
    """``id=jobid,gpus=num_gpus,...``: trace column names for our fields (unnamed ones keep Helios's)."""
    mapping = dict(HELIOS_COLUMNS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, name = part.partition("=")
        key, name = key.strip(), name.strip()
        if not sep or key not in FIELDS or not name:
            raise TraceError(
                "--columns", "", f"expected FIELD=COLUMN pairs with FIELD among {', '.join(FIELDS)}, got {part!r}"
            )
        mapping[key] = name
    return mapping


def parse_time(text: str) -> float:
    """Seconds since the epoch from a timestamp (UTC) or a plain number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:  # the common case, in C: 2020-05-01 00:00:00
        when = datetime.fromisoformat(text)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        pass
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"not a time: {text!r}")


def format_time(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def open_text(path: Path) -> tuple[TextIO, BinaryIO]:
    """A CSV file, plain or gzipped, as text; and the file on disk, whose position tells progress.
    A file that cannot be opened is a ScenarioError naming it."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "file not found") from None
    except OSError as err:
        raise ScenarioError(str(path), "", f"cannot be read ({err.strerror or err})") from None
    inner = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
    return io.TextIOWrapper(inner, encoding="utf-8", newline=""), raw


def read_trace(
    path: Path,
    columns: dict[str, str] | None = None,
    stats: TraceStats | None = None,
    strict: bool = False,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[TraceJob]:
    """GPU jobs of a trace in submit order (within a reorder window), one at a time."""
    columns = columns or HELIOS_COLUMNS
    stats = stats if stats is not None else TraceStats()
    f, raw = open_text(path)
    with f, raw:
        try:
            reader = csv.reader(f)
            header = next(reader, None)
        except (UnicodeDecodeError, OSError, csv.Error) as err:
            raise TraceError(str(path), "line 1", f"expected a CSV header row ({err.__class__.__name__})") from None
        if header is None:
            raise TraceError(str(path), "line 1", "expected a CSV header row, got an empty file")
        index = {name.strip(): i for i, name in enumerate(header)}
        need = ["gpus", "submit"]
        need += ["duration"] if columns["duration"] in index else ["start", "end"]
        missing = [columns[k] for k in need if columns[k] not in index]
        if missing:
            raise TraceError(
                str(path),
                "line 1",
                f"expected columns {', '.join(missing)} (map others with --columns), found {', '.join(header)}",
            )
        col = {k: index.get(v) for k, v in columns.items()}
        pending: list[tuple[float, int, TraceJob]] = []
        released = float("-inf")
        line = 1
        try:
            for row in reader:
                line += 1
                stats.rows += 1
                if not line % 4096:
                    stats.bytes_read = raw.tell()
                job = _job(row, line, col, stats)
                if job is None:
                    if strict and stats.bad_rows:
                        raise TraceError(
                            str(path), f"line {line}", f"a good row with --strict, got {stats.examples[0][1]}"
                        )
                    continue
                if (start is not None and job.submit < start) or (end is not None and job.submit >= end):
                    stats.outside += 1
                    continue
                heapq.heappush(pending, (job.submit, job.line, job))
                if len(pending) > REORDER_WINDOW:
                    released = yield from _release(heapq.heappop(pending)[2], released, stats, strict, path)
        except (UnicodeDecodeError, csv.Error, OSError, EOFError) as err:
            raise TraceError(
                str(path), f"line {line + 1}", f"expected readable CSV ({err.__class__.__name__}: {err})"
            ) from None
        stats.bytes_read = raw.tell()
        while pending:
            released = yield from _release(heapq.heappop(pending)[2], released, stats, strict, path)


def _release(job: TraceJob, released: float, stats: TraceStats, strict: bool, path: Path) -> Iterator[TraceJob]:
    if job.submit < released:
        stats.problem(job.line, f"out of order: submitted before a job {REORDER_WINDOW:,} rows earlier")
        if strict:
            raise TraceError(str(path), f"line {job.line}", "expected rows in submit order (within 10,000 rows)")
        return released
    stats.jobs += 1
    yield job
    return job.submit


def _job(row: list[str], line: int, col: dict[str, int | None], stats: TraceStats) -> TraceJob | None:
    def get(key: str) -> str:
        i = col.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    gpus_text, submit_text = get("gpus"), get("submit")
    if not gpus_text or not submit_text:
        stats.problem(line, f"missing field: {'gpus' if not gpus_text else 'submit'}")
        return None
    try:
        gpus = int(float(gpus_text))
    except ValueError:
        stats.problem(line, f"bad GPU count: {gpus_text!r}")
        return None
    if gpus < 0:
        stats.problem(line, f"negative GPUs: {gpus}")
        return None
    try:
        submit = parse_time(submit_text)
        start_text, end_text = get("start"), get("end")
        started = parse_time(start_text) if start_text else None
        ended = parse_time(end_text) if end_text else None
    except ValueError as err:
        stats.problem(line, f"unparseable time: {err}")
        return None
    if started is not None and ended is not None and ended < started:
        stats.problem(line, "end before start")
        return None
    if started is not None and started < submit:
        stats.problem(line, "start before submit")
        return None
    duration_text = get("duration")
    if duration_text:
        try:
            runtime = float(duration_text)
        except ValueError:
            stats.problem(line, f"bad duration: {duration_text!r}")
            return None
        if runtime < 0:
            stats.problem(line, f"negative duration: {runtime:g}")
            return None
    elif started is not None and ended is not None:
        runtime = ended - started
    else:
        stats.problem(line, "missing field: duration (or start and end)")
        return None
    if gpus == 0:
        stats.cpu_jobs += 1
        return None
    if runtime <= 0 or (col.get("start") is not None and started is None):
        stats.never_ran += 1
        return None
    state = get("state").upper()
    return TraceJob(
        line=line,
        job_id=get("id") or str(line),
        gpus=gpus,
        submit=submit,
        runtime_s=runtime,
        recorded_wait_s=None if started is None else started - submit,
        outcome=OUTCOME_OF_STATE.get(state, "completed"),
    )
