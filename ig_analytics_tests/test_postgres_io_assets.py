"""Which assets the PostgreSQL IO manager stores (a test over the definitions), and each of them materializing
with an in-memory IO manager and no database: inputs handed over as frames by a stub of AnalyticsInputs."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pandas as pd
import pytest

from ig_analytics.defs import analytics_assets
from ig_analytics.defs.analytics_assets import AnalyticsInputs
from ig_analytics.defs.postgres_io import IO_MANAGER_KEY, Rows

IO_MANAGED = {"media_engagement", "account_engagement_daily", "best_posting_times", "competitor_benchmarks",
              "media_hashtags", "hashtag_performance", "conversation_daily", "conversation_posts"}
# Table-shaped assets that write their tables themselves, and why (docs/architecture.md, "IO manager").
WRITE_THEMSELVES = {
    "account_insights_daily": "ingestion: one account's rows committed as soon as fetched (retry skips, kill -9)",
    "media": "ingestion, same multi-asset step as media_insights_snapshots",
    "media_insights_snapshots": "ingestion: per-account transactions",
    "audience_demographics": "ingestion: three tables per account, a picture never erased by a missing one",
    "tagged_media": "ingestion: per-account transactions, first_seen_at kept",
    "media_comments": "ingestion: per-account transactions, frugal reads against the stored comments",
    "trending_posts": "set-based over the 90-day history, chunked by 200 accounts; also trending_evaluations",
    "performance_reports": "JSON rows plus HTML files and webhook notifications per account",
    "weekly_performance_reports": "same as performance_reports",
    "competitor_snapshots": "ingestion: four tables per account (profiles, posts, snapshots, each competitor's outcome)",
}


def test_every_table_shaped_asset_is_io_managed_or_listed_with_its_reason():
    from ig_analytics.definitions import defs

    graph = defs.get_repository_def().asset_graph
    table_assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable and "dagster/table_name" in node.metadata:
            assets_def = node.assets_def
            table_assets[key.to_user_string()] = assets_def.get_io_manager_key_for_asset_key(key)
    managed = {name for name, io in table_assets.items() if io == IO_MANAGER_KEY}
    assert managed == IO_MANAGED
    assert set(table_assets) - managed == set(WRITE_THEMSELVES)
    assert IO_MANAGER_KEY in defs.resources


class FrameInputs(AnalyticsInputs):
    """The inputs as frames: no database."""

    def latest_snapshots(self, start: datetime, end: datetime, accounts=None) -> pd.DataFrame:
        return LATEST[(LATEST["captured_at"] >= start) & (LATEST["captured_at"] < end)]

    def posts_by_day(self, day_from: date, day_to: date, accounts=None) -> pd.DataFrame:
        return POSTS_BY_DAY[(POSTS_BY_DAY["date"] >= day_from) & (POSTS_BY_DAY["date"] <= day_to)]

    def rated_posts(self, now: datetime, accounts=None) -> pd.DataFrame:
        return RATED


# A fixed hour (a partition of the fallback starts, 2026-11-01 on): the tests never read the wall clock.
HOUR = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
LATEST = pd.DataFrame({
    "media_id": ["m1", "m2", "m3"], "ig_user_id": ["A", "A", "B"],
    "published_at": pd.to_datetime([HOUR - timedelta(days=1)] * 3, utc=True),
    "captured_at": pd.to_datetime([HOUR, HOUR, HOUR + timedelta(hours=1)], utc=True),
    "reach": [200, 50, 10], "views": [400, None, 20], "impressions": [None, 100, None],
    "likes": [10, 1, 1], "comments": [2, 1, 0], "saved": [4, None, 0], "shares": [4, None, 0],
    "total_interactions": [None, None, 1], "followers_at_publish": [1000, None, 30],
})
TODAY = HOUR.date()
POSTS_BY_DAY = pd.DataFrame({
    "ig_user_id": ["A", "A", "A", "B"], "date": [TODAY, TODAY, TODAY - timedelta(days=2), TODAY],
    "engagement": [10, 30, None, 5], "reach": [100, 100, 50, 0],
})
RATED = pd.DataFrame({"ig_user_id": ["A", "A", "A", "B"], "weekday": [1, 1, 3, 7], "hour": [9, 9, 12, 20],
                      "rate": [10.0, 6.0, 2.0, 4.0]})


def _materialize(asset, **kw):
    memory = dg.InMemoryIOManager()
    result = dg.materialize([asset], resources={IO_MANAGER_KEY: memory, "analytics_inputs": FrameInputs()}, **kw)
    assert result.success
    (value,) = memory.values.values()
    return value.frame if isinstance(value, Rows) else value, value


def test_media_engagement_materializes_without_a_database():
    rows, _ = _materialize(analytics_assets.media_engagement, partition_key=HOUR.strftime("%Y-%m-%d-%H:00"))
    assert rows["media_id"].tolist() == ["m1", "m2"]  # m3's newest snapshot belongs to the next hour
    m1, m2 = rows.iloc[0], rows.iloc[1]
    assert m1["engagement"] == 20 and m1["engagement_rate_reach"] == pytest.approx(20 / 200 * 100)
    assert m1["engagement_rate_views"] == pytest.approx(5.0) and m1["views_basis"] == "views"
    assert m1["engagement_rate_followers"] == pytest.approx(2.0)
    assert m1["performance_score"] == pytest.approx(0.5 * 5.0 + 0.3 * 1.0 + 0.2 * 50.0)
    assert m2["engagement"] == 2 and m2["views_basis"] == "impressions"
    assert m2["engagement_rate_views"] == pytest.approx(2.0) and pd.isna(m2["engagement_rate_followers"])


def test_account_engagement_daily_materializes_without_a_database():
    rows, value = _materialize(analytics_assets.account_engagement_daily)
    got = {(r.ig_user_id, r.date): (r.posts, r.engagement, r.reach, r.engagement_rate_reach)
           for r in rows.itertuples()}
    old = TODAY - timedelta(days=2)
    assert got[("A", TODAY)][:3] == (2, 40, 200) and got[("A", TODAY)][3] == pytest.approx(20.0)
    assert got[("A", old)][0] == 1 and all(pd.isna(v) for v in got[("A", old)][1:])  # no engagement known
    assert got[("B", TODAY)][0] == 1 and pd.isna(got[("B", TODAY)][1])  # reach 0: not in the measured set
    # the slice the IO manager replaces: the recomputed days
    assert value.window.end - value.window.start == timedelta(days=analytics_assets.ENGAGEMENT_WINDOW_DAYS + 1)


def test_best_posting_times_materializes_without_a_database():
    rows, _ = _materialize(analytics_assets.best_posting_times)
    got = {(r.ig_user_id, r.weekday, r.hour): r for r in rows.itertuples()}
    mean = (10 + 6 + 2) / 3
    a = got[("A", 1, 9)]
    assert (a.posts, a.reliable) == (2, True) and a.avg_engagement_rate_reach == pytest.approx(8.0)
    assert a.shrunk_engagement_rate_reach == pytest.approx((2 * 8.0 + 3 * mean) / 5)
    assert not got[("A", 3, 12)].reliable  # one post: below min_posts
    assert got[("B", 7, 20)].account_avg_engagement_rate_reach == pytest.approx(4.0)
    assert len(rows) == 3
