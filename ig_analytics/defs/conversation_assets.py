"""Conversation and content assets (issue 25): hashtags of the captions and how they perform (no API call), the
comments of the account's posts (hourly, frugal: only posts whose ``comments_count`` moved), the conversation
metrics derived from them, and the posts of others that tag the account (daily).

The derived tables are returned as frames and written by the ``postgres_io`` IO manager; the formulas are plain
Python in ``analytics/hashtags.py`` and ``analytics/conversation.py`` (docs/analytics.md)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from ig_analytics.analytics import hashtags
from ig_analytics.defs.catalog import HOURLY, table_asset
from ig_analytics.defs.postgres_io import IO_MANAGER_KEY, Rows, write_metadata
from ig_analytics.defs.resources import AnalyticsDatabase

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _seconds(started: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(round(time.monotonic() - started, 3)))


def day_window(first: date, last: date) -> dg.TimeWindow:
    """Days first..last (inclusive) as a window of UTC midnights."""
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    return dg.TimeWindow(start, start + timedelta(days=(last - first).days + 1))


@dg.asset(
    deps=["media"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("media_hashtags", write_metadata("replace")),
    freshness_policy=HOURLY,
    description=(
        "The hashtags of each post's caption (any script, case-folded, without '#'), parsed from the stored "
        "captions: no API call. Rebuilt every hour, so an edited caption is reflected."
    ),
)
def media_hashtags(database: AnalyticsDatabase) -> dg.Output:
    started = time.monotonic()
    with database.engine().connect() as conn:
        posts = hashtags.read_posts(conn, EPOCH)
    rows = hashtags.hashtag_rows(posts)
    return dg.Output(rows, metadata={"posts": len(posts), "hashtags": int(rows["hashtag"].nunique()),
                                     "duration_seconds": _seconds(started)})


@dg.asset(
    ins={"tags": dg.AssetIn("media_hashtags", metadata={"columns": ["media_id", "hashtag", "ig_user_id"]})},
    deps=["media_engagement"],
    group_name="analytics",
    kinds={"postgres", "pandas"},
    io_manager_key=IO_MANAGER_KEY,
    **table_asset("hashtag_performance", write_metadata("replace", "period_end")),
    freshness_policy=HOURLY,
    description=(
        f"Which of the account's hashtags work: per account, trailing period ({' and '.join(map(str, hashtags.PERIOD_DAYS))} "
        f"days ending today) and hashtag used on at least {hashtags.MIN_POSTS} posts, the median engagement rate by "
        "reach and median reach of those posts and the lift against the account's median (1.0 = as usual)."
    ),
)
def hashtag_performance(database: AnalyticsDatabase, tags) -> dg.Output:
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    today = now.date()
    with database.engine().connect() as conn:
        posts = hashtags.read_posts(conn, now - timedelta(days=max(hashtags.PERIOD_DAYS) + 1))
    rows = hashtags.performance_rows(posts, tags, today, now)
    # today's periods are the slice: earlier days' rows stay as history
    return dg.Output(Rows(rows, day_window(today, today)), metadata={"rows": len(rows),
                                                                    "duration_seconds": _seconds(started)})


conversation_assets = [media_hashtags, hashtag_performance]
# what the hourly media job adds (defs/jobs.py)
CONVERSATION_HOURLY = dg.AssetSelection.assets("media_hashtags", "hashtag_performance")
