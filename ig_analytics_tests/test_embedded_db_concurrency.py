"""Issue 11 rows 1-2: commands started at once on a fresh home share ONE embedded server; recovery never kills
a process that is not a PostgreSQL server process of this data folder; an interrupted initdb is repaired only
when the folder holds no data."""

from __future__ import annotations

import os
import signal
import subprocess

import psycopg2
import pytest

from ig_analytics.local.embedded_db import EmbeddedPostgres
from ig_analytics.local.housekeeping import bin_dir
from ig_analytics.local.procs import postgres_pids, postmaster_pids, process_alive
from ig_analytics_tests.procs import wait_until
from ig_analytics_tests.test_embedded_db import IG_ANALYTICS, cli, cli_env, libpq, ok

pytestmark = pytest.mark.slow

# Two `db start` (row 1), `accounts list` (row 2) and `status`: each starts the server if needed.
COMMANDS = [["db", "start"], ["accounts", "list"], ["db", "start"], ["status"]]


def test_four_commands_at_once_on_a_fresh_home_share_one_server_five_times(tmp_path):
    for attempt in range(5):
        home = tmp_path / f"home{attempt}"
        server = EmbeddedPostgres(home)
        procs = []
        try:
            procs = [subprocess.Popen([IG_ANALYTICS, *args], env=cli_env(home), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
                     for args in COMMANDS]
            results = [(args, *p.communicate(timeout=180), p.returncode) for args, p in zip(COMMANDS, procs)]
            for args, out, err, code in results:
                assert code == 0, f"attempt {attempt}: {' '.join(args)} exited {code}: {err.strip()[-800:]}"
            status = server.status()
            assert status.running
            assert postmaster_pids(server.data_dir) == [status.pid], f"attempt {attempt}: more than one server"
            starts = [out for args, out, _, _ in results if args == ["db", "start"]]
            assert all(f"(pid {status.pid})" in out for out in starts), starts
            assert "No accounts" in results[1][1]
            assert f"running (pid {status.pid})" in ok(home, "db", "status").stdout
            log = (server.root / "server.log").read_text(errors="replace")
            assert "lock file" not in log and "recovery mode" not in log and "PANIC" not in log
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            server.destroy()
        assert not server.root.exists()


def test_recovery_never_kills_a_process_that_is_not_this_folders_server(tmp_path, pg_url):
    """The old clean-up SIGKILLed any process of our binaries whose command line or working folder pointed at the
    data folder (another command's initdb, a psql). Now only a verified postgres of this folder is touched."""
    home = tmp_path / "home"
    server = EmbeddedPostgres(home)
    decoy = None
    try:
        ok(home, "db", "start")
        data_dir = server.data_dir
        # A psql from the same binaries, sitting in the data folder (connected to another server, waiting).
        decoy = subprocess.Popen([str(bin_dir() / "psql"), libpq(pg_url), "-v", f"folder={data_dir}"],
                                 cwd=str(data_dir), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        os.kill(server.status().pid, signal.SIGKILL)
        wait_until(lambda: not process_alive(int((data_dir / "postmaster.pid").read_text().split()[0])),
                 30, "the killed postmaster to be gone")
        restarted = cli(home, "db", "start")
        assert restarted.returncode == 0, restarted.stderr
        assert decoy.poll() is None, "the psql was killed"
        assert server.status().running
    finally:
        if decoy is not None:
            decoy.kill()
            decoy.wait()
        server.destroy()


def test_an_interrupted_initdb_is_redone_when_the_folder_holds_no_data(tmp_path):
    home = tmp_path / "home"
    server = EmbeddedPostgres(home)
    try:
        # What initdb leaves when killed early: folders and a few files, no PG_VERSION, no global/pg_control.
        (server.data_dir / "base" / "1").mkdir(parents=True)
        (server.data_dir / "global").mkdir()
        (server.data_dir / "pg_wal").mkdir()
        (server.data_dir / "postgresql.conf").write_text("# half written\n")
        result = cli(home, "db", "start")
        assert result.returncode == 0, result.stderr
        assert (server.data_dir / "global" / "pg_control").exists()
        with psycopg2.connect(libpq(server.url())) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'instagram'")
            assert cur.fetchone()[0] >= 10
    finally:
        server.destroy()


def test_a_damaged_folder_that_holds_data_is_never_reinitialised(tmp_path):
    home = tmp_path / "home"
    server = EmbeddedPostgres(home)
    try:
        ok(home, "db", "start")
        ok(home, "db", "stop")
        user_dbs = sorted(p.name for p in (server.data_dir / "base").iterdir() if int(p.name) >= 16384)
        assert user_dbs  # ig_analytics and dagster
        (server.data_dir / "PG_VERSION").unlink()
        result = cli(home, "db", "start")
        assert result.returncode == 1
        assert "holds databases" in result.stderr and str(server.data_dir) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in (server.data_dir / "base").iterdir() if int(p.name) >= 16384) == user_dbs
        assert postgres_pids(server.data_dir) == []
    finally:
        server.destroy()
