"""Account insights for a day range of one account, written in one transaction.

``follower_count`` is Meta's name for NEW followers per day. The running total comes from the profile
(``followers_count``), which the API only reports as of now: each sync stores a profile snapshot, and a day's
``followers_total`` is the first snapshot taken on the next UTC day (NULL when none was taken then; history is
never invented).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.storage.db import bulk_upsert

ACCOUNT_METRIC_COLUMNS = (
    "reach", "views", "impressions", "follower_count", "profile_views", "website_clicks", "accounts_engaged",
    "total_interactions", "likes", "comments", "saves", "shares", "replies", "reposts", "follows_and_unfollows",
    "profile_links_taps",
)
_KEY = ("ig_user_id", "date")
_COLUMNS = (*_KEY, *ACCOUNT_METRIC_COLUMNS, "api_version", "synced_at")


def write_profile_snapshot(conn, ig_user_id: str, profile, captured_at: datetime) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO instagram.account_profile_snapshots (ig_user_id, captured_at, followers_total,"
            " follows_total, media_count) VALUES (:id, :at, :followers, :follows, :media)"
            " ON CONFLICT (ig_user_id, captured_at) DO NOTHING"
        ),
        {"id": ig_user_id, "at": captured_at, "followers": profile.followers_count,
         "follows": profile.follows_count, "media": profile.media_count},
    )
    conn.execute(
        sa.text(
            "UPDATE instagram.accounts SET followers_total = COALESCE(:followers, followers_total),"
            " media_count = COALESCE(:media, media_count), username = COALESCE(username, :username),"
            " profile_synced_at = :at, updated_at = now() WHERE ig_user_id = :id"
        ),
        {"id": ig_user_id, "at": captured_at, "followers": profile.followers_count,
         "media": profile.media_count, "username": profile.username},
    )


def sync_account_insights(
    engine: Engine, api, ig_user_id: str, first_day: date, last_day: date, api_version: str, now: datetime
) -> int:
    """Fetch ``first_day..last_day`` (inclusive) and the profile; write both atomically. Returns rows written."""
    profile = api.profile()
    days = api.account_insights(first_day, last_day)
    rows = [
        (ig_user_id, day.date, *(day.values.get(metric) for metric in ACCOUNT_METRIC_COLUMNS), api_version, now)
        for day in days
        if first_day <= day.date <= last_day
    ]
    with engine.begin() as conn:
        write_profile_snapshot(conn, ig_user_id, profile, now)
        written = bulk_upsert(
            conn, "account_insights_daily", _COLUMNS, rows, _KEY,
            # Late data: a metric not reported this time must not erase the value measured before.
            keep_existing_when_null=ACCOUNT_METRIC_COLUMNS,
        )
        conn.execute(
            sa.text(
                """
                UPDATE instagram.account_insights_daily d
                SET followers_total = s.followers_total
                FROM (
                    SELECT DISTINCT ON ((captured_at AT TIME ZONE 'UTC')::date)
                           (captured_at AT TIME ZONE 'UTC')::date - 1 AS day, followers_total
                    FROM instagram.account_profile_snapshots
                    WHERE ig_user_id = :id AND followers_total IS NOT NULL
                      AND captured_at >= CAST(:first AS date) + 1 AND captured_at < CAST(:last AS date) + 2
                    ORDER BY (captured_at AT TIME ZONE 'UTC')::date, captured_at
                ) s
                WHERE d.ig_user_id = :id AND d.date = s.day
                """
            ),
            {"id": ig_user_id, "first": first_day, "last": last_day},
        )
    return written + 1
