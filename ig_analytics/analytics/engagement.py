"""Per-post engagement and rates (instagram.media_engagement) and their daily roll-up per account
(instagram.account_engagement_daily). Formulas: docs/analytics.md, section "Engagement".

The formulas are pure functions on DataFrames (:func:`engagement_frame`, :func:`media_engagement_rows`,
:func:`daily_engagement_rows`); the ``read_*`` functions fetch their inputs with one set-based query each. The
Dagster assets return the rows for the PostgreSQL IO manager to write, the one writer of both tables
(benchmarks/direct_writes.py writes the same rows without Dagster, for the benchmarks and the tests).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import ACCOUNT_TZ_CTE, as_utc, id_list
from ig_analytics.constants import META_DAY_TIMEZONE
from ig_analytics.storage.frames import read_frame

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
# primary key index per post instead of sorting every snapshot), a metric the post refused lately
# (media.rejected_metrics: NULL in the captures since) taken from the newest snapshot that measured it ("a missing
# value never overwrites a measured one": a refusal never blanks a rate; metrics never served, like impressions on
# v22+, cost no look-up), and followers_at_publish: followers_total at the end of the insights day before the one
# containing published_at (Meta's days are Pacific dates, docs/analytics.md). API and column names agree for these metrics.
_INPUT_METRICS = ("reach", "views", "impressions", "likes", "comments", "saved", "shares", "total_interactions")
_MEASURED = """CASE WHEN s.{m} IS NULL AND '{m}' = ANY(m.rejected_metrics) THEN (
    SELECT o.{m} FROM instagram.media_insights_snapshots o WHERE o.media_id = m.media_id AND o.{m} IS NOT NULL
    {{older_filter}} ORDER BY o.captured_at DESC LIMIT 1) ELSE s.{m} END AS {m}"""
_LATEST_SQL = """
SELECT m.media_id, m.ig_user_id, m.published_at, s.captured_at,
       """ + ",\n       ".join(_MEASURED.format(m=metric) for metric in _INPUT_METRICS) + """,
       f.followers_total AS followers_at_publish
FROM instagram.media m
JOIN LATERAL (
    SELECT * FROM instagram.media_insights_snapshots s
    WHERE s.media_id = m.media_id {snapshot_filter}
    ORDER BY s.captured_at DESC LIMIT 1
) s ON true
LEFT JOIN instagram.account_insights_daily f
       ON f.ig_user_id = m.ig_user_id
      AND f.date = ((m.published_at AT TIME ZONE %(meta_day_zone)s)::date - 1)
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


# computed_at records when a row's values last changed: a rewrite with the same values keeps it
MEDIA_ENGAGEMENT_CHANGES = tuple(c for c in MEDIA_ENGAGEMENT_COLUMNS if c not in ("media_id", "computed_at"))


def read_latest_snapshots(
    conn: Connection,
    *,
    ig_user_ids: Iterable[str] | None = None,
    media_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The inputs of :func:`media_engagement_rows`: per post with at least one snapshot (of the given accounts /
    posts), its newest snapshot (captured at or before ``now`` when given), each metric it lacks from the newest
    snapshot that measured it, and followers_at_publish."""
    params: dict = {"meta_day_zone": META_DAY_TIMEZONE}
    media_filter = ""
    users, medias = id_list(ig_user_ids), id_list(media_ids)
    if users is not None:
        media_filter += " AND m.ig_user_id = ANY(%(users)s)"
        params["users"] = users
    if medias is not None:
        media_filter += " AND m.media_id = ANY(%(medias)s)"
        params["medias"] = medias
    snapshot_filter = older_filter = ""
    if now is not None:
        snapshot_filter, older_filter = "AND s.captured_at <= %(now)s", "AND o.captured_at <= %(now)s"
        params["now"] = as_utc(now)
    return read_frame(
        conn,
        _LATEST_SQL.format(snapshot_filter=snapshot_filter, media_filter=media_filter, older_filter=older_filter),
        params,
        text_columns=("media_id", "ig_user_id"),
        date_columns=("published_at", "captured_at"),
    )


# Posts whose stored followers_at_publish is no longer the follower history's total for that day: the account's
# insights sync or a day-end anchor rebuilt the history after the row was computed. Stateless: whichever job ran
# first, the next media_engagement run finds exactly these (NULL and NULL are equal: nothing to restate).
_FOLLOWERS_CHANGED_SQL = """
SELECT e.media_id
FROM instagram.media_engagement e
JOIN instagram.media m ON m.media_id = e.media_id
LEFT JOIN instagram.account_insights_daily f
       ON f.ig_user_id = m.ig_user_id
      AND f.date = ((m.published_at AT TIME ZONE %(meta_day_zone)s)::date - 1)
WHERE e.followers_at_publish IS DISTINCT FROM f.followers_total {user_filter}
"""


def read_followers_changed(conn: Connection, ig_user_ids: Iterable[str] | None = None) -> list[str]:
    """The posts (of the given accounts) whose media_engagement row holds a follower total the follower history
    has since changed: their follower-based rate is restated from :func:`read_latest_snapshots`."""
    params: dict = {"meta_day_zone": META_DAY_TIMEZONE}
    users = id_list(ig_user_ids)
    user_filter = ""
    if users is not None:
        user_filter = "AND e.ig_user_id = ANY(%(users)s)"
        params["users"] = users
    frame = read_frame(conn, _FOLLOWERS_CHANGED_SQL.format(user_filter=user_filter), params, text_columns=("media_id",))
    return frame["media_id"].tolist()


def media_engagement_rows(latest: pd.DataFrame, computed_at: datetime) -> pd.DataFrame:
    """instagram.media_engagement rows (:data:`MEDIA_ENGAGEMENT_COLUMNS`) from :func:`read_latest_snapshots`'
    frame: the formulas of :func:`engagement_frame`, counts as nullable integers. Pure."""
    out = engagement_frame(latest)
    out["computed_at"] = pd.Timestamp(as_utc(computed_at))
    for column in ("reach", "views", "impressions", "followers_at_publish"):
        out[column] = pd.to_numeric(out[column]).astype("Int64")
    return out[list(MEDIA_ENGAGEMENT_COLUMNS)]




# One row per post (stories excluded) published on day_from..day_to in its account's time zone: the day of
# publication is computed in the database, whose time zone rules the account's name was checked against.
_DAILY_POSTS_SQL = f"""
WITH {ACCOUNT_TZ_CTE},
posts AS (
    SELECT m.ig_user_id, (m.published_at AT TIME ZONE t.tz)::date AS day, e.engagement, e.reach
    FROM instagram.media m
    JOIN account_tz t ON t.ig_user_id = m.ig_user_id
    LEFT JOIN instagram.media_engagement e ON e.media_id = m.media_id
    WHERE m.published_at >= (CAST(%(day_from)s AS date) - 1)::timestamp AT TIME ZONE 'UTC'
      AND m.published_at < (CAST(%(day_to)s AS date) + 2)::timestamp AT TIME ZONE 'UTC'
      AND m.media_product_type IS DISTINCT FROM 'STORY'
      {{user_filter}}
)
SELECT ig_user_id, day AS date, engagement, reach FROM posts WHERE day BETWEEN %(day_from)s AND %(day_to)s
"""

DAILY_COLUMNS = ("ig_user_id", "date", "posts", "engagement", "reach", "engagement_rate_reach", "computed_at")


def read_posts_by_day(
    conn: Connection, *, day_from: date, day_to: date, ig_user_ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """The inputs of :func:`daily_engagement_rows`: ig_user_id, date (of publication, account time zone),
    engagement, reach of every post (stories excluded) published on ``day_from..day_to``."""
    if day_to < day_from:
        raise ValueError(f"day_to {day_to} is before day_from {day_from}")
    params: dict = {"day_from": day_from, "day_to": day_to}
    user_filter = ""
    users = id_list(ig_user_ids)
    if users is not None:
        user_filter = "AND m.ig_user_id = ANY(%(users)s)"
        params["users"] = users
    frame = read_frame(conn, _DAILY_POSTS_SQL.format(user_filter=user_filter), params, text_columns=("ig_user_id",))
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


def daily_engagement_rows(posts: pd.DataFrame, computed_at: datetime) -> pd.DataFrame:
    """instagram.account_engagement_daily rows from :func:`read_posts_by_day`'s frame. Per account and day:
    ``posts``; over the posts whose engagement and reach are known (reach > 0): sum(engagement), sum(reach) and
    engagement_rate_reach = sum(engagement) * 100 / sum(reach) (NULL without such a post). Pure."""
    if posts.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DAILY_COLUMNS})
    engagement, reach = _num(posts, "engagement"), _num(posts, "reach")
    measured = engagement.notna() & (reach > 0)
    frame = pd.DataFrame({"ig_user_id": posts["ig_user_id"], "date": posts["date"],
                          "engagement": engagement.where(measured), "reach": reach.where(measured)})
    grouped = frame.groupby(["ig_user_id", "date"], sort=True)
    out = pd.DataFrame({
        "posts": grouped.size(),
        "engagement": grouped["engagement"].sum(min_count=1),
        "reach": grouped["reach"].sum(min_count=1),
    }).reset_index()
    out["engagement_rate_reach"] = _rate(out["engagement"], out["reach"])
    for column in ("posts", "engagement", "reach"):
        out[column] = out[column].round().astype("Int64")
    out["computed_at"] = pd.Timestamp(as_utc(computed_at))
    return out[list(DAILY_COLUMNS)]

