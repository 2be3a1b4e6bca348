"""Long-running child processes in tests (servers, the UI): started in their own process group, their output
drained by threads into memory (a full pipe can never block them), lines read with a deadline, and the whole
group killed at the end, even when the leader has already exited."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str, **variables) -> dict:
    """One GraphQL request to the Dagster webserver; fails the test on an HTTP or GraphQL error."""
    reply = requests.post(url, json={"query": query, "variables": variables}, timeout=60)
    assert reply.ok, f"{reply.status_code}: {reply.text[:2000]}"
    body = reply.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for_graphql(url: str, proc: Child, timeout_s: float = 240) -> dict:
    def answer():
        if proc.proc.poll() is not None:
            raise AssertionError(f"ui exited early with {proc.proc.returncode}: {proc.stderr[-3000:]}")
        try:
            reply = requests.post(url, json={"query": "{ version }"}, timeout=10)
            return reply.json() if reply.ok else None
        except requests.RequestException:
            return None

    return wait_until(answer, timeout_s, "the Dagster webserver to answer", interval_s=1)


def kill_processes_with_env(marker: str) -> None:
    for pid in processes_with_env(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def running_ui(env: dict, home: Path, stop_timeout_s: float = 60,
               schedules: bool = False) -> Iterator[tuple[str, Child]]:
    """`ig-analytics ui` on a free port with ``env`` (IG_ANALYTICS_HOME = ``home``): yields (GraphQL URL, process)
    once the webserver answers; SIGTERM at the end, and every process of that home killed whatever happened
    (the webserver, daemon and code server run in process groups of their own). The daemon loads the schedules
    stopped (IG_ANALYTICS_SCHEDULES=off) unless ``schedules``: a tick landing mid-test would change its counts."""
    env = {**env, "IG_ANALYTICS_SCHEDULES": "on" if schedules else "off"}
    try:
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()  # closed again before the ui binds it: another process may take it meanwhile
            with child([sys.executable, "-m", "ig_analytics.cli", "ui", "--port", str(port)], env=env) as proc:
                url = f"http://127.0.0.1:{port}/graphql"
                try:
                    wait_for_graphql(url, proc)
                except AssertionError:
                    if attempt + 1 < PORT_ATTEMPTS and port_was_taken(proc.stderr):
                        kill_processes_with_env(f"DAGSTER_HOME={home / 'dagster'}")
                        continue  # the ui said its port was taken: another port
                    raise
                yield url, proc
                proc.stop(signal.SIGTERM, timeout_s=stop_timeout_s)
                return
    finally:
        kill_processes_with_env(f"DAGSTER_HOME={home / 'dagster'}")


PORT_ATTEMPTS = 3


def port_was_taken(stderr: str) -> bool:
    """Whether a server's output says its port was in use (the ui's own check, or the bind itself)."""
    return "already in use" in stderr.lower()
