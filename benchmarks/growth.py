"""Benchmark: how the databases grow (issue 27). Simulated days of hourly ticks for N sandbox accounts with
retention on; bytes per account per 30 days for every table, and for Dagster's own storage.

Running 24 x 60 real Dagster runs would take hours on 2 cores, so the simulation drives the product's own capture
and analytics functions, the ones the assets call, with the product's clock (``ig_analytics.clock.use``) and the
sandbox's clock (``POST /__sandbox/clock``, frozen) set to each tick:

- every hour (hh:05): ``ingestion.runner.sync_accounts`` with ``sync_media`` (the ``media_and_snapshots`` asset;
  at 02:00 with ``refresh_all``, the 02:10 daily refresh of the same partition), ``sync_comments`` (full at the
  refresh), ``refresh_media_engagement`` of the posts captured in the hour, ``refresh_trending_posts``;
- once a day, at 02:00 (their outputs are replaced, not accumulated, so once a day stores what 24 hourly runs
  would, minus dead tuples that autovacuum reuses): account insights of the last 3 days (``sync_account_insights``),
  the audience picture (``sync_audience_demographics``), tagged posts (``sync_tags``), ``account_engagement_daily``,
  ``best_posting_times``, hashtags and conversation tables (their asset bodies' functions, written slice-replaced
  like the IO manager does); 03:00 the rolling 7-day reports' rows (Mondays also the weekly ones; the HTML files,
  not in PostgreSQL, are not rendered); 04:30 retention (``defs/retention.apply_retention`` with the product's
  ``RetentionConfig()`` defaults; its Dagster-runs part has no runs here);
- the first tick is an ``ig-analytics sync``: 90 days of account insights, every post of the last 30 days.

Not simulated: competitors (none configured by default), follower anchors (one row per account a day), token
maintenance and notifications (a few rows a day); their tables are printed with what they hold.

Sizes: ``pg_total_relation_size`` (heap, indexes, TOAST) of every ``instagram`` table after ``VACUUM`` (what
autovacuum does; dead space is reused, not returned), at day 30 and at the end. Snapshots are also counted in a
shadow copy that no retention touches (``uncompacted``): what the same days cost without compaction.

A year of one account, from the steady state each table reaches under the retention defaults (not a line through
days 30-60, which overstates every table whose compaction starts after day 30): linear from the last 30 days for
tables whose horizons are 30 days or less (or that have none); for the others (``COUNTED``) the free space they hold
at the end plus the rows a year keeps (the product's own compaction run on a year of keys) x packed bytes per row;
``hashtag_performance`` among them (its weekly periods are kept: a year follows its retention, not a line);
bounded tables (``BOUNDED``: replaced, one row per account or per account x slot, e.g. ``best_posting_times``)
their size at the end; ``sync_runs`` its size at the end (its successful rows reach their 30 days by then) plus its
failed rows of the last 30 days for each 30 days until its 180-day horizon; ``media_comments`` its rows of the last 90 days whole and
the rows of older posts as ``compact_comment_rows`` leaves them (the open questions, blanked, and
``comment_day_counts``; measured by compacting every post at the end). See ``year_overrides``.

Even so a tick costs about 0.6 s per 10 accounts here, so 200 accounts x 60 days would take hours: the default
simulates 10 accounts (the sandbox draws each account's posting rate, 0.4-2.0 posts a day) and every figure is
per account; ``--accounts 200`` runs the brief's size when there is time.

Dagster's storage, first: real runs through Dagster (the ``hourly_job`` benchmark's run worker, a
``DAGSTER_HOME`` on this PostgreSQL, database ``dagster``) of ``media_sync_job`` (two hours: the first, then a
steady one) and ``account_insights_job`` for ``--dagster-accounts`` (200) accounts, on the wall clock; bytes of
Dagster's database added per run, times the runs the retention job keeps (``run_max_age_days``).

A year of snapshots: the capture slots of 365 days from the sandbox's publication times and the product's
``due_for_capture`` (no API), stored and compacted by ``compact_snapshots`` under each horizon (none, the old 90
days, daily after 7 days, the default: daily after 7 and weekly after 35 days); rows x the simulation's bytes per
row. The compaction moves what trending reads of the deleted rows into ``media_curves`` (session 10): its points
a year keeps x the simulation's packed bytes per point.

    .venv/bin/python -m benchmarks.growth [--quick] [--accounts 10] [--days 60] [--posts 100] [--dagster-accounts 200]
    .venv/bin/python -m benchmarks.growth --snapshot-year-only BYTES_PER_ROW [--curve-point-bytes B] [--accounts 10]
    .venv/bin/python -m benchmarks.growth --snapshot-free-space DAYS [--accounts 4]  (the table day by day, no API)
    .venv/bin/python -m benchmarks.growth --snapshot-reindex ACCOUNTS  (seconds of the snapshot indexes' rebuild)
    (quick: 3 accounts, 2 days, Dagster runs of 2 accounts)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "growth"
MB = 1024 * 1024
TICK_MINUTE = 5  # the hourly schedule's minute
TEXT_DAYS = 90  # IG_ANALYTICS_COMMENT_TEXT_DAYS by default: tagged posts older than this are stored without their text


class Clock:
    """The simulated time: the product reads it through ``clock.use``; ``set`` also moves the sandbox's."""

    def __init__(self, base_url: str, at: datetime) -> None:
        self.base_url, self.at = base_url, at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at
        body = json.dumps({"now": at.isoformat(), "frozen": True}).encode()
        req = urllib.request.Request(self.base_url + "/__sandbox/clock", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=60).read()


class Sim:
    """One product installation's ticks: the functions the assets call, on the simulated clock."""

    def __init__(self, engine, client, creds, home: Path) -> None:
        self.engine, self.client, self.creds, self.home = engine, client, creds, home
        self.seconds: dict[str, float] = {}

    def timed(self, what: str, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - t

    def accounts(self, sync_type: str, key: str, work) -> None:
        from ig_analytics.ingestion.runner import sync_accounts

        sync_accounts(self.engine, self.client, self.creds, sync_type=sync_type, partition_key=key,
                      run_id=f"growth-{uuid.uuid4()}", work=work, max_workers=8)

    def media(self, slot: datetime, now: datetime, refresh_all: bool) -> None:
        from ig_analytics import clock
        from ig_analytics.defs.ingestion_assets import MediaSyncConfig
        from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media

        cfg = MediaSyncConfig()
        policy = CapturePolicy(cfg.window_days, cfg.young_hours, cfg.daily_interval_hours)

        def work(api, account, result) -> None:
            synced = sync_media(self.engine, api, account.ig_user_id, slot, min(slot + timedelta(hours=1), now),
                                self.client.version, clock.now(), policy, refresh_all=refresh_all)
            result.rows_written, result.items_skipped = synced.rows_written, synced.skipped
            result.details.update(media=synced.media_rows, snapshots=synced.snapshot_rows, due=synced.due,
                                  not_captured=synced.not_captured)  # the sync_runs row the asset writes
            result.finish("partial" if synced.not_captured else "success")

        self.accounts("media", slot.strftime("%Y-%m-%d-%H:00"), work)

    def per_account(self, work) -> None:
        """The conversation assets' loop (for_each_account): one account's failure is its own."""
        def one(account):
            api = self.client.account(account.ig_user_id, account.token, account.login_kind)
            try:
                work(api, account)
            except Exception as exc:  # noqa: BLE001 - counted, as the asset records it per account
                self.seconds["failed_accounts"] = self.seconds.get("failed_accounts", 0) + 1
                print(f"  {account.ig_user_id}: {type(exc).__name__}: {str(exc)[:120]}", flush=True)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, self.creds))

    def comments(self, now: datetime, full: bool) -> None:
        from ig_analytics.ingestion.comments import sync_comments

        self.per_account(lambda api, a: sync_comments(self.engine, api, a.ig_user_id, a.username, now, full=full))

    def hourly_analytics(self, slot: datetime, now: datetime) -> None:
        import sqlalchemy as sa

        from benchmarks import direct_writes
        from ig_analytics.analytics import trending

        with self.engine.begin() as conn:
            captured = conn.execute(sa.text(
                "SELECT DISTINCT media_id FROM instagram.media_insights_snapshots WHERE captured_at >= :s"
                " AND captured_at < :e"), {"s": slot, "e": slot + timedelta(hours=1)}).scalars().all()
            if captured:
                direct_writes.refresh_media_engagement(conn, media_ids=captured, now=now)
        with self.engine.begin() as conn:
            trending.refresh_trending_posts(conn, as_of=slot, now=now)

    def tick(self, slot: datetime, now: datetime) -> None:
        hour = slot.hour
        self.timed("media", self.media, slot, now, hour == 2)
        self.timed("comments", self.comments, now, hour == 2)
        self.timed("hourly_analytics", self.hourly_analytics, slot, now)
        if hour == 2:
            self.timed("daily_ingestion", self.daily_ingestion, now)
            self.timed("daily_analytics", daily_analytics, self.engine, now)
        if hour == 3:
            self.timed("reports", self.reports, now)
        if hour == 4:
            self.timed("retention", retention, self.engine, now)

    def daily_ingestion(self, now: datetime, days: int = 3) -> None:
        from ig_analytics.ingestion.account_insights import sync_account_insights
        from ig_analytics.ingestion.demographics import sync_audience_demographics
        from ig_analytics.ingestion.tags import sync_tags, tags_due

        yesterday = now.date() - timedelta(days=1)
        first = yesterday - timedelta(days=days - 1)

        def insights(api, account, result) -> None:
            result.rows_written = sync_account_insights(self.engine, api, account.ig_user_id, first, yesterday,
                                                        self.client.version, now)

        def audience(api, account, result) -> None:
            result.rows_written = sync_audience_demographics(self.engine, api, account.ig_user_id, now.date(),
                                                             self.client.version, now)

        self.accounts("account", f"{first}...{yesterday}", insights)
        self.accounts("demographics", now.date().isoformat(), audience)
        self.per_account(lambda api, a: sync_tags(self.engine, api, a.ig_user_id, now, TEXT_DAYS)
                         if tags_due(self.engine, a.ig_user_id, now) else 0)

    def reports(self, now: datetime) -> None:
        """reports.write_reports' rows (the rolling 7-day reports of yesterday; Mondays also the weekly ones),
        without rendering the HTML files (they are not in PostgreSQL; rendering took ~2 s a report here)."""
        from ig_analytics import clock
        from ig_analytics.analytics import reports
        from ig_analytics.storage import db

        yesterday = now.date() - timedelta(days=1)
        start = yesterday - timedelta(days=6)
        ids = [a.ig_user_id for a in self.creds]
        for kind in ["rolling_7d"] + (["weekly"] if now.weekday() == 0 else []):
            with self.engine.begin() as conn:
                built = reports.build_reports(conn, ids, start, yesterday)
                rows = []
                for ig_user_id in ids:
                    report = {**built[ig_user_id], "kind": kind, "permalinks_synthetic": True}
                    path = self.home / ig_user_id / f"{kind}_{start.isoformat()}_{yesterday.isoformat()}.html"
                    rows.append((ig_user_id, start, yesterday, kind, clock.now(), report, str(path)))
                db.bulk_upsert(conn, "performance_reports", reports.REPORT_COLUMNS, rows,
                               ["ig_user_id", "kind", "period_start", "period_end"])


def daily_analytics(engine, now: datetime) -> None:
    """account_engagement_daily, best_posting_times, media_hashtags, hashtag_performance, conversation_daily and
    conversation_posts as their assets compute them, each written as its IO manager slice (delete + copy; the
    whole-table ``media_hashtags`` as ``db.replace_rows``, the IO manager's: a delete and copy of every row each
    day held about a second copy of the table as free space, which the product never writes)."""
    import sqlalchemy as sa

    from benchmarks import direct_writes
    from ig_analytics.analytics import conversation, hashtags
    from ig_analytics.defs.analytics_assets import ENGAGEMENT_WINDOW_DAYS
    from ig_analytics.storage import db
    from ig_analytics.storage.frames import copy_frame, frame_rows

    today = now.date() + timedelta(days=1)
    first_conv = now.date() - timedelta(days=conversation.WINDOW_DAYS)
    midnight = datetime(first_conv.year, first_conv.month, first_conv.day, tzinfo=timezone.utc)
    with engine.begin() as conn:
        direct_writes.refresh_account_engagement_daily(
            conn, day_from=today - timedelta(days=ENGAGEMENT_WINDOW_DAYS), day_to=today, now=now)
        direct_writes.refresh_best_posting_times(conn, now=now)
        posts = hashtags.read_posts(conn, datetime(2000, 1, 1, tzinfo=timezone.utc))
        tags = hashtags.hashtag_rows(posts)
        columns = list(hashtags.HASHTAG_COLUMNS)  # the IO manager's replace: only the difference is written
        db.replace_rows(conn, "media_hashtags", columns, frame_rows(tags, columns), columns, ["media_id", "hashtag"],
                        ("true", {}))
        last_day = now.date() - timedelta(days=1)
        recent = hashtags.read_posts(conn, now - timedelta(days=max(hashtags.PERIOD_DAYS) + 2))
        perf = hashtags.performance_rows(recent, tags[["media_id", "hashtag", "ig_user_id"]], last_day, now)
        conn.execute(sa.text("DELETE FROM instagram.hashtag_performance WHERE period_end = :d"), {"d": last_day})
        copy_frame(conn, "hashtag_performance", perf)
        daily = conversation.daily_rows(
            conversation.read_comments(conn, midnight - timedelta(days=7)), first_conv, now)
        conn.execute(sa.text("DELETE FROM instagram.conversation_daily WHERE date >= :d"), {"d": first_conv})
        copy_frame(conn, "conversation_daily", daily)
        by_post = conversation.post_rows(conversation.read_comments(conn, midnight, by_post=True), now)
        conn.execute(sa.text("DELETE FROM instagram.conversation_posts WHERE published_at >= :d"), {"d": midnight})
        copy_frame(conn, "conversation_posts", by_post)


class NoRuns:
    """The Dagster instance retention deletes old runs from: none here (Dagster's storage is measured apart)."""

    def get_run_records(self, filters=None, limit=None, ascending=False):
        return []

    def get_runs_count(self, filters=None):
        return 0


def retention(engine, now: datetime) -> None:
    """The daily retention job's work with the product's defaults; the shadow copy keeps every snapshot first."""
    import sqlalchemy as sa

    from ig_analytics.defs.retention import RetentionConfig, apply_retention

    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO growth.uncompacted SELECT * FROM instagram.media_insights_snapshots"
            " ON CONFLICT DO NOTHING"))
    apply_retention(NoRuns(), engine, RetentionConfig(), now)


def shadow_table(engine) -> None:
    """growth.uncompacted: media_insights_snapshots with the same columns and indexes, never compacted."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA growth"))
        conn.execute(sa.text("CREATE TABLE growth.uncompacted"
                             " (LIKE instagram.media_insights_snapshots INCLUDING ALL)"))


def table_sizes(engine, schemas: tuple[str, ...] = ("instagram", "growth")) -> dict[str, tuple[int, int]]:
    """{schema.table: (bytes incl. indexes and TOAST, rows)} after a VACUUM of each table."""
    import sqlalchemy as sa

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = conn.execute(sa.text(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(:s) AND c.relkind IN ('r', 'p') ORDER BY 1"), {"s": list(schemas)}).scalars().all()
        out = {}
        for name in tables:
            quoted = ".".join(f'"{part}"' for part in name.split(".", 1))
            conn.execute(sa.text(f"VACUUM {quoted}"))
            size = conn.execute(sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": quoted}).scalar()
            rows = conn.execute(sa.text(f"SELECT count(*) FROM {quoted}")).scalar()
            out[name] = (int(size), int(rows))
    return out


def simulate(engine, base_url: str, creds, client, days: int, home: Path) -> dict[int, dict]:
    """``days`` days of hourly ticks from today's 00:00 UTC; sizes at day 30 (if reached) and at the end."""
    import sqlalchemy as sa

    from ig_analytics import clock

    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    clk = Clock(base_url, start + timedelta(minutes=TICK_MINUTE))
    sim = Sim(engine, client, creds, home)
    checkpoints = {d for d in (30, days) if d <= days}
    sizes: dict[int, dict] = {0: table_sizes(engine)}  # the empty tables (pages every table has)
    t0 = time.perf_counter()
    with clock.use(clk):
        clk.set(clk.at)
        sim.timed("first_sync", sim.daily_ingestion, clk.at, 90)  # `ig-analytics sync`: 90 days of insights ...
        sim.timed("first_sync", sim.media, start, clk.at, True)  # ... and every post of the last 30 days
        for i in range(days * 24):
            slot = start + timedelta(hours=i)
            clk.set(slot + timedelta(minutes=TICK_MINUTE))
            sim.tick(slot, clk.at)
            if (i + 1) % 24:
                continue
            day = (i + 1) // 24
            if day in checkpoints:
                with engine.begin() as conn:  # snapshots captured since the last retention run
                    conn.execute(sa.text("INSERT INTO growth.uncompacted SELECT * FROM"
                                         " instagram.media_insights_snapshots ON CONFLICT DO NOTHING"))
                sizes[day] = table_sizes(engine)
            if day % 5 == 0 or day in checkpoints:
                spent = ", ".join(f"{k} {v:.0f}" for k, v in sim.seconds.items())
                print(f"  day {day}: {time.perf_counter() - t0:.0f} s ({spent})", flush=True)
    c.result("growth.simulation.seconds", time.perf_counter() - t0, "s",
             f"{days} days x 24 ticks; " + ", ".join(f"{k} {v:.0f} s" for k, v in sim.seconds.items()))
    if sim.seconds.get("failed_accounts"):  # the tables would be measured without what those accounts write
        raise SystemExit(f"growth: {sim.seconds['failed_accounts']:.0f} account step(s) failed (printed above): "
                         "the sizes would not be the product's")
    return sizes


AUDIENCE = ("instagram.audience_demographics", "instagram.audience_age_gender",
            "instagram.audience_demographics_status", "instagram.audience_pictures_packed")
# The row tables hold the pictures of the last audience_pack_after_days days (a fixed window: their year is
# their size at the end); retention packs the older pictures it keeps, one packed row each (session 10).
AUDIENCE_ROWS = ("instagram.audience_demographics", "instagram.audience_age_gender")
TRENDING = ("instagram.trending_evaluations", "instagram.trending_posts")
CURVES = "instagram.media_curves"
HASHTAGS = "instagram.hashtag_performance"
COUNTED = ("instagram.media_insights_snapshots", "instagram.performance_reports") + AUDIENCE + TRENDING + (HASHTAGS,)
# Replaced, not accumulated: at most one row per account (or account x weekday x hour: best_posting_times, whose
# 90-day lookback is full by day 60, the simulation starting with the posts of 30 days), or per parameter set or
# app. A year of them is their size at the end; a line through days 30-60 extended their free space's wobble.
BOUNDED = ("instagram.best_posting_times", "instagram.accounts", "instagram.tag_reads", "instagram.comment_access",
           "instagram.api_budget", "instagram.trending_parameter_sets")
# Linear from the last 30 days is the steady state only for a table whose retention has reached it by the window's
# start (its horizons 30 days or less, or none). The tables of COUNTED have longer ones, so their year is computed:
# the free space they hold at the end (live size - the same rows packed into a fresh copy: deleted rows' pages are
# reused, not returned, so it stays about constant) + rows a year of one account keeps x packed bytes per row.
#   snapshots: the capture slots of a year compacted by compact_snapshot_history (snapshot_year); media_curves
#   (bounded: the posts of trending's 90-day baseline) the points that compaction moved there x packed bytes per
#   point of the simulation's curves (the year's snapshots are keys only: their arrays would be NULLs);
#   audience status rows and packed pictures, performance_reports and trending evaluations: a year of keys (one
#   picture a day, those older than a day packed, the audience row tables their size at the end; a rolling
#   report a day and a weekly one a week; an evaluation an hour) through apply_retention at the year's end
#   (kept_of_a_year); trending_posts: its rows per evaluation at the end x the evaluations a year keeps;
#   hashtag_performance: its rows per period (account, length, end) of the last 7 days at the end (the 90-day
#   periods fill up until day 90 of posts, so the older periods' rows undercount) x the periods a year keeps of a
#   daily 30- and 90-day period (kept_of_a_year: 7 days, then the newest of each ISO week). A line through days
#   30-60 counted the 7 days' rows growing with the tags of the 90-day periods, and the free space.
# sync_runs: the end's size (successful rows are kept 30 days: steady by then) + the failed or unfinished rows of
# the last 30 days for each 30 days until sync_runs_keep_days, x packed bytes per row (the growth of days 30-60 was
# free space of the pruned rows, not rows: extending it to 180 days overstated it). media_comments: its rows grow
# linearly (the rows of days 30-60 a day); retention blanks the text and username of those older than TEXT_DAYS and
# replaces the rows of posts older than comment_rows_compact_after_days by counts (comment_day_counts), keeping the
# open questions: the free space at the end + the rows of the horizon's days x packed bytes per row (blanked past
# TEXT_DAYS) + the older rows x what compact_comment_rows leaves of one row (``compacted_comments``: the share kept
# x the packed bytes of a kept row, blanked, + comment_day_counts' packed bytes per row compacted). The comments'
# ages are counted from their post's publication (the horizon's), a few days early. tagged_media stays linear.
BLANKED = {"instagram.media_comments": {"text": "NULL", "username": "NULL", "text_blanked_at": "now()"}}


def packed_sizes(engine, tables=COUNTED + (CURVES,) + tuple(BLANKED) + ("instagram.sync_runs",),
                 replace: dict[str, dict[str, str]] | None = None) -> dict[str, int]:
    """Bytes of each table's rows copied into a fresh table with the same indexes (no free space; the audience
    tables' indexes rebuilt after the copy, as retention leaves them), less empty;
    ``replace``: {table: {column: SQL}} copies those columns as that SQL instead (the rows retention blanks)."""
    import sqlalchemy as sa

    out = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in tables:
            conn.execute(sa.text(f"CREATE TABLE growth.packed (LIKE {name} INCLUDING ALL)"))
            empty = conn.execute(sa.text("SELECT pg_total_relation_size('growth.packed')")).scalar()
            columns = conn.execute(sa.text(
                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0"
                " AND NOT attisdropped ORDER BY attnum"), {"t": name}).scalars().all()
            swap = (replace or {}).get(name, {})
            select = ", ".join(swap.get(col, f'"{col}"') for col in columns)
            conn.execute(sa.text(f"INSERT INTO growth.packed SELECT {select} FROM {name}"))
            if name in AUDIENCE + COUNTED[:1]:  # retention rebuilds their indexes (rebuild_indexes): packed
                conn.execute(sa.text("REINDEX TABLE growth.packed"))
            conn.execute(sa.text("VACUUM growth.packed"))
            out[name] = conn.execute(sa.text("SELECT pg_total_relation_size('growth.packed')")).scalar() - empty
            conn.execute(sa.text("DROP TABLE growth.packed"))
    return out


def comment_index_scans(engine) -> None:
    """How often the simulation's queries (the product's: sync, analytics, reports, retention) used each index of
    media_comments (pg_stat_user_indexes.idx_scan): an index none uses is bytes for nothing."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
        rows = conn.execute(sa.text(
            "SELECT indexrelname, idx_scan, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
            " WHERE schemaname = 'instagram' AND relname = 'media_comments' ORDER BY 1")).all()
    for name, scans, size in rows:
        c.result(f"growth.index_scans.{name}", scans, "scans", f"{size:,} B at the end")


def compacted_comments(engine) -> dict[str, float]:
    """What ``compact_comment_rows`` leaves of the simulation's comments, every post compacted at the end (as if
    past the horizon; run last, it changes the tables): the share of rows kept (open questions), the packed bytes
    of a kept row blanked (as it is by then), and comment_day_counts' packed bytes per comment row compacted."""
    import sqlalchemy as sa

    from ig_analytics import clock
    from ig_analytics.storage.comment_retention import compact_comment_rows

    count = "SELECT count(*) FROM instagram.media_comments"
    with engine.connect() as conn:
        before = conn.execute(sa.text(count)).scalar()
    compact_comment_rows(engine, datetime(9999, 1, 1, tzinfo=timezone.utc), clock.now())
    with engine.connect() as conn:
        kept = conn.execute(sa.text(count)).scalar()
    packed = packed_sizes(engine, ("instagram.media_comments", "instagram.comment_day_counts"), BLANKED)
    return {"kept_share": kept / before, "kept_bytes": packed["instagram.media_comments"] / max(kept, 1),
            "counts_bytes": packed["instagram.comment_day_counts"] / before}


def _comments_year(rows: int, per_day: float, days: int, n: int, full: float, blank: float, free: float,
                   compacted: dict[str, float]) -> tuple[float, str]:
    from ig_analytics.defs.retention import COMMENT_ROWS_MIN_DAYS, RetentionConfig

    horizon = max(RetentionConfig().comment_rows_compact_after_days, COMMENT_ROWS_MIN_DAYS)
    year_rows = rows + per_day * (365 - days)
    whole = min(year_rows, per_day * min(horizon, TEXT_DAYS))
    blanked = min(year_rows - whole, per_day * max(0, horizon - TEXT_DAYS))
    old = year_rows - whole - blanked
    per_old = compacted["kept_share"] * compacted["kept_bytes"] + compacted["counts_bytes"]
    return ((free * n + whole * full + blanked * blank + old * per_old) / n,
            f"{free:,.0f} B free + {whole / n:,.0f} rows x {full:,.0f} B + {blanked / n:,.0f} blanked x {blank:,.0f} B"
            f" + {old / n:,.0f} rows of posts older than {horizon} days, compacted: {compacted['kept_share']:.1%} kept"
            f" x {compacted['kept_bytes']:,.0f} B + comment_day_counts {compacted['counts_bytes']:,.0f} B a row")


def year_overrides(sizes: dict[int, dict], days: int, n: int, packed: dict[str, int], pictures_at_end: dict[str, int],
                   snapshot_year_rows: dict[str, float], kept: dict[str, int], packed_blanked: dict[str, int],
                   failed_per_30d: int, compacted: dict[str, float], curve_points: int,
                   hashtag_rows_per_period: float) -> dict[str, tuple[float, str]]:
    """{table: (bytes per account-year, how)} for the tables whose retention horizon exceeds the window, and the
    bounded ones (``BOUNDED``: their size at the end)."""
    from ig_analytics.defs.retention import RetentionConfig

    empty, last = sizes[0], sizes[days]
    grown = {name: size - empty.get(name, (0, 0))[0] for name, (size, _rows) in last.items()}
    rows_year = {"instagram.audience_demographics_status":
                 last["instagram.audience_demographics_status"][1] / pictures_at_end["all"] * kept["pictures"],
                 "instagram.audience_pictures_packed": kept["pictures"] - pictures_at_end["rows"] / n}
    rows_year["instagram.media_insights_snapshots"] = snapshot_year_rows["snapshots"]
    rows_year["instagram.performance_reports"] = kept["reports"]
    evaluations = last["instagram.trending_evaluations"][1]
    rows_year.update({name: last[name][1] / evaluations * kept["evaluations"] for name in TRENDING})
    rows_year[HASHTAGS] = hashtag_rows_per_period * kept["hashtag_periods"]
    unit = {"instagram.media_insights_snapshots": "snapshot rows", "instagram.performance_reports": "reports",
            "instagram.trending_evaluations": "evaluations", "instagram.audience_pictures_packed": "packed pictures",
            HASHTAGS: f"rows ({kept['hashtag_periods']} periods x {hashtag_rows_per_period:.1f} rows)"}
    out = {}
    for name in AUDIENCE_ROWS:
        out[name] = (grown[name] / n, f"the end's size: {pictures_at_end['rows'] / n:,.1f} pictures of the last"
                                      f" {RetentionConfig().audience_pack_after_days} day(s) as rows")
    for name in (t for t in COUNTED if t not in AUDIENCE_ROWS):
        per_row, free = packed[name] / max(last[name][1], 1), (grown[name] - packed[name]) / n
        out[name] = (free + per_row * rows_year[name],
                     f"{free:,.0f} B free + {rows_year[name]:,.0f} {unit.get(name, 'rows')} a year x {per_row:,.0f} B"
                     + (f" ({kept['pictures']} pictures)" if name in AUDIENCE else ""))
    per_point, free = packed[CURVES] / max(curve_points, 1), (grown[CURVES] - packed[CURVES]) / n
    out[CURVES] = (free + per_point * snapshot_year_rows["curve_points"],
                   f"{free:,.0f} B free + {snapshot_year_rows['curve_points']:,.0f} points a year keeps"
                   f" ({snapshot_year_rows['curve_rows']:,.0f} posts) x {per_point:,.1f} B")
    for name in BLANKED:
        rows = last[name][1]
        per_day = (rows - sizes[30][name][1]) / 30 if 30 in sizes and days > 30 else rows / days
        full, blank, free = packed[name] / rows, packed_blanked[name] / rows, (grown[name] - packed[name]) / n
        out[name] = _comments_year(rows, per_day, days, n, full, blank, free, compacted)
    # Not twice: the media_comments year above holds the counts of every row it compacts (once the simulation's
    # posts pass comment_rows_compact_after_days, the table also grows within the 60 days).
    out["instagram.comment_day_counts"] = (0.0, "in media_comments' year (the counts of the rows it compacts)")
    keep = RetentionConfig().sync_runs_keep_days
    name = "instagram.sync_runs"
    per_row, kept_rows = packed[name] / max(last[name][1], 1), failed_per_30d * max(0, min(365, keep) - days) / 30
    out[name] = ((grown[name] + kept_rows * per_row) / n,
                 f"the end's size + {kept_rows / n:,.0f} more failed or unfinished rows until {keep} days"
                 f" (sync_runs_keep_days) x {per_row:,.0f} B")
    for name in BOUNDED:
        if name in last:
            out[name] = (grown[name] / n, "bounded (replaced; one row per account or slot): its size at the end")
    return out


def hashtag_rows_per_period(engine, days: int = 7) -> float:
    """hashtag_performance rows per period (account, length, end) among the periods ending in the last ``days``
    days (kept whole by retention): what each period a year keeps holds once the 90-day periods are full."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows, periods = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT (ig_user_id, period_start, period_end)) FROM instagram.hashtag_performance"
            " WHERE period_end > (SELECT max(period_end) FROM instagram.hashtag_performance) - :d"), {"d": days}).one()
    return rows / max(periods, 1)


def failed_sync_rows(engine, days: int = 30) -> int:
    """sync_runs rows of the simulation's last ``days`` days that retention keeps beyond
    sync_runs_success_keep_days (failed or unfinished): the only ones that still accumulate once the successful
    ones reach their 30 days."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM instagram.sync_runs WHERE status NOT IN ('success', 'partial') AND started_at"
            " >= (SELECT max(started_at) FROM instagram.sync_runs) - make_interval(days => :days)"),
            {"days": days}).scalar()


def report_sizes(sizes: dict[int, dict], n: int, days: int, overrides: dict[str, tuple[float, str]]) -> None:
    """Per table, less its size when empty: bytes per account at day 30 and at the end, growth per account per
    30 days (over the last 30 days; with fewer days, the average), and a year of one account: the end's size plus
    that growth for the remaining days (linear from the steady state: every horizon of these tables is 30 days or
    less) or, for the tables of ``year_overrides``, their free space + rows kept a year x packed bytes per row."""
    empty, last = sizes[0], sizes[days]
    first = sizes.get(30) if days > 30 else None
    totals = {"end": 0.0, "per30": 0.0, "year": 0.0}
    print(f"{'table':42} {'rows@end':>10} {'B/acct@30d':>11} {'B/acct@end':>11} {'B/acct/30d':>11} "
          f"{'B/acct/year':>12}  how", flush=True)
    for name, (size, rows) in sorted(last.items(), key=lambda kv: -kv[1][0]):
        base = empty.get(name, (0, 0))[0]
        at30 = first[name][0] - base if first else None
        grown = size - base
        per30 = (grown - at30) if first else grown * 30 / days
        year, how = overrides.get(name, ((grown + per30 * (365 - days) / 30) / n, "linear"))
        if not name.startswith("growth."):
            for key, value in (("end", grown), ("per30", per30), ("year", year * n)):
                totals[key] += value
        print(f"{name:42} {rows:>10,} {(at30 or 0) / n:>11,.0f} {grown / n:>11,.0f} {per30 / n:>11,.0f} "
              f"{year:>12,.0f}  {how}", flush=True)
        key = name.replace("instagram.", "").replace("growth.", "shadow.")
        c.result(f"growth.{key}.bytes_per_account_year", year, "B",
                 f"{how}; day {days}: {grown / n:,.0f} B/account, {rows:,} rows, {per30 / n:,.0f} B per 30 days")
    c.result("growth.postgres.bytes_per_account", totals["end"] / n, "B", f"every instagram table at day {days}")
    c.result("growth.postgres.bytes_per_account_per_30d", totals["per30"] / n, "B", "every instagram table")
    c.result("growth.postgres.bytes_per_account_year", totals["year"] / n / MB, "MB",
             "every instagram table, a year of one account at the steady state of its retention")
    c.result("growth.postgres.projected_10k_1y", totals["year"] / n * 10_000 / 2**30, "GB",
             "10,000 accounts x 365 days")


def kept_of_a_year(engine) -> dict[str, int]:
    """What the product's retention (``apply_retention``, defaults, at the year's end) keeps of a year of one
    account's daily audience pictures (status rows stand for them) and reports (a rolling one a day, a weekly one
    each Sunday), hourly trending evaluations and daily hashtag periods (30 and 90 days, one row each)."""
    import sqlalchemy as sa

    from ig_analytics.defs.retention import RetentionConfig, apply_retention

    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=365, hours=4, minutes=30)
    days = [(start + timedelta(days=d)).date() for d in range(365)]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username, timezone, status)"
                             " VALUES ('Y', 'y', 'UTC', 'active')"))
        conn.execute(sa.text(
            "INSERT INTO instagram.audience_demographics_status (ig_user_id, date, metric, breakdown, status,"
            " api_version, fetched_at) SELECT 'Y', d, 'follower_demographics', 'age', 'ok', 'v25.0', now()"
            " FROM unnest(CAST(:days AS date[])) d"), {"days": days})
        conn.execute(sa.text(
            "INSERT INTO instagram.performance_reports (ig_user_id, period_start, period_end, kind, generated_at,"
            " report) SELECT 'Y', d - 6, d, k, now(), '{}'::jsonb FROM unnest(CAST(:days AS date[])) d,"
            " unnest(ARRAY['rolling_7d', 'weekly']) k WHERE k = 'rolling_7d' OR extract(isodow FROM d) = 7"),
            {"days": days})
        conn.execute(sa.text(
            "INSERT INTO instagram.trending_parameter_sets (params, first_used_at) VALUES ('{}', now())"))
        conn.execute(sa.text(
            "INSERT INTO instagram.trending_evaluations (ig_user_id, as_of, candidates, scored, listed, params_id,"
            " computed_at) SELECT 'Y', t, 0, 0, 0, (SELECT min(params_id) FROM instagram.trending_parameter_sets), t"
            " FROM generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) - interval '1 hour',"
            " interval '1 hour') t"), {"start": start, "end": end})
        conn.execute(sa.text(
            "INSERT INTO instagram.hashtag_performance (ig_user_id, period_start, period_end, hashtag, posts,"
            " computed_at) SELECT 'Y', d - span + 1, d, 'tag', 3, now() FROM unnest(CAST(:days AS date[])) d,"
            " unnest(ARRAY[30, 90]) span"), {"days": days})
    apply_retention(NoRuns(), engine, RetentionConfig(), end)
    with engine.connect() as conn:
        return {"pictures": conn.execute(sa.text(
                    "SELECT count(*) FROM instagram.audience_demographics_status")).scalar(),
                "reports": conn.execute(sa.text("SELECT count(*) FROM instagram.performance_reports")).scalar(),
                "evaluations": conn.execute(sa.text("SELECT count(*) FROM instagram.trending_evaluations")).scalar(),
                "hashtag_periods": conn.execute(sa.text("SELECT count(*) FROM instagram.hashtag_performance")).scalar()}


def report_sections(engine) -> None:
    """What a stored report is made of: its size as stored (``pg_column_size``: jsonb, compressed when large) and
    each top-level section's, uncompressed, averaged over the reports; the largest sections first."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        stored, text = conn.execute(sa.text("SELECT avg(pg_column_size(report)), avg(octet_length(report::text))"
                                            " FROM instagram.performance_reports")).one()
        sections = conn.execute(sa.text(
            "SELECT key, avg(pg_column_size(value)) FROM instagram.performance_reports, jsonb_each(report)"
            " GROUP BY key ORDER BY 2 DESC LIMIT 8")).all()
    c.result("growth.performance_reports.stored_bytes_per_report", float(stored or 0), "B",
             f"the report column as stored; {float(text or 0):,.0f} B as JSON text; largest sections (jsonb, "
             "uncompressed): " + ", ".join(f"{k} {float(v):,.0f} B" for k, v in sections))


def pictures_now(engine) -> dict[str, int]:
    """Audience pictures (account-days) held now: all of them, and those still in the row tables (not packed)."""
    import sqlalchemy as sa

    count = "SELECT count(*) FROM (SELECT DISTINCT ig_user_id, date FROM instagram.{}) d"
    with engine.connect() as conn:
        return {"all": conn.execute(sa.text(count.format("audience_demographics_status"))).scalar(),
                "rows": conn.execute(sa.text(count.format("audience_demographics"))).scalar()}


def sample(engine, n: int, days: int) -> None:
    """What the simulated accounts publish (the sandbox draws 0.4-2.0 posts a day per account, mean 1.2)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        posts, stories = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE media_product_type IS DISTINCT FROM 'STORY'),"
            " count(*) FILTER (WHERE media_product_type = 'STORY') FROM instagram.media"
            " WHERE published_at >= (SELECT min(captured_at) FROM growth.uncompacted)")).one()
    c.result("growth.sample.posts_per_account_day", posts / n / days, "posts", f"{stories / n / days:.2f} stories")


def captures_of_a_year(n: int, posts: int, start: datetime, days: int = 365) -> tuple[list, list]:
    """The capture slots of ``days`` days of hourly ticks, without the API: the sandbox's publication times and
    the product's own ``due_for_capture`` (refresh_all at 02:00, as the daily refresh), slot end = the tick's now as
    in the asset. Returns (media rows, snapshot rows)."""
    import bisect

    from ig_analytics.defs.ingestion_assets import MediaSyncConfig
    from ig_analytics.ingestion.media_snapshots import CapturePolicy, due_for_capture
    from ig_analytics.sandbox import SandboxWorld

    cfg = MediaSyncConfig()
    policy = CapturePolicy(cfg.window_days, cfg.young_hours, cfg.daily_interval_hours)
    end = start + timedelta(days=days)
    world = SandboxWorld.generate(n_accounts=n, posts_per_account=posts, now=start)
    media, snaps = [], []
    for acct in world.accounts:
        items = [m for m in acct.posts_until(end) if m.published_at > start - timedelta(days=policy.window_days)]
        items += acct.stories_between(start - timedelta(days=1), end)
        items.sort(key=lambda m: m.published_at)
        times = [m.published_at for m in items]
        media += [(m.media_id, acct.ig_user_id, m.media_type, m.media_product_type, m.published_at) for m in items]
        last: dict[str, datetime] = {}
        for h in range(days * 24):
            slot = start + timedelta(hours=h)
            now = slot + timedelta(minutes=TICK_MINUTE)
            lo = bisect.bisect_left(times, now - timedelta(days=policy.window_days))
            live = [m for m in items[lo:bisect.bisect_left(times, now)]
                    if not m.is_story or now - m.published_at < timedelta(hours=24)]
            for m in due_for_capture(live, last, set(), slot, now, policy, refresh_all=slot.hour == 2):
                snaps.append((m.media_id, slot, now, acct.ig_user_id, "v25.0"))
                last[m.media_id] = slot
    return media, snaps


def curve_points(engine) -> int:
    """Points held in media_curves."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT COALESCE(sum(cardinality(captured_after_ms)), 0) FROM instagram.media_curves"
                                    )).scalar()


def snapshot_year(engine, n: int, posts: int, bytes_per_row: float, bytes_per_point: float | None = None
                  ) -> dict[str, float]:
    """Snapshot rows of one account-year under each compaction, by the product's ``compact_snapshots`` on the
    rows ``captures_of_a_year`` gives, at the year's end; bytes = rows x the simulation's bytes per row (+ the
    points moved to media_curves x ``bytes_per_point``). Returns per account-year under the product's defaults
    (``compact_snapshot_history``): snapshot rows, curve rows (posts) and curve points."""
    import sqlalchemy as sa

    from ig_analytics.defs.retention import RetentionConfig, compact_snapshot_history, compact_snapshots, day_cutoff
    from ig_analytics.storage import db

    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    t = time.perf_counter()
    media, snaps = captures_of_a_year(n, posts, start)
    end = start + timedelta(days=365)
    variants = [("none", None), ("old_90d", lambda: compact_snapshots(engine, day_cutoff(end, 90))),
                ("daily_after_7d", lambda: compact_snapshots(engine, day_cutoff(end, 7), end)),
                ("new_default", lambda: compact_snapshot_history(engine, RetentionConfig(), end))]
    kept = {}
    for label, compact in variants:
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE instagram.accounts, instagram.media, instagram.media_insights_snapshots"
                                 " CASCADE"))
            db.bulk_upsert(conn, "accounts", ["ig_user_id", "username", "timezone", "status"],
                           [(i, f"u{i}", "UTC", "active") for i in sorted({m[1] for m in media})], ["ig_user_id"])
            db.bulk_upsert(conn, "media", ["media_id", "ig_user_id", "media_type", "media_product_type", "published_at",
                                           "first_seen_at", "updated_at"],
                           [(*m, end, end) for m in media], ["media_id"])
            db.bulk_upsert(conn, "media_insights_snapshots",
                           ["media_id", "captured_at", "fetched_at", "ig_user_id", "api_version"], snaps,
                           ["media_id", "captured_at"])
        if compact is not None:
            compact()
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()
            curves = conn.execute(sa.text("SELECT count(*) FROM instagram.media_curves")).scalar()
        points = curve_points(engine)
        kept = {"snapshots": rows / n, "curve_rows": curves / n, "curve_points": points / n}
        curve_bytes = points / n * (bytes_per_point or 0)
        c.result(f"growth.snapshot_year.{label}.bytes_per_account", (rows / n * bytes_per_row + curve_bytes) / MB,
                 "MB", f"{rows / n:,.0f} rows per account after 365 days x {bytes_per_row:.0f} B per row"
                 + (f" + media_curves: {curves / n:,.0f} posts, {points / n:,.0f} points x {bytes_per_point:.1f} B"
                    if points and bytes_per_point else f" (+ {points / n:,.0f} points in media_curves)" if points else ""))
    c.result("growth.snapshot_year.seconds", time.perf_counter() - t, "s",
             f"{n} accounts, {len(snaps):,} captures in 365 days")
    return kept


# Session 9's rule, for the comparison: trending's early snapshots spared whole while the post is in the baseline.
_SPARED_UNTIL_90D = """WITH ranked AS (SELECT s.media_id, s.captured_at, row_number() OVER (PARTITION BY s.media_id,
  date_trunc(CAST(:period AS text), s.captured_at AT TIME ZONE 'UTC') ORDER BY s.captured_at DESC) AS rn
 FROM instagram.media_insights_snapshots s WHERE s.captured_at < :before AND NOT EXISTS (SELECT 1 FROM instagram.media m
  WHERE m.media_id = s.media_id AND m.published_at > :spare_from AND m.media_product_type IS DISTINCT FROM 'STORY'
  AND s.fetched_at <= m.published_at + :span))
DELETE FROM instagram.media_insights_snapshots s USING ranked r
WHERE s.media_id = r.media_id AND s.captured_at = r.captured_at AND r.rn > 1"""


def snapshot_free_space(url: str, n: int, posts: int, days: int) -> None:
    """The snapshot table day by day under each rule (keys-only rows of ``captures_of_a_year``, retention and
    VACUUM daily): its size, the same rows packed, and the difference (free space, mostly index pages whose deleted
    keys are never replaced: new keys go to the end), at day 60 and ``days``; with media_curves where it exists."""
    import sqlalchemy as sa

    from ig_analytics.analytics.trending_curves import curve_span
    from ig_analytics.defs.retention import (RetentionConfig, compact_snapshot_history, day_cutoff, drop_curves,
                                             rebuild_indexes)
    from ig_analytics.storage import db

    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    media, snaps = captures_of_a_year(n, posts, start, days)
    by_day: dict[int, list] = {}
    for row in snaps:
        by_day.setdefault((row[1] - start).days, []).append(row)

    def spared(engine, now):
        with engine.begin() as conn:
            for after, period in ((7, "day"), (35, "week")):
                conn.execute(sa.text(_SPARED_UNTIL_90D), {"before": day_cutoff(now, after), "period": period,
                                                          "spare_from": now - timedelta(days=90), "span": curve_span()})

    def packed(engine, now, rebuild):
        compact_snapshot_history(engine, RetentionConfig(), now)
        drop_curves(engine, now)
        if rebuild:
            rebuild_indexes(engine, ("media_insights_snapshots",))

    rules = {"spared_90d": spared, "curves_packed": lambda e, now: packed(e, now, False),
             "curves_packed_reindexed": lambda e, now: packed(e, now, True)}
    for label, retain in rules.items():
        engine = c.fresh_schema(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS growth"))  # packed_sizes' copies
            db.bulk_upsert(conn, "accounts", ["ig_user_id", "username", "timezone", "status"],
                           [(i, f"u{i}", "UTC", "active") for i in sorted({m[1] for m in media})], ["ig_user_id"])
            db.bulk_upsert(conn, "media", ["media_id", "ig_user_id", "media_type", "media_product_type", "published_at",
                                           "first_seen_at", "updated_at"], [(*m, start, start) for m in media], ["media_id"])
        for day in range(days):
            with engine.begin() as conn:
                db.bulk_upsert(conn, "media_insights_snapshots", ["media_id", "captured_at", "fetched_at", "ig_user_id",
                                                                  "api_version"], by_day.get(day, []),
                               ["media_id", "captured_at"])
            retain(engine, start + timedelta(days=day + 1, hours=4, minutes=30))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("media_insights_snapshots", "media_curves"):
                    conn.execute(sa.text(f"VACUUM instagram.{table}"))
            if day + 1 not in (60, days):
                continue
            sizes = {name: size for name, (size, _rows) in table_sizes(engine, ("instagram",)).items()}
            tables = ("instagram.media_insights_snapshots", "instagram.media_curves")
            tight = packed_sizes(engine, tables)
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()
            total = sum(sizes[t] for t in tables)
            c.result(f"growth.snapshot_free_space.{label}.day{day + 1}", total / n / 1000, "kB",
                     f"snapshots + media_curves per account: {rows / n:,.0f} snapshot rows, packed "
                     f"{sum(tight.values()) / n / 1000:,.0f} kB, free {(total - sum(tight.values())) / n / 1000:,.0f} kB"
                     f" (media_insights_snapshots alone {sizes['instagram.media_insights_snapshots'] / n / 1000:,.0f}"
                     " kB)")


def snapshot_reindex_seconds(url: str, accounts: int) -> None:
    """Seconds of retention's rebuild of the snapshot indexes (``rebuild_indexes``) on a year of ``accounts``
    accounts' snapshots: 450 posts each x 10 rows of the snapshot's width (~300 B with its indexes)."""
    import sqlalchemy as sa

    from ig_analytics.defs.retention import rebuild_indexes

    engine = c.fresh_schema(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username, timezone, status) SELECT"
                             " '178' || lpad(i::text, 14, '0'), 'u' || i, 'UTC', 'active' FROM generate_series(1, :n) i"),
                     {"n": accounts})
        conn.execute(sa.text(
            "INSERT INTO instagram.media (media_id, ig_user_id, media_type, media_product_type, published_at,"
            " first_seen_at, updated_at) SELECT '179' || lpad((a * 1000 + j)::text, 14, '0'), '178' || lpad(a::text,"
            " 14, '0'), 'IMAGE', 'FEED', now() - j * interval '20 hours', now(), now()"
            " FROM generate_series(1, :n) a, generate_series(1, 450) j"), {"n": accounts})
        conn.execute(sa.text(
            "INSERT INTO instagram.media_insights_snapshots (media_id, captured_at, fetched_at, ig_user_id, reach,"
            " views, likes, comments, saved, shares, total_interactions, api_version) SELECT media_id, published_at"
            " + h * interval '1 day', published_at + h * interval '1 day', ig_user_id, 1000 + h, 2000 + h, 100 + h,"
            " 10, 5, 3, 118 + h, 'v25.0' FROM instagram.media, generate_series(1, 10) h"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE instagram.media_insights_snapshots"))
        rows = conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()
        size = conn.execute(sa.text("SELECT pg_total_relation_size('instagram.media_insights_snapshots')")).scalar()
    t = time.perf_counter()
    rebuild_indexes(engine, ("media_insights_snapshots",))
    c.result("growth.snapshot_reindex.seconds", time.perf_counter() - t, "s",
             f"{rows:,} rows, {size / MB:,.0f} MB with indexes ({accounts} accounts' year)")


def run_child(job: str, partition_key: str) -> int:
    """A run worker (as benchmarks.hourly_job's): the code location, then the run of ``job`` for the partition."""
    import dagster as dg

    import ig_analytics.definitions  # noqa: F401 - what a run worker loads before its run
    from ig_analytics.defs.launch import execute_linked_run

    instance = dg.DagsterInstance.get()
    outcome = execute_linked_run(instance, job, partition_key=partition_key)
    print(json.dumps({"run_id": outcome.run_id, "success": outcome.success, "failures": outcome.failures[-3:]}),
          flush=True)
    instance.dispose()
    return 0 if outcome.success else 1


def dagster_bytes(dagster_engine) -> tuple[int, dict[str, int]]:
    """Bytes of every table of Dagster's database (after VACUUM) and the biggest ones."""
    import sqlalchemy as sa

    with dagster_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM"))
        rows = conn.execute(sa.text(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC")).all()
    return sum(int(b) for _, b in rows), {name: int(b) for name, b in rows}


def dagster_runs(server, url: str, sandbox, n: int) -> dict[str, int]:
    """Real runs through Dagster on the wall clock (the sandbox back on real time): media_sync_job for the hour
    that has just ended (the first hour: every post due) and the hour in progress (steady), then
    account_insights_job for yesterday. Returns Dagster's bytes added by each of the last two runs."""
    import subprocess

    from benchmarks.hourly_job import child_env, previous_hour
    from ig_analytics.local.embedded_db import DAGSTER_DB
    from ig_analytics.storage import db

    dagster_url = server.url(DAGSTER_DB)
    dagster_engine = db.get_engine(dagster_url)
    slot = previous_hour()
    Clock(sandbox.base_url, slot).set(datetime.now(timezone.utc))
    urllib.request.urlopen(urllib.request.Request(
        sandbox.base_url + "/__sandbox/clock", data=b'{"frozen": false}', method="POST",
        headers={"Content-Type": "application/json"}), timeout=60).read()
    added: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="ig-bench-growth-") as tmp:
        home = Path(tmp)
        env = child_env(url, dagster_url, sandbox.base_url, home)
        runs = [("media_sync_job", slot), ("media_sync_job", slot + timedelta(hours=1)),
                ("account_insights_job", None)]
        before = 0
        for i, (job, at) in enumerate(runs):
            key = at.strftime("%Y-%m-%d-%H:00") if at else (slot.date() - timedelta(days=1)).isoformat()
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "benchmarks.growth", "--child", job, key], env=env,
                                  cwd=str(c.REPO_ROOT), capture_output=True, text=True)
            report = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if not report or not json.loads(report[-1])["success"]:
                raise RuntimeError(f"{job} {key} failed: {proc.stdout[-1500:]} {proc.stderr[-3000:]}")
            total, biggest = dagster_bytes(dagster_engine)
            label = "first_hour" if i == 0 else ("next_hour" if job == "media_sync_job" else "account_insights")
            print(f"  dagster {job} {key}: {time.perf_counter() - t:.0f} s; database {total / MB:.1f} MB; "
                  + ", ".join(f"{k} {v / 1024:.0f} kB" for k, v in list(biggest.items())[:5]), flush=True)
            if i > 0:  # the first run also created Dagster's schema
                added[label] = total - before
                c.result(f"growth.dagster.{label}.bytes_per_run", total - before, "B",
                         f"{job} for {n} accounts: Dagster's database grew by this much")
            before = total
    return added


def report_dagster(added: dict[str, int], n: int, run_max_age_days: int, shards: int = 4) -> None:
    """Dagster's storage kept: the runs of ``run_max_age_days`` days (retention deletes older ones with their
    events). Per day: 24 hourly media runs + the 02:10 refresh (counted as a media run) and 7 other daily runs
    (account insights, audience, reports, retention, token maintenance, follower anchors, weekly reports on
    average) counted as an account_insights_job run each. A run's events do not name accounts, so its bytes do not
    grow with them; with S shards each ingestion run is S runs (counted here for every run: an upper bound)."""
    media, daily = added["next_hour"], added["account_insights"]
    per_day = 25 * media + 7 * daily
    kept = per_day * run_max_age_days
    c.result("growth.dagster.bytes_per_30d", per_day * 30, "B",
             f"one shard, any number of accounts: 25 media runs x {media:,} B + 7 daily runs x {daily:,} B a day")
    c.result("growth.dagster.bytes_per_account_per_30d", per_day * 30 / n, "B", f"the same at {n} accounts")
    c.result("growth.dagster.kept", kept / MB, "MB", f"after retention ({run_max_age_days} days of runs), one shard")
    c.result("growth.dagster.kept_10k", shards * kept / MB, "MB",
             f"10,000 accounts in {shards} shards (x {shards}), for any length of time: retention keeps "
             f"{run_max_age_days} days")


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    if rest and rest[0] == "--child":
        return run_child(rest[1], rest[2])
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--dagster-accounts", type=int, default=None, help="accounts of the real Dagster runs (0: none)")
    parser.add_argument("--snapshot-year-only", type=float, default=None, metavar="BYTES_PER_ROW",
                        help="only the year of snapshot rows (no API), at this many bytes per row")
    parser.add_argument("--snapshot-free-space", type=int, default=None, metavar="DAYS",
                        help="only the snapshot table's size and free space day by day under each rule (no API)")
    parser.add_argument("--snapshot-reindex", type=int, default=None, metavar="ACCOUNTS",
                        help="only the seconds of the snapshot indexes' rebuild on a year of this many accounts")
    parser.add_argument("--curve-point-bytes", type=float, default=None, metavar="B",
                        help="with --snapshot-year-only: bytes per media_curves point (a full run measures it)")
    args = parser.parse_args(rest)
    if args.snapshot_reindex:
        with c.temp_postgres() as (_server, url):
            snapshot_reindex_seconds(url, args.snapshot_reindex)
        c.done(NAME)
        return 0
    if args.snapshot_free_space:
        with c.temp_postgres() as (_server, url):
            snapshot_free_space(url, args.accounts or 4, args.posts, args.snapshot_free_space)
        c.done(NAME)
        return 0
    if args.snapshot_year_only:
        with c.temp_postgres() as (_server, url):
            snapshot_year(c.fresh_schema(url), args.accounts or 10, args.posts, args.snapshot_year_only,
                          args.curve_point_bytes)
        c.done(NAME)
        return 0
    n, days = args.accounts or (3 if quick else 10), args.days or (2 if quick else 60)
    dagster_n = args.dagster_accounts if args.dagster_accounts is not None else (2 if quick else 200)
    c.header(NAME, quick)
    print(f"{n} accounts x {args.posts} posts, {days} days of hourly ticks (sandbox latency 0); Dagster's storage "
          f"from real runs of {dagster_n} accounts", flush=True)
    from ig_analytics.defs.retention import RetentionConfig
    from ig_analytics.graph_api import GraphApiClient

    config = RetentionConfig()
    print(f"retention: {config}", flush=True)
    with c.temp_postgres() as (server, url), tempfile.TemporaryDirectory(prefix="ig-bench-growth-home-") as home:
        if dagster_n:
            with c.SandboxProcess(dagster_n, args.posts, latency_ms=0) as sandbox:
                c.register_accounts(c.fresh_schema(url), sandbox.accounts)
                report_dagster(dagster_runs(server, url, sandbox, dagster_n), dagster_n, config.run_max_age_days)
        with c.SandboxProcess(n, args.posts, latency_ms=0) as sandbox:
            engine = c.fresh_schema(url)
            shadow_table(engine)
            creds = c.register_accounts(engine, sandbox.accounts)
            client = GraphApiClient(sandbox.base_url, pool_size=16)
            sizes = simulate(engine, sandbox.base_url, creds, client, days, Path(home))
            client.close()
            sample(engine, n, days)
            report_sections(engine)
            pictures, packed = pictures_now(engine), packed_sizes(engine)
            packed_blanked = packed_sizes(engine, tuple(BLANKED), BLANKED)
            failed, points = failed_sync_rows(engine), curve_points(engine)
            tags_per_period = hashtag_rows_per_period(engine)
            comment_index_scans(engine)
            compacted = compacted_comments(engine)  # last: it compacts every post's comments
            size, rows = sizes[days]["growth.uncompacted"]
            snapshot_rows = snapshot_year(c.fresh_schema(url), n, args.posts, size / rows,
                                          packed[CURVES] / max(points, 1))
            kept = kept_of_a_year(c.fresh_schema(url))
            report_sizes(sizes, n, days, year_overrides(sizes, days, n, packed, pictures, snapshot_rows, kept,
                                                          packed_blanked, failed, compacted, points,
                                                          tags_per_period))
    c.result("peak_rss", c.peak_rss_mb(), "MB", "the benchmark's process")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
