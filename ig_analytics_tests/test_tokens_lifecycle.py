"""The token lifecycle end to end: the daily schedule's job refreshes an Instagram-Login token and the next sync
uses it; a failed refresh keeps the old token and says why; an expired token raises exactly one alert (webhook
included). Sandbox over HTTP (real time, like production), real PostgreSQL, real Dagster runs. Expected values
come from the sandbox registry."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs import ingestion_assets
from ig_analytics.quality.accounts import accounts_tokens
from ig_analytics.quality.result import Severity
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.defs.token_jobs import token_maintenance_job, token_maintenance_schedule
from ig_analytics.alerts.notify import drain
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.sandbox.tokens import APP_ID, registry
from ig_analytics.settings import Settings
from ig_analytics.accounts.token_vault import TokenVault
from ig_analytics_tests.test_alerts import Receiver

pytestmark = pytest.mark.slow

SECRET = "sandbox-app-secret"
SMALL, MID, BIG = "17841400000000001", "17841400000000002", "17841400000000003"


@pytest.fixture()
def env(engine, ig_home, monkeypatch):
    world = SandboxWorld.demo(app_secret=SECRET)  # real time: the product reads the wall clock
    server = SandboxServer(world).start()
    receiver = Receiver()
    monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
    monkeypatch.setenv("IG_APP_ID", APP_ID)
    monkeypatch.setenv("IG_APP_SECRET", SECRET)
    monkeypatch.setenv("IG_NOTIFY_WEBHOOK_URL", receiver.url)
    try:
        yield world, server, receiver
    finally:
        receiver.close()
        server.stop()


def _vault() -> TokenVault:
    return TokenVault.from_settings(Settings.from_env())


def _add(ig_user_id: str, token: str, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", "accounts", "add", "--ig-user-id", ig_user_id,
                             "--token", "-", *extra], input=token + "\n", env=dict(os.environ), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _run_scheduled_job(instance) -> dg.ExecuteInProcessResult:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(timezone.utc))
    request = token_maintenance_schedule.evaluate_tick(context).run_requests[0]
    return token_maintenance_job.execute_in_process(run_config=request.run_config, instance=instance,
                                                    resources={"database": AnalyticsDatabase()}, tags=request.tags)


def _run_text(instance, result) -> str:
    """Everything the run recorded: event log messages and all metadata."""
    parts = []
    for record in instance.all_logs(result.run_id):
        parts.append(record.user_message or "")
        event = record.dagster_event
        if event is not None:
            parts.append(repr(event.event_specific_data))
    return "\n".join(parts)


def _stored(engine, ig_user_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM instagram.accounts WHERE ig_user_id = :i"), {"i": ig_user_id}).one()


def test_a_59_day_old_instagram_token_is_refreshed_by_the_schedule_and_the_next_sync_uses_it(env, engine):
    world, server, _ = env
    reg = registry(world)
    old = reg.issue_instagram_login(MID, age=timedelta(days=59))
    added = _add(MID, old)
    assert "Login kind: instagram" in added.stdout and old not in added.stdout + added.stderr
    before = _stored(engine, MID)
    assert before.token_expires_at.replace(microsecond=0) == reg.lookup(old).expires_at.replace(microsecond=0)

    with dg.instance_for_test() as instance:
        result = _run_scheduled_job(instance)
        assert result.success
        row = _stored(engine, MID)
        new = _vault().decrypt(row.token_ciphertext)
        truth = reg.lookup(new)
        assert new != old and truth.kind == "ig_login" and truth.ig_user_id == MID
        assert abs(row.token_expires_at - truth.expires_at) < timedelta(seconds=5)  # now + 60 days
        assert row.token_refreshed_at is not None and row.token_refresh_error is None
        text = _run_text(instance, result)
        assert old not in text and new not in text and MID in text

        old_uses = reg.uses(old)
        day = datetime.now(timezone.utc).date() - timedelta(days=2)  # complete in the sandbox (late data)
        synced = dg.materialize(
            [ingestion_assets.ACCOUNTS, ingestion_assets.account_insights_daily],
            selection=[ingestion_assets.account_insights_daily], instance=instance, partition_key=day.isoformat(),
            resources={"database": AnalyticsDatabase(), "graph_api": GraphApi(backoff_base_s=0.01)},
        )
        assert synced.success
        assert reg.uses(new) > 0 and reg.uses(old) == old_uses  # the sync used the new token only
        sync_text = _run_text(instance, synced)
        assert old not in sync_text and new not in sync_text
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instagram.account_insights_daily WHERE ig_user_id = :i"),
                            {"i": MID}).scalar() == 1


def test_a_failed_refresh_keeps_the_old_token_and_says_why(env, engine):
    world, server, _ = env
    young = registry(world).issue_instagram_login(SMALL, age=timedelta(hours=2))
    _add(SMALL, young)
    with engine.begin() as conn:  # our record says 2 days old; Meta (the sandbox) knows better
        conn.execute(sa.text("UPDATE instagram.accounts SET token_issued_at = now() - interval '2 days'"))
    result = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", "accounts", "refresh-tokens"],
                            env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED {SMALL}" in result.stdout and "24 hours" in result.stdout and "old token is kept" in result.stdout
    row = _stored(engine, SMALL)
    assert _vault().decrypt(row.token_ciphertext) == young
    assert "24 hours" in row.token_refresh_error
    with engine.connect() as conn:
        check = accounts_tokens(conn, datetime.now(timezone.utc))
    assert not check.passed and check.severity == Severity.WARN
    assert check.metadata["violations"]["token_refresh_failed"] == 1
    assert young not in result.stdout + result.stderr


def test_an_expired_token_raises_exactly_one_alert(env, engine):
    world, server, receiver = env
    reg = registry(world)
    now = datetime.now(timezone.utc)
    expired = reg.issue("page", ig_user_id=BIG, issued_at=now - timedelta(days=61), lifetime=timedelta(days=60))
    soon = reg.issue("page", ig_user_id=SMALL, issued_at=now - timedelta(days=55), lifetime=timedelta(days=60))
    _add(BIG, expired, "--no-verify")
    _add(SMALL, soon)
    with dg.instance_for_test() as instance:
        for _ in range(3):  # three daily runs: the alerts are not repeated
            result = _run_scheduled_job(instance)
            assert result.success
            assert expired not in _run_text(instance, result)
    assert drain(30) == 0  # webhooks are posted in the background
    with engine.connect() as conn:
        alerts = conn.execute(sa.text("SELECT ig_user_id, kind, delivery FROM instagram.notifications"
                                      " ORDER BY ig_user_id")).all()
    assert [tuple(a) for a in alerts] == [(SMALL, "token_expiring", "sent"), (BIG, "token_expired", "sent")]
    texts = [post["text"] for post in receiver.posts]
    assert len(texts) == 2
    assert any(BIG in t and "expired" in t for t in texts) and any(SMALL in t and "expires in" in t for t in texts)
    assert not any(expired in t or soon in t for t in texts)
    row = _stored(engine, BIG)
    assert row.token_expires_at.replace(microsecond=0) == reg.lookup(expired).expires_at.replace(microsecond=0)
    listed = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", "accounts", "list"], env=dict(os.environ),
                            capture_output=True, text=True, timeout=120)
    status = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", "status"], env=dict(os.environ),
                            capture_output=True, text=True, timeout=120)
    assert "token EXPIRED" in listed.stdout and "token expires in" in listed.stdout
    assert "EXPIRED" in status.stdout
    with engine.connect() as conn:
        check = accounts_tokens(conn, datetime.now(timezone.utc))
    assert not check.passed and check.severity == Severity.ERROR
    assert [s["ig_user_id"] for s in check.metadata["samples"]["token_expired"]] == [BIG]
    assert check.metadata["violations"]["token_expires_soon"] == 1
