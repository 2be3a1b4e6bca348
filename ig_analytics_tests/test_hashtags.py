"""Hashtags parsed from the stored captions and their performance: a hand-worked example, as pure frames and
through the real assets (postgres_io) on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.analytics.hashtags import hashtag_rows, parse_hashtags, performance_rows
from ig_analytics.defs import analytics_assets, conversation_assets
from ig_analytics.defs.resources import AnalyticsDatabase


@pytest.mark.parametrize("caption, tags", [
    ("New drop! #Sale #café #SALE", ["sale", "café"]),
    ("#Straße und #STRASSE", ["strasse"]),  # case folding, not lower(): ß folds to ss
    ("東京の夜 #東京 #夜景", ["東京", "夜景"]),
    ("#हिंदी #дизайн #مصر", ["हिंदी", "дизайн", "مصر"]),  # combining marks stay inside the tag
    ("#2024 is not a tag, #2024vibes is", ["2024vibes"]),
    ("mail@x.com#nottag and (#tag), #emoji🔥 #two#tags", ["tag", "emoji", "two", "tags"]),
    ("cafe\u0301 #cafe\u0301", ["café"]),  # NFC: the decomposed accent is the same tag
    (None, []),
])
def test_parse_hashtags_in_several_scripts(caption, tags):
    assert parse_hashtags(caption) == tags


TODAY = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def _posts() -> pd.DataFrame:
    """The hand-worked example: account A, six posts in the last 30 days and one 60 days ago; B has one post."""
    rows = [  # media_id, days ago, caption, rate, reach
        ("p1", 1, "#Sale #café", 2.0, 100), ("p2", 2, "#sale #東京", 4.0, 300), ("p3", 3, "#SALE", 6.0, 200),
        ("p4", 4, "#café #東京", 1.0, 50), ("p5", 5, "no tags", 3.0, 400), ("p6", 6, "#Café", 10.0, 1000),
        ("p7", 60, "#sale", 8.0, 500),
    ]
    frame = pd.DataFrame([{"media_id": m, "ig_user_id": "A", "published_at": TODAY - timedelta(days=d), "caption": c,
                           "engagement_rate_reach": r, "reach": n} for m, d, c, r, n in rows])
    other = {"media_id": "b1", "ig_user_id": "B", "published_at": TODAY, "caption": "#sale",
             "engagement_rate_reach": 50.0, "reach": 9}
    return pd.concat([frame, pd.DataFrame([other])], ignore_index=True)


# Worked by hand. 30 days: A's rates 1, 2, 3, 4, 6, 10 -> median 3.5; #sale on p1-p3: rates 2, 4, 6 -> 4,
# reaches 100, 300, 200 -> 200, lift 4 / 3.5; #café on p1, p4, p6: rates 2, 1, 10 -> 2, reaches 100, 50, 1000 ->
# 100, lift 2 / 3.5; #東京 has 2 posts: left out; B's #sale has 1 post: left out.
# 90 days adds p7: A's median of 1, 2, 3, 4, 6, 8, 10 = 4; #sale rates 2, 4, 6, 8 -> 5, reaches -> 250, lift 1.25.
EXPECTED = {
    (30, "sale"): (3, 4.0, 200.0, 4.0 / 3.5), (30, "café"): (3, 2.0, 100.0, 2.0 / 3.5),
    (90, "sale"): (4, 5.0, 250.0, 1.25), (90, "café"): (3, 2.0, 100.0, 0.5),
}


def _as_expected(rows: pd.DataFrame) -> dict:
    out = {}
    for r in rows.itertuples():
        days = (pd.Timestamp(r.period_end) - pd.Timestamp(r.period_start)).days + 1
        assert r.ig_user_id == "A"
        out[(days, r.hashtag)] = (int(r.posts), float(r.median_engagement_rate_reach), float(r.median_reach),
                                  pytest.approx(float(r.lift_vs_account_median)))
    return out


def test_hashtag_medians_equal_the_hand_worked_example():
    posts = _posts()
    rows = performance_rows(posts, hashtag_rows(posts), TODAY.date(), TODAY)
    assert _as_expected(rows) == EXPECTED


def _seed(engine, posts: pd.DataFrame) -> None:
    with engine.begin() as conn:
        for account in ("A", "B"):
            conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id) VALUES (:a)"), {"a": account})
        for p in posts.itertuples():
            values = {"m": p.media_id, "a": p.ig_user_id, "p": p.published_at, "c": p.caption,
                      "r": p.engagement_rate_reach, "n": p.reach}
            conn.execute(sa.text(
                "INSERT INTO instagram.media (media_id, ig_user_id, media_type, media_product_type, caption,"
                " published_at, first_seen_at, updated_at) VALUES (:m, :a, 'IMAGE', 'FEED', :c, :p, :p, :p)"), values)
            conn.execute(sa.text(
                "INSERT INTO instagram.media_insights_snapshots (media_id, captured_at, fetched_at, ig_user_id, reach,"
                " api_version) VALUES (:m, :p, :p, :a, :n, 'v25.0')"), values)
            conn.execute(sa.text(
                "INSERT INTO instagram.media_engagement (media_id, ig_user_id, captured_at, engagement_rate_reach,"
                " computed_at) VALUES (:m, :a, :p, :r, :p)"), values)


def test_assets_write_the_hand_worked_example_through_postgres_io(engine, ig_home):
    now = datetime.now(timezone.utc)
    posts = _posts()
    posts["published_at"] = posts["published_at"] + (now - timedelta(days=1) - TODAY)  # periods end yesterday
    _seed(engine, posts)
    result = dg.materialize([conversation_assets.media_hashtags, conversation_assets.hashtag_performance],
                            resources={"database": AnalyticsDatabase(),
                                       **analytics_assets.analytics_resources(AnalyticsDatabase())})
    assert result.success
    with engine.connect() as conn:
        tags = conn.execute(sa.text("SELECT media_id, hashtag FROM instagram.media_hashtags ORDER BY 1, 2")).all()
        stored = pd.read_sql("SELECT * FROM instagram.hashtag_performance", conn)
    assert ("p2", "東京") in tags and ("p1", "sale") in tags and len(tags) == 10
    assert _as_expected(stored) == EXPECTED
    again = dg.materialize([conversation_assets.media_hashtags, conversation_assets.hashtag_performance],
                           resources={"database": AnalyticsDatabase(),
                                      **analytics_assets.analytics_resources(AnalyticsDatabase())})
    assert again.success  # today's slice is replaced, not duplicated
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instagram.hashtag_performance")).scalar() == len(stored)
