"""Retention: what grows without bound is trimmed once a day (04:30 UTC, on by default).

- Dagster runs (and their event logs) older than ``run_max_age_days``: Dagster 1.13 has no event-log retention of
  its own. At most ``max_runs_per_tick`` per day (deleting a run deletes its events: slow on big runs); runs still
  queued or in progress are never touched.
- ``instagram.media_insights_snapshots`` older than ``snapshot_compact_after_days`` (7): one snapshot per post and
  UTC day is kept, the last of the day; the hourly detail of old days goes (stories' hours, a post's first 48 h).
  Older than ``snapshot_weekly_after_days`` (35): one per post and ISO week, the last (a post is captured for 30
  days; what reads it later is its newest snapshot, always kept). What trending reads of the deleted rows (a
  post's first ``curve_span``, 8.25 days, while it is in trending's baseline: published within ``baseline_days``,
  90; it compares a young post's curve with the earlier posts' curves at the same age) moves to the post's row of
  ``instagram.media_curves`` (packed arrays, ~42 B a point instead of ~300 B a row), deleted once the post leaves
  the baseline (``drop_curves``).
  ``account_insights_daily`` is history and is never touched.
- ``instagram.trending_evaluations`` older than ``trending_compact_after_days`` (7): the last evaluation per
  account and UTC day is kept (what a report of a past period reads: the newest before a midnight); the hourly
  ones go. Older than ``trending_weekly_after_days`` (35): the last of each
  week from Tuesday to Monday (what a weekly report reads: the newest before the Tuesday after its Sunday).
  Their ``trending_posts`` rows go with them, except each post's first and best-ranked rows (the ``posts``
  view's first_trended_at and best_trending_rank).
- The audience pictures (``audience_demographics``, ``audience_age_gender``, ``audience_demographics_status``, one
  picture per account and day, ~160 rows) older than ``audience_compact_after_days`` (7): the newest picture of
  each account and ISO week is kept (a weekly report reads exactly that one; a report reads the newest picture of
  its period); older than ``audience_monthly_after_days`` (90) the newest of each month. The kept pictures of the
  days before ``audience_pack_after_days`` (1: all but the newest day, the one the daily sync may still write) are
  then packed, one row per account and day (``pack_old_audience``, storage/audience_packing.py);
  ``audience_pictures``, what everything reads, shows both forms.
- ``instagram.hashtag_performance`` periods ending before ``hashtag_compact_after_days`` (7): the newest period
  of each account, length and ISO week (a weekly report's); the 90-day ones before ``hashtag_monthly_after_days``
  (35) of each month. ``instagram.performance_reports`` of kind ``rolling_7d`` older than
  ``rolling_reports_keep_days`` (14: the rolling report is the daily view; the weekly reports stay).
- ``instagram.sync_runs``: successful (and partial: a success with some items incomplete) syncs older than
  ``sync_runs_success_keep_days`` (30, like Dagster's runs) except each account's and sync type's newest; failed
  and unfinished ones (they explain the gaps the checks report) and everything older than ``sync_runs_keep_days``
  (180). Older than ``sync_runs_detail_days`` (7), an account's successful hourly media syncs of consecutive hours
  of a UTC day become one row covering those hours (``sync_runs.merge_hourly_successes``: what the shard check of
  a re-executed run reads stays the same; the counts are summed). ``instagram.notifications`` older than
  ``notifications_keep_days`` (a notification still being delivered stays). A pruned notification's dedupe key is
  forgotten, which is why the default is long.
- ``instagram.media_comments``: the text and the commenter's username of comments older than
  ``IG_ANALYTICS_COMMENT_TEXT_DAYS`` (default 90) are blanked (NULL); the rows, their times, likes and ``is_own``
  stay, so counts and response times do not change. Personal data of people who are not our users. So are the
  caption and username of other accounts' posts that tag an account (``instagram.tagged_media``, and the
  report's "Posts that tagged you"): blanked by the same setting, counted from the post's publication.
- The comment rows of posts published before ``comment_rows_compact_after_days`` (72, ``COMMENT_ROWS_MIN_DAYS``,
  the fewest: what the conversation assets and the comment reads still read) become counts per
  post and UTC day (``instagram.comment_day_counts``: comments and replies, top-level comments of others, replies,
  the account's first-response minutes), what the report's conversation section reads of them; the open questions
  (unanswered top-level questions of others) stay as rows, which a report lists (``compact_comment_rows``).
- The snapshot, audience and comment-row compactions, the packing and the sync_runs merge commit every
  ``BATCH_ACCOUNTS`` (200) accounts (storage/account_batches.py; an account's rows in one transaction): their
  cutoffs moved in issue 27, so the first run after an upgrade has months of every account.
- Then a plain ``VACUUM`` of each table it deleted rows from or rewrote (``vacuum_compacted``): the next day's
  rows reuse the space at once instead of the table carrying days of deleted rows until autovacuum's 20 %.
- The indexes of every table it compacted are rebuilt (``rebuild_indexes``, ``_REINDEXED``,
  ``REINDEX TABLE CONCURRENTLY``: reads and writes go on). Their keys start with the account, so each account's
  new day goes into the middle of the index and splits a page half-full, and the compaction's deletes leave holes
  that only that account's rows can fill: the audience indexes held about twice their packed size (issue 27). So did the
  snapshots' when snapshots were deleted: the compaction keeps one key of a day's or a week's and new keys go
  elsewhere (captured_at grows), so the holes were never filled and the indexes grew with every row ever captured
  (keys-only rows, day 150: the table 1.48 MB an account, 0.40 MB with the rebuild; docs/deploy.md "Data growth").
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ig_analytics import clock
from ig_analytics.analytics.conversation import RESPONSE_LOOKBACK_DAYS, WINDOW_DAYS
from ig_analytics.analytics.report_conversation import HASHTAG_PERIOD_DAYS as REPORT_HASHTAG_DAYS
from ig_analytics.analytics.trending_curves import compact_snapshots, drop_curves
from ig_analytics.constants import MEDIA_WINDOW_DAYS
from ig_analytics.defs.automation import SCHEDULE_STATUS
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.storage import sync_runs
from ig_analytics.storage.account_batches import BATCH_ACCOUNTS, each_batch
from ig_analytics.storage.audience_packing import PACKED_FROM, pack_audience
from ig_analytics.storage.comment_retention import blank_comment_text, blank_tagged_text, compact_comment_rows

# A post's comments are read while it is MEDIA_WINDOW_DAYS old; conversation_daily reads the comments written in
# its WINDOW_DAYS + RESPONSE_LOOKBACK_DAYS, conversation_posts the posts of its WINDOW_DAYS: the rows of posts
# older than the sum are read by the reports alone.
COMMENT_ROWS_MIN_DAYS = MEDIA_WINDOW_DAYS + WINDOW_DAYS + RESPONSE_LOOKBACK_DAYS


_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class RetentionConfig(dg.Config):
    run_max_age_days: int = 30
    max_runs_per_tick: int = 500
    snapshot_compact_after_days: int = 7  # (90 until issue 27: the hourly detail of 90 days)
    snapshot_weekly_after_days: int = 35
    trending_compact_after_days: int = 7  # trending_evaluations and trending_posts
    trending_weekly_after_days: int = 35
    audience_compact_after_days: int = 7  # (35 until the 5 MB account-year of issue 27)
    audience_monthly_after_days: int = 90
    audience_pack_after_days: int = 1  # older kept pictures: one packed row per account and day (issue 27)
    hashtag_compact_after_days: int = 7
    hashtag_monthly_after_days: int = 35  # the 90-day periods (no report reads them): the newest of each month
    rolling_reports_keep_days: int = 14  # (35 until issue 27's 5 MB account-year; the weekly reports stay)
    sync_runs_success_keep_days: int = 30
    sync_runs_keep_days: int = 180
    sync_runs_detail_days: int = 7  # (issue 27: every hourly success was kept 30 days)
    notifications_keep_days: int = 180
    comment_rows_compact_after_days: int = COMMENT_ROWS_MIN_DAYS  # 72 (issue 27: kept forever, then 90 days)


@dataclass
class RetentionCounts:
    runs_deleted: int = 0
    runs_remaining: int = 0
    snapshots_deleted: int = 0
    curves_deleted: int = 0
    trending_evaluations_deleted: int = 0
    trending_posts_deleted: int = 0
    audience_days_deleted: int = 0
    audience_days_packed: int = 0
    hashtag_rows_deleted: int = 0
    reports_deleted: int = 0
    sync_runs_deleted: int = 0
    sync_runs_merged: int = 0
    notifications_deleted: int = 0
    comments_blanked: int = 0
    tagged_posts_blanked: int = 0
    comment_posts_compacted: int = 0
    tables_vacuumed: int = 0
    indexes_rebuilt: int = 0
    tables_not_reindexed: int = 0  # the role is not their owner (tables_not_owned)


def delete_old_runs(instance: dg.DagsterInstance, created_before: datetime, limit: int,
                    keep_run_ids: frozenset[str] = frozenset()) -> tuple[int, int]:
    """Delete finished runs created before ``created_before``, oldest first, at most ``limit``.
    Returns (deleted, still older than the cutoff)."""
    filters = dg.RunsFilter(created_before=created_before, statuses=_FINISHED)
    deleted = 0
    for record in instance.get_run_records(filters=filters, limit=limit, ascending=True):
        run_id = record.dagster_run.run_id
        if run_id in keep_run_ids:
            continue
        instance.delete_run(run_id)
        deleted += 1
    return deleted, instance.get_runs_count(filters=filters)


def day_cutoff(now: datetime, days: int) -> datetime:
    """Midnight UTC ``days`` days before ``now``: whole days are compacted or pruned, never half of one."""
    day = (now.astimezone(timezone.utc) - timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


# A weekly report (Monday to Sunday) reads the newest evaluation before the Tuesday after it (reports.py "trends",
# TRENDS_GRACE_DAYS = 2): weeks from Tuesday to Monday keep exactly that one.
_EVALUATION_PERIODS = {"day": "(as_of AT TIME ZONE 'UTC')::date",
                       "report_week": "date_trunc('week', (as_of AT TIME ZONE 'UTC') - interval '1 day')"}


def compact_trending_evaluations(engine: Engine, before: datetime, period: str = "day") -> int:
    """Keep the last trending evaluation of each account and UTC day (or ``report_week``: Tuesday to Monday) among
    those before ``before``."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "WITH ranked AS ("
            f" SELECT ig_user_id, as_of, row_number() OVER (PARTITION BY ig_user_id, {_EVALUATION_PERIODS[period]}"
            "  ORDER BY as_of DESC) AS rn FROM instagram.trending_evaluations WHERE as_of < :before)"
            " DELETE FROM instagram.trending_evaluations e USING ranked r"
            " WHERE e.ig_user_id = r.ig_user_id AND e.as_of = r.as_of AND r.rn > 1"), {"before": before}).rowcount


def compact_trending_posts(engine: Engine, before: datetime) -> int:
    """Of the trending_posts rows before ``before``, keep those of the evaluations still kept (what a report of a
    past period reads) and each post's first and best-ranked rows (the ``posts`` view's first_trended_at and
    best_trending_rank); run after ``compact_trending_evaluations``."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "WITH firsts AS ((SELECT DISTINCT ON (media_id) ig_user_id, as_of, rank FROM instagram.trending_posts"
            "  ORDER BY media_id, as_of, rank)"
            " UNION (SELECT DISTINCT ON (media_id) ig_user_id, as_of, rank FROM instagram.trending_posts"
            "  ORDER BY media_id, rank, as_of))"
            " DELETE FROM instagram.trending_posts t WHERE t.as_of < :before"
            " AND NOT EXISTS (SELECT 1 FROM instagram.trending_evaluations e"
            "  WHERE e.ig_user_id = t.ig_user_id AND e.as_of = t.as_of)"
            " AND NOT EXISTS (SELECT 1 FROM firsts f"
            "  WHERE f.ig_user_id = t.ig_user_id AND f.as_of = t.as_of AND f.rank = t.rank)"),
            {"before": before}).rowcount


def compact_hashtag_performance(engine: Engine, before: date, monthly_before: date | None = None) -> int:
    """Of the periods ending before ``before``, keep the newest period_end of each account, period length and
    ISO week (a weekly report reads its Sunday's). The periods of another length than the report's (the 90-day
    ones) ending before ``monthly_before``: the newest of each month (no report reads them; a 90-day window a month
    still overlaps the next by two months)."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "WITH kept AS (SELECT ig_user_id, period_end - period_start AS span, max(period_end) AS period_end"
            " FROM instagram.hashtag_performance WHERE period_end < :before"
            " GROUP BY ig_user_id, period_end - period_start, date_trunc(CASE WHEN period_end - period_start <> :span"
            "  AND period_end < :monthly_before THEN 'month' ELSE 'week' END, period_end))"
            " DELETE FROM instagram.hashtag_performance h WHERE h.period_end < :before AND NOT EXISTS ("
            " SELECT 1 FROM kept k WHERE k.ig_user_id = h.ig_user_id AND k.span = h.period_end - h.period_start"
            "  AND k.period_end = h.period_end)"),
            {"before": before, "monthly_before": monthly_before or date.min,
             "span": REPORT_HASHTAG_DAYS - 1}).rowcount


def prune_rolling_reports(engine: Engine, before: date) -> int:
    """Delete the rolling 7-day reports whose period ended before ``before``; weekly reports stay."""
    with engine.begin() as conn:
        return conn.execute(sa.text("DELETE FROM instagram.performance_reports WHERE kind = 'rolling_7d'"
                                    " AND period_end < :before"), {"before": before}).rowcount


_AUDIENCE_TABLES = ("audience_demographics", "audience_age_gender", "audience_demographics_status",
                    "audience_pictures_packed")


def compact_audience(engine: Engine, before: date, period: str = "week", batch_accounts: int = BATCH_ACCOUNTS) -> int:
    """Keep the newest audience picture of each account and ISO week (or month: ``period``) among the days before
    ``before``; returns the account-days deleted. ``batch_accounts`` accounts per transaction, each committed
    (``storage/account_batches``: the first run after an upgrade deletes months of every account's pictures)."""
    return sum(each_batch(engine, ("audience_demographics_status",),
                          lambda conn, ids: compact_accounts_audience(conn, ids, before, period), batch_accounts))


def compact_accounts_audience(conn: Connection, ig_user_ids: Sequence[str], before: date, period: str = "week") -> int:
    """:func:`compact_audience` of these accounts, in the caller's transaction."""
    conn.execute(sa.text(
        "CREATE TEMP TABLE _audience_gone ON COMMIT DROP AS SELECT ig_user_id, date FROM ("
        " SELECT ig_user_id, date, max(date) OVER (PARTITION BY ig_user_id,"
        "  date_trunc(CAST(:period AS text), date)) AS newest"
        " FROM (SELECT DISTINCT ig_user_id, date FROM instagram.audience_demographics_status"
        "  WHERE ig_user_id = ANY(:ids) AND date < :before) d) w WHERE date < newest"),
        {"before": before, "period": period, "ids": list(ig_user_ids)})
    conn.execute(sa.text("ANALYZE _audience_gone"))  # unanalysed, the planner read each table whole in every batch
    for table in _AUDIENCE_TABLES:
        conn.execute(sa.text(f"DELETE FROM instagram.{table} t USING _audience_gone g"
                             " WHERE t.ig_user_id = g.ig_user_id AND t.date = g.date"))
    return conn.execute(sa.text("SELECT count(*) FROM _audience_gone")).scalar()


def pack_old_audience(engine: Engine, before: date, batch_accounts: int = BATCH_ACCOUNTS) -> int:
    """Pack the audience pictures of the days before ``before`` (those the compaction kept) into one row per
    account and day (``storage/audience_packing``), ``batch_accounts`` accounts per transaction, each committed
    (``storage/account_batches``: the first run after an upgrade packs months of every account); returns the
    account-days packed."""
    return sum(each_batch(engine, PACKED_FROM, lambda conn, ids: pack_audience(conn, before, ids), batch_accounts))


def rebuild_indexes(engine: Engine, tables: tuple[str, ...]) -> int:
    """``REINDEX TABLE CONCURRENTLY`` of ``tables`` (packed at the default fillfactor); returns their indexes
    rebuilt. Not in a transaction (PostgreSQL refuses it there); it waits for the transactions using a table, takes
    no lock against reads and writes, and builds each index anew from the table: 15 s for 5.3 million rows (0.7 GB
    of heap, 1,000 accounts' year of pictures), 7.7 s for 4.5 million snapshot rows, on the 2-core machine. An
    interrupted rebuild leaves an invalid ``*_ccnew`` (or ``*_ccold``) index that every write would still
    maintain: dropped first."""
    where = ("FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid"
             " WHERE t.relnamespace = 'instagram'::regnamespace AND t.relname = ANY(:tables)")
    names = {"tables": list(tables)}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        leftovers = conn.execute(sa.text(f"SELECT x.relname {where} AND NOT i.indisvalid"
                                         " AND x.relname ~ '_cc(new|old)[0-9]*$'"), names).scalars().all()
        for index in leftovers:
            conn.execute(sa.text(f'DROP INDEX CONCURRENTLY IF EXISTS instagram."{index}"'))
        for table in tables:
            conn.execute(sa.text(f"REINDEX TABLE CONCURRENTLY instagram.{table}"))
        return conn.execute(sa.text(f"SELECT count(*) {where}"), names).scalar()


def tables_not_owned(engine: Engine, tables: tuple[str, ...]) -> list[str]:
    """Of ``tables``, those whose owner the connected role is not (nor a member of): REINDEX needs the owner
    (a deployment whose migrations ran as another role); VACUUM only warns and skips them."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT relname FROM pg_class WHERE relnamespace = 'instagram'::regnamespace AND relname = ANY(:t)"
            " AND NOT pg_has_role(relowner, 'USAGE') ORDER BY relname"), {"t": list(tables)}).scalars().all()


def prune_notifications(engine: Engine, before: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(sa.text("DELETE FROM instagram.notifications WHERE created_at < :before"
                                    " AND delivery <> 'pending'"), {"before": before}).rowcount


def comment_rows_cutoff(now: datetime, config: RetentionConfig) -> datetime:
    return day_cutoff(now, max(config.comment_rows_compact_after_days, COMMENT_ROWS_MIN_DAYS))


def compact_snapshot_history(engine: Engine, config: RetentionConfig, now: datetime) -> int:
    """One snapshot per post and day beyond ``snapshot_compact_after_days``, per ISO week beyond
    ``snapshot_weekly_after_days``; what trending reads of the deleted rows moves to ``media_curves``
    (``compact_snapshots``)."""
    daily = compact_snapshots(engine, day_cutoff(now, config.snapshot_compact_after_days), now)
    return daily + compact_snapshots(engine, day_cutoff(now, config.snapshot_weekly_after_days), now, period="week")


# What each count of RetentionCounts deleted from or rewrote (an UPDATE leaves the old row version behind too):
# those tables are vacuumed, and those of them in _REINDEXED have their indexes rebuilt.
_TABLES_OF_COUNT = {
    "snapshots_deleted": ("media_insights_snapshots", "media_curves"),
    "curves_deleted": ("media_curves",),
    "trending_evaluations_deleted": ("trending_evaluations",), "trending_posts_deleted": ("trending_posts",),
    "audience_days_deleted": _AUDIENCE_TABLES, "audience_days_packed": _AUDIENCE_TABLES,
    "hashtag_rows_deleted": ("hashtag_performance",),
    "reports_deleted": ("performance_reports",), "sync_runs_deleted": ("sync_runs",),
    "sync_runs_merged": ("sync_runs",),
    "notifications_deleted": ("notifications",),
    "comments_blanked": ("media_comments", "performance_reports"),
    "tagged_posts_blanked": ("tagged_media", "performance_reports"),
    "comment_posts_compacted": ("media_comments", "comment_day_counts", "media_comment_reads"),
}

# The tables whose indexes are rebuilt after a count deleted (or packed, merged) rows of them: their keys grow with
# time (or start with the account), so the deleted keys' space in the index pages is not reused and the indexes
# grew with every row ever written (snapshots, issue 27 session 10; trending and the others the same, measured by
# benchmarks.growth as free space).
_REINDEXED = frozenset({"media_insights_snapshots", *_AUDIENCE_TABLES, "trending_evaluations", "trending_posts",
                        "hashtag_performance", "sync_runs"})


def changed_tables(counts: RetentionCounts) -> list[str]:
    """The tables this run deleted rows from or rewrote (``_TABLES_OF_COUNT`` of its non-zero counts), sorted."""
    return sorted({t for count, names in _TABLES_OF_COUNT.items() if getattr(counts, count) for t in names})


def vacuum_compacted(engine: Engine, counts: RetentionCounts) -> list[str]:
    """Plain VACUUM (no lock against reads or writes) of every table this run deleted rows from or rewrote, so
    the next day's rows reuse the space at once. Autovacuum alone waits until ~20 % of a table is dead: a table
    compacted daily (a few % a day) then carried several days of deleted rows as free space (issue 27)."""
    tables = changed_tables(counts)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(sa.text(f"VACUUM instagram.{table}"))
    return tables


def apply_retention(instance: dg.DagsterInstance, engine: Engine, config: RetentionConfig, now: datetime,
                    current_run_id: str | None = None, comment_text_days: int = 90) -> RetentionCounts:
    counts = RetentionCounts()
    counts.runs_deleted, counts.runs_remaining = delete_old_runs(
        instance, now - timedelta(days=config.run_max_age_days), config.max_runs_per_tick,
        frozenset({current_run_id}) if current_run_id else frozenset())
    counts.snapshots_deleted = compact_snapshot_history(engine, config, now)
    counts.curves_deleted = drop_curves(engine, now)
    trending_cutoff = day_cutoff(now, config.trending_compact_after_days)
    counts.trending_evaluations_deleted = compact_trending_evaluations(engine, trending_cutoff) + \
        compact_trending_evaluations(engine, day_cutoff(now, config.trending_weekly_after_days), "report_week")
    counts.trending_posts_deleted = compact_trending_posts(engine, trending_cutoff)
    counts.audience_days_deleted = compact_audience(
        engine, day_cutoff(now, config.audience_compact_after_days).date()) + compact_audience(
        engine, day_cutoff(now, config.audience_monthly_after_days).date(), "month")
    counts.audience_days_packed = pack_old_audience(engine, day_cutoff(now, config.audience_pack_after_days).date())
    counts.hashtag_rows_deleted = compact_hashtag_performance(
        engine, day_cutoff(now, config.hashtag_compact_after_days).date(),
        day_cutoff(now, config.hashtag_monthly_after_days).date())
    counts.reports_deleted = prune_rolling_reports(engine, day_cutoff(now, config.rolling_reports_keep_days).date())
    counts.sync_runs_deleted = sync_runs.prune(engine, day_cutoff(now, config.sync_runs_keep_days),
                                               day_cutoff(now, config.sync_runs_success_keep_days))
    counts.sync_runs_merged = sync_runs.merge_hourly_successes(engine, day_cutoff(now, config.sync_runs_detail_days))[0]
    counts.notifications_deleted = prune_notifications(engine, day_cutoff(now, config.notifications_keep_days))
    counts.comments_blanked = blank_comment_text(engine, now - timedelta(days=comment_text_days), now)
    counts.tagged_posts_blanked = blank_tagged_text(engine, now - timedelta(days=comment_text_days))
    counts.comment_posts_compacted = compact_comment_rows(engine, comment_rows_cutoff(now, config), now)
    counts.tables_vacuumed = len(vacuum_compacted(engine, counts))
    rebuilt = tuple(t for t in changed_tables(counts) if t in _REINDEXED)
    refused = tables_not_owned(engine, rebuilt) if rebuilt else []
    if refused:  # the deletes are done and committed: the day's retention is not failed for the rebuild
        counts.tables_not_reindexed = len(refused)
        logging.getLogger(__name__).warning(
            "retention: the indexes of instagram.%s were not rebuilt: REINDEX needs the tables' owner, and this role "
            "is not. They keep the space the deletes freed. Run retention_job as the role that ran the migrations, "
            "or make this role the owner (ALTER TABLE ... OWNER TO).", ", instagram.".join(refused))
    rebuilt = tuple(t for t in rebuilt if t not in refused)
    if rebuilt:
        counts.indexes_rebuilt = rebuild_indexes(engine, rebuilt)
    return counts


@dg.op(out=dg.Out(dg.Nothing),
       description="Deletes old Dagster runs, compacts old media snapshots (trending's curves packed into "
                   "media_curves), trending evaluations and posts, "
                   "audience pictures and hashtag periods, prunes rolling reports, sync_runs (merging old hourly "
                   "successes) and notifications, "
                   "blanks old comment text, then VACUUMs the tables it changed and rebuilds the indexes of those "
                   "it compacted.")
def apply_retention_op(context: dg.OpExecutionContext, config: RetentionConfig, database: AnalyticsDatabase):
    counts = apply_retention(context.instance, database.engine(), config, clock.now(),
                             context.run_id, database.settings().comment_text_days)
    context.log.info(f"retention: {counts}")
    return dg.Output(
        None,
        metadata={name: dg.MetadataValue.int(value) for name, value in vars(counts).items()},
    )


@dg.job(description="Daily retention (docs/operations.md, 'Retention'). Configurable ages; counts in metadata.",
        tags={"ig_analytics/kind": "maintenance"})
def retention_job():
    apply_retention_op()


retention_schedule = dg.ScheduleDefinition(
    name="daily_retention", job=retention_job, cron_schedule="30 4 * * *", execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
