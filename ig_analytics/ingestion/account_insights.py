"""Account insights for a day range of one account, written in one transaction.

``follower_count`` is Meta's name for NEW followers per day. The running total comes from the profile
(``followers_count``), which the API only reports as of now: each sync stores a profile snapshot, then rebuilds
the daily ``followers_total`` of the stored days from it and the daily follows / unfollows
(ig_analytics/analytics/followers.py: ``observed`` or ``derived``). Unfollows are measured with
``breakdown=follow_type`` for every day whose ``follows_and_unfollows`` came back (one call per day, in batches of
50: graph_api/follows.py), and inferred where that split is missing.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.analytics.followers import refresh_follower_history
from ig_analytics.accounts.repository import is_valid_username
from ig_analytics.graph_api.follows import fetch_follow_types, reported_days
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.storage.db import bulk_upsert

ACCOUNT_METRIC_COLUMNS = (
    "reach", "views", "impressions", "follower_count", "profile_views", "website_clicks", "accounts_engaged",
    "total_interactions", "likes", "comments", "saves", "shares", "replies", "reposts", "follows_and_unfollows",
    "profile_links_taps",
)
_KEY = ("ig_user_id", "date")
_COLUMNS = (*_KEY, *ACCOUNT_METRIC_COLUMNS, "measured_follows", "measured_unfollows", "api_version", "synced_at")


def write_profile_snapshot(conn, ig_user_id: str, profile, captured_at: datetime) -> None:
    bulk_upsert(  # the table's merge rule: a total missing this time keeps the one measured at the same instant
        conn, "account_profile_snapshots", ("ig_user_id", "captured_at", "followers_total", "follows_total", "media_count"),
        [(ig_user_id, captured_at, profile.followers_count, profile.follows_count, profile.media_count)],
    )
    conn.execute(
        sa.text(
            "UPDATE instagram.accounts SET followers_total = COALESCE(:followers, followers_total),"
            " media_count = COALESCE(:media, media_count), username = COALESCE(username, :username),"
            " profile_synced_at = :at, updated_at = now() WHERE ig_user_id = :id"
        ),
        {"id": ig_user_id, "at": captured_at, "followers": profile.followers_count,
         "media": profile.media_count,
         # Instagram's username rules; anything else from the API is not stored (it is printed by the CLI)
         "username": profile.username if profile.username and is_valid_username(profile.username) else None},
    )


def sync_account_insights(
    engine: Engine, api: InsightsApi, ig_user_id: str, first_day: date, last_day: date, api_version: str,
    now: datetime,
) -> int:
    """Fetch ``first_day..last_day`` (inclusive) and the profile; write both atomically. Returns rows written."""
    profile = api.profile()
    days = [d for d in api.account_insights(first_day, last_day) if first_day <= d.date <= last_day]
    split = fetch_follow_types(api, reported_days(days))  # not only days whose total came back (follows.py)
    rows = [
        (ig_user_id, day.date, *(day.values.get(metric) for metric in ACCOUNT_METRIC_COLUMNS),
         *((split[day.date].follows, split[day.date].unfollows) if day.date in split else (None, None)),
         api_version, now)
        for day in days
    ]
    with engine.begin() as conn:
        write_profile_snapshot(conn, ig_user_id, profile, now)
        # late data: the table's merge rule keeps a value measured before when this answer lacks it
        written = bulk_upsert(conn, "account_insights_daily", _COLUMNS, rows)
        # the follower history of every stored day: today's profile total re-anchors it (docs/analytics.md); the
        # posts' follower-based rates follow in the next media_engagement run (the follower_rates sensor)
        refresh_follower_history(conn, [ig_user_id])
    return written + 1
