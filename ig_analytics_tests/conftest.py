"""Shared fixtures: one real, throwaway PostgreSQL for the whole test session (the embedded server), and a
freshly migrated, empty ``instagram`` schema for each test that asks for it."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from ig_analytics.local.embedded_db import ANALYTICS_DB, DAGSTER_DB, EmbeddedPostgres
from ig_analytics.local.housekeeping import cleanup_guard
from ig_analytics.storage import db


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the session; removed afterwards. DATABASE_URL is ignored on purpose: tests
    drop and recreate schemas and must never touch a real database.

    Removed in ``finally`` when tests fail or pytest is interrupted (SIGTERM becomes KeyboardInterrupt here);
    if the session is killed outright (SIGKILL, a CI timeout), a watcher process removes it instead."""
    home = Path(tempfile.mkdtemp(prefix="ig-analytics-test-pg-"))
    os.chmod(home, 0o755)  # the server may run as 'nobody'
    guard = cleanup_guard(home)
    server = EmbeddedPostgres(home)
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    else:
        previous = None
    try:
        server.start()
        yield server
    finally:
        try:
            server.destroy()
            shutil.rmtree(home, ignore_errors=True)
        finally:
            guard.stdin.close()  # nothing left for it to do; lets it exit
            if previous is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    return pg_server.url(ANALYTICS_DB)


@pytest.fixture(scope="session")
def dagster_pg_url(pg_server) -> str:
    return pg_server.url(DAGSTER_DB)


@pytest.fixture()
def engine(pg_url):
    """A migrated, empty analytics schema."""
    eng = db.get_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS instagram CASCADE"))
    db.migrate(eng)
    return eng


@pytest.fixture()
def ig_home(tmp_path, monkeypatch, pg_url):
    """Environment for code that reads Settings: a private home, the test database, no webhook."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("IG_ANALYTICS_HOME", str(home))
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("IG_NOTIFY_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("IG_APP_SECRET", raising=False)
    monkeypatch.delenv("IG_TOKEN_KEY", raising=False)
    return home
