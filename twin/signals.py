"""Clean stops on SIGTERM, SIGINT and SIGHUP, so a service manager can stop or restart the stand and a
headless run ends within a second or two, leaving no temporary file behind.

Two ways to stop, chosen when the handlers are installed:

- polled (windows: the live view, the show, replay and mirror in a window): the handler only sets a
  flag; the frame loop calls :func:`stop_requested` once a frame and leaves its loop normally. If no
  loop has seen the flag within ``ESCALATE_S`` (or a second signal comes), :class:`StopRequested` is
  raised in the main thread, so a loop that never polls, or is stuck in a long step, still ends in time.
- raising (headless loops: simulate, replay, record, compare): the handler raises
  :class:`StopRequested` in the main thread at the next bytecode, which unwinds through every
  ``finally`` (temporary files are removed by ``twin.outputs.atomic_path``) even in the middle of a
  long simulation step.

SDL converts SIGINT and SIGTERM into a quit event that the show ignores, unless told not to: installing
the handlers sets ``SDL_NO_SIGNAL_HANDLERS`` (and does it before pygame starts SDL, which leaves a signal
alone once Python has a handler for it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP")) if isinstance(s, signal.Signals)
)


class StopRequested(BaseException):
    """Raised in the main thread by a stop signal (a BaseException, like KeyboardInterrupt, so that the
    core's ``except Exception`` never swallows it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal_name(signum))

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130 for SIGINT)."""
        return 128 + self.signum


ESCALATE_S = 1.0  # a polled stop not seen by a frame loop within this long is raised instead

_flag = threading.Event()
_state: dict[str, object] = {"signum": None, "raising": False, "log": None, "timer": None}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def install_stop_handlers(log: Callable[[str], None] | None = None, raising: bool = False) -> None:
    """Make SIGTERM, SIGINT and SIGHUP request a stop. ``log`` (one line, e.g. ``logger.info``) is told
    which signal came. ``raising``: raise StopRequested at once (headless loops) instead of only setting
    the flag that a frame loop polls. Call from the main thread, before pygame.display.init()."""
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    _cancel_escalation()
    _flag.clear()
    _state.update(signum=None, raising=raising, log=log)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _handle)


def _handle(signum: int, _frame: FrameType | None) -> None:
    again = _flag.is_set()
    _flag.set()
    _state["signum"] = signum
    log = _state["log"]
    if callable(log) and not again:
        with contextlib.suppress(Exception):  # a log that cannot be written must not keep the process alive
            log(f"stop requested by {signal_name(signum)}")
    if _state["raising"] or again:
        _cancel_escalation()
        raise StopRequested(signum)
    timer = threading.Timer(ESCALATE_S, _escalate, args=(signum,))
    timer.daemon = True
    _state["timer"] = timer
    timer.start()


def _escalate(signum: int) -> None:
    """No frame loop answered the stop in time: deliver the signal again, which raises StopRequested."""
    if _state["timer"] is not None:
        signal.raise_signal(signum)


def _cancel_escalation() -> None:
    timer = _state["timer"]
    _state["timer"] = None
    if isinstance(timer, threading.Timer):
        timer.cancel()


def stop_requested() -> bool:
    """True once a stop signal has come: a frame loop checks this once a frame and leaves its loop (seeing
    it also tells the handler that the loop is stopping, so it is not raised into the loop)."""
    if _flag.is_set():
        _cancel_escalation()
        return True
    return False


def stop_signal() -> str | None:
    """The name of the signal that asked for the stop (SIGTERM, ...), or None."""
    signum = _state["signum"]
    return signal_name(signum) if isinstance(signum, int) else None


def check_stop() -> None:
    """Raise StopRequested if a stop was asked for: for loops that poll at safe points."""
    signum = _state["signum"]
    if _flag.is_set() and isinstance(signum, int):
        raise StopRequested(signum)


def request_stop(signum: int = signal.SIGTERM) -> None:
    """Ask for a stop from inside the process (tests, a quit chord handled elsewhere)."""
    _flag.set()
    _state["signum"] = signum


def reset() -> None:
    """Forget a stop request and put the default handlers back (tests; the end of a run)."""
    _cancel_escalation()
    _flag.clear()
    _state.update(signum=None, raising=False, log=None)
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


def worker_init() -> None:
    """For pool worker processes: leave stopping to the parent. Terminal Ctrl+C and a hang-up reach the
    whole process group, so workers ignore SIGINT and SIGHUP (no tracebacks from every worker); SIGTERM
    keeps its default and ends a worker quietly when the parent terminates the pool."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.SIG_IGN)
