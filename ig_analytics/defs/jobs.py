"""Jobs and their schedules (UTC). Schedules are on by default: the product syncs as soon as it runs.

- 02:00 daily: account insights for yesterday AND the two days before, in one run (Meta revises recent days).
- 02:10 daily: every post of the media window (30 days) captured now (the daily refresh), plus the analytics.
- hh:05 hourly: snapshots of young posts and stories (and any post whose daily capture is due), plus analytics.
- 03:00 daily: the rolling 7-day performance reports of yesterday; Monday 03:30 the weekly ones.

The three ingestion schedules ask for one run per shard (IG_ANALYTICS_SHARDS, accounts/shards.py); reports stay one run.
"""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.defs.account_runs import GRAPH_API_POOL
from ig_analytics.defs.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, ensure_pool,
)
from ig_analytics.defs.conversation_assets import CONVERSATION_HOURLY
from ig_analytics.defs.ingestion_assets import MediaSyncConfig, media_and_snapshots
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions, weekly_partitions
from ig_analytics import settings as settings_module
from ig_analytics.install_marker import HOURLY_FORMAT
from ig_analytics.accounts.shards import SHARD_TAG, shard_tag

REFETCH_DAYS = 2

account_insights_job = dg.define_asset_job(
    "account_insights_job",
    selection=dg.AssetSelection.assets("account_insights_daily"),
    partitions_def=daily_partitions,
    description="Daily account insights and profile snapshots for every active account.",
)

media_sync_job = dg.define_asset_job(
    "media_sync_job",
    selection=dg.AssetSelection.assets(
        "media", "media_insights_snapshots", "media_engagement", "trending_posts", "account_engagement_daily",
        "best_posting_times",
    ) | CONVERSATION_HOURLY,
    partitions_def=hourly_partitions,
    description="Recent posts, their insight snapshots, and the analytics computed from them.",
)

reports_job = dg.define_asset_job(
    "reports_job",
    selection=dg.AssetSelection.assets("performance_reports"),
    partitions_def=daily_partitions,
    description="Rolling 7-day performance reports (JSON, HTML, notifications).",
)

weekly_reports_job = dg.define_asset_job(
    "weekly_reports_job",
    selection=dg.AssetSelection.assets("weekly_performance_reports"),
    partitions_def=weekly_partitions,
)


@dg.schedule(
    job=account_insights_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
def daily_account_insights(context: dg.ScheduleEvaluationContext):
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date()
    first = max(yesterday - timedelta(days=REFETCH_DAYS), daily_partitions.start.date())
    return per_shard(
        context,
        run_key=f"account-insights-{yesterday.isoformat()}",
        tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: yesterday.isoformat()},
    )


def per_shard(context: dg.ScheduleEvaluationContext, run_key: str, tags: dict | None = None,
              **request) -> list[dg.RunRequest]:
    """One RunRequest per shard (IG_ANALYTICS_SHARDS, read by the code server at tick time), each tagged with
    its shard; the ingestion assets sync only that shard's accounts. One shard: the request as it always was."""
    # only the shard count: an unrelated bad setting must not stop every ingestion tick (the runs report it)
    shards = settings_module.parse_shards(os.environ.get("IG_ANALYTICS_SHARDS"))
    if shards == 1:
        return [dg.RunRequest(run_key=run_key, tags=tags or {}, **request)]
    _ensure_graph_api_pool(context)
    return [
        dg.RunRequest(run_key=f"{run_key}-shard-{i}-of-{shards}",
                      tags={**(tags or {}), SHARD_TAG: shard_tag(i, shards)}, **request)
        for i in range(shards)
    ]


def _ensure_graph_api_pool(context: dg.ScheduleEvaluationContext) -> None:
    """The shard runs start together and would race to create their pool's row: create it here, once."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # a context built without an instance (a test's dry run)
        return
    ensure_pool(instance, GRAPH_API_POOL)


def _hour_key(context: dg.ScheduleEvaluationContext) -> str:
    return context.scheduled_execution_time.strftime(HOURLY_FORMAT)


@dg.schedule(
    job=media_sync_job, cron_schedule="5 * * * *", execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
def hourly_media_snapshots(context: dg.ScheduleEvaluationContext):
    key = _hour_key(context)
    return per_shard(context, run_key=f"media-{key}", partition_key=key)


@dg.schedule(
    job=media_sync_job, cron_schedule="10 2 * * *", execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
def daily_media_refresh(context: dg.ScheduleEvaluationContext):
    key = _hour_key(context)
    return per_shard(
        context,
        run_key=f"media-refresh-{key}",
        partition_key=key,
        run_config=dg.RunConfig(ops={media_and_snapshots.op.name: MediaSyncConfig(refresh_all=True)}),
    )


@dg.schedule(
    job=reports_job, cron_schedule="0 3 * * *", execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
def daily_reports(context: dg.ScheduleEvaluationContext):
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"reports-{day}", partition_key=day)


weekly_reports = dg.build_schedule_from_partitioned_job(
    weekly_reports_job, hour_of_day=3, minute_of_hour=30, default_status=SCHEDULE_STATUS
)

jobs = [account_insights_job, media_sync_job, reports_job, weekly_reports_job]
schedules = [daily_account_insights, hourly_media_snapshots, daily_media_refresh, daily_reports, weekly_reports]
