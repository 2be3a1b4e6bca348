"""Per-post engagement and rates (instagram.media_engagement) and their daily roll-up per account
(instagram.account_engagement_daily). Formulas: docs/analytics.md, section "Engagement".

The formulas live in :func:`engagement_frame`, a pure function on a DataFrame; the refresh functions only
read its inputs with one set-based query and write its output with COPY.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import ACCOUNT_TZ_CTE, as_utc, frame_rows, id_list, read_frame
from ig_analytics.analytics.followers import DAY_END_HOUR_UTC
from ig_analytics.storage import db

PARTS = ("likes", "comments", "saved", "shares")
RATE_COLUMNS = (
    "performance_score",
    "engagement_rate_reach",
    "engagement_rate_views",
    "engagement_rate_followers",
    "like_rate",
    "comment_rate",
    "save_rate",
    "share_rate",
)


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as float64 with NaN for NULL; a missing column is all NaN."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator * 100; NaN when either is NULL or the denominator is 0."""
    valid = numerator.notna() & denominator.notna() & (denominator != 0)
    out = pd.Series(np.nan, index=numerator.index, dtype="float64")
    out[valid] = numerator[valid] / denominator[valid] * 100.0
    return out


def engagement_values(frame: pd.DataFrame) -> pd.Series:
    """engagement = total_interactions when reported, else likes + comments + saved + shares, where NULL parts
    count as 0 only when at least one part is known (all NULL -> NULL). Float64 with NaN for NULL."""
    parts = pd.concat([_num(frame, p) for p in PARTS], axis=1)
    summed = parts.sum(axis=1, min_count=1)  # NaN only when every part is NaN
    return _num(frame, "total_interactions").fillna(summed)


def engagement_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The product's engagement formulas, vectorized.

    Input columns (missing ones count as NULL): total_interactions, likes, comments, saved, shares, reach,
    views, impressions, followers_at_publish. Returns a copy with ``engagement`` (nullable Int64),
    ``views_basis`` ('views' | 'impressions' | None) and the rates of :data:`RATE_COLUMNS` (float, NaN = NULL):

    - engagement_rate_reach = engagement / reach * 100
    - engagement_rate_views = engagement / views * 100, or / impressions when views is NULL
    - engagement_rate_followers = engagement / followers_at_publish * 100
    - like/comment/save/share_rate = part / reach * 100
    - performance_score: see :func:`performance_score`
    Every rate is NULL when its numerator or denominator is NULL, or the denominator is 0.
    """
    out = frame.copy()
    engagement = engagement_values(frame)
    reach = _num(frame, "reach")
    views = _num(frame, "views")
    impressions = _num(frame, "impressions")
    views_denominator = views.where(views.notna(), impressions)

    out["engagement"] = engagement.round().astype("Int64")
    out["views_basis"] = np.where(views.notna(), "views", np.where(impressions.notna(), "impressions", None))
    out["engagement_rate_reach"] = _rate(engagement, reach)
    out["engagement_rate_views"] = _rate(engagement, views_denominator)
    out["engagement_rate_followers"] = _rate(engagement, _num(frame, "followers_at_publish"))
    for part, name in zip(PARTS, ("like_rate", "comment_rate", "save_rate", "share_rate")):
        out[name] = _rate(_num(frame, part), reach)
    out["performance_score"] = performance_score(engagement, _num(frame, "saved"), reach, views_denominator)
    return out


def performance_score(engagement: pd.Series, saved: pd.Series, reach: pd.Series, views: pd.Series) -> pd.Series:
    """The story's post score: min(100, 0.5 * engagement / views * 100 + 0.3 * saved / views * 100
    + 0.2 * reach / views * 100), views standing in for the retired impressions. NaN when engagement, reach or
    views is NULL or views is 0; an unreported ``saved`` (stories have none) counts as 0."""
    score = 0.5 * _rate(engagement, views) + 0.3 * _rate(saved.fillna(0.0), views) + 0.2 * _rate(reach, views)
    return score.clip(upper=100.0)


# The newest snapshot of each post (the same row media_insights_latest returns; a LATERAL LIMIT 1 uses the
# primary key index per post instead of sorting every snapshot), and followers_at_publish: followers_total at the
# end of the insights day before the one containing published_at (days end at 07:00 UTC, docs/analytics.md).
_LATEST_SQL = """
SELECT m.media_id, m.ig_user_id, m.published_at, s.captured_at,
       s.reach, s.views, s.impressions, s.likes, s.comments, s.saved, s.shares, s.total_interactions,
       f.followers_total AS followers_at_publish
FROM instagram.media m
JOIN LATERAL (
    SELECT * FROM instagram.media_insights_snapshots s
    WHERE s.media_id = m.media_id {snapshot_filter}
    ORDER BY s.captured_at DESC LIMIT 1
) s ON true
LEFT JOIN instagram.account_insights_daily f
       ON f.ig_user_id = m.ig_user_id
      AND f.date = (((m.published_at AT TIME ZONE 'UTC') - make_interval(hours => %(day_end_hour)s))::date - 1)
WHERE true {media_filter}
"""

MEDIA_ENGAGEMENT_COLUMNS = (
    "media_id",
    "ig_user_id",
    "captured_at",
    "published_at",
    "engagement",
    *RATE_COLUMNS,
    "reach",
    "views",
    "impressions",
    "views_basis",
    "followers_at_publish",
    "computed_at",
)


def refresh_media_engagement(
    conn: Connection,
    *,
    ig_user_ids: Iterable[str] | None = None,
    media_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Upsert instagram.media_engagement for every post (or the given accounts / posts) that has at least one
    snapshot, from its newest snapshot and the follower history. With ``now``, the newest snapshot captured at or
    before ``now`` is used and ``computed_at = now``. A row whose values did not change is left as it is (its
    computed_at too). Returns rows offered."""
    computed_at = as_utc(now)
    params: dict = {"day_end_hour": DAY_END_HOUR_UTC}
    media_filter = ""
    users, medias = id_list(ig_user_ids), id_list(media_ids)
    if users is not None:
        media_filter += " AND m.ig_user_id = ANY(%(users)s)"
        params["users"] = users
    if medias is not None:
        media_filter += " AND m.media_id = ANY(%(medias)s)"
        params["medias"] = medias
    snapshot_filter = ""
    if now is not None:
        snapshot_filter = "AND s.captured_at <= %(now)s"
        params["now"] = computed_at
    frame = read_frame(
        conn,
        _LATEST_SQL.format(snapshot_filter=snapshot_filter, media_filter=media_filter),
        params,
        text_columns=("media_id", "ig_user_id"),
        date_columns=("published_at", "captured_at"),
    )
    if frame.empty:
        return 0
    out = engagement_frame(frame)
    out["computed_at"] = computed_at
    for column in ("reach", "views", "impressions", "followers_at_publish"):
        out[column] = pd.to_numeric(out[column]).astype("Int64")
    # every post is recomputed (a follower total or a snapshot may have changed); unchanged rows are not rewritten
    return db.bulk_upsert(
        conn, "media_engagement", MEDIA_ENGAGEMENT_COLUMNS, frame_rows(out, MEDIA_ENGAGEMENT_COLUMNS), ["media_id"],
        only_if_changed=[c for c in MEDIA_ENGAGEMENT_COLUMNS if c not in ("media_id", "computed_at")],
    )


_DAILY_SQL = f"""
WITH {ACCOUNT_TZ_CTE},
posts AS (
    SELECT m.ig_user_id, (m.published_at AT TIME ZONE t.tz)::date AS day, e.engagement, e.reach,
           e.engagement IS NOT NULL AND e.reach > 0 AS measured
    FROM instagram.media m
    JOIN account_tz t ON t.ig_user_id = m.ig_user_id
    LEFT JOIN instagram.media_engagement e ON e.media_id = m.media_id
    WHERE m.published_at >= (CAST(:day_from AS date) - 1)::timestamp AT TIME ZONE 'UTC'
      AND m.published_at < (CAST(:day_to AS date) + 2)::timestamp AT TIME ZONE 'UTC'
      AND m.media_product_type IS DISTINCT FROM 'STORY'
      {{user_filter}}
)
SELECT ig_user_id, day AS date, count(*) AS posts,
       sum(engagement) FILTER (WHERE measured) AS engagement,
       sum(reach) FILTER (WHERE measured) AS reach,
       sum(engagement) FILTER (WHERE measured) * 100.0
         / NULLIF(sum(reach) FILTER (WHERE measured), 0) AS engagement_rate_reach,
       CAST(:computed_at AS timestamptz) AS computed_at
FROM posts
WHERE day BETWEEN :day_from AND :day_to
GROUP BY ig_user_id, day
"""

DAILY_COLUMNS = ("ig_user_id", "date", "posts", "engagement", "reach", "engagement_rate_reach", "computed_at")


def refresh_account_engagement_daily(
    conn: Connection,
    *,
    day_from: date,
    day_to: date,
    ig_user_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Replace instagram.account_engagement_daily for ``day_from..day_to`` (inclusive; days of publication in
    each account's time zone) from media_engagement: ``posts`` published that day (stories excluded), and over
    the same set, the posts among them whose engagement and reach are known (reach > 0): sum(engagement),
    sum(reach) and engagement_rate_reach = sum(engagement) / sum(reach) * 100. A day without posts has no row.
    Run :func:`refresh_media_engagement` first."""
    if day_to < day_from:
        raise ValueError(f"day_to {day_to} is before day_from {day_from}")
    users = id_list(ig_user_ids)
    params = {"day_from": day_from, "day_to": day_to, "computed_at": as_utc(now)}
    user_filter, where = "", "date BETWEEN :day_from AND :day_to"
    if users is not None:
        user_filter = "AND m.ig_user_id = ANY(:users)"
        where += " AND ig_user_id = ANY(:users)"
        params["users"] = users
    # INSERT ... SELECT inside the database: nothing to move through Python.
    conn.execute(sa.text(f"DELETE FROM instagram.account_engagement_daily WHERE {where}"), params)
    result = conn.execute(
        sa.text(
            f"INSERT INTO instagram.account_engagement_daily ({', '.join(DAILY_COLUMNS)}) "
            + _DAILY_SQL.format(user_filter=user_filter)
        ),
        params,
    )
    return result.rowcount
