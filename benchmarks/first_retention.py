"""(issue 27) The first retention after an upgrade: packing every account's old audience pictures and merging ~23
days of hourly sync_runs, and the compactions whose cutoffs moved (snapshots 90 -> 7 days, with trending's points
moved into media_curves; audience pictures 35 -> 7 days; comment rows, kept forever before), in one transaction for
all accounts (what retention did before) and in batches of accounts (``storage/account_batches``, what it does
now). Built with SQL, not the API: N accounts x D days of ~180-row pictures (and their status rows), 23 days of
hourly media successes per account, a post a day per account with its snapshots as the capture policy takes them
(hourly for 48 h, then daily until 30 days) and 12 comments. Prints the seconds of each step in all (and its WAL)
and its largest transaction (seconds, rows, WAL). The audience compaction runs on pictures built anew after the
pack (the pack is measured on the uncompacted pictures, as before); the comment rows of the posts older than 7
days are compacted (the job's 72 days would need more history; the work per post is the same).

    python -m benchmarks.first_retention [--accounts 200] [--days 40] [--batch 50] [--quick]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from benchmarks import _common as c

_ACCOUNTS = ("INSERT INTO instagram.accounts (ig_user_id, username, timezone, status) SELECT"
             " '178' || lpad(i::text, 14, '0'), 'u' || i, 'UTC', 'active' FROM generate_series(1, :n) i")
# A picture: 2 metrics x (7 ages + 3 genders + 30 countries + 30 cities) rows + 2 x 7 x 3 age-gender cells.
_DEMOGRAPHICS = """
INSERT INTO instagram.audience_demographics (ig_user_id, date, metric, breakdown, key, value, timeframe, api_version,
                                             fetched_at)
SELECT a.ig_user_id, d::date, m, b, b || '-' || k, 100 + k, CASE WHEN m = 'engaged_audience_demographics'
       THEN 'this_month' END, 'v24.0', d + interval '26 hours'
FROM instagram.accounts a, generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d,
     unnest(ARRAY['follower_demographics', 'engaged_audience_demographics']) m,
     (VALUES ('age', 7), ('gender', 3), ('country', 30), ('city', 30)) bs(b, n), generate_series(1, bs.n) k"""
_AGE_GENDER = """
INSERT INTO instagram.audience_age_gender (ig_user_id, date, metric, age, gender, value, timeframe, api_version,
                                           fetched_at)
SELECT a.ig_user_id, d::date, m, 'age' || g, s, 10 + g, NULL, 'v24.0', d + interval '26 hours'
FROM instagram.accounts a, generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d,
     unnest(ARRAY['follower_demographics', 'engaged_audience_demographics']) m, generate_series(1, 7) g,
     unnest(ARRAY['F', 'M', 'U']) s"""
_SYNCS = """
INSERT INTO instagram.sync_runs (dagster_run_id, ig_user_id, sync_type, partition_key, started_at, finished_at,
                                 status, api_calls, rows_written, throttle_wait_seconds, items_skipped, details)
SELECT 'run-' || h, a.ig_user_id, 'media', to_char(t, 'YYYY-MM-DD-HH24:00'), t + interval '5 min',
       t + interval '6 min', 'success', 3, 7, 0.5, 0, '{"media": 3, "snapshots": 2, "due": 2, "not_captured": 0}'
FROM instagram.accounts a, generate_series(0, :hours - 1) h, LATERAL (SELECT CAST(:first AS timestamptz)
     + h * interval '1 hour' AS t) x"""
_STATUS = """
INSERT INTO instagram.audience_demographics_status (ig_user_id, date, metric, breakdown, status, followers_total,
                                                    api_version, fetched_at)
SELECT a.ig_user_id, d::date, m, b, 'ok', 5000, 'v24.0', d + interval '26 hours'
FROM instagram.accounts a, generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d,
     unnest(ARRAY['follower_demographics', 'engaged_audience_demographics']) m,
     unnest(ARRAY['age', 'gender', 'country', 'city']) b"""
_MEDIA = """
INSERT INTO instagram.media (media_id, ig_user_id, media_type, media_product_type, published_at, first_seen_at,
                             updated_at)
SELECT a.ig_user_id || '-' || i, a.ig_user_id, 'IMAGE', 'FEED',
       CAST(:today AS timestamptz) - i * interval '1 day' + interval '10 hours 17 minutes', now(), now()
FROM instagram.accounts a, generate_series(1, :days) i"""
# The capture policy's slots of a post: every hour of its first 48 h, then 02:00 daily until 30 days old.
_SNAPSHOTS = """
INSERT INTO instagram.media_insights_snapshots (media_id, captured_at, fetched_at, ig_user_id, reach, likes,
                                                comments, saved, shares, total_interactions, api_version)
SELECT m.media_id, x.t, x.t + interval '5 minutes', m.ig_user_id, 100 + 9 * x.k, 10 + x.k, x.k / 10, x.k / 20,
       x.k / 30, 10 + x.k + x.k / 10, 'v24.0'
FROM instagram.media m, LATERAL (
    SELECT date_trunc('hour', m.published_at) + h * interval '1 hour' AS t, h AS k FROM generate_series(1, 48) h
    UNION ALL
    SELECT date_trunc('day', m.published_at) + d * interval '1 day' + interval '2 hours', 48 + d
    FROM generate_series(3, 30) d) x
WHERE x.t < :now"""
# 12 comments a post: 8 top-level of others (every fourth a question), the account's replies to three of them and a
# reply of someone else.
_COMMENTS = """
INSERT INTO instagram.media_comments (comment_id, media_id, ig_user_id, parent_id, published_at, is_own, is_question,
                                      first_seen_at, last_seen_at)
SELECT m.media_id || '-c' || c, m.media_id, m.ig_user_id, NULL, m.published_at + c * interval '7 minutes', false,
       c % 4 = 0, now(), now()
FROM instagram.media m, generate_series(1, 8) c
UNION ALL
SELECT m.media_id || '-r' || c, m.media_id, m.ig_user_id, m.media_id || '-c' || c,
       m.published_at + c * interval '50 minutes', c <> 3, false, now(), now()
FROM instagram.media m, generate_series(1, 4) c"""
_PICTURE_TABLES = ("audience_pictures_packed", "audience_demographics", "audience_age_gender",
                   "audience_demographics_status")


def build_pictures(engine, days: int, today: date) -> int:
    """Every account's pictures (and status rows) of the ``days`` days before ``today`` and of ``today``, anew."""
    with engine.begin() as conn:
        for table in _PICTURE_TABLES:
            conn.execute(sa.text(f"TRUNCATE instagram.{table}"))
        span = {"first": today - timedelta(days=days), "last": today}
        for sql in (_DEMOGRAPHICS, _AGE_GENDER, _STATUS):
            conn.execute(sa.text(sql), span)
    _analyze(engine, _PICTURE_TABLES[1:])
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT (SELECT count(*) FROM instagram.audience_demographics)"
                                    " + (SELECT count(*) FROM instagram.audience_age_gender)")).scalar()


def build(engine, accounts: int, days: int, today: date, now: datetime) -> int:
    with engine.begin() as conn:
        for table in ("sync_runs", "media_curves", "media_comments", "comment_day_counts", "media_comment_reads",
                      "media_insights_snapshots", "media", "accounts"):
            conn.execute(sa.text(f"TRUNCATE instagram.{table} CASCADE"))
        conn.execute(sa.text(_ACCOUNTS), {"n": accounts})
        start = datetime.combine(today - timedelta(days=30), datetime.min.time(), timezone.utc)
        conn.execute(sa.text(_SYNCS), {"first": start, "hours": 23 * 24})
        conn.execute(sa.text(_MEDIA), {"today": today, "days": days})
        conn.execute(sa.text(_SNAPSHOTS), {"now": now})
        conn.execute(sa.text(_COMMENTS))
    _analyze(engine, ("sync_runs", "media", "media_insights_snapshots", "media_comments"))
    return build_pictures(engine, days, today)


def _analyze(engine, tables) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(sa.text(f"VACUUM ANALYZE instagram.{table}"))
        conn.execute(sa.text("CHECKPOINT"))


def _wal(conn) -> int:
    return conn.execute(sa.text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")).scalar()


def batched(engine, tables, batch: int, work) -> dict:
    """``work(conn, ids)`` in one transaction per batch, as retention runs it: seconds in all, and the largest
    transaction's seconds, rows (what ``work`` returns) and WAL bytes."""
    from ig_analytics.storage.account_batches import account_batches

    out = {"seconds": 0.0, "batches": 0, "peak_seconds": 0.0, "peak_rows": 0, "peak_wal": 0, "rows": 0, "wal": 0}
    start = time.perf_counter()
    for ids in account_batches(engine, tables, batch):
        t = time.perf_counter()
        with engine.begin() as conn:
            wal = _wal(conn)
            rows = work(conn, ids)
            wal = _wal(conn) - wal
        took = time.perf_counter() - t
        out["batches"] += 1
        out["rows"] += rows
        out["peak_seconds"], out["peak_rows"] = max(out["peak_seconds"], took), max(out["peak_rows"], rows)
        out["peak_wal"], out["wal"] = max(out["peak_wal"], wal), out["wal"] + wal
    out["seconds"] = time.perf_counter() - start
    return out


def _print(step: str, what: str, out: dict, rows: str) -> None:
    c.result(f"first_retention.{step}.{what}.seconds", out["seconds"], "s",
             f"{out['rows']:,} {rows} in {out['batches']} transactions, {out['wal'] / 2**20:,.1f} MB of WAL")
    c.result(f"first_retention.{step}.{what}.peak_transaction.seconds", out["peak_seconds"], "s",
             f"{out['peak_rows']:,} {rows}, {out['peak_wal'] / 2**20:,.1f} MB of WAL")


def main(argv: list[str] | None = None) -> int:
    quick, argv = c.quick_flag(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=20 if quick else 200)
    parser.add_argument("--days", type=int, default=10 if quick else 40)
    parser.add_argument("--batch", type=int, default=5 if quick else 50)
    args = parser.parse_args(argv)
    c.header("first_retention", quick)
    from ig_analytics.analytics.trending_curves import compact_accounts_snapshots
    from ig_analytics.defs.retention import compact_accounts_audience
    from ig_analytics.storage import sync_runs
    from ig_analytics.storage.audience_packing import PACKED_FROM, pack_audience
    from ig_analytics.storage.comment_retention import compact_accounts_comment_rows

    today = date(2026, 12, 1)
    now = datetime.combine(today, datetime.min.time(), timezone.utc) + timedelta(hours=4, minutes=30)
    before = now.replace(hour=0, minute=0) - timedelta(days=7)
    steps = [  # (step, the tables listing its accounts, a batch's work, what its rows are)
        ("snapshots", ("media",), lambda conn, ids: compact_accounts_snapshots(conn, ids, before, now),
         "snapshots deleted"),
        ("comments", ("media",), lambda conn, ids: compact_accounts_comment_rows(conn, ids, before, now),
         "posts compacted"),
        ("pack", PACKED_FROM, lambda conn, ids: pack_audience(conn, today, ids), "account-days packed"),
        ("merge", ("sync_runs",), lambda conn, ids: sync_runs.merge_accounts_hourly_successes(conn, before, ids)[0],
         "hourly rows merged"),
        ("audience", ("audience_demographics_status",),
         lambda conn, ids: compact_accounts_audience(conn, ids, before.date()), "account-days deleted"),
    ]

    with c.temp_postgres() as (_server, url):
        engine = c.fresh_schema(url)
        for batch in (args.accounts, args.batch):  # one transaction of every account (before), then batches
            what = "all" if batch == args.accounts else f"batch{batch}"
            rows = build(engine, args.accounts, args.days, today, now)
            print(f"# {args.accounts} accounts x {args.days + 1} days of pictures, {rows:,} rows", flush=True)
            for step, tables, work, unit in steps:
                if step == "audience":  # the pictures anew: the compaction of what the pack found
                    build_pictures(engine, args.days, today)
                _print(step, what, batched(engine, tables, batch, work), unit)
        engine.dispose()
    c.done("first_retention")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
