"""Benchmark 4: recompute the analytics (engagement, trending, best posting times) for N accounts x 100 posts
with a month of snapshots at the capture cadence: hourly for each post's first 48 h, then daily until 30 days.

The rows are generated in Python and loaded with COPY (not through the API); the load is set-up and reported
apart. Then, each in its own transaction and timed: ``refresh_media_engagement``, ``refresh_trending_posts``,
``refresh_best_posting_times`` (the target), ``refresh_account_engagement_daily`` (also in the hourly job) and
``reports.write_reports`` (rolling 7 days for every account: JSON rows plus one HTML file each, into a temp dir).

With ``--io-manager``, instead: the frames of the three IO-managed assets (media_engagement, account_engagement_daily,
best_posting_times) are computed once, then each is written ``--rounds`` times through
``PostgresTableIOManager.handle_output`` and, alternately, by the plain delete-and-``copy_frame`` it wraps (same
frame, same slice, one transaction each): the IO manager's own cost is the difference.

    .venv/bin/python -m benchmarks.analytics [--quick] [--accounts 1000] [--posts 100] [--io-manager [--rounds 3]]
    (quick: 20 accounts)
"""

from __future__ import annotations

import argparse
import gc
import io
import math
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as c  # noqa: E402

NAME = "analytics"
AS_OF = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
CHUNK_ROWS = 250_000


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S+00")


class _Copier:
    """Streams CSV text into ``COPY table (cols) FROM STDIN`` in bounded chunks."""

    def __init__(self, cur, table: str, columns: tuple[str, ...], before_flush=None) -> None:
        self.before_flush = before_flush  # e.g. flush the parent rows first (foreign keys)
        self.cur, self.sql = cur, f"COPY instagram.{table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '')"
        self.buf, self.n, self.total = io.StringIO(), 0, 0

    def add(self, line: str) -> None:
        self.buf.write(line)
        self.n += 1
        if self.n >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.n:
            if self.before_flush is not None:
                self.before_flush()
            self.buf.seek(0)
            self.cur.copy_expert(self.sql, self.buf)
            self.total += self.n
            self.buf, self.n = io.StringIO(), 0


def load(engine, n_accounts: int, n_posts: int) -> dict:
    """Accounts, posts, snapshots (capture cadence), profile snapshots and 35 days of account insights."""
    raw = engine.raw_connection()
    counts = {}
    try:
        cur = raw.cursor()
        now_s = _ts(AS_OF)
        acc = _Copier(cur, "accounts", ("ig_user_id", "username", "timezone", "followers_total"))
        for a in range(1, n_accounts + 1):
            acc.add(f"acc{a},user{a},{TIMEZONES[a % 4]},{10_000 + a * 37 % 90_000}\n")
        acc.flush()
        counts["accounts"] = acc.total

        media = _Copier(cur, "media", ("media_id", "ig_user_id", "media_type", "media_product_type", "caption",
                                       "permalink", "published_at", "like_count", "comments_count", "first_seen_at",
                                       "updated_at"))
        snaps = _Copier(cur, "media_insights_snapshots", ("media_id", "captured_at", "fetched_at", "ig_user_id",
                                                          "reach", "views", "likes", "comments", "saved", "shares",
                                                          "total_interactions", "api_version"),
                        before_flush=media.flush)
        month = 30 * 24 * 60
        slots_h = list(range(1, 49)) + [48 + 24 * d for d in range(1, 29)]
        for a in range(1, n_accounts + 1):
            followers = 10_000 + a * 37 % 90_000
            for p in range(1, n_posts + 1):
                mid = f"m{a}_{p}"
                published = AS_OF - timedelta(minutes=p * month // n_posts + (a * 37 + p * 11) % 300)
                video = p % 3 == 0
                scale = (100 + (a * 7919 + p * 104729) % 80) * followers / 20_000
                if (a * 31 + p * 17) % 97 == 0:
                    scale *= 20  # a viral post now and then
                media.add(f"{mid},acc{a},{'VIDEO' if video else 'IMAGE'},{'REELS' if video else 'FEED'},post {p},"
                          f"https://example.test/{a}/{p},{_ts(published)},,,{now_s},{now_s}\n")
                hour0 = published.replace(minute=0, second=0, microsecond=0)
                for h in slots_h:
                    slot = hour0 + timedelta(hours=h)
                    fetched = slot + timedelta(minutes=4)
                    if fetched > AS_OF:
                        break
                    age_h = (fetched - published).total_seconds() / 3600
                    e = int(scale * (1 - math.exp(-age_h / 8)))
                    snaps.add(f"{mid},{_ts(slot)},{_ts(fetched)},acc{a},{e * 12 + 30},{e * 25 + 60},{int(e * .8)},"
                              f"{int(e * .1)},{int(e * .05)},{int(e * .05)},{e},v25.0\n")
        media.flush()
        snaps.flush()
        counts["media"], counts["snapshots"] = media.total, snaps.total

        prof = _Copier(cur, "account_profile_snapshots", ("ig_user_id", "captured_at", "followers_total"))
        ins = _Copier(cur, "account_insights_daily", ("ig_user_id", "date", "reach", "views", "follower_count",
                                                      "followers_total", "api_version", "synced_at"))
        for a in range(1, n_accounts + 1):
            followers = 10_000 + a * 37 % 90_000
            for d in range(0, 41):
                prof.add(f"acc{a},{_ts(AS_OF - timedelta(days=d))},{followers - d * 3}\n")
            for d in range(1, 36):
                day = (AS_OF - timedelta(days=d)).date().isoformat()
                ins.add(f"acc{a},{day},{1000 + d},{3000 + d},5,{followers - d * 3},v25.0,{now_s}\n")
        prof.flush()
        ins.flush()
        counts["profile_snapshots"], counts["account_days"] = prof.total, ins.total
        raw.commit()
        cur.close()
    finally:
        raw.close()
    return counts


def io_manager_frames(engine) -> dict:
    """The three IO-managed assets' outputs as their asset bodies compute them (inputs read once), with the
    window each is written to: media_engagement's hourly partitions spanning its captured_at (a backfill's single
    run), account_engagement_daily's recomputed days, best_posting_times' whole table (None)."""
    import pandas as pd
    import sqlalchemy as sa

    from ig_analytics.analytics import best_times, engagement

    from ig_analytics.storage.frames import copy_frame

    day_from, day_to = (AS_OF - timedelta(days=35)).date(), AS_OF.date()
    with engine.begin() as conn:
        media = engagement.media_engagement_rows(engagement.read_latest_snapshots(conn, now=AS_OF), AS_OF)
        conn.execute(sa.text("DELETE FROM instagram.media_engagement"))
        copy_frame(conn, "media_engagement", media)  # the other two read it (as in the hourly job)
    with engine.connect() as conn:
        posts = engagement.read_posts_by_day(conn, day_from=day_from, day_to=day_to)
        rated = best_times.read_rated_posts(conn, now=AS_OF)
    first = media["captured_at"].min().floor("h")
    hours = (first.to_pydatetime(), (media["captured_at"].max().floor("h") + pd.Timedelta(hours=1)).to_pydatetime())
    days = (datetime(day_from.year, day_from.month, day_from.day, tzinfo=timezone.utc),
            datetime(day_to.year, day_to.month, day_to.day, tzinfo=timezone.utc) + timedelta(days=1))
    daily = engagement.daily_engagement_rows(posts, AS_OF)
    best = best_times.best_times_rows(rated, AS_OF)
    return {"media_engagement": (media, hours), "account_engagement_daily": (daily, days),
            "best_posting_times": (best, None)}


def _output_context(name: str, window):
    """What Dagster hands handle_output for the asset: its definition metadata and, when partitioned, the key
    range covering ``window`` (a partitions definition starting at the data, not the product's start date)."""
    import dagster as dg

    from ig_analytics.defs import analytics_assets

    asset = getattr(analytics_assets, name)
    spec = asset.specs_by_key[dg.AssetKey(name)]
    if asset.partitions_def is None:
        return dg.build_output_context(asset_key=name, definition_metadata=spec.metadata)
    hours = dg.HourlyPartitionsDefinition(start_date=window[0].strftime("%Y-%m-%d-%H:%M"), timezone="UTC")
    last = (window[1] - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M")
    return dg.build_output_context(asset_key=name, definition_metadata=spec.metadata, asset_partitions_def=hours,
                                   asset_partition_key_range=dg.PartitionKeyRange(window[0].strftime("%Y-%m-%d-%H:%M"), last))


def io_manager_rounds(engine, url: str, rounds: int, manager=None) -> None:
    """Alternately, ``rounds`` times per asset: the plain write (DELETE the slice + ``copy_frame``, one transaction)
    and ``manager.handle_output`` (default: the product's ``PostgresTableIOManager``). media_engagement (an
    upsert) is written by the IO manager twice per round: onto the rows the plain write just left (the steady
    hourly case: nothing changed, nothing rewritten) and into the emptied slice (every row new)."""
    import dagster as dg
    import sqlalchemy as sa

    from ig_analytics.storage.frames import copy_frame
    from ig_analytics.defs.postgres_io import PostgresTableIOManager, Rows
    from ig_analytics.defs.resources import AnalyticsDatabase

    manager = manager or PostgresTableIOManager(database=AnalyticsDatabase(database_url=url, migrate=False))
    t = time.perf_counter()
    frames = io_manager_frames(engine)
    c.result("analytics.io.inputs.seconds", time.perf_counter() - t, "s", "read and compute the three frames, once (and store media_engagement, which the others read)")
    for name, (frame, window) in frames.items():
        column = {"media_engagement": "captured_at", "account_engagement_daily": "date"}.get(name)
        where, params = ("true", {}) if window is None else (f"{column} >= :start AND {column} < :end",
                                                             {"start": window[0], "end": window[1]})
        if column == "date":
            params = {k: v.date() for k, v in params.items()}
        delete = sa.text(f"DELETE FROM instagram.{name} WHERE {where}")
        # account_engagement_daily names its recomputed days (Rows); media_engagement's window is its partitions'
        obj = Rows(frame, dg.TimeWindow(*window)) if name == "account_engagement_daily" else frame
        times: dict[str, list[float]] = {}

        def timed(label: str, fn) -> None:
            # each write deletes the previous one's rows: vacuum them first, so no write pays for another's bloat
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text(f"VACUUM instagram.{name}"))
            gc.collect()
            t = time.perf_counter()
            fn()
            times.setdefault(label, []).append(time.perf_counter() - t)

        def plain() -> None:
            with engine.begin() as conn:
                conn.execute(delete, params)
                copy_frame(conn, name, frame)

        contexts: list = []  # one per write (a context takes its output metadata once), built before the timing

        def through_manager() -> None:
            manager.handle_output(contexts.pop(), obj)

        for _ in range(rounds):
            timed("copy_frame", plain)
            contexts.append(_output_context(name, window))
            timed("io_manager", through_manager)
            if name == "media_engagement":
                with engine.begin() as conn:
                    conn.execute(delete, params)
                contexts.append(_output_context(name, window))
                timed("io_manager_into_empty", through_manager)
        with engine.connect() as conn:
            stored = conn.execute(sa.text(f"SELECT count(*) FROM instagram.{name} WHERE {where}"), params).scalar()
        for label, values in times.items():
            c.result(f"analytics.io.{name}.{label}.seconds", min(values), "s",
                     f"{len(frame):,} rows ({stored:,} stored after), min of {rounds}: "
                     + ", ".join(f"{v:.3f}" for v in values))
        c.result(f"analytics.io.{name}.ratio", c.ratio(min(times["io_manager"]), min(times["copy_frame"])), "x",
                 "IO manager / plain copy_frame")


def main(argv: list[str] | None = None) -> int:
    quick, rest = c.quick_flag(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--io-manager", action="store_true", help="time the IO manager's writes (module doc)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(rest)
    n_accounts = args.accounts or (20 if quick else 1000)
    import sqlalchemy as sa

    from ig_analytics.analytics import refresh_trending_posts
    from benchmarks.direct_writes import (
        refresh_account_engagement_daily, refresh_best_posting_times, refresh_media_engagement,
    )
    from ig_analytics.analytics.reports import write_reports

    c.header(NAME, quick)
    with c.temp_postgres() as (_pg, url):
        engine = c.fresh_schema(url)
        print(f"postgres: {c.postgres_version(engine)}", flush=True)
        c.reset_peak_rss()
        counts, load_s = c.timed(load, engine, n_accounts, args.posts)
        load_peak = c.hwm_rss_mb()
        t = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))  # what autovacuum does to freshly loaded tables
        vacuum_s = time.perf_counter() - t
        c.result("analytics.accounts", counts["accounts"], "accounts")
        c.result("analytics.posts", counts["media"], "posts")
        c.result("analytics.snapshots", counts["snapshots"], "snapshot rows",
                 f"loaded with COPY in {load_s:.1f} s ({counts['snapshots'] / load_s:,.0f} rows/s incl. Python "
                 f"generation; peak RSS {load_peak:.0f} MB), VACUUM ANALYZE {vacuum_s:.1f} s; not part of the timings below")
        if args.io_manager:
            io_manager_rounds(engine, url, args.rounds)
            c.result("peak_rss", c.peak_rss_mb(), "MB")
            c.done(NAME)
            return 0

        steps = [
            ("media_engagement", lambda conn: refresh_media_engagement(conn, now=AS_OF)),
            ("trending_posts", lambda conn: refresh_trending_posts(conn, as_of=AS_OF, now=AS_OF)),
            ("best_posting_times", lambda conn: refresh_best_posting_times(conn, now=AS_OF)),
        ]
        reports_dir = Path(tempfile.mkdtemp(prefix="ig-bench-reports-"))
        extra = [
            ("account_engagement_daily", lambda conn: refresh_account_engagement_daily(
                conn, day_from=(AS_OF - timedelta(days=35)).date(), day_to=AS_OF.date(), now=AS_OF)),
            ("reports", lambda conn: len(write_reports(
                conn, period_end=(AS_OF - timedelta(days=1)).date(), days=7, kind="rolling_7d",
                reports_dir=reports_dir, now=AS_OF))),
        ]
        try:
            total = all_steps = 0.0
            for name, step in steps + extra:
                gc.collect()
                rss0 = c.current_rss_mb()
                c.reset_peak_rss()
                t = time.perf_counter()
                with engine.begin() as conn:
                    rows = step(conn)
                seconds = time.perf_counter() - t
                if (name, step) in steps:
                    total += seconds
                all_steps += seconds
                c.result(f"analytics.{name}.seconds", seconds, "s",
                         f"{rows:,} rows written; RSS {rss0:.0f} -> {c.current_rss_mb():.0f} MB, peak {c.hwm_rss_mb():.0f} MB")
                c.result(f"analytics.{name}.peak_rss", c.hwm_rss_mb(), "MB", "VmHWM during the step")
            html_files = list(reports_dir.rglob("*.html"))
            c.result("analytics.reports.html_files", len(html_files), "files",
                     f"rolling_7d, {sum(f.stat().st_size for f in html_files) / 1e6:,.1f} MB in a temp dir (deleted)")
        finally:
            shutil.rmtree(reports_dir, ignore_errors=True)
        c.result("analytics.total.seconds", total, "s",
                 "engagement + trending + best times; target < 60 s (1,000 accounts)")
        c.result("analytics.all_steps.seconds", all_steps, "s",
                 "the three above + account_engagement_daily + reports")
    c.result("peak_rss", c.peak_rss_mb(), "MB")
    c.done(NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
