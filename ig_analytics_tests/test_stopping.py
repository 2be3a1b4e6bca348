"""The stop request (ig_analytics/stopping.py): a signal reaches loops in any thread, sleeps are cut short."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from ig_analytics import stopping


@pytest.fixture(autouse=True)
def clean():
    stopping.reset()
    yield
    stopping.reset()


def test_a_stop_cuts_a_long_sleep_in_another_thread_short():
    raised = []

    def worker():
        try:
            stopping.sleep(3600)  # a throttle pause
        except stopping.Stopped as exc:
            raised.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    stopping.request_stop("SIGTERM")
    thread.join(timeout=30)  # liveness: without the stop this thread sleeps an hour
    assert not thread.is_alive() and str(raised[0]) == "stopped by SIGTERM; the next sync carries on"
    assert stopping.exit_code("SIGTERM") == 143 and stopping.exit_code("SIGINT") == 130


def test_a_signal_reaches_worker_threads_whatever_python_handler_is_installed():
    """Dagster's executor installs its own SIGINT/SIGTERM handler while a step runs (it raises in the main thread
    only): the wake-up pipe still tells the watcher, and the worker threads stop."""
    seen = threading.Event()

    def worker():
        try:
            stopping.sleep(3600)
        except stopping.Stopped:
            seen.set()

    before = signal.getsignal(signal.SIGTERM)
    with stopping.on_signals():
        previous = signal.signal(signal.SIGTERM, lambda *_: None)  # what Dagster's capture_interrupts does
        try:
            thread = threading.Thread(target=worker)
            thread.start()
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen.wait(30)
            thread.join(timeout=30)
        finally:
            signal.signal(signal.SIGTERM, previous)
    assert stopping.requested() == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are given back


def test_outside_a_run_a_signal_raises_stopped_in_the_main_thread():
    with pytest.raises(stopping.Stopped, match="stopped by SIGINT; the next sync carries on"):
        with stopping.on_signals():
            os.kill(os.getpid(), signal.SIGINT)
            stopping.sleep(30)  # the handler raises first
