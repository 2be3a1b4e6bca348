import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.analytics.engagement import (
    engagement_frame,
    refresh_account_engagement_daily,
    refresh_media_engagement,
)
from ig_analytics_tests.analytics_data import (
    add_account,
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


def _seed(conn):
    add_account(conn, "A", tz="America/New_York", followers_total=999)
    add_media(conn, [
        {"media_id": "m1", "ig_user_id": "A", "published_at": ts(2026, 1, 10, 12)},
        {"media_id": "m2", "ig_user_id": "A", "published_at": ts(2026, 1, 11, 3)},   # Jan 10 22:00 in New York
        {"media_id": "m3", "ig_user_id": "A", "published_at": ts(2026, 1, 12, 15)},  # after every profile snapshot
        {"media_id": "m4", "ig_user_id": "A", "published_at": ts(2026, 1, 13, 15)},  # no snapshots at all
    ])
    add_profile_snapshots(conn, "A", [(ts(2026, 1, 10, 13), 1000), (ts(2026, 1, 11, 1), 2000)])
    add_snapshots(conn, [
        {"media_id": "m1", "ig_user_id": "A", "captured_at": ts(2026, 1, 10, 13), "reach": 10, "likes": 1},
        {"media_id": "m1", "ig_user_id": "A", "captured_at": ts(2026, 1, 11, 12), "reach": 400,
         "total_interactions": 40, "views": 800},
        {"media_id": "m2", "ig_user_id": "A", "captured_at": ts(2026, 1, 12, 3), "reach": 100, "likes": 5,
         "comments": 5, "impressions": 250, "api_version": "v21.0"},
        {"media_id": "m3", "ig_user_id": "A", "captured_at": ts(2026, 1, 13, 3), "reach": None,
         "total_interactions": 7},
    ])


def test_refresh_media_engagement_sql(engine):
    with engine.begin() as conn:
        _seed(conn)
        now = ts(2026, 1, 20)
        assert refresh_media_engagement(conn, now=now) == 3
        rows = {r.media_id: r for r in conn.execute(sa.text("SELECT * FROM instagram.media_engagement"))}
    m1, m2, m3 = rows["m1"], rows["m2"], rows["m3"]
    # m1: newest snapshot; published before any profile snapshot -> earliest after it (1000)
    assert m1.captured_at == ts(2026, 1, 11, 12)
    assert (m1.engagement, m1.reach, m1.followers_at_publish) == (40, 400, 1000)
    assert m1.engagement_rate_reach == pytest.approx(10.0)
    assert m1.engagement_rate_views == pytest.approx(5.0) and m1.views_basis == "views"
    assert m1.engagement_rate_followers == pytest.approx(4.0)
    # m2: nearest snapshot at or before publish (2000); impressions fallback
    assert m2.followers_at_publish == 2000 and m2.engagement == 10
    assert m2.engagement_rate_followers == pytest.approx(0.5)
    assert m2.engagement_rate_views == pytest.approx(4.0) and m2.views_basis == "impressions"
    assert m2.like_rate == pytest.approx(5.0) and m2.save_rate is None
    # m3: reach unknown -> rates by reach NULL, engagement still known
    assert m3.engagement == 7 and m3.engagement_rate_reach is None
    assert m3.followers_at_publish == 2000


def test_followers_fall_back_to_account_total(engine):
    with engine.begin() as conn:
        add_account(conn, "B", followers_total=500)
        add_media(conn, [{"media_id": "b1", "ig_user_id": "B", "published_at": ts(2026, 1, 1)}])
        add_snapshots(conn, [{"media_id": "b1", "ig_user_id": "B", "captured_at": ts(2026, 1, 2), "likes": 5}])
        refresh_media_engagement(conn, ig_user_ids=["B"])
        r = conn.execute(sa.text("SELECT engagement_rate_followers, followers_at_publish FROM instagram.media_engagement")).one()
    assert r == (pytest.approx(1.0), 500)


def test_refresh_is_idempotent_and_filters(engine):
    with engine.begin() as conn:
        _seed(conn)
        assert refresh_media_engagement(conn, media_ids=["m2"], now=ts(2026, 1, 20)) == 1
        assert refresh_media_engagement(conn, now=ts(2026, 1, 20)) == 3
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
        # m1 (12:00 UTC = 07:00 NY) and m2 (03:00 UTC on the 11th = 22:00 NY on the 10th) share Jan 10
        assert rows[0][:4] == (date(2026, 1, 10), 2, 50, 500)
        assert rows[0][4] == pytest.approx(10.0)
        # m3: engagement without reach -> no rate (not 0, not infinity)
        assert rows[1][:4] == (date(2026, 1, 12), 1, 7, None) and rows[1][4] is None
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
