"""Analytics at scale: 1,000 accounts x 100 posts x a month of snapshots (hourly for a post's first 48 h, then
daily up to 30 days: ~5.5 M snapshot rows), then every computation of ig_analytics.analytics, timed.

    .venv/bin/python benchmarks/bench_analytics.py [--accounts 1000] [--posts 100] [--database-url URL]

Without --database-url it starts a throwaway embedded PostgreSQL. The data is generated inside PostgreSQL
(generate_series), so the set-up is not part of the timings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from ig_analytics.analytics.best_times import refresh_best_posting_times
from ig_analytics.analytics.engagement import refresh_account_engagement_daily, refresh_media_engagement
from ig_analytics.analytics.reports import write_reports
from ig_analytics.analytics.trending import refresh_trending_posts
from ig_analytics.storage import db

AS_OF = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)

GENERATE = """
INSERT INTO instagram.accounts (ig_user_id, username, timezone, followers_total)
SELECT 'acc' || a, 'user' || a, (ARRAY['UTC','Europe/Berlin','America/New_York','Asia/Tokyo'])[1 + a % 4], 10000 + a
FROM generate_series(1, :accounts) a;

INSERT INTO instagram.media (media_id, ig_user_id, media_type, media_product_type, caption, permalink,
                             published_at, first_seen_at, updated_at)
SELECT 'm' || a || '_' || p, 'acc' || a, CASE WHEN p % 3 = 0 THEN 'VIDEO' ELSE 'IMAGE' END,
       CASE WHEN p % 3 = 0 THEN 'REELS' ELSE 'FEED' END, 'post ' || p, 'https://example.test/' || a || '/' || p,
       CAST(:as_of AS timestamptz) - make_interval(mins => (p * 30 * 24 * 60 / :posts + (a * 37 + p * 11) % 300)),
       now(), now()
FROM generate_series(1, :accounts) a, generate_series(1, :posts) p;

INSERT INTO instagram.media_insights_snapshots (media_id, captured_at, fetched_at, ig_user_id, reach, views,
    likes, comments, saved, shares, total_interactions, api_version)
SELECT m.media_id, slot, slot + interval '4 minutes', m.ig_user_id,
       (e * 12 + 30)::bigint, (e * 25 + 60)::bigint, (e * 0.8)::bigint, (e * 0.1)::bigint, (e * 0.05)::bigint,
       (e * 0.05)::bigint, e::bigint, 'v25.0'
FROM instagram.media m,
LATERAL (
    SELECT date_trunc('hour', m.published_at) + make_interval(hours => h) AS slot
    FROM generate_series(1, 48) h
    UNION ALL
    SELECT date_trunc('hour', m.published_at) + make_interval(hours => 48 + 24 * d) FROM generate_series(1, 28) d
) slots,
LATERAL (
    SELECT floor((100 + hashtext(m.media_id) % 80) * (1 - exp(-extract(epoch FROM slot - m.published_at) / 28800.0))
           * CASE WHEN hashtext(m.media_id) % 97 = 0 THEN 20 ELSE 1 END) AS e
) v
WHERE slot + interval '4 minutes' <= CAST(:as_of AS timestamptz);

INSERT INTO instagram.account_profile_snapshots (ig_user_id, captured_at, followers_total)
SELECT 'acc' || a, CAST(:as_of AS timestamptz) - make_interval(days => d), 10000 + a - d * 3
FROM generate_series(1, :accounts) a, generate_series(0, 40) d;

INSERT INTO instagram.account_insights_daily (ig_user_id, date, reach, views, follower_count, followers_total,
    profile_views, api_version, synced_at)
SELECT 'acc' || a, (CAST(:as_of AS timestamptz) - make_interval(days => d))::date, 1000 + d, 3000 + d, 5,
       10000 + a - d * 3, NULL, 'v25.0', now()
FROM generate_series(1, :accounts) a, generate_series(1, 35) d;
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    server = home = None
    if args.database_url:
        url = args.database_url
    else:
        from ig_analytics.embedded_db import ANALYTICS_DB, EmbeddedPostgres

        home = Path(tempfile.mkdtemp(prefix="ig-bench-"))
        os.chmod(home, 0o755)
        server = EmbeddedPostgres(home)
        server.start()
        url = server.url(ANALYTICS_DB)
    try:
        engine = db.get_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS instagram CASCADE"))
        db.migrate(engine)
        t = time.perf_counter()
        with engine.begin() as conn:
            for statement in GENERATE.split(";\n"):
                if statement.strip():
                    conn.execute(sa.text(statement), {"accounts": args.accounts, "posts": args.posts, "as_of": AS_OF})
            snaps = conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar()
        # steady state: what autovacuum would have done to freshly loaded tables (hint bits, statistics)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))
        print(f"set-up: {args.accounts} accounts, {args.accounts * args.posts} posts, {snaps} snapshots "
              f"in {time.perf_counter() - t:.1f} s")

        total = 0.0
        reports_dir = Path(tempfile.mkdtemp(prefix="ig-bench-reports-"))
        steps = [
            ("media_engagement", lambda c: refresh_media_engagement(c, now=AS_OF)),
            ("account_engagement_daily", lambda c: refresh_account_engagement_daily(
                c, day_from=(AS_OF - timedelta(days=35)).date(), day_to=AS_OF.date(), now=AS_OF)),
            ("best_posting_times", lambda c: refresh_best_posting_times(c, now=AS_OF)),
            ("trending_posts", lambda c: refresh_trending_posts(c, as_of=AS_OF, now=AS_OF)),
            ("reports (rolling_7d)", lambda c: len(write_reports(
                c, period_end=(AS_OF - timedelta(days=1)).date(), days=7, kind="rolling_7d",
                reports_dir=reports_dir, now=AS_OF))),
        ]
        for name, step in steps:
            t = time.perf_counter()
            with engine.begin() as conn:
                rows = step(conn)
            elapsed = time.perf_counter() - t
            total += elapsed
            print(f"{name:28s} {elapsed:6.2f} s  {rows} rows")
        print(f"{'total':28s} {total:6.2f} s")
        shutil.rmtree(reports_dir, ignore_errors=True)
    finally:
        if server is not None:
            server.destroy()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
