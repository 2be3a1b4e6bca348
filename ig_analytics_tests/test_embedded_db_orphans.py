"""Issue 16: clusters kept in the temp folder (homes under a private folder, as root) never outlive their home:
`db start`/`db status` remove orphans, `db destroy --yes` removes a cluster wherever it lives, and a throwaway
cluster whose creator is killed outright is removed by its guard."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ig_analytics.local.embedded_db import EmbeddedPostgres
from ig_analytics.local.procs import postgres_pids, postmaster_pids, wait_for_exit
from ig_analytics_tests.procs import wait_until
from ig_analytics_tests.test_embedded_db import cli, home, ok  # noqa: F401 (home is a fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="clusters live outside their home only when run as root"),
]


@pytest.fixture()
def own_tmp(monkeypatch):
    """A temp folder of this test's own (TMPDIR, here and for the commands it runs): sweeps by other test
    sessions on the machine never see its clusters, and its sweeps never see theirs."""
    scratch = Path(tempfile.mkdtemp(prefix="ig-analytics-orphans-"))
    os.chmod(scratch, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    try:
        yield scratch
    finally:
        for root in scratch.glob("ig-analytics-postgres-*"):  # a failed test's servers
            for pid in postmaster_pids(root / "data"):
                os.kill(pid, signal.SIGQUIT)
            wait_for_exit(root / "data", 15)
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_deleted_homes_cluster_is_removed_by_the_next_db_start_of_another_home(own_tmp):
    private = Path(tempfile.mkdtemp(prefix="private-"))  # mode 0700, like `mktemp -d`
    gone_home = private / "home"
    gone = EmbeddedPostgres(gone_home)
    other = own_tmp / "other-home"
    try:
        assert gone.root.parent == own_tmp
        ok(gone_home, "db", "start")
        assert (gone.root / "home").read_text().strip() == str(gone_home.resolve())
        ok(gone_home, "db", "stop")
        shutil.rmtree(private)
        assert gone.root.exists()  # what issue 16 found: nothing removes it

        result = ok(other, "db", "start")
        assert not gone.root.exists()
        removed = [line for line in result.stdout.splitlines() if line.startswith("Removed")]
        assert len(removed) == 1 and str(gone.root) in removed[0] and "IG_ANALYTICS_HOME" in removed[0]
        assert "Removed" not in ok(other, "db", "start").stdout  # said once
    finally:
        EmbeddedPostgres(other).destroy()
        gone.destroy()


def test_a_running_orphan_is_kept_until_its_server_stops(own_tmp):
    private = Path(tempfile.mkdtemp(prefix="private-"))
    running = EmbeddedPostgres(private / "home")
    other = own_tmp / "other-home"
    try:
        running.start()
        shutil.rmtree(private)  # home deleted under a running server
        status = cli(other, "db", "status")
        assert status.returncode == 1 and "Removed" not in status.stdout
        assert running.root.exists() and running.status().running
        running.stop()  # the object still knows where its cluster lives
        status = cli(other, "db", "status")
        assert str(running.root) in status.stdout and not running.root.exists()
    finally:
        running.destroy()


def test_db_destroy_needs_yes_then_removes_the_cluster_wherever_it_lives(home):
    server = EmbeddedPostgres(home)
    ok(home, "db", "start")
    data_dir = server.data_dir
    refused = cli(home, "db", "destroy")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert server.status().running
    result = cli(home, "db", "destroy", "--yes")
    assert result.returncode == 0, result.stderr
    assert str(server.root) in result.stdout
    assert not server.root.exists() and postgres_pids(data_dir) == []
    assert not (home / "postgres-password").exists()
    assert home.exists()  # the rest of the home (token key, reports) stays


_CREATOR = """
import sys, tempfile, time, os
from pathlib import Path
from ig_analytics.local.embedded_db import EmbeddedPostgres
from ig_analytics.local.housekeeping import cleanup_guard
home = Path(tempfile.mkdtemp(prefix="ig-analytics-guarded-"))  # private: cluster in the temp folder
guard = cleanup_guard(home)
server = EmbeddedPostgres(home)
server.start()
print(home, server.root, server.status().pid, flush=True)
time.sleep(600)
"""


def test_a_cluster_whose_creator_is_killed_is_removed_by_its_guard():
    creator = subprocess.Popen([sys.executable, "-c", _CREATOR], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    home = root = None
    try:
        ready, _, _ = select.select([creator.stdout], [], [], 120)
        line = creator.stdout.readline().split() if ready else []
        assert len(line) == 3, "the creator did not start its server"
        home, root, pid = Path(line[0]), Path(line[1]), int(line[2])
        os.killpg(creator.pid, signal.SIGKILL)  # as a timeout would: no finally, no atexit
        creator.wait()
        wait_until(lambda: not root.exists() and not home.exists(), 60, "the guard to remove the cluster")
        wait_until(lambda: postgres_pids(root / "data") == [], 10, "the server to be gone")
    finally:
        if creator.poll() is None:
            creator.kill()
            creator.wait()
        if home is not None:
            EmbeddedPostgres(home).destroy()
            shutil.rmtree(home, ignore_errors=True)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
