"""Retention deletes old Dagster runs (bounded per tick), compacts old snapshots to one per post and UTC day,
prunes old sync_runs/notifications, and never touches account_insights_daily."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs.retention import RetentionConfig, apply_retention, apply_retention_op
from ig_analytics.storage import db
from ig_analytics_tests.ops_data import UTC, add_account, add_day, add_media, add_snapshot, add_sync_run, insert, now_utc


@pytest.fixture(scope="module")
def fresh_dagster_url(dagster_pg_url):
    """A Dagster storage database of this module's own (only the job test creates runs): run counts are exact."""
    name = "dagster_retention_test"
    admin = sa.create_engine(db.normalize_url(dagster_pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = dagster_pg_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@dg.op
def noop():
    return None


@dg.job
def tiny_job():
    noop()


def at(day_offset: int, hour: int) -> datetime:
    day = now_utc().date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour), UTC)


@pytest.fixture()
def history(engine):
    with engine.begin() as conn:
        add_account(conn, "1001")
        add_media(conn, "P1", "1001", at(-101, 0))
        for hour in (1, 5, 23):
            add_snapshot(conn, "P1", "1001", at(-100, hour), likes=hour)
        for hour in (2, 3):
            add_snapshot(conn, "P1", "1001", at(-99, hour), likes=30 + hour)
        for hour in (1, 2, 3):
            add_snapshot(conn, "P1", "1001", at(-1, hour), likes=100 + hour)
        for back in (400, 200, 1):
            add_day(conn, "1001", now_utc().date() - timedelta(days=back))
        add_sync_run(conn, "old", "1001", "account", "2025-01-01", "success", started_at=at(-200, 1))
        add_sync_run(conn, "new", "1001", "account", "2026-01-01", "failed", started_at=at(-2, 1))
        insert(conn, "notifications", dedupe_key="old-sent", kind="report", payload={"text": "x"}, delivery="sent",
               created_at=at(-200, 1))
        insert(conn, "notifications", dedupe_key="old-pending", kind="report", payload={"text": "x"},
               delivery="pending", created_at=at(-200, 1))
        insert(conn, "notifications", dedupe_key="new", kind="report", payload={"text": "x"}, delivery="recorded")
    return engine


def _rows(engine, sql: str) -> list:
    with engine.connect() as conn:
        return [tuple(r) if len(r) > 1 else r[0] for r in conn.execute(sa.text(sql))]


# the defaults but no weekly snapshots (whether -100 and -99 days share an ISO week depends on today: the weekly
# compaction is test_retention_compaction's)
DAILY_ONLY = RetentionConfig(snapshot_weekly_after_days=400)


def test_retention_compacts_and_prunes_but_keeps_daily_history(history, fresh_dagster_url):
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": fresh_dagster_url}}}) as instance:
        counts = apply_retention(instance, history, DAILY_ONLY, now_utc())
    assert counts.snapshots_deleted == 3 and counts.sync_runs_deleted == 1 and counts.notifications_deleted == 1
    kept = _rows(history, "SELECT captured_at, likes FROM instagram.media_insights_snapshots ORDER BY captured_at")
    assert kept == [(at(-100, 23), 23), (at(-99, 3), 33), (at(-1, 1), 101), (at(-1, 2), 102), (at(-1, 3), 103)]
    assert len(_rows(history, "SELECT date FROM instagram.account_insights_daily")) == 3
    assert _rows(history, "SELECT dagster_run_id FROM instagram.sync_runs") == ["new"]
    assert sorted(_rows(history, "SELECT dedupe_key FROM instagram.notifications")) == ["new", "old-pending"]
    # idempotent
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": fresh_dagster_url}}}) as instance:
        again = apply_retention(instance, history, DAILY_ONLY, now_utc())
    assert (again.snapshots_deleted, again.sync_runs_deleted, again.notifications_deleted) == (0, 0, 0)


def test_retention_job_deletes_old_runs_bounded_per_tick(history, fresh_dagster_url, ig_home):
    from ig_analytics.definitions import defs

    job = defs.resolve_job_def("retention_job")
    config = dg.RunConfig(ops={apply_retention_op.name: RetentionConfig(run_max_age_days=0, max_runs_per_tick=2,
                                                                       snapshot_weekly_after_days=400)})
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": fresh_dagster_url}}}) as instance:
        old_runs = [tiny_job.execute_in_process(instance=instance).run_id for _ in range(3)]
        result = job.execute_in_process(instance=instance, run_config=config)
        assert result.success
        output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
        metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
        assert metadata["runs_deleted"] == 2 and metadata["runs_remaining"] == 1
        assert metadata["snapshots_deleted"] == 3
        remaining = {r.run_id for r in instance.get_runs()}
        assert remaining == {old_runs[2], result.run_id}  # oldest first; the retention run itself stays
        assert instance.get_records_for_run(old_runs[0]).records == []  # its events went too
    schedule = next(s for s in defs.schedules if s.name == "daily_retention")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
