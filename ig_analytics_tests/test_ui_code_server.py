"""`ig-analytics ui` runs ONE long-lived code server that the webserver and the daemon share (no heartbeat-driven
code servers that shut down and re-spawn under load), and the code location loads through it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import requests

from ig_analytics_tests.procs import child, processes_with_env
from ig_analytics_tests.test_ui import _free_port, wait_for_graphql

pytestmark = pytest.mark.slow

LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on RepositoryLocation { name } } } } } }"""


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_ui_shares_one_code_server_without_heartbeat(tmp_path, dagster_pg_url):
    port = _free_port()
    home = tmp_path / "home"
    env = dict(os.environ, IG_ANALYTICS_HOME=str(home), DATABASE_URL=dagster_pg_url)
    env.pop("DAGSTER_HOME", None)
    marker = f"DAGSTER_HOME={home / 'dagster'}"
    try:
        with child([sys.executable, "-m", "ig_analytics.cli", "ui", "--port", str(port)], env=env) as proc:
            wait_for_graphql(f"http://127.0.0.1:{port}/graphql", proc)
            reply = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOCATION_QUERY}, timeout=30)
            entries = reply.json()["data"]["workspaceOrError"]["locationEntries"]
            assert [(e["name"], e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
                ("ig_analytics", "LOADED", "RepositoryLocation")]

            commands = {pid: _cmdline(pid) for pid in processes_with_env(marker)}
            listing = "\n".join(" ".join(c) for c in commands.values())
            code_servers = [pid for pid, c in commands.items() if "code-server" in c]
            assert len(code_servers) == 1, listing
            assert "--heartbeat" not in commands[code_servers[0]], listing
            # The one gRPC worker is the code server's own (it heartbeats it); the webserver and the daemon read
            # the gRPC workspace, so neither spawns a code server of its own.
            workers = [pid for pid, c in commands.items() if "api" in c and "grpc" in c]
            assert len(workers) == 1 and _parent(workers[0]) == code_servers[0], listing
            readers = [c for c in commands.values()
                       if any(Path(a).name in ("dagster-webserver", "dagster-daemon") for a in c[:2])]
            assert len(readers) == 2, listing
            assert all(str(home / "dagster" / "workspace-grpc.yaml") in c for c in readers), listing
    finally:  # the children run in process groups of their own: a failed test must not leave them running
        for pid in processes_with_env(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
