"""The Dagster definitions load (as `dagster dev` / the webserver would load them) with the expected graph."""

from __future__ import annotations

import dagster as dg


def test_definitions_load_with_jobs_schedules_and_checks():
    from ig_analytics.definitions import defs

    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {
        "accounts", "account_insights_daily", "media", "media_insights_snapshots", "media_engagement",
        "account_engagement_daily", "trending_posts", "best_posting_times", "performance_reports",
        "weekly_performance_reports",
    } <= keys
    jobs = {  # each job runs at least these assets (resolve_job_def raises for a missing job)
        "account_insights_job": {"account_insights_daily"},
        "media_sync_job": {"media", "media_insights_snapshots", "media_engagement", "account_engagement_daily",
                           "trending_posts", "best_posting_times"},
        "reports_job": {"performance_reports"},
        "weekly_reports_job": {"weekly_performance_reports"},
    }
    for job, assets in jobs.items():
        selected = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        assert assets <= selected, (job, assets - selected)
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["daily_account_insights"].cron_schedule == "0 2 * * *"
    assert schedules["hourly_media_snapshots"].cron_schedule == "5 * * * *"
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules.values())
    checks = {key.name for key in repo.asset_graph.asset_check_keys}
    assert "accounts_synced" in checks


def test_daily_schedule_refetches_the_two_days_before_yesterday():
    from datetime import datetime, timezone

    from ig_analytics.definitions import defs

    schedule = next(s for s in defs.schedules if s.name == "daily_account_insights")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 20, 2, tzinfo=timezone.utc))
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags["dagster/asset_partition_range_start"] == "2026-11-17"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-19"


def test_plain_dagster_loads_the_workspace(dagster_pg_url):
    """`dagster dev` / `dagster definitions validate` from the repository root, without the ig-analytics CLI."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["IG_ANALYTICS_DAGSTER_PG_URL"] = dagster_pg_url
    dagster = Path(os.sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_schedules_load_stopped_with_ig_analytics_schedules_off():
    """Read at import (like the partitions): a process with the setting off loads every schedule stopped."""
    import subprocess
    import sys

    code = ("from ig_analytics.definitions import defs; "
            "print(sorted({s.default_status.value for s in defs.schedules}))")
    env_on = {k: v for k, v in __import__("os").environ.items() if k != "IG_ANALYTICS_SCHEDULES"}
    for value, expected in (("off", "['STOPPED']"), ("on", "['RUNNING']"), ("", "['RUNNING']")):
        out = subprocess.run([sys.executable, "-c", code], env={**env_on, "IG_ANALYTICS_SCHEDULES": value},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == expected, (value, out.stderr[-2000:])
