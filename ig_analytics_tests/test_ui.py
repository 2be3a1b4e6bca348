"""`ig-analytics ui`: webserver + daemon on 127.0.0.1 answer GraphQL through ONE shared code server (no
heartbeat-driven code servers that shut down and re-spawn under load), and SIGTERM leaves no process behind.
(How fast it stops is measured, not asserted, by benchmarks/responsiveness.py.)"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from ig_analytics_tests import procs
from ig_analytics_tests.procs import graphql, processes_with_env, running_ui, wait_until

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


def assert_one_shared_code_server(url: str, home: Path, marker: str) -> None:
    entries = graphql(url, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
        ("ig_analytics", "LOADED", "RepositoryLocation")]
    commands = {pid: _cmdline(pid) for pid in processes_with_env(marker)}
    listing = "\n".join(" ".join(c) for c in commands.values())
    code_servers = [pid for pid, c in commands.items() if "code-server" in c]
    assert len(code_servers) == 1, listing
    assert "--heartbeat" not in commands[code_servers[0]], listing
    # The one gRPC worker is the code server's own (it heartbeats it); the webserver and the daemon read the gRPC
    # workspace, so neither spawns a code server of its own.
    workers = [pid for pid, c in commands.items() if "api" in c and "grpc" in c]
    assert len(workers) == 1 and _parent(workers[0]) == code_servers[0], listing
    readers = [c for c in commands.values() if any(Path(a).name in ("dagster-webserver", "dagster-daemon") for a in c[:2])]
    assert len(readers) == 2, listing
    assert all(str(home / "dagster" / "workspace-grpc.yaml") in c for c in readers), listing


def test_ui_answers_graphql_and_stops_cleanly(tmp_path, dagster_pg_url, monkeypatch):
    home = tmp_path / "home"
    env = dict(os.environ, IG_ANALYTICS_HOME=str(home), DATABASE_URL=dagster_pg_url)
    env.pop("DAGSTER_HOME", None)
    marker = f"DAGSTER_HOME={home / 'dagster'}"
    with socket.socket() as taken:  # the first port the kernel gave out is taken before the ui binds it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], procs.free_port()])
        monkeypatch.setattr(procs, "free_port", lambda: next(ports))
        with running_ui(env, home, stop_timeout_s=120) as (url, proc):
            assert f":{taken.getsockname()[1]}/" not in url  # running_ui moved to another port
            assert graphql(url, "{ version }")["version"]
            assert_one_shared_code_server(url, home, marker)
            proc.stop(signal.SIGTERM, timeout_s=120)
            wait_until(lambda: not processes_with_env(marker), 60, "every child of `ig-analytics ui` to exit")
