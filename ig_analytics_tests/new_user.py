"""The product as a new user gets it: no DATABASE_URL, a fresh IG_ANALYTICS_HOME, the embedded PostgreSQL, and
the `ig-analytics` console script run as a subprocess. Used by the contract test and the demo end-to-end test.

Everything a NewUser starts is removed by ``destroy()``: the embedded server is stopped (``db destroy --yes``
when the command exists, else ``db stop``), then the home and any cluster folder outside it are deleted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from ig_analytics.local.embedded_db import EmbeddedPostgres

CLI = str(Path(sys.executable).parent / "ig-analytics")  # the venv's console script, as `./dev run` uses it
# Settings a developer's shell may carry that a new user does not have.
_FOREIGN_SETTINGS = (
    "DATABASE_URL", "DAGSTER_HOME", "IG_ANALYTICS_DAGSTER_PG_URL", "IG_TOKEN_KEY", "IG_APP_SECRET", "IG_APP_ID",
    "IG_NOTIFY_WEBHOOK_URL", "IG_GRAPH_API_VERSION", "IG_GRAPH_API_URL", "IG_ANALYTICS_LOG_FORMAT",
    "IG_ANALYTICS_LOG_LEVEL", "IG_ANALYTICS_SHARDS",
)


def run_cli(args: list[str], *, env: dict | None = None, input: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`ig-analytics ARGS` in its own process group; on a timeout the whole group is killed (a hung sync's
    children too), and the test fails with what the command printed so far."""
    proc = subprocess.Popen([CLI, *args], env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        pytest.fail(f"ig-analytics {' '.join(args)} did not finish in {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    finally:
        _kill_group(proc.pid)  # the group, even when its leader has exited: nothing it started may linger
    return subprocess.CompletedProcess([CLI, *args], proc.returncode, out, err)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class NewUser:
    """A fresh home; ``monkeypatch`` carries the environment so that the test process sees it too."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, label: str, **settings: str):
        self.home = Path(tempfile.mkdtemp(prefix=f"ig-analytics-{label}-"))
        os.chmod(self.home, 0o755)  # as root the server runs as 'nobody', which must reach the home
        for name in _FOREIGN_SETTINGS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IG_ANALYTICS_HOME", str(self.home))
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        self.cluster_root = EmbeddedPostgres(self.home).root  # may lie outside the home (see embedded_db)
        self._engine: sa.engine.Engine | None = None

    def run(self, *args: str, input: str | None = None, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return run_cli(list(args), env={**os.environ, **env}, input=input, timeout=timeout)

    def ok(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, f"ig-analytics {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return result

    @property
    def engine(self) -> sa.engine.Engine:
        """An engine on the URL `ig-analytics db url` prints: what an analyst would connect with."""
        if self._engine is None:
            url = self.ok("db", "url").stdout.strip()
            self._engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        return self._engine

    def has_command(self, *words: str) -> bool:
        return self.run(*words, "--help").returncode == 0

    def destroy(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        try:
            if self.has_command("db", "destroy"):
                self.run("db", "destroy", "--yes", timeout=120)
            else:
                self.run("db", "stop", timeout=120)
        finally:
            server = EmbeddedPostgres(self.home)
            if server.status().running:  # the command failed: never leave a postmaster behind
                server.stop()
            shutil.rmtree(self.cluster_root, ignore_errors=True)
            shutil.rmtree(self.home, ignore_errors=True)
