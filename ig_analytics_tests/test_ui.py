"""`ig-analytics ui`: webserver + daemon on 127.0.0.1 answer GraphQL, and SIGTERM leaves no process behind.
(How fast it stops is measured, not asserted, by benchmarks/responsiveness.py.)"""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest
import requests

from ig_analytics_tests.procs import Child, child, processes_with_env, wait_until

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_ui_answers_graphql_and_stops_cleanly(tmp_path, dagster_pg_url):
    port = _free_port()
    home = tmp_path / "home"
    env = dict(os.environ, IG_ANALYTICS_HOME=str(home), DATABASE_URL=dagster_pg_url)
    env.pop("DAGSTER_HOME", None)
    marker = f"DAGSTER_HOME={home / 'dagster'}"
    try:
        with child([sys.executable, "-m", "ig_analytics.cli", "ui", "--port", str(port)], env=env) as proc:
            answer = wait_for_graphql(f"http://127.0.0.1:{port}/graphql", proc)
            assert answer["data"]["version"]
            assert len(processes_with_env(marker)) >= 2  # webserver and daemon at least
            proc.stop(signal.SIGTERM, timeout_s=120)
            wait_until(lambda: not processes_with_env(marker), 60, "every child of `ig-analytics ui` to exit")
    finally:  # the children run in process groups of their own: a failed test must not leave them running
        for pid in processes_with_env(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
