"""Best posting times per account: ISO weekday x hour of publication, in the account's own time zone
(instagram.best_posting_times). Formulas: docs/analytics.md, section "Best posting times"."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import ACCOUNT_TZ_CTE, as_utc, id_list


@dataclass(frozen=True)
class BestTimesParams:
    lookback_days: int = 90  # posts published in the last N days
    prior_posts: float = 3.0  # k: weight, in posts, of the account mean in the shrunk rate
    min_posts: int = 2  # a slot with fewer posts is written with reliable = false
    min_age_hours: float = 24.0  # younger posts are still gathering reach: left out

    def as_dict(self) -> dict:
        return asdict(self)


_SQL = f"""
WITH {ACCOUNT_TZ_CTE},
posts AS (
    SELECT m.ig_user_id,
           EXTRACT(isodow FROM m.published_at AT TIME ZONE t.tz)::smallint AS weekday,
           EXTRACT(hour FROM m.published_at AT TIME ZONE t.tz)::smallint AS hour,
           e.engagement_rate_reach AS rate
    FROM instagram.media m
    JOIN account_tz t ON t.ig_user_id = m.ig_user_id
    JOIN instagram.media_engagement e ON e.media_id = m.media_id
    WHERE e.engagement_rate_reach IS NOT NULL
      AND m.media_product_type IS DISTINCT FROM 'STORY'
      AND m.published_at >= :since AND m.published_at <= :until
      {{user_filter}}
),
account AS (SELECT ig_user_id, avg(rate) AS mean FROM posts GROUP BY ig_user_id)
SELECT p.ig_user_id, p.weekday, p.hour, count(*) AS posts,
       avg(p.rate) AS avg_engagement_rate_reach,
       (count(*) * avg(p.rate) + :k * a.mean) / (count(*) + :k) AS shrunk_engagement_rate_reach,
       count(*) >= :min_posts AS reliable,
       a.mean AS account_avg_engagement_rate_reach,
       CAST(:computed_at AS timestamptz) AS computed_at
FROM posts p JOIN account a ON a.ig_user_id = p.ig_user_id
GROUP BY p.ig_user_id, p.weekday, p.hour, a.mean
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


def refresh_best_posting_times(
    conn: Connection,
    *,
    ig_user_ids: Iterable[str] | None = None,
    params: BestTimesParams = BestTimesParams(),
    now: datetime | None = None,
) -> int:
    """Replace the best_posting_times rows of the given accounts (all accounts when None).

    Per (ISO weekday, hour) of published_at in the account's time zone, over posts published in the last
    ``lookback_days`` (and at least ``min_age_hours`` old) that have an engagement_rate_reach:
    posts, avg_engagement_rate_reach, and
    shrunk_engagement_rate_reach = (n * avg + k * account_mean) / (n + k), k = ``prior_posts``.
    Slots with fewer than ``min_posts`` posts are written with reliable = false; slots without posts have no
    row. Reads media_engagement: run refresh_media_engagement first. Returns rows written."""
    at = as_utc(now)
    users = id_list(ig_user_ids)
    values = {
        "since": at - timedelta(days=params.lookback_days),
        "until": at - timedelta(hours=params.min_age_hours),
        "k": float(params.prior_posts),
        "min_posts": int(params.min_posts),
        "computed_at": at,
    }
    user_filter, where = "", "true"
    if users is not None:
        user_filter, where = "AND m.ig_user_id = ANY(:users)", "ig_user_id = ANY(:users)"
        values["users"] = users
    conn.execute(sa.text(f"DELETE FROM instagram.best_posting_times WHERE {where}"), values)
    result = conn.execute(
        sa.text(f"INSERT INTO instagram.best_posting_times ({', '.join(COLUMNS)}) " + _SQL.format(user_filter=user_filter)),
        values,
    )
    return result.rowcount


def shrunk_rate(n: int, avg: float, account_mean: float, k: float = BestTimesParams.prior_posts) -> float:
    """The shrinkage formula as a plain function (docs and tests)."""
    return (n * avg + k * account_mean) / (n + k)
