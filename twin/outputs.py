"""Files the CLI reads and writes, made safe: inputs are opened only if they are regular files (a FIFO
would block forever, a device never ends), and outputs are checked before any work and written
atomically, so a run never loses what the user gave it and never leaves half a file behind.

An output is written to a temporary file beside it (``.NAME.PID.twin-tmp.SUFFIX``, same folder, so the
rename is atomic) and renamed over the target only when complete. Temporary files of runs that were
killed are removed the next time an output goes to the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from twin.errors import ScenarioError

TMP_MARK = ".twin-tmp"
_TMP_RE = re.compile(r"^\..+\.(\d+)\.twin-tmp(?:\.[^.]*)?$")


class OutputError(ScenarioError):
    """An output path that cannot or must not be written."""

    def __init__(self, path: Path | str, expected: str) -> None:
        super().__init__(str(path), "", expected)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_input(path: Path | str) -> BinaryIO:
    """Open an input for reading in binary, refusing anything but a regular file, without blocking on a
    FIFO (opened non-blocking, checked with fstat, closed if it is not a regular file)."""
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ScenarioError(source, "", "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(source, "", "expected a regular file, got a folder") from None
    except OSError as err:
        raise ScenarioError(source, "", f"cannot be read ({err.strerror or err})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ScenarioError(source, "", f"expected a regular file, got {_kind(mode)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input_text(path: Path | str, limit: int) -> str:
    """A small text input (a scenario, a playlist) as UTF-8, refused if larger than ``limit`` bytes."""
    source = str(path)
    with open_input(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ScenarioError(source, "", f"expected a file of at most {limit // 1024:,} KiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScenarioError(source, "", f"cannot be read as UTF-8 text (byte {err.start})") from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _not_an_input(path: Path, target: Path, inputs: Iterable[Path | None], what: str) -> None:
    for given in inputs:
        if given is None:
            continue
        src = Path(given).resolve()
        if target == src or (src.is_dir() and _inside(target, src)):
            where = "is an input" if target == src else f"is inside {given}, an input folder"
            raise OutputError(path, f"{where} of this run; choose another {what} path")
        with contextlib.suppress(OSError):
            if target.exists() and os.path.samefile(target, src):
                raise OutputError(path, f"is the same file as the input {given}; choose another {what} path")


def check_output(path: Path, inputs: Iterable[Path | None] = (), what: str = "output") -> Path:
    """Fail now, before any work, if ``path`` cannot be written or would clobber an input.

    Refused: a folder, a device or any other non-regular file; a missing or unwritable folder; one of the
    run's inputs (also through a link); a file inside an input folder. The folder is probed by really
    creating (and removing) a file, so a read-only file system is caught too. Stale temporary files of
    killed runs in that folder are removed.
    """
    path = Path(path)
    target = path.resolve()
    _not_an_input(path, target, inputs, what)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(path, f"{_first_file(target)} is a file, not a folder") from None
    except OSError as err:
        raise OutputError(path, f"cannot be checked ({err.strerror or err})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(path, f"is {_kind(st.st_mode)}; expected a file path for the {what}")
    folder = target.parent
    if not folder.exists():
        raise OutputError(path, f"folder {path.parent} does not exist")
    if not folder.is_dir():
        raise OutputError(path, f"{path.parent} is not a folder")
    probe_folder(folder, path)
    clean_stale(folder)
    return path


def _first_file(path: Path) -> Path:
    """The first part of ``path`` that exists and is not a folder (why a path "is not a directory")."""
    for part in reversed(path.parents):
        if part.exists() and not part.is_dir():
            return part
    return path.parent


def probe_folder(folder: Path, shown: Path | None = None) -> None:
    """Really create and remove a file in ``folder``; an OutputError if that fails."""
    try:
        fd, name = tempfile.mkstemp(prefix=".twin-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise OutputError(shown or folder, f"cannot write in {folder} ({err.strerror or err})") from None


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporary files that runs killed before they could rename them left in ``folder``."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_RE.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False) or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before the rename: hidden, same folder, same suffix (so a writer that
    picks a format by the extension, such as pygame or ffmpeg, still does)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path`` to; renamed over ``path`` if the block succeeds, removed if not
    (also on KeyboardInterrupt or a stop signal)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(path, "was not written (the writer produced no file)")
        _finish(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def discard(tmp: Path) -> None:
    """Remove a temporary file of a write that failed or was stopped (missing is fine)."""
    with contextlib.suppress(OSError):
        Path(tmp).unlink()


def commit(tmp: Path, path: Path) -> None:
    """Put a complete temporary file in place: fsync, usual permissions, atomic rename."""
    _finish(Path(tmp), Path(path))


def _finish(tmp: Path, path: Path) -> None:
    """fsync, give the file the usual permissions, and rename it into place."""
    try:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        discard(tmp)
        if err.errno == errno.ENOSPC:
            raise OutputError(path, "cannot be written: no space left on the device") from None
        raise OutputError(path, f"cannot be written ({err.strerror or err})") from None


def write_atomic(path: Path, text: str) -> None:
    """Write text via a temporary file and rename, so a failed write never leaves half a file behind."""
    with atomic_path(path) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as err:
            raise OutputError(path, f"cannot be written ({err.strerror or err})") from None


def check_output_folder(path: Path, inputs: Iterable[Path | None] = (), what: str = "frames") -> Path:
    """A folder that a run fills with new files (``record --png``): an existing folder or one that can be
    created, writable, not an input nor inside an input folder."""
    path = Path(path)
    target = path.resolve()
    _not_an_input(path, target, inputs, f"{what} folder")
    if target.exists():
        if not target.is_dir():
            raise OutputError(path, f"exists and is not a folder; expected a folder for the {what}")
        probe_folder(target, path)
        return path
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(path, f"{existing} is not a folder")
    probe_folder(existing, path)
    return path


def check_log(path: Path, inputs: Iterable[Path | None] = ()) -> Path:
    """A log file that is appended to: like an output, but its folder may be created (``logs/``)."""
    path = Path(path)
    target = path.resolve()
    _not_an_input(path, target, inputs, "log")
    parent = target.parent
    if not parent.exists():
        missing = parent
        while not missing.parent.exists():
            missing = missing.parent
        if not missing.parent.is_dir():
            raise OutputError(path, f"{missing.parent} is not a folder")
        probe_folder(missing.parent, path)
        return path
    return check_output(path, inputs, what="log")
