"""The retention job's compactions at their defaults (issue 27), each checked against what reads the history.

Snapshots (7 days, was 90): beyond the horizon one snapshot per post and UTC day, the last of the day, and beyond
35 days one per post and ISO week; within 7 days every hourly snapshot; and what the analytics read is kept (what
trending reads of the deleted rows moved to media_curves), so trending (at the current hour and backfilled past
hours), media engagement and best posting times computed after the compaction equal those computed before it.
Trending evaluations (7 days): the last of each day, what a past period's report reads; trending_posts keep those
evaluations' rows and each post's first and best-ranked rows (the ``posts`` view). Audience pictures (7 days, was
35): the newest of each ISO week, what every weekly report's audience section reads, and beyond 90 days the newest
of each month. Hashtag performance (7 days): the newest period of each ISO week (a weekly report's). Rolling
reports: 35 days (weekly ones stay). Successful sync_runs: 30 days, the newest per account and type stays;
beyond 7 days the hourly media successes of consecutive hours of a day are one row.

The history is the capture policy's shape (constants.py): each post hourly for its first 48 h, then daily at
02:00 until 30 days old; a post every 12 h for 100 days, a story a day for 20 days (hourly for its 24 h), the
newest post taking off (so trending lists something)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.analytics import best_times, engagement, trending
from ig_analytics.analytics.trending import parameter_set_id
from ig_analytics.analytics.trending_scores import TrendingParams
from benchmarks import direct_writes
from ig_analytics.defs.retention import RetentionConfig, apply_retention, day_cutoff
from ig_analytics_tests.analytics_data import (add_account, add_account_days, add_media, add_snapshots, restore_tables,
                                                 save_tables)
from ig_analytics_tests.ops_data import hour_floor, now_utc

pytestmark = pytest.mark.slow

ACCOUNT = "1001"
HORIZON_DAYS = 7  # hourly detail for a week (issue 27)
WEEKLY_DAYS = 35  # then daily detail until 35 days
NOW = hour_floor(now_utc()) + timedelta(minutes=5)  # a retention run's clock, like the hourly tick's


def _values(media_id: str, age_hours: float, scale: float) -> dict:
    likes = round(scale * (1 - math.exp(-age_hours / 20)))
    return {"likes": likes, "comments": likes // 10, "saved": likes // 20, "shares": likes // 30,
            "reach": likes * 12 + 50, "views": likes * 20 + 80,  # every third post: the engagement from its parts
            "total_interactions": likes + likes // 10 if int(media_id[1:]) % 3 else None}


def _captures(published: datetime, lifetime: timedelta) -> list[datetime]:
    """The capture slots of a post: every hour of its first 48 h (or its life), then 02:00 daily until 30 days."""
    first = hour_floor(published) + timedelta(hours=1)
    hourly = [first + timedelta(hours=h) for h in range(int(min(lifetime, timedelta(hours=48)) / timedelta(hours=1)))]
    daily, day = [], (published + timedelta(hours=48)).replace(hour=2, minute=0, second=0, microsecond=0)
    while lifetime > timedelta(hours=48) and day - published <= timedelta(days=30):
        if day > hourly[-1]:
            daily.append(day)
        day += timedelta(days=1)
    return [t for t in hourly + daily if t <= NOW - timedelta(minutes=5)]


@pytest.fixture()
def history(engine):
    media, snaps = [], []
    posts = [(f"P{i:03d}", NOW - timedelta(hours=12 * i + 7, minutes=17), "FEED") for i in range(1, 200)]
    stories = [(f"S{i:02d}", NOW - timedelta(days=i, minutes=40), "STORY") for i in range(1, 21)]
    for media_id, published, kind in posts + stories:
        media.append({"media_id": media_id, "ig_user_id": ACCOUNT, "published_at": published,
                      "media_product_type": kind})
        scale = 900 if media_id == "P001" else 150 + (int(media_id[1:]) * 37) % 120
        life = timedelta(hours=24) if kind == "STORY" else timedelta(days=400)
        for n, slot in enumerate(_captures(published, life)):
            # microseconds (packed to the millisecond): some fetches half a second from a whole one, either side
            fetched = slot + timedelta(minutes=5, microseconds=(499_700, 500_300, 123_456, 0)[n % 4])
            snaps.append({"media_id": media_id, "ig_user_id": ACCOUNT, "captured_at": slot, "fetched_at": fetched,
                          **_values(media_id, (fetched - published) / timedelta(hours=1), scale)})
    with engine.begin() as conn:
        add_account(conn, ACCOUNT, followers_total=5000)
        add_media(conn, media)
        add_snapshots(conn, snaps)
        add_account_days(conn, ACCOUNT, [{"date": (NOW - timedelta(days=d)).date(), "followers_total": 5000 - d}
                                          for d in range(0, 110)])
    return engine


def _analytics(engine) -> dict[str, pd.DataFrame]:
    """What the hourly job computes at NOW, read back without the computation times."""
    as_of = hour_floor(NOW)
    with engine.begin() as conn:
        latest = engagement.read_latest_snapshots(conn, now=NOW)
        media = engagement.media_engagement_rows(latest, NOW)
        direct_writes.refresh_media_engagement(conn, now=NOW)
        best = best_times.best_times_rows(best_times.read_rated_posts(conn, now=NOW), NOW)
        trending.refresh_trending_posts(conn, as_of=as_of, now=NOW)
        listed = pd.read_sql(sa.text("SELECT media_id, rank, score, details, method FROM instagram.trending_posts"
                                     " WHERE as_of = :a ORDER BY rank"), conn, params={"a": as_of})
        evaluated = pd.read_sql(sa.text("SELECT candidates, scored, listed FROM instagram.trending_evaluations"
                                        " WHERE as_of = :a"), conn, params={"a": as_of})
    return {"media_engagement": media.drop(columns=["computed_at"]).sort_values("media_id", ignore_index=True),
            "best_posting_times": best.drop(columns=["computed_at"]), "trending_posts": listed,
            "trending_evaluations": evaluated}


def _snapshots(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "SELECT s.media_id, s.captured_at, m.media_product_type AS kind, m.published_at"
            " FROM instagram.media_insights_snapshots s JOIN instagram.media m USING (media_id)"), conn)


def test_default_compaction_keeps_a_week_hourly_then_a_day_then_a_week_each_and_what_the_analytics_read(history):
    before_rows, before = _snapshots(history), _analytics(history)
    assert len(before["trending_posts"]) > 0 and before["trending_posts"]["method"].eq("same_age_growth").any()
    apply_retention(_NoRuns(), history, RetentionConfig(), NOW)  # the defaults
    after_rows, after = _snapshots(history), _analytics(history)
    for name, frame in before.items():  # the analytics are the same (an independent check of what is kept)
        pd.testing.assert_frame_equal(after[name], frame, obj=name)

    horizon = pd.Timestamp(day_cutoff(NOW, HORIZON_DAYS))
    recent = lambda f: f[f["captured_at"] >= horizon].sort_values(["media_id", "captured_at"], ignore_index=True)
    pd.testing.assert_frame_equal(recent(after_rows), recent(before_rows))  # the last 7 days: every hour kept
    # beyond the horizon: one per post and UTC day, the last of that day, beyond 35 days one per post and ISO
    # week, trending's curves too (they move to media_curves: below)
    compactable = before_rows[before_rows["captured_at"] < horizon].copy()
    day = compactable["captured_at"].dt.date
    monday = (compactable["captured_at"] - pd.to_timedelta(compactable["captured_at"].dt.weekday, unit="D")).dt.date
    period = day.where(compactable["captured_at"] >= pd.Timestamp(day_cutoff(NOW, WEEKLY_DAYS)), monday)
    expected = compactable.loc[compactable.groupby(["media_id", period])["captured_at"].idxmax()]
    kept = after_rows[after_rows["captured_at"] < horizon]
    kept_compactable = kept.merge(compactable[["media_id", "captured_at"]])
    assert sorted(map(tuple, kept_compactable[["media_id", "captured_at"]].values.tolist())) == \
        sorted(map(tuple, expected[["media_id", "captured_at"]].values.tolist()))
    # what trending reads of the deleted rows is in media_curves, nothing else, each point in one place
    span = pd.Timedelta(trending.curve_span())
    gone = before_rows.merge(after_rows[["media_id", "captured_at"]], how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"]
    read_by_trending = (gone["kind"] != "STORY") & (gone["published_at"] > pd.Timestamp(NOW) - pd.Timedelta(days=90)) \
        & (gone["captured_at"] + pd.Timedelta(minutes=5) <= gone["published_at"] + span)
    assert read_by_trending.sum() > 1000 and (~read_by_trending).sum() > 0
    assert sorted(map(tuple, _curve_points(history)[["media_id", "captured_at"]].values.tolist())) == \
        sorted(map(tuple, gone[read_by_trending][["media_id", "captured_at"]].values.tolist()))
    assert (compactable.groupby(["media_id", compactable["captured_at"].dt.date]).size() > 1).any()  # it did work
    assert (expected.groupby(["media_id", monday]).size() > 1).any() and (period == monday).any()
    assert compactable["kind"].eq("STORY").any() and (compactable["kind"] != "STORY").any()


def _curve_points(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text("SELECT * FROM instagram.media_curve_points"), conn)


# Every scored candidate listed (a low min_z), so the rows hold each one's gain, baseline and score.
_LIST_ALL = TrendingParams(min_z=-1e9, top_n=100)
_CROSS_ALL = TrendingParams(method="cross_sectional", min_z_cross=-1e9, top_n=100)


def _trending(engine, as_of: datetime, params: TrendingParams = _LIST_ALL) -> dict[str, pd.DataFrame]:
    """Trending's rows at ``as_of`` (every column but computed_at): what the evaluation wrote."""
    with engine.begin() as conn:
        trending.refresh_trending_posts(conn, as_of=as_of, now=NOW, params=params)
        return {name: pd.read_sql(sa.text(f"SELECT * FROM instagram.{name} WHERE as_of = :a ORDER BY 1, 2, 3"),
                                  conn, params={"a": as_of}).drop(columns=["computed_at"], errors="ignore")
                for name in ("trending_posts", "trending_evaluations")}


def test_trending_reads_the_packed_curves_the_same_now_and_at_a_backfilled_hour(history):
    """Retention moves the early snapshots of the baseline posts into media_curves: trending's every row, scores
    and ranks, at the current hour and at a past hour evaluated again (a backfill), are the same after it; with
    the packed curves gone they are not (the curves are read from media_curves)."""
    same_age = [(hour_floor(NOW - timedelta(days=d)), _LIST_ALL) for d in (0, 10, 40)]
    # the cross-sectional method reads each post's newest point at the hour (35 days back: the weekly compaction
    # of the snapshots after a post's curve changes it, as it did before the curves were packed)
    cross = [(hour_floor(NOW - timedelta(days=d)), _CROSS_ALL) for d in (0, 10)]
    before = {key: _trending(history, *key) for key in same_age + cross}
    for (hour, params), rows in before.items():
        assert len(rows["trending_posts"]) >= 8, hour  # candidates scored against a baseline, listed
        assert rows["trending_posts"]["method"].eq(params.method if params.method != "auto" else "same_age_growth").all()
    apply_retention(_NoRuns(), history, RetentionConfig(), NOW)
    assert len(_curve_points(history)) > 1000
    for key, rows in before.items():
        for name, frame in _trending(history, *key).items():
            pd.testing.assert_frame_equal(frame, rows[name], obj=f"{name} at {key[0]:%m-%d %H}h, {key[1].method}")
    with history.begin() as conn:
        conn.execute(sa.text("DELETE FROM instagram.media_curves"))
    for key in same_age + cross[1:]:
        assert not _trending(history, *key)["trending_posts"].equals(before[key]["trending_posts"]), key


class _NoRuns:
    """The Dagster instance's part retention uses, with no runs to delete (the runs part is test_retention's)."""

    def get_run_records(self, filters=None, limit=None, ascending=False):
        return []

    def get_runs_count(self, filters=None):
        return 0


def _add_evaluations(engine, hours: list) -> None:
    """One trending evaluation of ACCOUNT at each of ``hours``."""
    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        conn.execute(sa.text(
            "INSERT INTO instagram.trending_evaluations (ig_user_id, as_of, candidates, scored, listed, params_id,"
            " computed_at) SELECT :a, t, 3, 2, 1, :p, t FROM unnest(CAST(:hours AS timestamptz[])) t"),
            {"a": ACCOUNT, "hours": hours, "p": parameter_set_id(conn, TrendingParams(), NOW)})


def test_trending_evaluations_keep_a_week_hourly_then_the_last_of_each_day(engine):
    """What reads old evaluations: a report of a past period takes the newest evaluation before its end + 2 days
    (a midnight; reports.py "trends"); the same before and after for every midnight of the history."""
    hours = [hour_floor(NOW) - timedelta(hours=h) for h in range(20 * 24)]
    _add_evaluations(engine, hours)
    newest_before_midnights = sa.text(
        "SELECT d, (SELECT max(as_of) FROM instagram.trending_evaluations WHERE as_of < d) FROM"
        " generate_series(CAST(:first AS timestamptz), :last, interval '1 day') d ORDER BY d")
    days = {"first": day_cutoff(NOW, 21), "last": day_cutoff(NOW, 0)}
    with engine.connect() as conn:
        before = conn.execute(newest_before_midnights, days).all()
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT as_of FROM instagram.trending_evaluations ORDER BY 1")).scalars().all()
        after = conn.execute(newest_before_midnights, days).all()
    horizon = day_cutoff(NOW, HORIZON_DAYS)
    assert [t for t in kept if t >= horizon] == sorted(t for t in hours if t >= horizon)
    old = [t for t in kept if t < horizon]
    assert old == sorted({max(t for t in hours if t.date() == d) for d in {t.date() for t in hours if t < horizon}})
    assert counts.trending_evaluations_deleted == len(hours) - len(kept) > 0
    assert after == before


def test_trending_evaluations_keep_after_35_days_what_the_weekly_reports_read(engine):
    """A weekly report (Monday to Sunday) lists the newest evaluation before the Tuesday after it (reports.py
    "trends"): the same before and after for every week; older than 35 days one evaluation a week is left."""
    hours = [hour_floor(NOW) - timedelta(hours=h) for h in range(70 * 24)]
    _add_evaluations(engine, hours)
    tuesdays = sa.text(
        "SELECT d, (SELECT max(as_of) FROM instagram.trending_evaluations WHERE as_of < d) FROM generate_series("
        "CAST(:first AS timestamptz), :last, interval '7 days') d ORDER BY d")
    first_tuesday = day_cutoff(NOW, 70) + timedelta(days=(1 - day_cutoff(NOW, 70).weekday()) % 7 + 7)
    days = {"first": first_tuesday, "last": day_cutoff(NOW, 0)}
    with engine.connect() as conn:
        before = conn.execute(tuesdays, days).all()
    apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    with engine.connect() as conn:
        after = conn.execute(tuesdays, days).all()
        old = conn.execute(sa.text("SELECT count(*) FROM instagram.trending_evaluations WHERE as_of < :c"),
                           {"c": day_cutoff(NOW, 35)}).scalar()
    assert after == before and len(before) >= 8
    assert old <= (70 - 35) // 7 + 2


def _monday(day):
    return day - timedelta(days=day.weekday())


def test_audience_pictures_keep_7_days_then_the_newest_of_each_week_then_of_each_month(engine):
    """A report reads the newest audience picture of its period (analytics/audience.audience_sections): every weekly
    report's section of the last 90 days is the same before and after; the last 7 days keep every daily picture;
    older than 90 days, the newest kept picture of each month stays."""
    from ig_analytics.analytics.audience import METRIC, audience_sections

    today = NOW.date()
    days = [today - timedelta(days=d) for d in range(1, 130)]
    with engine.begin() as conn:
        add_account(conn, ACCOUNT, followers_total=5000)
        for i, day in enumerate(days):
            values = {"a": ACCOUNT, "d": day, "m": METRIC, "v": 100 + i, "t": NOW}
            for breakdown, key in (("age", "25-34"), ("gender", "F"), ("country", "US"), ("city", "Paris")):
                conn.execute(sa.text(
                    "INSERT INTO instagram.audience_demographics_status (ig_user_id, date, metric, breakdown, status,"
                    " followers_total, api_version, fetched_at) VALUES (:a, :d, :m, :b, 'ok', 5000, 'v25.0', :t)"),
                    {**values, "b": breakdown})
                conn.execute(sa.text(
                    "INSERT INTO instagram.audience_demographics (ig_user_id, date, metric, breakdown, key, value,"
                    " api_version, fetched_at) VALUES (:a, :d, :m, :b, :k, :v, 'v25.0', :t)"),
                    {**values, "b": breakdown, "k": key})
            conn.execute(sa.text(
                "INSERT INTO instagram.audience_age_gender (ig_user_id, date, metric, age, gender, value, api_version,"
                " fetched_at) VALUES (:a, :d, :m, '25-34', 'F', :v, 'v25.0', :t)"), values)
    week_cut, month_cut = day_cutoff(NOW, 7).date(), day_cutoff(NOW, 90).date()
    mondays = sorted({_monday(d) for d in days if _monday(d) + timedelta(days=6) >= month_cut})

    def weekly_sections():
        with engine.connect() as conn:
            return [audience_sections(conn, [ACCOUNT], m, m + timedelta(days=6)) for m in mondays]

    before = weekly_sections()
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    after = weekly_sections()
    with engine.connect() as conn:
        kept = {t: conn.execute(sa.text(f"SELECT DISTINCT date FROM instagram.{t} ORDER BY 1")).scalars().all()
                for t in ("audience_pictures", "audience_demographics_status")}  # the view: rows and packed
        as_rows = {t: conn.execute(sa.text(f"SELECT min(date) FROM instagram.{t}")).scalar()
                   for t in ("audience_demographics", "audience_age_gender")}
    old = [d for d in days if d < week_cut]
    weekly = {d for d in days if d >= week_cut} | {max(d for d in old if _monday(d) == m) for m in map(_monday, old)}
    oldest = [d for d in weekly if d < month_cut]
    expected = sorted({d for d in weekly if d >= month_cut}
                      | {max(d for d in oldest if (d.year, d.month) == (o.year, o.month)) for o in oldest})
    assert all(dates == expected for dates in kept.values()), kept
    assert len([d for d in expected if d < month_cut]) < len([d for d in weekly if d < month_cut])  # months
    assert counts.audience_days_deleted == len(days) - len(expected) > 0
    pack_cut = day_cutoff(NOW, 1).date()  # all but the newest day packed (test_audience_packing.py)
    assert all(d >= pack_cut for d in as_rows.values()), as_rows
    assert counts.audience_days_packed == len([d for d in expected if d < pack_cut])
    assert after == before


def _index_bytes(conn, table: str) -> int:
    return conn.execute(sa.text(f"SELECT pg_indexes_size('instagram.{table}')")).scalar()


def _packed_index_bytes(conn, table: str) -> int:
    """The same rows' primary-key index built in one go (a fresh copy, the index created after the rows)."""
    columns = conn.execute(sa.text(
        "SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM pg_index i"
        " CROSS JOIN unnest(i.indkey) WITH ORDINALITY k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary"), {"t": f"instagram.{table}"}).scalar()
    conn.execute(sa.text(f"CREATE TEMP TABLE packed AS SELECT * FROM instagram.{table}"))
    conn.execute(sa.text(f"CREATE UNIQUE INDEX packed_key ON packed ({columns})"))
    size = conn.execute(sa.text("SELECT pg_relation_size('packed_key')")).scalar()
    conn.execute(sa.text("DROP TABLE packed"))
    return size


def test_snapshot_compaction_rebuilds_the_indexes_it_left_with_holes(history):
    """The compaction keeps one snapshot of a post's day (or week) and new keys go to the end (captured_at grows):
    without a rebuild the deleted keys' space in the index pages was never reused, and the indexes grew with every
    snapshot ever captured. After retention they are no larger than the same rows' index built in one go."""
    pkey = "SELECT pg_relation_size('instagram.media_insights_snapshots_pkey')"
    with history.connect() as conn:
        grown = conn.execute(sa.text(pkey)).scalar()
    counts = apply_retention(_NoRuns(), history, RetentionConfig(), NOW)
    with history.begin() as conn:
        live, packed = conn.execute(sa.text(pkey)).scalar(), _packed_index_bytes(conn, "media_insights_snapshots")
    assert live <= packed * 1.1 < grown, (live, packed, grown)
    assert counts.snapshots_deleted > 0 and counts.indexes_rebuilt == 2  # the primary key, the account's index


def test_audience_compaction_rebuilds_the_half_empty_indexes_and_the_reader_still_uses_them(engine):
    """Each account's new day goes into the middle of the audience indexes (their keys start with the account):
    pages split half-full, and the compaction's deletes leave holes only that account's rows fill. After retention
    compacted the pictures, the indexes are no larger than the same rows' index built in one go, and the report's
    query for one account still reads the primary-key index (issue 27)."""
    from ig_analytics.analytics import audience

    accounts = [str(2001 + i) for i in range(3)]
    days = [NOW.date() - timedelta(days=d) for d in range(30, 0, -1)]
    with engine.begin() as conn:
        for account in accounts:
            add_account(conn, account, followers_total=5000)
        for day in days:  # the daily sync's order: day by day, account by account, one picture after the other
            for account in accounts:
                for metric in ("follower_demographics", "engaged_audience_demographics"):
                    for breakdown in ("age", "gender", "country", "city"):
                        values = {"a": account, "d": day, "m": metric, "b": breakdown, "t": NOW}
                        conn.execute(sa.text(
                            "INSERT INTO instagram.audience_demographics_status (ig_user_id, date, metric, breakdown,"
                            " status, followers_total, api_version, fetched_at)"
                            " VALUES (:a, :d, :m, :b, 'ok', 5000, 'v25.0', :t)"), values)
                        conn.execute(sa.text(
                            "INSERT INTO instagram.audience_demographics (ig_user_id, date, metric, breakdown, key,"
                            " value, api_version, fetched_at) SELECT :a, :d, :m, :b, 'Some city ' || k, k,"
                            " 'v25.0', :t FROM generate_series(1, 45) k"), values)
    with engine.connect() as conn:
        grown = _index_bytes(conn, "audience_demographics")
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    with engine.begin() as conn:
        live, packed = _index_bytes(conn, "audience_demographics"), _packed_index_bytes(conn, "audience_demographics")
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a few rows: the planner would scan them all
        plan = "\n".join(conn.execute(sa.text("EXPLAIN " + audience._VALUES),
                                      {"users": [accounts[0]], "start": days[0], "end": days[-1]}).scalars())
    assert live <= packed * 1.1 < grown, (live, packed, grown)
    assert counts.audience_days_deleted > 0 and counts.indexes_rebuilt >= 3
    assert "audience_demographics_pkey" in plan, plan


def test_audience_index_rebuild_drops_what_an_interrupted_rebuild_left(engine):
    """A REINDEX CONCURRENTLY that failed half-way leaves an invalid ``*_ccnew`` index that every insert still
    maintains; the next rebuild drops it (here the leftover is made by a concurrent build that fails)."""
    from ig_analytics.defs.retention import _AUDIENCE_TABLES, rebuild_indexes

    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        for key in ("F", "M"):
            conn.execute(sa.text(
                "INSERT INTO instagram.audience_demographics (ig_user_id, date, metric, breakdown, key, value,"
                " api_version, fetched_at) VALUES (:a, :d, 'follower_demographics', 'gender', :k, 1, 'v25.0', :t)"),
                {"a": ACCOUNT, "d": NOW.date(), "k": key, "t": NOW})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        with pytest.raises(sa.exc.IntegrityError):  # two rows of one account: the unique build fails, invalid
            conn.execute(sa.text("CREATE UNIQUE INDEX CONCURRENTLY audience_demographics_pkey_ccnew"
                                 " ON instagram.audience_demographics (ig_user_id)"))
    invalid = ("SELECT count(*) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid"
               " WHERE x.relname = 'audience_demographics_pkey_ccnew' AND NOT i.indisvalid")
    with engine.connect() as conn:
        assert conn.execute(sa.text(invalid)).scalar() == 1
    assert rebuild_indexes(engine, _AUDIENCE_TABLES) == 4  # the four primary keys (three tables and the packed one) only
    with engine.connect() as conn:
        assert conn.execute(sa.text(invalid)).scalar() == 0


def test_trending_posts_keep_the_rows_reports_and_the_posts_view_read(engine):
    """A past period's report lists the posts of the newest evaluation before a midnight (reports.py "trends"); the
    ``posts`` view reads each post's first time and best rank: both the same before and after; the last 7 days
    whole."""
    hours = [hour_floor(NOW) - timedelta(hours=h) for h in range(20 * 24)]
    ids = [f"T{i}" for i in range(7)]
    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        add_media(conn, [{"media_id": m, "ig_user_id": ACCOUNT, "published_at": NOW - timedelta(days=30)}
                         for m in ids])
        for i, as_of in enumerate(hours):
            listed = [ids[(i // 9 + j) % len(ids)] for j in range(1 + i % 3)]
            conn.execute(sa.text(
                "INSERT INTO instagram.trending_evaluations (ig_user_id, as_of, candidates, scored, listed, params_id,"
                " computed_at) VALUES (:a, :t, 9, 5, :n, :p, :t)"),
                {"a": ACCOUNT, "t": as_of, "n": len(listed), "p": parameter_set_id(conn, TrendingParams(), NOW)})
            for rank, media_id in enumerate(listed, start=1 + (i % 5 == 0)):
                conn.execute(sa.text(
                    "INSERT INTO instagram.trending_posts (ig_user_id, as_of, rank, media_id, score)"
                    " VALUES (:a, :t, :r, :m, :s)"), {"a": ACCOUNT, "t": as_of, "r": rank, "m": media_id, "s": i})
    read = {
        "reports": sa.text(
            "SELECT d, t.rank, t.media_id, t.score FROM generate_series(CAST(:first AS timestamptz), :last,"
            " interval '1 day') d JOIN instagram.trending_posts t ON t.as_of = (SELECT max(as_of) FROM"
            " instagram.trending_evaluations WHERE as_of < d) ORDER BY d, t.rank"),
        "posts_view": sa.text("SELECT media_id, first_trended_at, best_trending_rank FROM instagram.posts"
                              " ORDER BY media_id"),
        "recent": sa.text("SELECT * FROM instagram.trending_posts WHERE as_of >= :horizon ORDER BY as_of, rank")}
    params = {"first": day_cutoff(NOW, 21), "last": day_cutoff(NOW, 0), "horizon": day_cutoff(NOW, HORIZON_DAYS)}

    def reads():
        with engine.connect() as conn:
            return {k: conn.execute(q, params).all() for k, q in read.items()}

    before = reads()
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    assert reads() == before and before["recent"]
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM instagram.trending_posts WHERE as_of < :horizon"),
                            params).scalar()
    assert counts.trending_posts_deleted > 0 and left < 2 * 14 * 3  # a day's last evaluation and a few firsts


def test_hashtag_performance_keeps_7_days_then_the_newest_period_of_each_week_90_day_ones_of_each_month(engine):
    """A weekly report's hashtag section (report_conversation, the newest period ending by its Sunday) is the same
    before and after for every week; the last 7 days' periods stay; the 90-day periods (no report reads them)
    ending more than 35 days ago keep the newest of each month."""
    from ig_analytics.analytics.report_conversation import conversation_sections

    ends = [NOW.date() - timedelta(days=d) for d in range(1, 100)]
    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        for i, end in enumerate(ends):
            for span in (30, 90):
                for tag, posts in (("a", 3 + i % 4), ("b", 5)):
                    conn.execute(sa.text(
                        "INSERT INTO instagram.hashtag_performance (ig_user_id, period_start, period_end, hashtag,"
                        " posts, lift_vs_account_median, computed_at) VALUES (:u, :s, :e, :h, :p, :l, :t)"),
                        {"u": ACCOUNT, "s": end - timedelta(days=span - 1), "e": end, "h": tag, "p": posts,
                         "l": i / 7, "t": NOW})
    sundays = sorted({_monday(e) + timedelta(days=6) for e in ends})

    def weekly():
        with engine.connect() as conn:
            return [conversation_sections(conn, ACCOUNT, s - timedelta(days=6), s) for s in sundays]

    before = weekly()
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    assert weekly() == before and all(b.get("hashtags") for b in before[1:])
    cut, monthly_cut = day_cutoff(NOW, 7).date(), day_cutoff(NOW, 35).date()

    def kept(span: int) -> list:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT DISTINCT period_end FROM instagram.hashtag_performance WHERE"
                                        " period_end - period_start = :s ORDER BY 1"), {"s": span - 1}).scalars().all()

    def newest_of(days: list, period) -> set:
        return {max(e for e in days if period(e) == p) for p in map(period, days)}

    recent, old = [e for e in ends if e >= cut], [e for e in ends if e < cut]
    assert kept(30) == sorted(set(recent) | newest_of(old, _monday))
    weekly = [e for e in old if e >= monthly_cut]
    monthly = [e for e in old if e < monthly_cut]
    by_month = newest_of(monthly, lambda e: (e.year, e.month))
    assert kept(90) == sorted(set(recent) | newest_of(weekly, _monday) | by_month)
    assert len(kept(90)) < len(kept(30))
    assert counts.hashtag_rows_deleted == 2 * (2 * len(ends) - len(kept(30)) - len(kept(90))) > 0


def test_rolling_reports_kept_14_days_weekly_reports_stay(engine):
    ends = [NOW.date() - timedelta(days=d) for d in range(1, 80)]
    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        for end in ends:
            for kind in ("rolling_7d",) + (("weekly",) if end.weekday() == 6 else ()):
                conn.execute(sa.text(
                    "INSERT INTO instagram.performance_reports (ig_user_id, period_start, period_end, kind,"
                    " generated_at, report) VALUES (:u, :s, :e, :k, :t, '{}'::jsonb)"),
                    {"u": ACCOUNT, "s": end - timedelta(days=6), "e": end, "k": kind, "t": NOW})
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT kind, period_end FROM instagram.performance_reports ORDER BY 1, 2")).all()
    cut = day_cutoff(NOW, 14).date()
    assert kept == sorted([("rolling_7d", e) for e in ends if e >= cut] + [("weekly", e) for e in ends
                                                                           if e.weekday() == 6])
    assert counts.reports_deleted == len([e for e in ends if e < cut]) > 0


def test_successful_sync_runs_kept_30_days_the_newest_and_failures_180(engine):
    """The checks explain a gap with the failed sync that covers it, ``ig-analytics status`` shows each account's
    newest success: those stay; other successes (and partial ones) go after 30 days (the Dagster runs they belong to
    go then too)."""
    from ig_analytics_tests.ops_data import add_sync_run

    runs = [("s40", "media", "success", 40), ("s31", "media", "success", 31), ("s10", "media", "success", 10),
            ("a60", "account", "success", 60), ("a70", "account", "success", 70), ("f100", "media", "failed", 100),
            ("p50", "media", "partial", 50), ("p9", "media", "partial", 9), ("f200", "media", "failed", 200),
            ("a190", "followers", "success", 190)]
    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        for run_id, kind, status, days in runs:
            add_sync_run(conn, run_id, ACCOUNT, kind, "k", status, started_at=NOW - timedelta(days=days, hours=1))
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT dagster_run_id FROM instagram.sync_runs ORDER BY 1")).scalars().all()
    assert kept == ["a60", "f100", "p9", "s10"] and counts.sync_runs_deleted == 6


def test_retention_vacuums_the_tables_it_deleted_from_and_only_those(engine):
    """The deleted reports' space is free for the next day's rows at once (a plain VACUUM), not after autovacuum's
    20 % of dead rows; a table retention did not change is not vacuumed."""
    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        for days in range(40, 80):
            end = NOW.date() - timedelta(days=days)
            conn.execute(sa.text(
                "INSERT INTO instagram.performance_reports (ig_user_id, period_start, period_end, kind,"
                " generated_at, report) VALUES (:u, :s, :e, 'rolling_7d', :t, '{}'::jsonb)"),
                {"u": ACCOUNT, "s": end - timedelta(days=6), "e": end, "t": NOW})
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), NOW)
    with engine.connect() as conn:
        vacuumed = conn.execute(sa.text("SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'instagram'"
                                        " AND last_vacuum IS NOT NULL")).scalars().all()
    assert counts.reports_deleted == 40 and vacuumed == ["performance_reports"] and counts.tables_vacuumed == 1


def test_retention_by_a_role_that_does_not_own_the_tables_compacts_and_says_why_it_did_not_reindex(
        engine, pg_url, caplog):
    """A deployment whose migrations ran as another role: the compaction works with the role's grants; REINDEX
    needs the owner, so those tables' rebuild is skipped with a warning that names them, not the whole run failed."""
    from sqlalchemy.engine import make_url

    from ig_analytics.storage import db

    with engine.begin() as conn:
        add_account(conn, ACCOUNT)
        for days in range(1, 30):
            end = NOW.date() - timedelta(days=days)
            conn.execute(sa.text(
                "INSERT INTO instagram.hashtag_performance (ig_user_id, period_start, period_end, hashtag, posts,"
                " computed_at) VALUES (:u, :s, :e, 'a', 3, :t)"), {"u": ACCOUNT, "s": end - timedelta(days=29),
                                                                   "e": end, "t": NOW})
        conn.execute(sa.text("DROP ROLE IF EXISTS ig_retention_grantee"))
        conn.execute(sa.text("CREATE ROLE ig_retention_grantee LOGIN PASSWORD 'not-the-owner'"))
        conn.execute(sa.text("GRANT USAGE ON SCHEMA instagram TO ig_retention_grantee; GRANT SELECT, INSERT, UPDATE,"
                             " DELETE ON ALL TABLES IN SCHEMA instagram TO ig_retention_grantee; GRANT USAGE ON ALL"
                             " SEQUENCES IN SCHEMA instagram TO ig_retention_grantee; DO $$ BEGIN EXECUTE"
                             " format('GRANT TEMPORARY ON DATABASE %I TO ig_retention_grantee', current_database());"
                             " END $$"))
    grantee = db.get_engine(make_url(pg_url).set(username="ig_retention_grantee", password="not-the-owner")
                            .render_as_string(hide_password=False))
    try:
        with caplog.at_level("WARNING"):
            counts = apply_retention(_NoRuns(), grantee, RetentionConfig(), NOW)
    finally:
        grantee.dispose()
        with engine.begin() as conn:
            conn.execute(sa.text("DROP OWNED BY ig_retention_grantee; DROP ROLE ig_retention_grantee"))
    assert counts.hashtag_rows_deleted > 0 and counts.tables_not_reindexed == 1 and counts.indexes_rebuilt == 0
    assert "instagram.hashtag_performance" in caplog.text and "owner" in caplog.text


# The merge test's clock: a fixed hour of the day (its data's days, missing hours and odd statuses fall on the same
# hours whenever the suite runs), yesterday's so that nothing is in the future.
MERGE_NOW = hour_floor(NOW).replace(hour=19) - timedelta(days=1)


def _hourly_syncs(conn, accounts: list[str], days: int) -> None:
    """Hourly media syncs (the tick's, at hh:05; the 02:10 refresh a second sync of the 02:00 hour) of ``days``
    days before MERGE_NOW, with what the product writes, and the exceptions a merge must leave as they are: a failure,
    a partial sync, a missing hour, a success with skipped items (a list in details), a daily account sync."""
    first = hour_floor(MERGE_NOW) - timedelta(days=days)
    rows = []
    for h in range(days * 24):
        slot = first + timedelta(hours=h)
        for account in accounts:
            starts = [slot + timedelta(minutes=5)] + ([slot + timedelta(minutes=10)] if slot.hour == 2 else [])
            for i, start in enumerate(starts):
                rows.append({"r": f"run-{h}-{i}", "u": account, "t": "media", "k": slot.strftime("%Y-%m-%d-%H:%M"),
                             "s": start, "f": start + timedelta(minutes=1), "st": "success", "c": 2 + h % 3,
                             "w": 5 + h % 7, "e": None, "d": '{"media": 3, "snapshots": 2, "due": 2, "not_captured": 0}'})
    odd = {(accounts[0], 40): {"st": "failed", "e": "HTTP 500", "w": 0},
           (accounts[0], 41): {"st": "partial", "d": '{"media": 3, "snapshots": 1, "due": 2, "not_captured": 1}'},
           (accounts[1], 43): {"d": '{"media": 3, "skipped": [{"media_id": "m1", "reason": "no insights"}]}'},
           (accounts[1], 44): {"d": '{"media": 3, "skipped": [{"media_id": "m1", "reason": "no insights"},'
                                    ' {"media_id": "m2", "reason": "no insights"}], "dropped_metrics": ["views"]}'},
           (accounts[0], 20): {"d": '{"media": 3, "note": "a text: not merged"}'},
           (accounts[0], 30): {"st": "running", "f": None}}
    missing = {(accounts[1], 50), (accounts[1], 75)}
    # the odd values go to the hour's first sync only: the 02:00 hour's second one (the refresh) stays a success
    rows = [{**r, **(odd.get((r["u"], int(r["r"].split("-")[1])), {}) if r["r"].endswith("-0") else {})}
            for r in rows if (r["u"], int(r["r"].split("-")[1])) not in missing]
    rows += [{"r": f"daily-{d}", "u": a, "t": "account", "k": f"{d0 - timedelta(days=2)}...{d0}",
              "s": MERGE_NOW - timedelta(days=d, hours=2), "f": MERGE_NOW - timedelta(days=d, hours=2),
              "st": "success", "c": 3,
              "w": 3, "e": None, "d": "{}"}
             for d in range(1, days) for a in accounts for d0 in [(MERGE_NOW - timedelta(days=d + 1)).date()]]
    conn.execute(sa.text(
        "INSERT INTO instagram.sync_runs (dagster_run_id, ig_user_id, sync_type, partition_key, started_at, finished_at,"
        " status, api_calls, rows_written, throttle_wait_seconds, items_skipped, error, details)"
        " VALUES (:r, :u, :t, :k, :s, :f, :st, :c, :w, 0.5, 0, :e, CAST(:d AS jsonb))"), rows)


def test_old_hourly_media_successes_merge_per_day_and_the_readers_answer_the_same(engine):
    """Beyond 7 days an account's successful hourly media syncs of consecutive hours of a day become one row
    (``sync_runs_detail_days``). The shard check (``every_shard_captured``) of every hour, re-evaluated as when a
    failed shard's run is re-executed, names the same accounts and reasons; ``ig-analytics status``'s newest
    successes and failures, the checks' recent runs and each account-day's API calls and rows written are the
    same; the last 7 days stay row for row."""
    from ig_analytics.defs.shard_checks import missing_by_shard
    from ig_analytics.storage import sync_runs

    accounts, days = ["1001", "1002"], 12
    with engine.begin() as conn:
        for account in accounts:
            add_account(conn, account)
        _hourly_syncs(conn, accounts, days)
    hours = [hour_floor(MERGE_NOW) - timedelta(days=days, hours=-h) for h in range(days * 24)]
    cut = day_cutoff(MERGE_NOW, 7)
    totals = ("SELECT ig_user_id, sync_type, CAST(started_at - interval '5 minutes' AS date),"
              " sum(api_calls), sum(rows_written), sum(throttle_wait_seconds), sum(CAST(details ->> 'snapshots' AS int))"
              " FROM instagram.sync_runs GROUP BY 1, 2, 3"
              " ORDER BY 1, 2, 3")

    def reads() -> dict:
        with engine.connect() as conn:
            checks = {}
            for start in hours:
                outcomes = sync_runs.partition_outcomes(conn, "media", start.strftime("%Y-%m-%d-%H:%M"), accounts,
                                                        start)
                checks[start] = (missing_by_shard(accounts, outcomes, 2), sorted(o.status for o in outcomes.values()))
            return {"checks": checks, "status": sync_runs.last_successes(conn),
                    "failures": sync_runs.recent_failures(conn, MERGE_NOW - timedelta(days=30)),
                    "recent": sync_runs.account_runs(conn, "media", accounts, MERGE_NOW - timedelta(days=6)),
                    "account": sync_runs.account_runs(conn, "account", accounts),
                    "totals": conn.execute(sa.text(totals)).all()}

    with engine.connect() as conn:
        recent = conn.execute(sa.text("SELECT * FROM instagram.sync_runs WHERE started_at >= :c ORDER BY 1, 2, 3"),
                              {"c": cut}).all()
        old_hourly = conn.execute(sa.text("SELECT count(*) FROM instagram.sync_runs WHERE started_at < :c"
                                          " AND sync_type = 'media'"), {"c": cut}).scalar()
    before = reads()
    assert any(m for m, _ in before["checks"].values()) and any(not m for m, _ in before["checks"].values())
    counts = apply_retention(_NoRuns(), engine, RetentionConfig(), MERGE_NOW)
    assert reads() == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM instagram.sync_runs WHERE started_at >= :c ORDER BY 1, 2, 3"),
                            {"c": cut}).all() == recent
        merged = conn.execute(sa.text(
            "SELECT ig_user_id, partition_key, CAST(details ->> 'merged_syncs' AS int) FROM instagram.sync_runs"
            " WHERE started_at < :c AND sync_type = 'media' AND status = 'success' ORDER BY 1, 2"), {"c": cut}).all()
        kept_whole = conn.execute(sa.text(
            "SELECT ig_user_id, status FROM instagram.sync_runs WHERE started_at < :c AND sync_type = 'media'"
            " AND (status <> 'success' OR details ? 'note') ORDER BY 1, 2"), {"c": cut}).all()
        skipped = conn.execute(sa.text(
            "SELECT details -> 'skipped', details -> 'dropped_metrics' FROM instagram.sync_runs"
            " WHERE details ? 'skipped'")).all()
    # each account's old days: one row per run of consecutive successful hours (a failure, a partial sync, an
    # unfinished one, a missing hour or a text in details end a run), 25 syncs a whole day (the 02:10 refresh);
    # the items skipped in two of its hours, once each
    assert kept_whole == [("1001", "failed"), ("1001", "partial"), ("1001", "running"), ("1001", "success")]
    assert skipped == [([{"media_id": "m1", "reason": "no insights"}, {"media_id": "m2", "reason": "no insights"}],
                        ["views"])]
    assert len(merged) < 4 * (days - 7) + 12 and sum(n or 1 for *_, n in merged) + 3 == old_hourly
    assert ("1002", merged[-1][1], 25) in merged and all("..." in key for _, key, n in merged if n)
    assert counts.sync_runs_merged == sum(n or 0 for *_, n in merged) > 0


# A fault in one account's batch, raised by PostgreSQL itself: that account's merged rows are refused.
_REFUSE_MERGE = """
CREATE FUNCTION instagram.refuse_merge() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused: %', NEW.ig_user_id; END $$;
CREATE TRIGGER refuse_merge BEFORE INSERT ON instagram.sync_runs FOR EACH ROW
    WHEN (NEW.ig_user_id = '1003' AND NEW.details ? 'merged_syncs') EXECUTE FUNCTION instagram.refuse_merge();
"""


def test_the_hourly_merge_commits_each_batch_of_accounts_and_a_rerun_finishes(engine):
    """The first merge after an upgrade has ~23 days of every account: it merges ``batch_accounts`` accounts per
    transaction. In batches of one account the table ends as after one batch of all; a failure in the second batch
    of two (the third account's) leaves the first two accounts merged and the third's rows as they were, and the
    next run merges them: the same table as in one batch."""
    from ig_analytics.storage import sync_runs

    accounts, cut, everything = ["1001", "1002", "1003"], day_cutoff(MERGE_NOW, 7), (
        "SELECT * FROM instagram.sync_runs ORDER BY 1, 2, 3")

    def fresh() -> list:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM instagram.sync_runs"))
            _hourly_syncs(conn, accounts, 10)
            return conn.execute(sa.text(everything)).all()

    original = fresh()
    whole = sync_runs.merge_hourly_successes(engine, cut, batch_accounts=3)
    with engine.connect() as conn:
        merged = conn.execute(sa.text(everything)).all()
    assert whole[0] > 0 and len(merged) < len(original)
    fresh()
    assert sync_runs.merge_hourly_successes(engine, cut, batch_accounts=1) == whole
    with engine.connect() as conn:
        assert conn.execute(sa.text(everything)).all() == merged

    fresh()
    with engine.begin() as conn:
        conn.execute(sa.text(_REFUSE_MERGE))
    with pytest.raises(sa.exc.DBAPIError, match="refused"):
        sync_runs.merge_hourly_successes(engine, cut, batch_accounts=2)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse_merge ON instagram.sync_runs"))
        after_failure = conn.execute(sa.text(everything)).all()
    assert [r for r in after_failure if r.ig_user_id != "1003"] == [r for r in merged if r.ig_user_id != "1003"]
    assert [r for r in after_failure if r.ig_user_id == "1003"] == [r for r in original if r.ig_user_id == "1003"]
    third = sync_runs.merge_hourly_successes(engine, cut, batch_accounts=2)
    with engine.connect() as conn:
        assert conn.execute(sa.text(everything)).all() == merged
    assert 0 < third[0] < whole[0]


# A fault in one account's batch, raised by PostgreSQL itself: the curve of a post of account 1002 (B..) is refused
# after its snapshots were deleted in the same transaction.
_REFUSE_CURVE = """
CREATE FUNCTION instagram.refuse_curve() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused: %', NEW.media_id; END $$;
CREATE TRIGGER refuse_curve BEFORE INSERT ON instagram.media_curves FOR EACH ROW
    WHEN (NEW.media_id LIKE 'B%') EXECUTE FUNCTION instagram.refuse_curve();
"""
_SNAPSHOT_TABLES = ("media_insights_snapshots", "media_curves")


def _snapshot_tables(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT * FROM instagram.{t} ORDER BY 1, 2")).all() for t in _SNAPSHOT_TABLES}


def _of(tables: dict, letters: str) -> dict:
    return {t: [r for r in rows if r.media_id[0] in letters] for t, rows in tables.items()}


def test_the_snapshot_compaction_commits_each_batch_of_accounts_and_a_rerun_finishes(engine):
    """The first compaction after an upgrade (7 days, was 90) has months of every account's hours: it compacts the
    posts of ``batch_accounts`` accounts per transaction, a post's deleted rows and its curve in one. In batches of
    one account the tables end as after one batch of all; a failure in the second batch (account 1002's curve)
    leaves the first account compacted and the other two's rows as they were (its deleted snapshots back), and the
    next run compacts them: the same tables as in one batch."""
    from ig_analytics.analytics.trending_curves import compact_snapshots

    media, snaps = [], []
    for account, letter in (("1001", "A"), ("1002", "B"), ("1003", "C")):
        for i in range(1, 13):  # a post every 3.5 days for 6 weeks, captured as the policy does
            media_id, published = f"{letter}{i:02d}", NOW - timedelta(hours=84 * i + 7, minutes=17)
            media.append({"media_id": media_id, "ig_user_id": account, "published_at": published})
            for n, slot in enumerate(_captures(published, timedelta(days=400))):
                fetched = slot + timedelta(minutes=5, microseconds=(499_700, 500_300, 123_456, 0)[n % 4])
                snaps.append({"media_id": media_id, "ig_user_id": account, "captured_at": slot, "fetched_at": fetched,
                              **_values(media_id, (fetched - published) / timedelta(hours=1), 150 + 11 * i)})
    with engine.begin() as conn:
        for account in ("1001", "1002", "1003"):
            add_account(conn, account)
        add_media(conn, media)
        add_snapshots(conn, snaps)
        save_tables(conn, _SNAPSHOT_TABLES)
    original, cut = _snapshot_tables(engine), day_cutoff(NOW, HORIZON_DAYS)

    whole = compact_snapshots(engine, cut, NOW, batch_accounts=3)
    compacted = _snapshot_tables(engine)
    assert whole > 0 and {r.media_id[0] for r in compacted["media_curves"]} == {"A", "B", "C"}
    with engine.begin() as conn:
        restore_tables(conn, _SNAPSHOT_TABLES)
    assert compact_snapshots(engine, cut, NOW, batch_accounts=1) == whole
    assert _snapshot_tables(engine) == compacted

    with engine.begin() as conn:
        restore_tables(conn, _SNAPSHOT_TABLES)
        conn.execute(sa.text(_REFUSE_CURVE))
    with pytest.raises(sa.exc.DBAPIError, match="refused"):
        compact_snapshots(engine, cut, NOW, batch_accounts=1)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse_curve ON instagram.media_curves"))
    after_failure = _snapshot_tables(engine)
    assert _of(after_failure, "A") == _of(compacted, "A")
    assert _of(after_failure, "BC") == _of(original, "BC")
    rest = compact_snapshots(engine, cut, NOW, batch_accounts=1)
    assert _snapshot_tables(engine) == compacted and 0 < rest < whole
