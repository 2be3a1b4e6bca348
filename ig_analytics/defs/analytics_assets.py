"""Analytics assets: what the social team acts on. They run in the same job as the ingestion they read (the
hourly media job, the daily reports job), so they are current within minutes of new data. The formulas live in
ig_analytics/analytics (plain Python, documented in docs/analytics.md).

``media_engagement``, ``account_engagement_daily`` and ``best_posting_times`` read their inputs through
:class:`AnalyticsInputs` (set-based SQL over the history), compute rows with pure functions on frames and return
them: the ``postgres_io`` IO manager writes them (one transaction per slice). ``trending_posts`` and the reports
still write themselves (docs/architecture.md, "IO manager"). A shard run computes the rows of its shard's accounts
only (defs/account_scope.py; docs/architecture.md, "Shards")."""

# No `from __future__ import annotations` here: Dagster binds the `database` field to the top-level `database`
# resource (definitions.py) only when it can see the field's type, and a string annotation is refused.

import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.analytics import best_times, engagement, reports, trending
from ig_analytics.defs.account_scope import run_scope
from ig_analytics.defs.catalog import DAILY_REPORTS, HOURLY, WEEKLY_REPORTS, table_asset
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions, weekly_partitions
from ig_analytics.defs.postgres_io import IO_MANAGER_KEY, PostgresTableIOManager, write_metadata
from ig_analytics.defs.resources import AnalyticsDatabase

# Posts keep gaining engagement for about a month, so the per-day roll-up is recomputed over this window.
ENGAGEMENT_WINDOW_DAYS = 35


def seconds_since(started: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(round(time.monotonic() - started, 3)))


class AnalyticsInputs(dg.ConfigurableResource):
    """Where the IO-managed analytics assets read their inputs: frames, so a test can hand them over without a
    database (a subclass overriding these methods). ``accounts``: only these accounts' inputs (a shard run's,
    defs/account_scope.py); None: every account."""

    def latest_snapshots(self, start: datetime, end: datetime, accounts: list[str] | None = None) -> pd.DataFrame:
        """engagement.read_latest_snapshots of the posts whose newest snapshot was captured in [start, end)."""
        raise NotImplementedError

    def followers_changed(self, accounts: list[str] | None = None) -> pd.DataFrame:
        """engagement.read_latest_snapshots of the posts whose stored follower total the follower history has
        since changed (engagement.read_followers_changed); none by default."""
        return pd.DataFrame()

    def posts_by_day(self, day_from: date, day_to: date, accounts: list[str] | None = None) -> pd.DataFrame:
        """engagement.read_posts_by_day."""
        raise NotImplementedError

    def rated_posts(self, now: datetime, accounts: list[str] | None = None) -> pd.DataFrame:
        """best_times.read_rated_posts."""
        raise NotImplementedError

    def account_ids(self) -> list[str]:
        """Every registered account (a shard run keeps its shard's)."""
        raise NotImplementedError


class DatabaseInputs(AnalyticsInputs):
    """The inputs read from the analytics database."""

    database: AnalyticsDatabase

    def latest_snapshots(self, start: datetime, end: datetime, accounts: list[str] | None = None) -> pd.DataFrame:
        with self.database.engine().connect() as conn:
            # Only posts with a snapshot in the window have new snapshots; a changed follower history is
            # followers_changed's.
            captured = conn.execute(sa.text(
                "SELECT DISTINCT media_id FROM instagram.media_insights_snapshots"
                " WHERE captured_at >= :start AND captured_at < :end"
                " AND (CAST(:users AS text[]) IS NULL OR ig_user_id = ANY(CAST(:users AS text[])))"),
                {"start": start, "end": end, "users": accounts},
            ).scalars().all()
            if not captured:
                return pd.DataFrame()
            latest = engagement.read_latest_snapshots(conn, media_ids=captured, ig_user_ids=accounts)
        # a post captured again in a later hour belongs to that hour's partition (its newest snapshot)
        return latest[(latest["captured_at"] >= start) & (latest["captured_at"] < end)]

    def followers_changed(self, accounts: list[str] | None = None) -> pd.DataFrame:
        with self.database.engine().connect() as conn:
            changed = engagement.read_followers_changed(conn, accounts)
            if not changed:
                return pd.DataFrame()
            return engagement.read_latest_snapshots(conn, media_ids=changed, ig_user_ids=accounts)

    def posts_by_day(self, day_from: date, day_to: date, accounts: list[str] | None = None) -> pd.DataFrame:
        with self.database.engine().connect() as conn:
            return engagement.read_posts_by_day(conn, day_from=day_from, day_to=day_to, ig_user_ids=accounts)

    def rated_posts(self, now: datetime, accounts: list[str] | None = None) -> pd.DataFrame:
        with self.database.engine().connect() as conn:
            return best_times.read_rated_posts(conn, now=now, ig_user_ids=accounts)

    def account_ids(self) -> list[str]:
        return accounts_repo.account_ids(self.database.engine())


def analytics_resources(database: AnalyticsDatabase) -> dict:
    """The resources of the IO-managed analytics assets, on the given database resource."""
    return {IO_MANAGER_KEY: PostgresTableIOManager(database=database), "analytics_inputs": DatabaseInputs(database=database)}


def day_window(day_from: date, day_to: date) -> dg.TimeWindow:
    """Days day_from..day_to (inclusive) as a window of UTC midnights."""
    start = datetime(day_from.year, day_from.month, day_from.day, tzinfo=timezone.utc)
    return dg.TimeWindow(start, start + timedelta(days=(day_to - day_from).days + 1))


@dg.asset(
    # followers_at_publish reads the follower history: a new total changes the rates of posts without a new snapshot
    deps=["media", "media_insights_snapshots", "account_insights_daily", "follower_anchors"],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("media_engagement", write_metadata("upsert", "captured_at", keep_when_unchanged=("computed_at",))),
    freshness_policy=HOURLY,
    description=(
        "How well each post does: its engagement (likes, comments, saves, shares), engagement rates by reach, by "
        "views and by followers at publication, and a 0-100 performance score, from its newest snapshot. "
        "Recomputed every hour for the posts captured in that hour; a run also restates older posts whose "
        "follower total at publication changed since (the follower_rates sensor starts one after every "
        "account-insights sync). A partition holds the posts whose newest snapshot was captured in its hour."
    ),
)
def media_engagement(context: dg.AssetExecutionContext, analytics_inputs: AnalyticsInputs) -> dg.Output:
    started = time.monotonic()
    window = context.partition_time_window
    scope = run_scope(context, analytics_inputs.account_ids)
    now = clock.now()
    latest = analytics_inputs.latest_snapshots(window.start, window.end, scope.ids)
    rows = (engagement.media_engagement_rows(latest, now) if not latest.empty
            else pd.DataFrame({c: pd.Series(dtype=object) for c in engagement.MEDIA_ENGAGEMENT_COLUMNS}))
    # Older posts whose follower total changed since their row was computed (the account-insights sync or a
    # day-end anchor rebuilt the history) are restated here: this asset stays the table's one writer, and the
    # rates are right whichever job ran first.
    changed = analytics_inputs.followers_changed(scope.ids)
    if not changed.empty:
        changed = changed[~changed["media_id"].isin(rows["media_id"])]
    restated = engagement.media_engagement_rows(changed, now) if not changed.empty else None
    return dg.Output(scope.rows(rows, restated=restated), metadata={
        "posts": len(rows), "followers_restated_posts": 0 if restated is None else len(restated),
        **scope.metadata(), "duration_seconds": seconds_since(started)})


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
    scope = run_scope(context, lambda: accounts_repo.account_ids(engine))
    with engine.begin() as conn:
        rows = trending.refresh_trending_posts(conn, as_of=as_of, within=scope.ids)
        new_entries = trending.new_trending_entries(conn, as_of, ig_user_ids=scope.ids)
    if new_entries:
        from ig_analytics.alerts.notify import notify_new_trending

        notify_new_trending(database.notifier(), new_entries)
    return dg.MaterializeResult(
        metadata={"rows_written": rows, "new_trending_posts": len(new_entries), "as_of": as_of.isoformat(),
                  **scope.metadata(), "duration_seconds": seconds_since(started)}
    )


@dg.asset(
    deps=["media_engagement", "media"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("account_engagement_daily", write_metadata("replace", "date", ("computed_at",))),
    freshness_policy=HOURLY,
    description=(
        f"Per account and day of publication (in the account's timezone): posts, their engagement and reach, and "
        f"the engagement rate. The last {ENGAGEMENT_WINDOW_DAYS} days are recomputed every hour, because posts "
        f"keep gaining engagement."
    ),
)
def account_engagement_daily(context: dg.AssetExecutionContext, analytics_inputs: AnalyticsInputs) -> dg.Output:
    started = time.monotonic()
    today = clock.now().date() + timedelta(days=1)  # covers timezones ahead of UTC
    day_from = today - timedelta(days=ENGAGEMENT_WINDOW_DAYS)
    scope = run_scope(context, analytics_inputs.account_ids)
    posts = analytics_inputs.posts_by_day(day_from, today, scope.ids)
    rows = engagement.daily_engagement_rows(posts, clock.now())
    # the recomputed days of the run's accounts are the slice: replace deletes only their rows
    return dg.Output(scope.rows(rows, day_window(day_from, today)),
                     metadata={**scope.metadata(), "duration_seconds": seconds_since(started)})


@dg.asset(
    deps=["media_engagement", "media"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("best_posting_times", write_metadata("replace", keep_when_unchanged=("computed_at",))),
    freshness_policy=HOURLY,
    description=(
        "When to post: each account's average engagement rate by weekday and hour of publication (in the "
        "account's timezone); slots with few posts are pulled toward the account's average and marked unreliable."
    ),
)
def best_posting_times(context: dg.AssetExecutionContext, analytics_inputs: AnalyticsInputs) -> dg.Output:
    started = time.monotonic()
    now = clock.now()
    scope = run_scope(context, analytics_inputs.account_ids)
    rows = best_times.best_times_rows(analytics_inputs.rated_posts(now, scope.ids), now)
    # the run's accounts are the slice (every account's rows without a shard)
    return dg.Output(scope.rows(rows), metadata={**scope.metadata(), "duration_seconds": seconds_since(started)})


SUMMARY_CHARS = 60_000  # of the reports' markdown shown in the UI
REPORT_LINKS = 100  # report files linked from the materialization; the rest are in the reports folder


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
                synthetic_permalinks=reports.permalinks_synthetic(settings.graph_api_url), keep_reports=False,
            )
        reports_written += len(results)
    if results:
        from ig_analytics.alerts.notify import notify_report_events

        notify_report_events(database.notifier(), results)
    summary = _summary(results, SUMMARY_CHARS) or "No active account with data in this period."
    metadata = {
        "reports": dg.MetadataValue.int(reports_written),
        "periods": dg.MetadataValue.int(len(period_ends)),
        "period_end": period_ends[-1].isoformat() if period_ends else "",
        "summary": dg.MetadataValue.md(summary[:SUMMARY_CHARS]),
        "duration_seconds": seconds_since(started),
    }
    linked = [r for r in results if r.html_path is not None]
    for r in linked[:REPORT_LINKS]:  # the newest period's files, clickable in the UI
        metadata[f"report_{r.ig_user_id}"] = dg.MetadataValue.url(Path(r.html_path).resolve().as_uri())
    if len(linked) > REPORT_LINKS:  # an event of 10,000 links would burden the event log and the UI
        metadata["more_reports_in"] = dg.MetadataValue.path(str(settings.reports_dir))
    return dg.MaterializeResult(metadata=metadata)


def _summary(results, limit: int) -> str:
    """The first reports' markdown, up to about ``limit`` characters (not a join of every account's)."""
    parts, size = [], 0
    for r in results:
        if size >= limit:
            break
        parts.append(r.markdown)
        size += len(r.markdown) + 7
    return "\n\n---\n\n".join(parts)


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
