"""`ig-analytics ui`: webserver + daemon on 127.0.0.1 answer GraphQL, and SIGTERM leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes_with_env(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def wait_for_graphql(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ui exited early with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            reply = requests.post(url, json={"query": "{ version }"}, timeout=5)
            if reply.ok:
                return reply.json()
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError("the Dagster webserver did not answer in time")


def test_ui_answers_graphql_and_stops_cleanly(tmp_path, dagster_pg_url):
    port = _free_port()
    home = tmp_path / "home"
    env = dict(os.environ, IG_ANALYTICS_HOME=str(home), DATABASE_URL=dagster_pg_url)
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ig_analytics.cli", "ui", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        answer = wait_for_graphql(f"http://127.0.0.1:{port}/graphql", proc)
        assert answer["data"]["version"]
        marker = f"DAGSTER_HOME={home / 'dagster'}"
        assert len(_processes_with_env(marker)) >= 2  # webserver and daemon at least
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        proc.wait(timeout=15)
        deadline = time.monotonic() + 5
        while _processes_with_env(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_with_env(marker) == [], "a child of `ig-analytics ui` outlived it"
        assert time.monotonic() - started < 12
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
