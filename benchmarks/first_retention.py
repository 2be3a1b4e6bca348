"""(issue 27) The first retention after an upgrade: packing every account's old audience pictures and merging ~23
days of hourly sync_runs, in one transaction for all accounts (what retention did before) and in batches of
accounts (``storage/account_batches``, what it does now). Pictures and syncs built with SQL, not the API: N
accounts x D days of ~180-row pictures, and 23 days of hourly media successes per account. Prints the seconds of
the whole pack and merge, and the largest transaction (its seconds, rows, WAL).

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


def build(engine, accounts: int, days: int, today: date) -> int:
    with engine.begin() as conn:
        for table in ("audience_pictures_packed", "audience_demographics", "audience_age_gender", "sync_runs",
                      "accounts"):
            conn.execute(sa.text(f"TRUNCATE instagram.{table} CASCADE"))
        conn.execute(sa.text(_ACCOUNTS), {"n": accounts})
        span = {"first": today - timedelta(days=days), "last": today}
        conn.execute(sa.text(_DEMOGRAPHICS), span)
        conn.execute(sa.text(_AGE_GENDER), span)
        start = datetime.combine(today - timedelta(days=30), datetime.min.time(), timezone.utc)
        conn.execute(sa.text(_SYNCS), {"first": start, "hours": 23 * 24})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("audience_demographics", "audience_age_gender", "sync_runs"):
            conn.execute(sa.text(f"VACUUM ANALYZE instagram.{table}"))
        conn.execute(sa.text("CHECKPOINT"))
        return conn.execute(sa.text("SELECT (SELECT count(*) FROM instagram.audience_demographics)"
                                    " + (SELECT count(*) FROM instagram.audience_age_gender)")).scalar()


def _wal(conn) -> int:
    return conn.execute(sa.text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")).scalar()


def batched(engine, tables, batch: int, work) -> dict:
    """``work(conn, ids)`` in one transaction per batch, as retention runs it: seconds in all, and the largest
    transaction's seconds, rows (what ``work`` returns) and WAL bytes."""
    from ig_analytics.storage.account_batches import account_batches

    out = {"seconds": 0.0, "batches": 0, "peak_seconds": 0.0, "peak_rows": 0, "peak_wal": 0, "rows": 0}
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
        out["peak_wal"] = max(out["peak_wal"], wal)
    out["seconds"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    quick, argv = c.quick_flag(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=20 if quick else 200)
    parser.add_argument("--days", type=int, default=10 if quick else 40)
    parser.add_argument("--batch", type=int, default=5 if quick else 50)
    args = parser.parse_args(argv)
    c.header("first_retention", quick)
    from ig_analytics.storage import sync_runs
    from ig_analytics.storage.audience_packing import PACKED_FROM, pack_audience

    today = date(2026, 12, 1)
    before = datetime.combine(today - timedelta(days=7), datetime.min.time(), timezone.utc)

    def merge(conn, ids) -> int:
        return sync_runs.merge_accounts_hourly_successes(conn, before, ids)[0]

    with c.temp_postgres() as (_server, url):
        engine = c.fresh_schema(url)
        for batch in (args.accounts, args.batch):  # one transaction of every account (before), then batches
            what = "all" if batch == args.accounts else f"batch{batch}"
            rows = build(engine, args.accounts, args.days, today)
            packed = batched(engine, PACKED_FROM, batch, lambda conn, ids: pack_audience(conn, today, ids))
            merged = batched(engine, ("sync_runs",), batch, merge)
            note = f"{args.accounts} accounts x {args.days + 1} days, {rows:,} rows; {packed['batches']} transactions"
            c.result(f"first_retention.pack.{what}.seconds", packed["seconds"], "s", note)
            c.result(f"first_retention.pack.{what}.peak_transaction.seconds", packed["peak_seconds"], "s",
                     f"{packed['peak_rows']:,} account-days packed, {packed['peak_wal'] / 2**20:,.1f} MB of WAL")
            c.result(f"first_retention.merge.{what}.seconds", merged["seconds"], "s",
                     f"{merged['rows']:,} hourly rows merged in {merged['batches']} transactions")
            c.result(f"first_retention.merge.{what}.peak_transaction.seconds", merged["peak_seconds"], "s",
                     f"{merged['peak_rows']:,} rows, {merged['peak_wal'] / 2**20:,.1f} MB of WAL")
        engine.dispose()
    c.done("first_retention")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
