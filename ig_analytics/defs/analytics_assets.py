"""Analytics assets: what the social team acts on. They run in the same job as the ingestion they read (the
hourly media job, the daily reports job), so they are current within minutes of new data. The formulas live in
ig_analytics/analytics (plain Python, documented in docs/analytics.md); these wrappers only choose the slice,
hold the transaction and report metadata."""


import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from ig_analytics.analytics import best_times, engagement, reports, trending
from ig_analytics.defs.catalog import DAILY_REPORTS, HOURLY, WEEKLY_REPORTS, table_asset
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions, weekly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase

# Posts keep gaining engagement for about a month, so the per-day roll-up is recomputed over this window.
ENGAGEMENT_WINDOW_DAYS = 35


def _timed(started: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(round(time.monotonic() - started, 3)))


@dg.asset(
    # followers_at_publish reads the follower history: a new total changes the rates of posts without a new snapshot
    deps=["media", "media_insights_snapshots", "account_insights_daily"],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"postgres"},
    **table_asset("media_engagement"),
    freshness_policy=HOURLY,
    description=(
        "How well each post does: its engagement (likes, comments, saves, shares), engagement rates by reach, by "
        "views and by followers at publication, and a 0-100 performance score, from its newest snapshot. "
        "Recomputed every hour for the posts captured in that hour, and for all of an account's posts whenever its "
        "follower history changes (the account-insights sync does that)."
    ),
)
def media_engagement(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    started = time.monotonic()
    window = context.partition_time_window
    with database.engine().begin() as conn:
        # Only posts with a snapshot in the window have new inputs here; a new follower history is pushed to all
        # of the account's posts by sync_account_insights, whichever job runs first.
        captured = conn.execute(sa.text(
            "SELECT DISTINCT media_id FROM instagram.media_insights_snapshots"
            " WHERE captured_at >= :start AND captured_at < :end"), {"start": window.start, "end": window.end},
        ).scalars().all()
        rows = engagement.refresh_media_engagement(conn, media_ids=captured) if captured else 0
    return dg.MaterializeResult(metadata={"rows_written": rows, "duration_seconds": _timed(started)})


@dg.asset(
    deps=["media_insights_snapshots", "media_engagement"],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"postgres"},
    **table_asset("trending_posts"),
    freshness_policy=HOURLY,
    description=(
        "Each account's posts that are gaining engagement faster than its past posts did at the same age, ranked "
        "every hour (rank 1 = most trending). A webhook message announces each post that enters the list."
    ),
)
def trending_posts(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    started = time.monotonic()
    as_of = context.partition_time_window.end - timedelta(hours=1)  # the newest capture slot of the run
    engine = database.engine()
    with engine.begin() as conn:
        rows = trending.refresh_trending_posts(conn, as_of=as_of)
        new_entries = trending.new_trending_entries(conn, as_of)
    if new_entries:
        from ig_analytics.notify import notify_new_trending

        notify_new_trending(database.notifier(), new_entries, as_of)
    return dg.MaterializeResult(
        metadata={"rows_written": rows, "new_trending_posts": len(new_entries), "as_of": as_of.isoformat(),
                  "duration_seconds": _timed(started)}
    )


@dg.asset(
    deps=["media_engagement", "media"],
    group_name="analytics",
    kinds={"postgres"},
    **table_asset("account_engagement_daily"),
    freshness_policy=HOURLY,
    description=(
        f"Per account and day of publication (in the account's timezone): posts, their engagement and reach, and "
        f"the engagement rate. The last {ENGAGEMENT_WINDOW_DAYS} days are recomputed every hour, because posts "
        f"keep gaining engagement."
    ),
)
def account_engagement_daily(database: AnalyticsDatabase) -> dg.MaterializeResult:
    started = time.monotonic()
    today = datetime.now(timezone.utc).date() + timedelta(days=1)  # covers timezones ahead of UTC
    with database.engine().begin() as conn:
        rows = engagement.refresh_account_engagement_daily(
            conn, day_from=today - timedelta(days=ENGAGEMENT_WINDOW_DAYS), day_to=today
        )
    return dg.MaterializeResult(metadata={"rows_written": rows, "duration_seconds": _timed(started)})


@dg.asset(
    deps=["media_engagement", "media"],
    group_name="analytics",
    kinds={"postgres"},
    **table_asset("best_posting_times"),
    freshness_policy=HOURLY,
    description=(
        "When to post: each account's average engagement rate by weekday and hour of publication (in the "
        "account's timezone); slots with few posts are pulled toward the account's average and marked unreliable."
    ),
)
def best_posting_times(database: AnalyticsDatabase) -> dg.MaterializeResult:
    started = time.monotonic()
    with database.engine().begin() as conn:
        rows = best_times.refresh_best_posting_times(conn)
    return dg.MaterializeResult(metadata={"rows_written": rows, "duration_seconds": _timed(started)})


def _write_reports(database: AnalyticsDatabase, period_ends: list[date], days: int, kind: str):
    """Reports of every period of the run (a backfill range is one run); only the newest period notifies, so a
    backfill does not flood the webhook with old reports."""
    started = time.monotonic()
    settings = database.settings()
    engine = database.engine()
    results, reports_written = [], 0
    for period_end in period_ends:
        with engine.begin() as conn:
            results = reports.write_reports(
                conn, period_end=period_end, days=days, kind=kind, reports_dir=settings.reports_dir,
                synthetic_permalinks=reports.permalinks_synthetic(settings.graph_api_url),
            )
        reports_written += len(results)
    if results:
        from ig_analytics.notify import notify_report_events

        notify_report_events(database.notifier(), results)
    summary = "\n\n---\n\n".join(r.markdown for r in results) or "No active account with data in this period."
    metadata = {
        "reports": dg.MetadataValue.int(reports_written),
        "periods": dg.MetadataValue.int(len(period_ends)),
        "period_end": period_ends[-1].isoformat() if period_ends else "",
        "summary": dg.MetadataValue.md(summary[:60_000]),
        "duration_seconds": _timed(started),
    }
    for r in results:  # the newest period's files, clickable in the UI
        if r.html_path is not None:
            metadata[f"report_{r.ig_user_id}"] = dg.MetadataValue.url(Path(r.html_path).resolve().as_uri())
    return dg.MaterializeResult(metadata=metadata)


REPORT_INPUTS = ["account_insights_daily", "media_engagement", "account_engagement_daily", "trending_posts",
                 "best_posting_times"]
# The audience section reads the newest demographics picture of the period; its partitions start at the install
# (Meta serves only today's picture), so older report days simply have no upstream partition.
AUDIENCE_INPUT = dg.AssetDep("audience_demographics", partition_mapping=dg.TimeWindowPartitionMapping(
    allow_nonexistent_upstream_partitions=True))


@dg.asset(
    deps=[*REPORT_INPUTS, AUDIENCE_INPUT],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="reports",
    kinds={"postgres", "html"},
    **table_asset("performance_reports"),
    freshness_policy=DAILY_REPORTS,
    description=(
        "Each account's report for the 7 days ending on the partition's day: reach, views, follower growth, "
        "best posts, trending posts and best posting times, as JSON (instagram.performance_reports, kind "
        "rolling_7d) and as an HTML page with charts. Written every day at 03:00 UTC for yesterday."
    ),
)
def performance_reports(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    return _write_reports(database, [date.fromisoformat(k) for k in context.partition_keys], 7, "rolling_7d")


@dg.asset(
    key="weekly_performance_reports",
    deps=[*REPORT_INPUTS, AUDIENCE_INPUT],
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="reports",
    kinds={"postgres", "html"},
    **table_asset("performance_reports"),
    freshness_policy=WEEKLY_REPORTS,
    description=(
        "Each account's report for one Monday-to-Sunday week (instagram.performance_reports, kind weekly, and "
        "an HTML page). Written every Monday at 03:30 UTC for the week before."
    ),
)
def weekly_performance_reports(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    period_ends = [(weekly_partitions.time_window_for_partition_key(k).end - timedelta(days=1)).date()
                   for k in context.partition_keys]
    return _write_reports(database, period_ends, 7, "weekly")
