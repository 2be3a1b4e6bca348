"""Long-running child processes in tests (servers, the UI): started in their own process group, their output
drained by threads into memory (a full pipe can never block them), lines read with a deadline, and the whole
group killed at the end, even when the leader has already exited."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Child:
    def __init__(self, args: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.stdout_lines: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.stdout_lines.put), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self._stderr.append), daemon=True)]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream, sink) -> None:
        for line in stream:
            sink(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def read_lines(self, n: int, timeout_s: float) -> list[str]:
        """The next ``n`` stdout lines; fails with the process's stderr when they do not come in time."""
        deadline = time.monotonic() + timeout_s
        lines = []
        while len(lines) < n:
            try:
                lines.append(self.stdout_lines.get(timeout=max(0.01, min(0.5, deadline - time.monotonic()))))
            except queue.Empty:
                if time.monotonic() > deadline or (self.proc.poll() is not None and self.stdout_lines.empty()):
                    raise AssertionError(f"expected {n} lines, got {lines} (exit {self.proc.poll()}); stderr:\n{self.stderr}")
        return lines

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> tuple[int, list[str]]:
        """Signal the process, wait for it and for its output to end; return (exit code, unread stdout lines)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout_s)
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        rest = []
        while not self.stdout_lines.empty():
            rest.append(self.stdout_lines.get_nowait())
        return code, rest

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def child(args: list[str], env: dict | None = None) -> Iterator[Child]:
    started = Child(args, env)
    try:
        yield started
    finally:
        started.kill_group()


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def processes_with_env(marker: str) -> list[int]:
    """Pids (other than ours) whose environment contains ``marker``, e.g. ``DAGSTER_HOME=/tmp/x``: finds a
    command's descendants even when they run in process groups of their own."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found
