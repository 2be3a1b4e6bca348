"""A database restart in the middle of a sync: accounts written before it stay whole, the step's RetryPolicy
finishes the rest, and the totals match the sandbox."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ig_analytics.embedded_db import EmbeddedPostgres
from ig_analytics.sandbox import Faults, SandboxServer, SandboxWorld
from ig_analytics.storage import db
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW, materialize_account_insights, register

pytestmark = pytest.mark.slow


def test_database_restart_during_a_run(ig_home, monkeypatch):
    home = Path(tempfile.mkdtemp(prefix="ig-analytics-restart-"))
    os.chmod(home, 0o755)
    server = EmbeddedPostgres(home)
    server.start()
    try:
        url = server.url()
        monkeypatch.setenv("DATABASE_URL", url)
        engine = db.get_engine(url)
        db.migrate(engine)
        world = SandboxWorld.demo(now=SANDBOX_NOW)
        world.faults = Faults(latency_ms=400)
        with SandboxServer(world, port=0) as sandbox:
            monkeypatch.setenv("IG_GRAPH_API_URL", sandbox.base_url)
            register(engine, world)

            def restart_after_the_first_account():
                # Accounts run one at a time here: once the first is written, the database goes away for 2.5 s,
                # which the second account's write (about 1.2 s of API calls later) cannot miss.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        done = conn.execute(sa.text("SELECT count(*) FROM instagram.sync_runs WHERE status = 'success'")).scalar()
                    if done:
                        break
                    time.sleep(0.02)
                server.stop()  # fast shutdown: open connections are cut
                time.sleep(2.5)
                server.start()

            restarter = threading.Thread(target=restart_after_the_first_account)
            restarter.start()
            last = SANDBOX_NOW.date() - timedelta(days=4)
            result = materialize_account_insights(last - timedelta(days=59), last, max_concurrent_accounts=1)
            restarter.join()
        assert result.success
        # the restart did hit the run: the step failed once and its RetryPolicy ran it again
        assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
        with engine.connect() as conn:
            counts = dict(conn.execute(sa.text(
                "SELECT ig_user_id, count(*) FROM instagram.account_insights_daily GROUP BY 1")).all())
            rows = conn.execute(sa.text("SELECT ig_user_id, date, views FROM instagram.account_insights_daily")).all()
            attempts = conn.execute(sa.text("SELECT status, count(*) FROM instagram.sync_runs GROUP BY 1")).all()
        assert counts == {a.ig_user_id: 60 for a in world.accounts}
        assert all(views == world.account_metric(i, "views", d) for i, d, views in rows)
        assert dict(attempts) == {"success": 3}  # failed attempts were updated by the retry, not duplicated
    finally:
        db._cached_engine.cache_clear()
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)
