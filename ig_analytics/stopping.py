"""A process-wide stop request: SIGTERM or SIGINT asks every loop of the process to end at its next check.

The CLI runs Dagster jobs in its own process. While a step runs, Dagster's in-process executor takes SIGINT and
SIGTERM over: it raises in the main thread only, and turns that interrupt into a *retry* of a step that has a
retry policy (the ingestion steps do), 30 s later; the worker threads fetching the accounts never hear of it. So
a paging loop that never ends, or minutes of retries, outlived both signals.

Hence :func:`on_signals` (around the whole command): both signals set this flag, whichever Python handler is
installed, through a wake-up pipe (``signal.set_wakeup_fd``: the interpreter writes each signal's number there)
read by a watcher thread; outside a Dagster run they also raise :class:`Stopped` in the main thread. The long
loops look at the flag: the Graph API transport before every request and in its sleeps (``sleep`` below), the
account runner (which lets its accounts finish stopping when Dagster's interrupt reaches it), the ingestion steps
after their accounts (they then fail without a retry), ``sync`` before and after each job. A stopped account's
transaction was never committed: nothing half-written stays. A second signal ends the process at once (the next
sync closes the runs it left open).

Signals are not blocked instead: a blocked mask is inherited by child processes (Dagster's ``tail -F`` of a step's
compute logs would then ignore the SIGTERM that ends it).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["Stopped", "request_stop", "requested", "check", "sleep", "reset", "on_signals", "wait_requested",
           "exit_code"]

_event = threading.Event()
_reason: list[str] = []  # the first reason given, e.g. "SIGTERM"
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(Exception):
    """The process was asked to stop (SIGTERM/SIGINT): the work in hand is abandoned uncommitted (an account
    records it as its failure, with this message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stopped by {reason}; the next sync carries on")
        self.reason = reason


def request_stop(reason: str) -> None:
    if not _reason:
        _reason.append(reason)
    _event.set()


def requested() -> str | None:
    """The reason a stop was asked for (e.g. "SIGTERM"), or None."""
    return _reason[0] if _event.is_set() and _reason else None


def check() -> None:
    """Raise :class:`Stopped` when a stop was asked for."""
    reason = requested()
    if reason is not None:
        raise Stopped(reason)


def sleep(seconds: float) -> None:
    """``time.sleep`` that a stop request cuts short (raising :class:`Stopped`)."""
    if _event.wait(max(0.0, seconds)):
        check()


def reset() -> None:
    """Forget a stop request (tests; a process that stops does not go on)."""
    _event.clear()
    _reason.clear()


def exit_code(reason: str) -> int:
    """The shell's convention: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
    try:
        return 128 + int(signal.Signals[reason])
    except KeyError:
        return 1


@contextmanager
def on_signals() -> Iterator[None]:
    """While inside: SIGTERM and SIGINT request a stop (and raise :class:`Stopped` in the main thread when no
    Dagster step has its own handler installed). In another thread (signals go to the main one) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum, frame):
        request_stop(signal.Signals(signum).name)
        check()

    previous = {sig: signal.signal(sig, _handler) for sig in _SIGNALS}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_fd,), name="ig-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_fd)  # the watcher reads EOF and ends
        watcher.join(timeout=5)
        os.close(read_fd)


def _watch(read_fd: int) -> None:
    numbers = {int(sig) for sig in _SIGNALS}
    seen = 0
    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if not data:
            return
        for number in (n for n in data if n in numbers):
            seen += 1
            if seen > 1:  # asked twice: do not wait for the requests in flight
                reason = requested() or signal.Signals(number).name
                os.write(2, f"ig-analytics: stopped by {reason} at once; the next sync carries on\n".encode())
                os._exit(exit_code(reason))
            request_stop(signal.Signals(number).name)


def wait_requested(timeout_s: float) -> str | None:
    """Wait up to ``timeout_s`` for a stop request (the watcher may set it a moment after a handler ran)."""
    _event.wait(timeout_s)
    return requested()
