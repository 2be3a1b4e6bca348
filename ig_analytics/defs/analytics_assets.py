"""Analytics assets: what the social team acts on. They run in the same job as the ingestion they read (the
hourly media job, the daily reports job), so they are current within minutes of new data. The formulas live in
ig_analytics/analytics (plain Python, documented in docs/analytics.md); these wrappers only choose the slice,
hold the transaction and report metadata."""


import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import sqlalchemy as sa

from ig_analytics.analytics import best_times, engagement, reports, trending
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions, weekly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase

# Posts keep gaining engagement for about a month, so the per-day roll-up is recomputed over this window.
ENGAGEMENT_WINDOW_DAYS = 35


def _table(name: str) -> dict:
    return {"dagster/table_name": f"instagram.{name}"}


def _timed(started: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(round(time.monotonic() - started, 3)))


@dg.asset(
    deps=["media_insights_snapshots"],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"postgres"},
    metadata=_table("media_engagement"),
    description="Engagement and rates (by reach, views, followers) of each post, from its newest snapshot.",
)
def media_engagement(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    started = time.monotonic()
    window = context.partition_time_window
    engine = database.engine()
    with engine.begin() as conn:
        media_ids = [
            row[0]
            for row in conn.execute(
                sa.text(
                    "SELECT DISTINCT media_id FROM instagram.media_insights_snapshots"
                    " WHERE captured_at >= :start AND captured_at < :end"
                ),
                {"start": window.start, "end": window.end},
            )
        ]
        rows = engagement.refresh_media_engagement(conn, media_ids=media_ids) if media_ids else 0
    return dg.MaterializeResult(metadata={"rows_written": rows, "posts": len(media_ids), "duration_seconds": _timed(started)})


@dg.asset(
    deps=["media_insights_snapshots", "media_engagement"],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"postgres"},
    metadata=_table("trending_posts"),
    description=(
        "Posts gaining engagement faster than the account's own past posts did at the same age (robust z-score "
        "with decay), ranked per account every hour; the story's weighted score is kept for comparison."
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
    metadata=_table("account_engagement_daily"),
    description=(
        f"Per account and day of publication (account timezone): posts, engagement, rate by reach. Recomputed "
        f"for the last {ENGAGEMENT_WINDOW_DAYS} days on every hourly run, because posts keep gaining engagement."
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
    metadata=_table("best_posting_times"),
    description=(
        "Average engagement rate by reach per weekday x hour of publication in the account's timezone, shrunk "
        "toward the account's mean where a slot has few posts."
    ),
)
def best_posting_times(database: AnalyticsDatabase) -> dg.MaterializeResult:
    started = time.monotonic()
    with database.engine().begin() as conn:
        rows = best_times.refresh_best_posting_times(conn)
    return dg.MaterializeResult(metadata={"rows_written": rows, "duration_seconds": _timed(started)})


def _write_reports(database: AnalyticsDatabase, period_end: date, days: int, kind: str):
    started = time.monotonic()
    settings = database.settings()
    engine = database.engine()
    with engine.begin() as conn:
        results = reports.write_reports(
            conn, period_end=period_end, days=days, kind=kind, reports_dir=settings.reports_dir
        )
    if results:
        from ig_analytics.notify import notify_report_events

        notify_report_events(database.notifier(), results)
    summary = "\n\n---\n\n".join(r.markdown for r in results) or "No active account with data in this period."
    return dg.MaterializeResult(
        metadata={
            "reports": dg.MetadataValue.int(len(results)),
            "period_end": period_end.isoformat(),
            "report_files": dg.MetadataValue.json({r.ig_user_id: str(r.html_path) for r in results}),
            "summary": dg.MetadataValue.md(summary[:60_000]),
            "duration_seconds": _timed(started),
        }
    )


@dg.asset(
    deps=["account_insights_daily", "account_engagement_daily", "trending_posts", "best_posting_times"],
    partitions_def=daily_partitions,
    group_name="reports",
    kinds={"postgres", "html"},
    metadata=_table("performance_reports"),
    description="Per account, the 7 days ending on the partition's day: report JSON, an HTML file with charts.",
)
def performance_reports(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    return _write_reports(database, date.fromisoformat(context.partition_key), 7, "rolling_7d")


@dg.asset(
    key="weekly_performance_reports",
    deps=["account_insights_daily", "account_engagement_daily", "trending_posts", "best_posting_times"],
    partitions_def=weekly_partitions,
    group_name="reports",
    kinds={"postgres", "html"},
    metadata=_table("performance_reports"),
    description="Per account, the Monday-to-Sunday week of the partition (rows with kind = 'weekly').",
)
def weekly_performance_reports(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    period_end = (context.partition_time_window.end - timedelta(days=1)).date()
    return _write_reports(database, period_end, 7, "weekly")
