import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.analytics.engagement import engagement_frame
from benchmarks.direct_writes import refresh_account_engagement_daily, refresh_media_engagement
from ig_analytics_tests.analytics_data import (
    add_account,
    add_account_days,
    add_media,
    add_profile_snapshots,
    add_snapshots,
    ts,
)

NAN = float("nan")


def _one(**kw) -> pd.Series:
    return engagement_frame(pd.DataFrame([kw])).iloc[0]


def _null(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def test_total_interactions_wins_and_rates():
    r = _one(total_interactions=50, likes=40, comments=5, saved=3, shares=1, reach=1000, views=2500,
             impressions=None, followers_at_publish=20000)
    assert r["engagement"] == 50
    assert r["engagement_rate_reach"] == pytest.approx(5.0)
    assert r["engagement_rate_views"] == pytest.approx(2.0)
    assert r["views_basis"] == "views"
    assert r["engagement_rate_followers"] == pytest.approx(0.25)
    assert r["like_rate"] == pytest.approx(4.0)
    assert r["comment_rate"] == pytest.approx(0.5)
    assert r["save_rate"] == pytest.approx(0.3)
    assert r["share_rate"] == pytest.approx(0.1)


def test_parts_sum_when_no_total_interactions_null_parts_count_zero():
    r = _one(total_interactions=None, likes=10, comments=None, saved=2, shares=None, reach=200)
    assert r["engagement"] == 12
    assert r["engagement_rate_reach"] == pytest.approx(6.0)
    assert _null(r["comment_rate"]) and _null(r["share_rate"])  # a NULL part stays NULL as a rate


def test_all_null_gives_null_engagement_and_rates():
    r = _one(total_interactions=None, likes=None, comments=None, saved=None, shares=None, reach=100, views=100)
    assert _null(r["engagement"])
    for c in ("engagement_rate_reach", "engagement_rate_views", "engagement_rate_followers", "like_rate"):
        assert _null(r[c])


def test_zero_and_null_denominators():
    r = _one(total_interactions=5, reach=0, views=None, impressions=None, followers_at_publish=0)
    assert r["engagement"] == 5
    assert _null(r["engagement_rate_reach"])
    assert _null(r["engagement_rate_views"]) and r["views_basis"] is None
    assert _null(r["engagement_rate_followers"])


def test_impressions_fallback_on_versions_without_views():
    r = _one(total_interactions=30, reach=600, views=None, impressions=1200)
    assert r["views_basis"] == "impressions"
    assert r["engagement_rate_views"] == pytest.approx(2.5)
    # views = 0 is a measured value: no fallback, the rate is NULL
    r = _one(total_interactions=30, reach=600, views=0, impressions=1200)
    assert _null(r["engagement_rate_views"]) and r["views_basis"] == "views"


def test_vectorized_on_many_rows():
    n = 10000
    df = pd.DataFrame({"likes": np.arange(n), "reach": np.arange(n) * 10})
    out = engagement_frame(df)
    assert _null(out["engagement_rate_reach"].iloc[0])  # reach 0
    assert out["engagement_rate_reach"].iloc[1:].eq(10.0).all()


def test_performance_score_hand_computed():
    # 0.5 * 50/2500*100 + 0.3 * 3/2500*100 + 0.2 * 1000/2500*100 = 1.0 + 0.036 + 8.0
    r = _one(total_interactions=50, saved=3, reach=1000, views=2500)
    assert r["performance_score"] == pytest.approx(9.036)
    # impressions stand in where views are not reported; a story's missing `saved` counts as 0
    r = _one(total_interactions=20, reach=90, views=None, impressions=100)
    assert r["performance_score"] == pytest.approx(0.5 * 20 + 0.2 * 90)
    # capped at 100; NULL without a denominator
    assert _one(total_interactions=500, reach=100, views=100)["performance_score"] == 100.0
    assert _null(_one(total_interactions=5, reach=10, views=0)["performance_score"])
    assert _null(_one(total_interactions=5, reach=None, views=10)["performance_score"])


def _seed(conn):
    add_account(conn, "A", tz="America/New_York", followers_total=999)
    add_media(conn, [
        {"media_id": "m1", "ig_user_id": "A", "published_at": ts(2026, 1, 10, 12)},  # insights day Jan 10
        # 03:00 UTC on the 11th = 19:00 on the 10th in Pacific time: insights day Jan 10 (not the UTC date)
        {"media_id": "m2", "ig_user_id": "A", "published_at": ts(2026, 1, 11, 3)},
        {"media_id": "m3", "ig_user_id": "A", "published_at": ts(2026, 1, 12, 15)},  # insights day Jan 12
        {"media_id": "m4", "ig_user_id": "A", "published_at": ts(2026, 1, 13, 15)},  # no snapshots at all
        {"media_id": "st", "ig_user_id": "A", "published_at": ts(2026, 1, 10, 14), "media_product_type": "STORY"},
    ])
    # the follower history (end-of-day totals); the profile snapshots are not what followers_at_publish reads
    add_account_days(conn, "A", [{"date": date(2026, 1, 9), "followers_total": 1000},
                                 {"date": date(2026, 1, 10), "followers_total": 1500},
                                 {"date": date(2026, 1, 11), "followers_total": 2000}])
    add_profile_snapshots(conn, "A", [(ts(2026, 1, 10, 13), 1234), (ts(2026, 1, 11, 1), 4321)])
    add_snapshots(conn, [
        {"media_id": "m1", "ig_user_id": "A", "captured_at": ts(2026, 1, 10, 13), "reach": 10, "likes": 1},
        {"media_id": "m1", "ig_user_id": "A", "captured_at": ts(2026, 1, 11, 12), "reach": 400,
         "total_interactions": 40, "views": 800},
        {"media_id": "m2", "ig_user_id": "A", "captured_at": ts(2026, 1, 12, 3), "reach": 100, "likes": 5,
         "comments": 5, "impressions": 250, "api_version": "v21.0"},
        {"media_id": "m3", "ig_user_id": "A", "captured_at": ts(2026, 1, 13, 3), "reach": None,
         "total_interactions": 7},
        {"media_id": "st", "ig_user_id": "A", "captured_at": ts(2026, 1, 10, 15), "reach": 300,
         "total_interactions": 90, "views": 400},
    ])


def test_refresh_media_engagement_sql(engine):
    with engine.begin() as conn:
        _seed(conn)
        now = ts(2026, 1, 20)
        assert refresh_media_engagement(conn, now=now) == 4
        rows = {r.media_id: r for r in conn.execute(sa.text("SELECT * FROM instagram.media_engagement"))}
    m1, m2, m3 = rows["m1"], rows["m2"], rows["m3"]
    # m1: newest snapshot; followers at the end of the insights day before publication (Jan 9)
    assert m1.captured_at == ts(2026, 1, 11, 12)
    assert (m1.engagement, m1.reach, m1.followers_at_publish) == (40, 400, 1000)
    assert m1.engagement_rate_reach == pytest.approx(10.0)
    assert m1.engagement_rate_views == pytest.approx(5.0) and m1.views_basis == "views"
    assert m1.engagement_rate_followers == pytest.approx(4.0)
    assert m1.performance_score == pytest.approx(0.5 * 5.0 + 0.2 * 50.0)
    # m2: published on the UTC date Jan 11 but in insights day Jan 10 -> Jan 9's total; impressions fallback
    assert m2.followers_at_publish == 1000 and m2.engagement == 10
    assert m2.engagement_rate_followers == pytest.approx(1.0)
    assert m2.engagement_rate_views == pytest.approx(4.0) and m2.views_basis == "impressions"
    assert m2.like_rate == pytest.approx(5.0) and m2.save_rate is None
    # m3: reach unknown -> rates by reach NULL, engagement still known; Jan 11's total
    assert m3.engagement == 7 and m3.engagement_rate_reach is None
    assert m3.followers_at_publish == 2000
    assert rows["st"].performance_score == pytest.approx(0.5 * 22.5 + 0.2 * 75.0)


def test_followers_at_publish_is_null_without_a_follower_history(engine):
    # neither the account's current total nor a profile snapshot stands in: "at publish time" is unknown
    with engine.begin() as conn:
        add_account(conn, "B", followers_total=500)
        add_profile_snapshots(conn, "B", [(ts(2026, 1, 1, 12), 480)])
        add_media(conn, [{"media_id": "b1", "ig_user_id": "B", "published_at": ts(2026, 1, 1)}])
        add_snapshots(conn, [{"media_id": "b1", "ig_user_id": "B", "captured_at": ts(2026, 1, 2), "likes": 5}])
        refresh_media_engagement(conn, ig_user_ids=["B"])
        r = conn.execute(sa.text("SELECT engagement_rate_followers, followers_at_publish FROM instagram.media_engagement")).one()
    assert r == (None, None)


def test_a_new_follower_total_changes_rates_without_a_new_snapshot(engine):
    with engine.begin() as conn:
        _seed(conn)
        refresh_media_engagement(conn, now=ts(2026, 1, 20))
        conn.execute(sa.text("UPDATE instagram.account_insights_daily SET followers_total = 4000"
                             " WHERE date = '2026-01-09'"))
        refresh_media_engagement(conn, now=ts(2026, 1, 21))
        rows = dict(conn.execute(sa.text("SELECT media_id, engagement_rate_followers FROM instagram.media_engagement")).all())
        computed = dict(conn.execute(sa.text("SELECT media_id, computed_at FROM instagram.media_engagement")).all())
    assert rows["m1"] == pytest.approx(1.0) and rows["m2"] == pytest.approx(0.25)
    assert computed["m1"] == ts(2026, 1, 21) and computed["m3"] == ts(2026, 1, 20)  # unchanged rows not rewritten


def test_refresh_is_idempotent_and_filters(engine):
    with engine.begin() as conn:
        _seed(conn)
        assert refresh_media_engagement(conn, media_ids=["m2"], now=ts(2026, 1, 20)) == 1
        assert refresh_media_engagement(conn, now=ts(2026, 1, 20)) == 4
        first = conn.execute(sa.text("SELECT * FROM instagram.media_engagement ORDER BY media_id")).all()
        refresh_media_engagement(conn, now=ts(2026, 1, 20))
        second = conn.execute(sa.text("SELECT * FROM instagram.media_engagement ORDER BY media_id")).all()
        assert first == second
        # as of an earlier moment, m1's older snapshot is the newest one
        refresh_media_engagement(conn, media_ids=["m1"], now=ts(2026, 1, 11))
        assert conn.execute(sa.text("SELECT engagement FROM instagram.media_engagement WHERE media_id='m1'")).scalar() == 1


def test_account_engagement_daily_in_account_timezone(engine):
    with engine.begin() as conn:
        _seed(conn)
        refresh_media_engagement(conn, now=ts(2026, 1, 20))
        n = refresh_account_engagement_daily(conn, day_from=date(2026, 1, 1), day_to=date(2026, 1, 31),
                                             now=ts(2026, 1, 20))
        rows = conn.execute(sa.text(
            "SELECT date, posts, engagement, reach, engagement_rate_reach FROM instagram.account_engagement_daily "
            "ORDER BY date")).all()
        assert n == 3
        # m1 (12:00 UTC = 07:00 NY) and m2 (03:00 UTC on the 11th = 22:00 NY on the 10th) share Jan 10; the story
        # published that day is not a post
        assert rows[0][:4] == (date(2026, 1, 10), 2, 50, 500)
        assert rows[0][4] == pytest.approx(10.0)
        # m3: engagement without reach is not in the measured set: engagement, reach and rate all NULL
        assert rows[1][:4] == (date(2026, 1, 12), 1, None, None) and rows[1][4] is None
        # m4 has no snapshot: counted as a post, no engagement
        assert rows[2][:4] == (date(2026, 1, 13), 1, None, None)
        # replaying a sub-range leaves identical rows; days outside the range are untouched
        before = conn.execute(sa.text("SELECT * FROM instagram.account_engagement_daily ORDER BY date")).all()
        refresh_account_engagement_daily(conn, day_from=date(2026, 1, 10), day_to=date(2026, 1, 10),
                                         now=ts(2026, 1, 20))
        after = conn.execute(sa.text("SELECT * FROM instagram.account_engagement_daily ORDER BY date")).all()
        assert before == after


def test_sql_engagement_expression_matches_engagement_frame(engine):
    """Trending computes engagement in SQL (engagement_sql); it must agree with engagement_frame."""
    from ig_analytics.analytics._common import engagement_sql

    cases = [
        dict(total_interactions=9, likes=1, comments=1, saved=1, shares=1),
        dict(total_interactions=None, likes=None, comments=2, saved=None, shares=None),
        dict(total_interactions=None, likes=None, comments=None, saved=None, shares=None),
        dict(total_interactions=0, likes=5, comments=None, saved=None, shares=None),
        dict(total_interactions=None, likes=3, comments=4, saved=5, shares=6),
    ]
    with engine.begin() as conn:
        add_account(conn, "S")
        add_media(conn, [{"media_id": f"s{i}", "ig_user_id": "S", "published_at": ts(2026, 1, 1)} for i in range(len(cases))])
        add_snapshots(conn, [{"media_id": f"s{i}", "ig_user_id": "S", "captured_at": ts(2026, 1, 2), **c}
                             for i, c in enumerate(cases)])
        got = conn.execute(sa.text(
            f"SELECT {engagement_sql('s')} FROM instagram.media_insights_snapshots s ORDER BY media_id")).scalars().all()
    expected = engagement_frame(pd.DataFrame(cases))["engagement"].tolist()
    assert got == [None if _null(e) else int(e) for e in expected] == [9, 2, None, 0, 18]
