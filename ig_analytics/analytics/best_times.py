"""Best posting times per account: ISO weekday x hour of publication, in the account's own time zone
(instagram.best_posting_times). Formulas: docs/analytics.md, section "Best posting times".

The formulas are :func:`best_times_rows`, a pure function on the frame :func:`read_rated_posts` returns (the
weekday and hour of publication are computed in the database, in each account's time zone)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable

import pandas as pd
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import ACCOUNT_TZ_CTE, as_utc, id_list
from ig_analytics.storage.frames import read_frame


@dataclass(frozen=True)
class BestTimesParams:
    lookback_days: int = 90  # posts published in the last N days
    prior_posts: float = 3.0  # k: weight, in posts, of the account mean in the shrunk rate
    min_posts: int = 2  # a slot with fewer posts is written with reliable = false
    min_age_hours: float = 24.0  # younger posts are still gathering reach: left out

    def as_dict(self) -> dict:
        return asdict(self)


# One row per rated post (stories excluded) of the window, with its weekday and hour of publication in the
# account's time zone (computed in the database, whose time zone rules the account's name was checked against).
_POSTS_SQL = f"""
WITH {ACCOUNT_TZ_CTE}
SELECT m.ig_user_id,
       EXTRACT(isodow FROM m.published_at AT TIME ZONE t.tz)::smallint AS weekday,
       EXTRACT(hour FROM m.published_at AT TIME ZONE t.tz)::smallint AS hour,
       e.engagement_rate_reach AS rate
FROM instagram.media m
JOIN account_tz t ON t.ig_user_id = m.ig_user_id
JOIN instagram.media_engagement e ON e.media_id = m.media_id
WHERE e.engagement_rate_reach IS NOT NULL
  AND m.media_product_type IS DISTINCT FROM 'STORY'
  AND m.published_at >= %(since)s AND m.published_at <= %(until)s
  {{user_filter}}
"""

COLUMNS = (
    "ig_user_id",
    "weekday",
    "hour",
    "posts",
    "avg_engagement_rate_reach",
    "shrunk_engagement_rate_reach",
    "reliable",
    "account_avg_engagement_rate_reach",
    "computed_at",
)


def read_rated_posts(
    conn: Connection, *, now: datetime | None = None, params: BestTimesParams = BestTimesParams(),
    ig_user_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The inputs of :func:`best_times_rows`: ig_user_id, weekday, hour, rate (engagement_rate_reach) of the
    posts published in the last ``lookback_days`` before ``now`` and at least ``min_age_hours`` old."""
    at = as_utc(now)
    values: dict = {"since": at - timedelta(days=params.lookback_days), "until": at - timedelta(hours=params.min_age_hours)}
    user_filter = ""
    users = id_list(ig_user_ids)
    if users is not None:
        user_filter, values["users"] = "AND m.ig_user_id = ANY(%(users)s)", users
    return read_frame(conn, _POSTS_SQL.format(user_filter=user_filter), values, text_columns=("ig_user_id",))


def best_times_rows(posts: pd.DataFrame, computed_at: datetime, params: BestTimesParams = BestTimesParams()) -> pd.DataFrame:
    """instagram.best_posting_times rows from :func:`read_rated_posts`' frame. Per account, ISO weekday and
    hour: posts, avg_engagement_rate_reach, and shrunk_engagement_rate_reach = (n * avg + k * account_mean) /
    (n + k), k = ``prior_posts``; reliable = n >= ``min_posts``. Slots without posts have no row. Pure."""
    if posts.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    rate = pd.to_numeric(posts["rate"]).astype("float64")
    frame = posts.assign(rate=rate)
    out = frame.groupby(["ig_user_id", "weekday", "hour"], sort=True)["rate"].agg(["size", "mean"]).reset_index()
    out = out.rename(columns={"size": "posts", "mean": "avg_engagement_rate_reach"})
    mean = frame.groupby("ig_user_id")["rate"].mean()
    out["account_avg_engagement_rate_reach"] = out["ig_user_id"].map(mean).astype("float64")
    n, k = out["posts"].astype("float64"), float(params.prior_posts)
    out["shrunk_engagement_rate_reach"] = (n * out["avg_engagement_rate_reach"]
                                           + k * out["account_avg_engagement_rate_reach"]) / (n + k)
    out["reliable"] = out["posts"] >= int(params.min_posts)
    out["posts"] = out["posts"].astype("Int64")
    out["weekday"] = out["weekday"].astype("Int64")
    out["hour"] = out["hour"].astype("Int64")
    out["computed_at"] = pd.Timestamp(as_utc(computed_at))
    return out[list(COLUMNS)]




def shrunk_rate(n: int, avg: float, account_mean: float, k: float = BestTimesParams.prior_posts) -> float:
    """The shrinkage formula as a plain function (docs and tests)."""
    return (n * avg + k * account_mean) / (n + k)
