"""`ig-analytics sync` end to end: a subprocess, the sandbox over HTTP, a real PostgreSQL, runs through Dagster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.sandbox import AccountSpec, Faults, SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import register

pytestmark = pytest.mark.slow

EXPIRED = "17841400000000003"


def _world() -> SandboxWorld:
    return SandboxWorld(  # real time, like production: the CLI reads the wall clock
        [AccountSpec("17841400000000001", "bakery", followers=850, timezone="UTC", posts=30, posts_per_day=0.6),
         AccountSpec("17841400000000002", "gym", followers=24_000, timezone="America/New_York", posts=60, posts_per_day=1.0),
         AccountSpec(EXPIRED, "expired_shop", followers=5000, timezone="Asia/Tokyo", expired_token=True)],
        seed=11,
    )


def _sync(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ig_analytics.cli", "sync", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def cli_env(engine, ig_home, pg_url):
    world = _world()
    server = SandboxServer(world, port=0)
    server.start()
    env = dict(os.environ, IG_ANALYTICS_HOME=str(ig_home), DATABASE_URL=pg_url, IG_GRAPH_API_URL=server.base_url)
    env.pop("DAGSTER_HOME", None)
    os.environ["IG_GRAPH_API_URL"] = server.base_url
    register(engine, world)
    try:
        yield env, world, server
    finally:
        os.environ.pop("IG_GRAPH_API_URL", None)
        server.stop()


def _rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def test_sync_90_days_reports_each_account_and_exits_1_for_the_expired_one(engine, cli_env):
    env, world, _ = cli_env
    started = time.monotonic()
    result = _sync(env)
    elapsed = time.monotonic() - started
    print(f"90-day full sync of 3 sandbox accounts: {elapsed:.1f} s wall time (including process start-up)")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, result.stdout
    ok = [line for line in lines if line.startswith("OK")]
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(ok) == 2 and len(failed) == 1
    assert EXPIRED in failed[0] and "accounts add" in failed[0]
    for account in world.accounts:
        assert account.token not in result.stdout + result.stderr
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    counts = dict(_rows(engine, "SELECT ig_user_id, count(*) FROM instagram.account_insights_daily GROUP BY 1"))
    assert counts == {"17841400000000001": 90, "17841400000000002": 90}
    assert _rows(engine, "SELECT max(date) FROM instagram.account_insights_daily") == [(yesterday,)]
    assert _rows(engine, "SELECT status FROM instagram.accounts WHERE ig_user_id = :i", i=EXPIRED) == [("needs_reauth",)]
    # the analytics were updated after the sync
    assert _rows(engine, "SELECT count(*) > 0 FROM instagram.media_engagement") == [(True,)]
    assert _rows(engine, "SELECT count(DISTINCT ig_user_id) >= 2 FROM instagram.performance_reports") == [(True,)]
    # the runs are in Dagster's storage, so the UI shows them
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(env["IG_ANALYTICS_HOME"]) + "/dagster"
    os.environ["IG_ANALYTICS_DAGSTER_PG_URL"] = env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://")
    try:
        instance = DagsterInstance.get()
        jobs = {run.job_name for run in instance.get_runs(limit=10)}
        assert {"account_insights_job", "media_sync_job", "reports_job"} <= jobs
        # the report's Markdown summary is materialization metadata: the asset page of the UI renders it
        from dagster import AssetKey, MarkdownMetadataValue

        event = instance.get_latest_materialization_event(AssetKey("performance_reports"))
        summary = event.asset_materialization.metadata["summary"]
        assert isinstance(summary, MarkdownMetadataValue) and "@bakery" in summary.value
        instance.dispose()
    finally:
        os.environ.pop("DAGSTER_HOME", None)


def test_a_sync_killed_midway_leaves_no_half_written_account_and_the_next_run_completes(engine, cli_env):
    env, world, server = cli_env
    world.faults = Faults(latency_ms=400)  # slow enough that the kill lands while API calls are in flight
    proc = subprocess.Popen([sys.executable, "-m", "ig_analytics.cli", "sync", "--type", "account",
                             "--account", "17841400000000001", "--account", "17841400000000002"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = _rows(engine, "SELECT count(*) FROM instagram.sync_runs WHERE status = 'running'")
            if done[0][0] >= 1:
                break
            time.sleep(0.05)
        time.sleep(0.4)  # mid-way: API calls in flight
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # the kill did land mid-sync: an account's outcome was left 'running'
    assert _rows(engine, "SELECT count(*) > 0 FROM instagram.sync_runs WHERE status = 'running'") == [(True,)]
    counts = dict(_rows(engine, "SELECT ig_user_id, count(*) FROM instagram.account_insights_daily GROUP BY 1"))
    assert all(n == 90 for n in counts.values()), counts  # an account is written whole or not at all

    world.faults = Faults()
    result = _sync(env, "--type", "account", "--account", "17841400000000001", "--account", "17841400000000002")
    assert result.returncode == 0, result.stdout + result.stderr
    stored = _rows(engine, "SELECT ig_user_id, date, views FROM instagram.account_insights_daily ORDER BY 1, 2")
    assert len(stored) == 180
    for ig_user_id, day, views in stored:
        if (date.today() - day).days >= 3:
            assert views == world.account_metric(ig_user_id, "views", day)
