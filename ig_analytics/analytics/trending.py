"""Trending posts: engagement a post gained in the last few hours, scored against the account's own past
posts at the same age (instagram.trending_posts). Formulas and parameters: docs/analytics.md, "Trending".

Outline of one evaluation at ``as_of``:

1. E_p(t): a post's engagement t hours after publication, linearly interpolated between its snapshots (by
   ``fetched_at``, the moment the values were read), with the anchor E_p(0) = 0. Only snapshots of capture slots
   at or before ``as_of``, read at most ``fetch_grace_hours`` after it, are used: the run of slot ``as_of`` sees
   that slot, and a backfilled evaluation sees what was known then. The snapshots retention deleted of a post's
   first days are read from their packed copy (``instagram.media_curves``, trending_curves.py) the same way. No extrapolation; no interpolation
   across a gap wider than ``max_gap_hours``.
2. A candidate (post younger than ``max_age``) is evaluated at its freshest observation: a = age of its newest
   snapshot, gain = E(a) - E(max(a - window, 0)). A candidate whose newest snapshot is older than
   ``max_staleness_hours`` is not scored.
3. Baseline: the same gain, at the same ages, of the account's posts published before the candidate (within
   ``baseline_days``; the newest ``max_baseline_posts`` that have data at those ages).
4. z = (gain - median) / max(1.4826 * MAD, mad_floor_rel * |median|, mad_floor_abs).
5. Listed when the baseline has >= ``min_baseline_posts`` posts, z >= ``min_z`` and gain > 0; ranked by
   score = z * 0.5 ** (age_hours / half_life_hours), top ``top_n`` per account.
6. A candidate this method cannot score (no curve from publication yet, or too thin a baseline at its age: a
   fresh install) is scored by the cross-sectional method of trending_cross.py instead; every row says which
   method scored it (``method``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import as_utc, engagement_sql, id_list, utc_now
from ig_analytics.storage.frames import frame_rows, read_frame
from ig_analytics.analytics.trending_cross import apply_cross_sectional
from ig_analytics.analytics.trending_curves import CURVE_COLUMNS, POINTS_SQL, curve_span
from ig_analytics.analytics.trending_scores import TrendingParams, rank_candidates, score_candidates
from ig_analytics.storage import db

_POSTS_SQL = """
DROP TABLE IF EXISTS pg_temp._trend_posts;
CREATE TEMP TABLE _trend_posts ON COMMIT DROP AS
WITH scope AS (
    SELECT DISTINCT m.ig_user_id FROM instagram.media m
    WHERE m.published_at > %(cand_from)s AND m.published_at <= %(as_of)s
      AND m.media_product_type IS DISTINCT FROM 'STORY' {user_filter}
)
SELECT (row_number() OVER (ORDER BY m.ig_user_id, m.published_at, m.media_id))::int AS idx,
       m.media_id, m.ig_user_id, m.published_at
FROM instagram.media m JOIN scope s ON s.ig_user_id = m.ig_user_id
WHERE m.published_at > %(base_from)s AND m.published_at <= %(as_of)s
  AND m.media_product_type IS DISTINCT FROM 'STORY';
ANALYZE _trend_posts;
"""

# The newest point of every post of the window (the cross-sectional method's input): its newest snapshot, or a
# packed point (trending_curves.py) when that is newer (a backfilled past hour: the snapshots of then compacted).
_NEWEST_SQL = f"""
SELECT p.idx, p.ig_user_id, round(EXTRACT(epoch FROM s.fetched_at - p.published_at))::int AS age_s,
       {engagement_sql('s')} AS eng, s.reach
FROM _trend_posts p
JOIN LATERAL (
    SELECT * FROM (
        (SELECT {", ".join(f"s.{col}" for col in CURVE_COLUMNS)} FROM instagram.media_insights_snapshots s
         WHERE s.media_id = p.media_id AND s.captured_at <= %(as_of)s AND s.fetched_at <= %(fetched_until)s
         ORDER BY s.captured_at DESC LIMIT 1)
        UNION ALL
        SELECT {", ".join(f"c.{col}" for col in CURVE_COLUMNS)} FROM instagram.media_curve_points c
        WHERE c.media_id = p.media_id AND c.captured_at <= %(as_of)s AND c.fetched_at <= %(fetched_until)s
    ) n ORDER BY captured_at DESC LIMIT 1
) s ON true
"""

# Every point of each post's curve (snapshots and packed points) that an evaluation at as_of may read.
_SNAPS_SQL = f"""
SELECT s.idx, round(EXTRACT(epoch FROM s.fetched_at - s.published_at))::int AS age_s,
       {engagement_sql('s')} AS eng,
       CASE WHEN s.published_at > %(cand_from)s THEN s.reach END AS reach  -- only candidates need it
FROM {POINTS_SQL}
WHERE s.captured_at <= %(as_of)s AND s.fetched_at <= %(fetched_until)s
  AND s.fetched_at > s.published_at AND s.fetched_at <= s.published_at + %(max_span)s
"""

ACCOUNTS_PER_CHUNK = 200

TRENDING_COLUMNS = ("ig_user_id", "as_of", "rank", "media_id", "score", "weighted_score", "details", "method",
                    "engagement_rate", "reach")
EVALUATION_COLUMNS = ("ig_user_id", "as_of", "candidates", "scored", "listed", "params_id", "computed_at")

_DETAIL_COLUMNS = ("age_hours", "eval_age_hours", "gain", "baseline_n", "baseline_median", "baseline_mad", "z", "decay",
                   "engagement", "reach", "expected_engagement")


def _details(row: dict, published_at, window_hours: float) -> dict:
    out = {}
    for key in _DETAIL_COLUMNS:
        value = row.get(key)
        out[key] = None if value is None or pd.isna(value) else (
            int(value) if key == "baseline_n" else round(float(value), 6)
        )
    out["published_at"] = published_at.isoformat()
    out["window_hours"] = window_hours
    return out


def refresh_trending_posts(
    conn: Connection,
    *,
    as_of: datetime,
    ig_user_ids: Iterable[str] | None = None,
    params: TrendingParams = TrendingParams(),
    now: datetime | None = None,
    within: Iterable[str] | None = None,
) -> int:
    """Evaluate trending posts at ``as_of`` and replace that evaluation's rows in instagram.trending_posts
    (and instagram.trending_evaluations) for the accounts in scope: the given ones, else every account that
    is not disabled (only those of ``within`` when given: a shard run's accounts). Returns trending_posts rows
    written."""
    as_of = as_utc(as_of)
    computed_at = as_utc(now) if now is not None else utc_now()
    users = id_list(ig_user_ids)
    values = {
        "as_of": as_of,
        "fetched_until": as_of + timedelta(hours=params.fetch_grace_hours),
        "cand_from": as_of - params.max_age,
        "base_from": as_of - timedelta(days=params.baseline_days),
        "max_span": curve_span(params),
    }
    scope_sql = "ig_user_id = ANY(:users)" if users is not None else "status <> 'disabled'"
    allowed = id_list(within)
    if allowed is not None:
        scope_sql += " AND ig_user_id = ANY(:within)"
    scope = [r[0] for r in conn.execute(
        sa.text(f"SELECT ig_user_id FROM instagram.accounts WHERE {scope_sql} ORDER BY 1"),
        {"users": users, "within": allowed},
    )]
    if len(scope) > ACCOUNTS_PER_CHUNK:
        # Scoring is per account: chunks keep memory flat (all 1,000 accounts at once peaked at ~800 MB).
        return sum(
            refresh_trending_posts(conn, as_of=as_of, ig_user_ids=scope[i:i + ACCOUNTS_PER_CHUNK], params=params,
                                   now=computed_at)
            for i in range(0, len(scope), ACCOUNTS_PER_CHUNK)
        )
    values["scope"] = scope
    scored = _score_scope(conn, values, as_of, params)
    listed = rank_candidates(scored, params)
    rows = _trending_rows(listed, as_of, params)
    db.replace_rows(conn, "trending_posts", TRENDING_COLUMNS, rows, TRENDING_COLUMNS, ("ig_user_id", "as_of", "rank"),
                    ("as_of = :as_of AND ig_user_id = ANY(:scope)", {"as_of": as_of, "scope": scope}))
    evaluations = _evaluations(scope, scored, listed, as_of, parameter_set_id(conn, params, computed_at), computed_at)
    db.bulk_upsert(
        conn, "trending_evaluations", EVALUATION_COLUMNS, frame_rows(evaluations, EVALUATION_COLUMNS),
        ["ig_user_id", "as_of"],
    )
    return len(rows)


def _score_scope(conn: Connection, values: dict, as_of: datetime, params: TrendingParams) -> pd.DataFrame:
    """Read the scope's posts and snapshot curves and score its candidates (cross-sectional where needed)."""
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.execute(_POSTS_SQL.format(user_filter="AND m.ig_user_id = ANY(%(scope)s)"), values)
    posts = read_frame(conn, "SELECT idx, media_id, ig_user_id, published_at FROM _trend_posts",
                       text_columns=("media_id", "ig_user_id"), date_columns=("published_at",))
    if posts.empty:
        return pd.DataFrame()
    snaps = read_frame(conn, _SNAPS_SQL, values)
    snaps["age_h"] = snaps.pop("age_s").astype(float) / 3600.0
    scored = score_candidates(posts, snaps, as_of, params)
    if scored.empty:
        return scored
    newest = pd.DataFrame(columns=["idx", "ig_user_id", "age_h", "eng", "reach"])
    # the cross-sectional fallback's inputs are read only when some candidate needs it (or it is forced)
    needs_cross = params.method == "cross_sectional" or (
        params.method != "same_age_growth" and scored["status"].isin(["no_window", "thin_baseline"]).any())
    if needs_cross:
        newest = read_frame(conn, _NEWEST_SQL, values, text_columns=("ig_user_id",))
        newest["age_h"] = newest.pop("age_s").astype(float) / 3600.0
    return apply_cross_sectional(scored, newest, params)


def _trending_rows(listed: pd.DataFrame, as_of: datetime, params: TrendingParams) -> list[tuple]:
    if listed.empty:
        return []
    listed = listed.assign(as_of=as_of, reach=listed["reach"].round().astype("Int64"))
    listed["engagement_rate"] = np.where(listed["reach"].astype(float) > 0,
                                         listed["engagement"] / listed["reach"].astype(float) * 100.0, np.nan)
    records = listed.to_dict("records")
    listed = listed.assign(details=[_details(r, r["published_at"], params.window_hours) for r in records])
    return frame_rows(listed, TRENDING_COLUMNS)


def parameter_set_id(conn: Connection, params: TrendingParams, first_used_at: datetime) -> int:
    """The id of these parameters in ``instagram.trending_parameter_sets`` (added the first time they are used): an
    evaluation row names its set instead of holding the same ~500 B of JSON every hour (issue 27)."""
    value = {"p": json.dumps(params.as_dict(), sort_keys=True)}
    conn.execute(sa.text("INSERT INTO instagram.trending_parameter_sets (params, first_used_at)"
                         " VALUES (CAST(:p AS jsonb), :at) ON CONFLICT (params) DO NOTHING"),
                 {**value, "at": first_used_at})
    return conn.execute(sa.text("SELECT params_id FROM instagram.trending_parameter_sets"
                                " WHERE params = CAST(:p AS jsonb)"), value).scalar_one()


def _evaluations(scope: list[str], scored: pd.DataFrame, listed: pd.DataFrame, as_of: datetime,
                 params_id: int, computed_at: datetime) -> pd.DataFrame:
    """One row per account in scope: how many candidates it had, how many were scored and listed."""
    evaluations = pd.DataFrame({"ig_user_id": scope})
    if not scored.empty:
        counts = scored.groupby("ig_user_id").agg(
            candidates=("idx", "size"), scored=("status", lambda s: int((s == "scored").sum()))
        )
        evaluations = evaluations.join(counts, on="ig_user_id")
    else:
        evaluations = evaluations.assign(candidates=0, scored=0)
    listed_counts = listed.groupby("ig_user_id").size() if not listed.empty else pd.Series(dtype=int)
    evaluations["listed"] = evaluations["ig_user_id"].map(listed_counts)
    for column in ("candidates", "scored", "listed"):
        evaluations[column] = evaluations[column].fillna(0).astype(int)
    evaluations["as_of"] = as_of
    evaluations["params_id"] = params_id
    evaluations["computed_at"] = computed_at
    return evaluations


def new_trending_entries(
    conn: Connection, as_of: datetime, *, ig_user_ids: Iterable[str] | None = None, max_rank: int | None = None
) -> list[dict]:
    """Rows of the evaluation at ``as_of`` whose post was not listed in the account's previous evaluation
    (the newest instagram.trending_evaluations row before ``as_of``; with none, every row is new). Optionally
    only ranks <= ``max_rank``. Each: ig_user_id, username, media_id, rank, score, weighted_score, details,
    permalink, caption, media_type, media_product_type."""
    users = id_list(ig_user_ids)
    result = conn.execute(
        sa.text(
            """
            WITH prev AS (
                SELECT ig_user_id, max(as_of) AS as_of FROM instagram.trending_evaluations
                WHERE as_of < :as_of GROUP BY ig_user_id
            )
            SELECT t.ig_user_id, a.username, t.media_id, t.rank, t.score, t.weighted_score, t.details, t.method,
                   t.engagement_rate, t.reach,
                   m.permalink, m.caption, m.media_type, m.media_product_type
            FROM instagram.trending_posts t
            JOIN instagram.accounts a ON a.ig_user_id = t.ig_user_id
            LEFT JOIN instagram.media m ON m.media_id = t.media_id
            LEFT JOIN prev p ON p.ig_user_id = t.ig_user_id
            WHERE t.as_of = :as_of
              AND (CAST(:users AS text[]) IS NULL OR t.ig_user_id = ANY(CAST(:users AS text[])))
              AND (CAST(:max_rank AS integer) IS NULL OR t.rank <= CAST(:max_rank AS integer))
              AND NOT EXISTS (
                  SELECT 1 FROM instagram.trending_posts o
                  WHERE o.ig_user_id = t.ig_user_id AND o.as_of = p.as_of AND o.media_id = t.media_id
              )
            ORDER BY t.ig_user_id, t.rank
            """
        ),
        {"as_of": as_utc(as_of), "users": users, "max_rank": max_rank},
    )
    return [dict(row._mapping) for row in result]
