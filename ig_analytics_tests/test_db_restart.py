"""A database restart in the middle of a sync: accounts written before it stay whole, the step's RetryPolicy
finishes the rest, and the totals match the sandbox.

The outage is placed by events, not by timing: the sandbox holds the second account's first API request
until the database is down, and the database comes back only once Dagster has recorded the step's failure."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.local.embedded_db import EmbeddedPostgres
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.storage import db
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW, materialize_account_insights, register
from ig_analytics_tests.procs import wait_until

pytestmark = pytest.mark.slow

ACCOUNT_ID = re.compile(r"/(\d{15,20})(?=/|$|\?)")


class SecondAccountGate:
    """Wraps the sandbox's request handler (the fake API, not code under test): the first request for a second
    account waits until ``release`` is set."""

    def __init__(self, sandbox: SandboxServer):
        self.reached = threading.Event()
        self.release = threading.Event()
        self.first: str | None = None
        self._handle = sandbox.api.handle
        sandbox.api.handle = self

    def __call__(self, req):
        found = ACCOUNT_ID.search(req.path)
        if found and not self.release.is_set():
            if self.first is None:
                self.first = found.group(1)
            elif found.group(1) != self.first:
                self.reached.set()
                self.release.wait(timeout=300)
        return self._handle(req)


def test_database_restart_during_a_run(ig_home, monkeypatch):
    home = Path(tempfile.mkdtemp(prefix="ig-analytics-restart-"))
    os.chmod(home, 0o755)
    server = EmbeddedPostgres(home)
    instance = dg.DagsterInstance.ephemeral()
    failures: list[BaseException] = []
    try:
        server.start()
        url = server.url()
        monkeypatch.setenv("DATABASE_URL", url)
        engine = db.get_engine(url)
        db.migrate(engine)
        world = SandboxWorld.demo(now=SANDBOX_NOW)
        with SandboxServer(world, port=0) as sandbox:
            monkeypatch.setenv("IG_GRAPH_API_URL", sandbox.base_url)
            register(engine, world)
            gate = SecondAccountGate(sandbox)

            def step_failed() -> bool:
                return any(e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
                           for run in instance.get_runs() for e in instance.all_logs(run.run_id))

            def outage():
                try:
                    wait_until(gate.reached.is_set, 120, "the run to reach its second account")
                    with engine.connect() as conn:  # one at a time: the first account is written already
                        done = conn.execute(sa.text("SELECT count(*) FROM instagram.sync_runs WHERE status = 'success'"))
                        assert done.scalar() == 1
                    engine.dispose()
                    server.stop()  # fast shutdown: open connections are cut
                    gate.release.set()  # the second account's API calls go on; its write meets the outage
                    wait_until(step_failed, 300, "the step to fail and wait for its retry", interval_s=0.1)
                    server.start()
                except BaseException as exc:  # noqa: BLE001 - reported in the test's thread below
                    failures.append(exc)
                    gate.release.set()
                    server.start()

            restarter = threading.Thread(target=outage)
            restarter.start()
            last = SANDBOX_NOW.date() - timedelta(days=4)
            try:
                result = materialize_account_insights(last - timedelta(days=59), last, instance=instance,
                                                      max_concurrent_accounts=1)
            finally:
                gate.release.set()
                restarter.join(timeout=600)
        assert failures == []
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
        instance.dispose()
        db._cached_engine.cache_clear()
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)
