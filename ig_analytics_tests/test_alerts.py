"""Alerts reach a (local) webhook exactly once per failing run, and never carry a token."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs import checks as C
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.defs.sensors import asset_check_failure_alert, run_failure_alert
from ig_analytics.alerts.notify import drain
from ig_analytics.redaction import forget_secret, register_secret
from ig_analytics_tests.ops_data import add_account, add_day, now_utc, postgres_instance

TOKEN = "EAAGsecretTOKEN1234567890abcdef"


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def webhook(ig_home, engine, monkeypatch):
    receiver = Receiver()
    monkeypatch.setenv("IG_NOTIFY_WEBHOOK_URL", receiver.url)
    register_secret(TOKEN)
    try:
        yield receiver
    finally:
        forget_secret(TOKEN)
        receiver.close()


def _notifications(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT kind, dedupe_key, delivery FROM instagram.notifications ORDER BY created_at"))]


def _fire_run_failure_sensor(instance, result, times: int = 2) -> None:
    run = instance.get_run_by_id(result.run_id)
    for _ in range(times):  # the daemon may evaluate a run twice (restart, cursor lag): still one alert
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_instance=instance, dagster_run=run,
            dagster_event=result.get_run_failure_event(), resources={"database": AnalyticsDatabase()},
        ).for_run_failure()
        run_failure_alert(context)
    assert drain(30) == 0  # webhooks are posted in the background


def _tick_check_sensor(instance, cursor: str | None) -> str:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"database": AnalyticsDatabase()})
    asset_check_failure_alert(context)
    assert drain(30) == 0
    return context.cursor


@dg.op
def call_graph_api():
    raise RuntimeError(f"GET https://graph.facebook.com/v25.0/me?access_token={TOKEN} failed: connection reset")


@dg.job
def failing_job():
    call_graph_api()


def test_a_failing_run_posts_exactly_one_alert_without_the_token(webhook, engine, dagster_pg_url):
    with postgres_instance(dagster_pg_url) as instance:
        cursor = _tick_check_sensor(instance, None)
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        _fire_run_failure_sensor(instance, result)
        # the check sensor sees no check failure here, and would leave a failed run to the run sensor anyway
        cursor = _tick_check_sensor(instance, cursor)
        _tick_check_sensor(instance, cursor)
    assert len(webhook.posts) == 1
    text = webhook.posts[0]["text"]
    assert result.run_id in text and "failing_job" in text and "call_graph_api" in text
    # the op's own error, not Dagster's "Error occurred while executing op" around it
    assert "- step call_graph_api: GET https://graph.facebook.com/v25.0/me?" in text and "connection reset" in text
    assert TOKEN not in text and TOKEN not in json.dumps(_notifications(engine))
    assert _notifications(engine) == [("run_failed", f"run_failed:{result.run_id}", "sent")]


def _defs_with(job):
    from ig_analytics.definitions import defs

    return dg.Definitions(assets=list(defs.assets), asset_checks=C.asset_checks, jobs=[job],
                          resources=dict(defs.resources))


def test_a_run_failed_by_a_blocking_check_is_announced_once(webhook, engine, dagster_pg_url):
    day = now_utc().date() - timedelta(days=1)
    with engine.begin() as conn:
        add_account(conn, "1001")
        add_day(conn, "1001", day, reach=-3)
    job = dg.define_asset_job("check_days", selection=dg.AssetSelection.checks(C.account_insights_checks),
                              partitions_def=C.daily_partitions)
    tags = {"dagster/asset_partition_range_start": day.isoformat(), "dagster/asset_partition_range_end": day.isoformat()}
    with postgres_instance(dagster_pg_url) as instance:
        cursor = _tick_check_sensor(instance, None)  # first tick: starts at the present
        result = _defs_with(job).resolve_job_def("check_days").execute_in_process(
            instance=instance, tags=tags, raise_on_error=False)
        assert not result.success
        cursor = _tick_check_sensor(instance, cursor)
        _fire_run_failure_sensor(instance, result)
        _tick_check_sensor(instance, cursor)
    assert len(webhook.posts) == 1, webhook.posts
    assert "account_insights_daily:account_insights_valid" in webhook.posts[0]["text"]
    assert [n[0] for n in _notifications(engine)] == ["run_failed"]


def test_a_failing_error_check_in_a_successful_run_alerts_once_until_it_recovers(webhook, engine, dagster_pg_url):
    from ig_analytics.definitions import defs

    with engine.begin() as conn:
        add_account(conn, "1001", expires_in=timedelta(days=-1))  # expired token: ERROR, not blocking
        for back in (1, 2):  # otherwise complete: only the token check fails
            add_day(conn, "1001", now_utc().date() - timedelta(days=back))
    quality = defs.resolve_job_def("data_quality_job")
    with postgres_instance(dagster_pg_url) as instance:
        cursor = _tick_check_sensor(instance, None)
        first = quality.execute_in_process(instance=instance)
        second = quality.execute_in_process(instance=instance)
        assert first.success and second.success  # non-blocking: the runs succeed, the check sensor speaks
        cursor = _tick_check_sensor(instance, cursor)
        cursor = _tick_check_sensor(instance, cursor)
        assert len(webhook.posts) == 1, webhook.posts
        assert "accounts:accounts_tokens_valid" in webhook.posts[0]["text"], webhook.posts
        assert first.run_id in webhook.posts[0]["text"], webhook.posts  # the alert names the run that found it
        assert "accounts:accounts_tokens_valid" in json.loads(cursor)["failing"]

        with engine.begin() as conn:  # fixed, then broken again: a new alert
            conn.execute(sa.text("UPDATE instagram.accounts SET token_expires_at = now() + interval '60 days'"))
        quality.execute_in_process(instance=instance)
        cursor = _tick_check_sensor(instance, cursor)
        assert json.loads(cursor)["failing"] == {}
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE instagram.accounts SET token_expires_at = now() - interval '1 day'"))
        third = quality.execute_in_process(instance=instance)
        _tick_check_sensor(instance, cursor)
    assert len(webhook.posts) == 2 and third.run_id in webhook.posts[1]["text"]
    assert [n[0] for n in _notifications(engine)] == ["checks_failed", "checks_failed"]


def test_alert_sensors_are_on_by_default():
    from ig_analytics.definitions import defs

    sensors = {s.name: s for s in defs.sensors}
    assert sensors["run_failure_alert"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["asset_check_failure_alert"].default_status == dg.DefaultSensorStatus.RUNNING
