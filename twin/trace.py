"""Job traces: a job log in the Helios ``cluster_log.csv`` format (or any CSV, through a column mapping)
read as a stream of jobs, one row at a time, so a trace of millions of rows never sits in memory.

Bad rows (a missing field, an end before the start, negative GPUs, a time that does not parse, a value
that is not finite or out of range, a line longer than ``MAX_LINE_CHARS``) are counted by reason with
their line numbers; reading goes on unless ``strict``. A file that cannot be read at all (not a regular
file, no header, a truncated or corrupt ``.gz``) is one error naming the file and, where known, the line.
A UTF-8 byte-order mark before the header is accepted.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from twin.errors import ScenarioError
from twin.outputs import open_input
from twin.records import quick_init
from twin.scenario import MAX_GPUS, MAX_SECONDS

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
MAX_LINE_CHARS = 65_536  # a longer line is a bad row (read past in pieces, never held whole)
MIN_TIME, MAX_TIME = 0.0, 4_102_444_800.0  # epoch seconds: 1970-01-01 to 2100-01-01
MAX_JOB_S = MAX_SECONDS  # a job's run time: at most a leap year
MAX_SPAN_S = MAX_SECONDS  # a replay covers at most a leap year from its first job
_OVERSIZED = "\ufffetwin-oversized-line"  # stands in for a line too long to read
READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)  # gzip.BadGzipFile is an OSError


class TraceError(ScenarioError):
    """A trace that cannot be read at all, or a bad row under --strict."""


@quick_init
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
    """Seconds since the epoch from a timestamp (UTC) or a plain number of seconds; ValueError unless it
    is finite and from 1970 to 2100 (``MIN_TIME`` to ``MAX_TIME``)."""
    text = text.strip()
    value = _parse_time(text)
    if not MIN_TIME <= value <= MAX_TIME:  # also NaN and infinities
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"not a time from 1970 to 2100: {shown!r}")
    return value


_DAYS: dict[str, float | None] = {}  # epoch seconds of a day's midnight (UTC), None if no such day


def _midnight(day: str) -> float | None:
    found = _DAYS.get(day, -1.0)
    if found == -1.0:
        try:
            found = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        except (ValueError, OverflowError, OSError):
            found = None
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        _DAYS[day] = found
    return found


_MINUTES: dict[str, float] = {}  # epoch seconds of a valid "YYYY-MM-DD HH:MM" (the rows of a trace share them)


def _parse_time(text: str) -> float:
    if len(text) == 19:
        minute = _MINUTES.get(text[:16])
        if minute is not None:  # a minute seen before: only its seconds are new
            sec = text[17:]
            if text[16] == ":" and sec.isascii() and sec.isdigit() and sec < "60":
                return minute + int(sec)  # whole numbers of seconds: the sum below, exactly
    if len(text) == 19 and text[4] == text[7] == "-" and text[10] == " " and text[13] == text[16] == ":":
        # The common case, YYYY-MM-DD HH:MM:SS: its day looked up once, its time of day in integers.
        hms = text[11:13] + text[14:16] + text[17:]
        digits = text[:4] + text[5:7] + text[8:10] + hms
        midnight = _midnight(text[:10]) if digits.isascii() and digits.isdigit() else None
        if midnight is not None:
            h, m, sec = int(hms[:2]), int(hms[2:4]), int(hms[4:])
            if h < 24 and m < 60 and sec < 60:
                if len(_MINUTES) >= 4096:
                    _MINUTES.clear()
                _MINUTES[text[:16]] = midnight + (h * 3600 + m * 60)
                return midnight + (h * 3600 + m * 60 + sec)
    try:
        return float(text)
    except ValueError:
        pass
    try:  # the common case, in C: 2020-05-01 00:00:00
        when = datetime.fromisoformat(text)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        pass
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except (ValueError, OverflowError, OSError):
            continue
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise ValueError(f"not a time: {shown!r}")


def format_time(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def open_text(path: Path) -> tuple[TextIO, BinaryIO]:
    """A CSV file, plain or gzipped, as text; and the file on disk, whose position tells progress.
    Only a regular file is opened (a FIFO or a device is a ScenarioError naming it). A BOM is skipped;
    bytes that are not UTF-8 become U+FFFD, so they make a bad row, not an unreadable file."""
    raw = open_input(path)
    inner = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
    return io.TextIOWrapper(inner, encoding="utf-8-sig", errors="replace", newline=""), raw


def _bounded_lines(f: TextIO) -> Iterator[str]:
    """The file's lines, each at most MAX_LINE_CHARS; a longer one is read past in pieces and stands as
    ``_OVERSIZED`` (so it becomes one bad row with its line number, and memory stays bounded)."""
    while True:
        line = f.readline(MAX_LINE_CHARS)
        if not line:
            return
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while True:
                rest = f.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith(("\n", "\r")):
                    break
            yield _OVERSIZED + "\n"
            continue
        yield line


def csv_rows(path: Path, f: TextIO, error: type[ScenarioError] = ScenarioError) -> Iterator[tuple[int, list[str], str]]:
    """``(line, row, problem)`` for every row of an open CSV file: ``problem`` is "" for a row that could
    be read, else why not (the row is then empty). A file that stops being readable (a truncated or
    corrupt ``.gz``, a read error) raises ``error`` naming the file and the line where it happened."""
    reader = csv.reader(_bounded_lines(f))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield reader.line_num, [], f"unreadable CSV: {err}"
            continue
        except READ_ERRORS as err:
            what = "a truncated or corrupt compressed file" if path.suffix == ".gz" else "a read error"
            raise error(
                str(path), f"line {reader.line_num + 1}", f"expected readable CSV, got {what} ({_describe(err)})"
            ) from None
        if len(row) == 1 and row[0] == _OVERSIZED:
            yield reader.line_num, [], f"oversized line: longer than {MAX_LINE_CHARS:,} characters"
        else:
            yield reader.line_num, row, ""


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return f"{err.__class__.__name__}: {text}" if text else err.__class__.__name__


def read_trace(
    path: Path,
    columns: dict[str, str] | None = None,
    stats: TraceStats | None = None,
    strict: bool = False,
    start: float | None = None,
    end: float | None = None,
    max_gpus: int = MAX_GPUS,
) -> Iterator[TraceJob]:
    """GPU jobs of a trace in submit order (within a reorder window), one at a time. A job asking for more
    than ``max_gpus`` (the site's GPUs) is a bad row; ``strict`` stops at the first bad row."""
    columns = columns or HELIOS_COLUMNS
    stats = stats if stats is not None else TraceStats()
    f, raw = open_text(path)
    with f, raw:
        rows = csv_rows(path, f, TraceError)
        _, header, problem = next(rows, (1, [], "an empty file"))
        if problem or not header:
            raise TraceError(str(path), "line 1", f"expected a CSV header row, got {problem or 'an empty line'}")
        index = {name.strip(): i for i, name in enumerate(header)}
        need = ["gpus", "submit"]
        need += ["duration"] if columns["duration"] in index else ["start", "end"]
        missing = [columns[k] for k in need if columns[k] not in index]
        if missing:
            found = ", ".join(header)
            found = found if len(found) <= 200 else found[:197] + "..."
            raise TraceError(
                str(path),
                "line 1",
                f"expected columns {', '.join(missing)} (map others with --columns), found {found}",
            )
        col = {k: index.get(v) for k, v in columns.items()}
        pending: list[tuple[float, int, TraceJob]] = []
        order = _Order()
        for line, row, problem in rows:
            stats.rows += 1
            if not stats.rows % 4096:
                stats.bytes_read = raw.tell()
            if problem:
                stats.problem(line, problem)
                job = None
            else:
                job = _job(row, line, col, stats, max_gpus)
            if job is None:
                if strict and stats.bad_rows:
                    raise TraceError(
                        str(path), f"line {line}", f"expected a good row with --strict, got {stats.examples[0][1]}"
                    )
                continue
            if (start is not None and job.submit < start) or (end is not None and job.submit >= end):
                stats.outside += 1
                continue
            heapq.heappush(pending, (job.submit, job.line, job))
            if len(pending) > REORDER_WINDOW:
                ready = _release(heapq.heappop(pending)[2], order, stats, strict, path)
                if ready is not None:
                    yield ready
        stats.bytes_read = raw.tell()
        while pending:
            ready = _release(heapq.heappop(pending)[2], order, stats, strict, path)
            if ready is not None:
                yield ready


@dataclass
class _Order:
    """What has been released: the last submit time (rows must not go back) and the first (a replay
    spans at most MAX_SPAN_S)."""

    last: float = float("-inf")
    first: float | None = None


def _release(job: TraceJob, order: _Order, stats: TraceStats, strict: bool, path: Path) -> TraceJob | None:
    """The job, if it may be replayed after those released before it (else counted as a bad row)."""
    problem = ""
    if job.submit < order.last:
        problem = f"out of order: submitted before a job {REORDER_WINDOW:,} rows earlier"
        expected = f"rows in submit order (within {REORDER_WINDOW:,} rows)"
    elif order.first is not None and job.submit - order.first > MAX_SPAN_S:
        problem = f"too late: submitted more than {MAX_SPAN_S / 86400:,.0f} days after the first job"
        expected = f"a trace spanning at most {MAX_SPAN_S / 86400:,.0f} days (use --from/--to)"
    if problem:
        stats.problem(job.line, problem)
        if strict:
            raise TraceError(str(path), f"line {job.line}", f"expected {expected}")
        return None
    if order.first is None:
        order.first = job.submit
    order.last = job.submit
    stats.jobs += 1
    return job


def _number(text: str) -> float | None:
    """A finite number, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _time(text: str) -> float:
    """``parse_time`` of a stripped field, a time in a minute seen before taken without a call below."""
    if len(text) == 19:
        minute = _MINUTES.get(text[:16])
        if minute is not None:
            sec = text[17:]
            if text[16] == ":" and sec.isascii() and sec.isdigit() and sec < "60":
                value = minute + int(sec)
                if MIN_TIME <= value <= MAX_TIME:
                    return value
    return parse_time(text)


def _job(row: list[str], line: int, col: dict[str, int | None], stats: TraceStats, max_gpus: int) -> TraceJob | None:
    n = len(row)

    def get(key: str) -> str:
        i = col.get(key)
        return row[i].strip() if i is not None and i < n else ""

    i = col.get("gpus")
    gpus_text = row[i].strip() if i is not None and i < n else ""
    i = col.get("submit")
    submit_text = row[i].strip() if i is not None and i < n else ""
    if not gpus_text or not submit_text:
        stats.problem(line, f"missing field: {'gpus' if not gpus_text else 'submit'}")
        return None
    value = _number(gpus_text)
    if value is None:
        stats.problem(line, f"bad GPU count: {_short(gpus_text)}")
        return None
    if value < 0:
        stats.problem(line, f"negative GPUs: {value:g}")
        return None
    if value > max_gpus:
        stats.problem(line, f"more GPUs than the site: {value:,.0f} > {max_gpus:,}")
        return None
    gpus = int(value)
    try:
        submit = _time(submit_text)
        i = col.get("start")
        start_text = row[i].strip() if i is not None and i < n else ""
        i = col.get("end")
        end_text = row[i].strip() if i is not None and i < n else ""
        started = _time(start_text) if start_text else None
        ended = _time(end_text) if end_text else None
    except ValueError as err:
        stats.problem(line, f"unparseable time: {err}")
        return None
    if started is not None and ended is not None and ended < started:
        stats.problem(line, "end before start")
        return None
    if started is not None and started < submit:
        stats.problem(line, "start before submit")
        return None
    i = col.get("duration")
    duration_text = row[i].strip() if i is not None and i < n else ""
    if duration_text:
        runtime = _number(duration_text)
        if runtime is None:
            stats.problem(line, f"bad duration: {_short(duration_text)}")
            return None
        if runtime < 0:
            stats.problem(line, f"negative duration: {runtime:g}")
            return None
    elif started is not None and ended is not None:
        runtime = ended - started
    else:
        stats.problem(line, "missing field: duration (or start and end)")
        return None
    if runtime > MAX_JOB_S:
        stats.problem(line, f"duration over a year: {runtime:,.0f} s > {MAX_JOB_S:,.0f} s")
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
        job_id=get("id")[:200] or str(line),
        gpus=gpus,
        submit=submit,
        runtime_s=runtime,
        recorded_wait_s=None if started is None else started - submit,
        outcome=OUTCOME_OF_STATE.get(state, "completed"),
    )
