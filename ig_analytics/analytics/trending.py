"""Trending posts: engagement a post gained in the last few hours, scored against the account's own past
posts at the same age (instagram.trending_posts). Formulas and parameters: docs/analytics.md, "Trending".

Outline of one evaluation at ``as_of``:

1. E_p(t): a post's engagement t hours after publication, linearly interpolated between its snapshots (by
   ``fetched_at``, the moment the values were read), with the anchor E_p(0) = 0. Only snapshots of capture slots
   at or before ``as_of``, read at most ``fetch_grace_hours`` after it, are used: the run of slot ``as_of`` sees
   that slot, and a backfilled evaluation sees what was known then. No extrapolation; no interpolation
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
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import as_utc, engagement_sql, id_list, utc_now
from ig_analytics.storage.frames import frame_rows, read_frame
from ig_analytics.analytics.trending_cross import apply_cross_sectional
from ig_analytics.storage import db

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class TrendingParams:
    max_age: timedelta = timedelta(days=7)  # candidates: posts younger than this
    window_hours: float = 3.0  # gain = engagement gained over the last N hours observed
    baseline_days: int = 90  # baseline: the account's posts published in the last N days ...
    max_baseline_posts: int = 50  # ... at most the newest N of them with data at the candidate's age
    min_baseline_posts: int = 5  # fewer baseline posts with data at that age: not scored, not listed
    max_gap_hours: float = 26.0  # never interpolate between snapshots further apart than this
    max_staleness_hours: float = 26.0  # a candidate's newest snapshot must be at most this old at as_of
    mad_floor_abs: float = 1.0  # robust-scale floor, in engagements ...
    mad_floor_rel: float = 0.1  # ... and as a fraction of |median|
    min_z: float = 2.0  # listed only when the robust z-score reaches this
    half_life_hours: float = 72.0  # score = z * 0.5 ** (age_hours / half_life_hours)
    top_n: int = 10  # rows per account and evaluation
    fetch_grace_hours: float = 1.0  # snapshots of capture slots <= as_of count when read up to this long after it
    # "auto": same-age growth where a post has a curve and a baseline at its age, else cross-sectional
    # (trending_cross.py); or force one method for every candidate
    method: str = "auto"
    min_fit_posts: int = 8  # cross-sectional: posts with data the account needs for its fit
    min_z_cross: float = 2.5  # cross-sectional: listed when z reaches this
    cross_scale_floor: float = 0.1  # cross-sectional: floor of the residual scale (log units, ~10 %)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["max_age_hours"] = self.max_age.total_seconds() / 3600.0
        del out["max_age"]
        return out


# ---- pure parts (unit-testable) --------------------------------------------------------------------------


def robust_z(value: float, baseline: Iterable[float], params: TrendingParams = TrendingParams()) -> float:
    """(value - median) / max(1.4826 * MAD, mad_floor_rel * |median|, mad_floor_abs) for one value."""
    values = np.asarray(list(baseline), dtype=float)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    scale = max(MAD_TO_SIGMA * mad, params.mad_floor_rel * abs(median), params.mad_floor_abs)
    return (value - median) / scale


def weighted_score(engagement, reach, age_days):
    """The story's weighted score, kept for comparison (vectorized; NaN when engagement or reach is unknown or
    reach is 0): 0.4 * engagement rate by reach (%) + 0.3 * min(engagement / 1000, 100)
    + 0.2 * min(reach / 10000, 100) + 0.1 * max(0, 100 - 10 * days since publication)."""
    engagement = np.asarray(engagement, dtype=float)
    reach = np.asarray(reach, dtype=float)
    age_days = np.asarray(age_days, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(reach > 0, engagement / reach * 100.0, np.nan)
    return (
        0.4 * rate
        + 0.3 * np.minimum(engagement / 1000.0, 100.0)
        + 0.2 * np.minimum(reach / 10000.0, 100.0)
        + 0.1 * np.maximum(0.0, 100.0 - 10.0 * age_days)
    )


class _Curves:
    """Every post's engagement curve in flat arrays sorted by (post position, age), for vectorized
    interpolation. Posts are addressed by position 0..n_posts-1."""

    def __init__(self, pos: np.ndarray, age: np.ndarray, eng: np.ndarray, n_posts: int, max_gap_hours: float):
        idx = np.concatenate([np.arange(n_posts, dtype=np.int64), pos.astype(np.int64)])
        age = np.concatenate([np.zeros(n_posts), age.astype(float)])  # anchors E(0) = 0 first ...
        eng = np.concatenate([np.zeros(n_posts), eng.astype(float)])
        self.span = float(age.max() if len(age) else 0.0) + 1.0
        keys = idx * self.span + age
        order = np.argsort(keys, kind="stable")  # ... so a snapshot at the same key sorts after its anchor
        keys, idx, age, eng = keys[order], idx[order], age[order], eng[order]
        keep = np.append(keys[1:] != keys[:-1], True)  # duplicates: keep the last
        self.keys, self.idx, self.age, self.eng = keys[keep], idx[keep], age[keep], eng[keep]
        self.max_gap = max_gap_hours

    def newest(self, n_posts: int) -> tuple[np.ndarray, np.ndarray]:
        """Per post position: age and engagement of its newest observation (NaN when only the anchor)."""
        is_last = np.append(self.idx[1:] != self.idx[:-1], True)
        age = np.full(n_posts, np.nan)
        eng = np.full(n_posts, np.nan)
        real = is_last & (self.age > 0)
        age[self.idx[real]] = self.age[real]
        eng[self.idx[real]] = self.eng[real]
        return age, eng

    def at(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """E_idx(t); NaN where t is not bracketed by two observations at most max_gap apart (or hit exactly)."""
        idx = np.asarray(idx, dtype=np.int64)
        t = np.asarray(t, dtype=float)
        out = np.full(len(idx), np.nan)
        n = len(self.keys)
        if n == 0 or len(idx) == 0:
            return out
        pos = np.searchsorted(self.keys, idx * self.span + t, side="right")
        lo = np.clip(pos - 1, 0, n - 1)
        hi = np.clip(pos, 0, n - 1)
        ok_lo = (pos >= 1) & (self.idx[lo] == idx)
        ok_hi = (pos < n) & (self.idx[hi] == idx)
        exact = ok_lo & (self.age[lo] == t)
        out[exact] = self.eng[lo[exact]]
        gap = self.age[hi] - self.age[lo]
        between = ok_lo & ok_hi & ~exact & (gap <= self.max_gap) & (gap > 0)
        frac = (t[between] - self.age[lo[between]]) / gap[between]
        out[between] = self.eng[lo[between]] + frac * (self.eng[hi[between]] - self.eng[lo[between]])
        return out


def score_candidates(
    posts: pd.DataFrame, snaps: pd.DataFrame, as_of: datetime, params: TrendingParams = TrendingParams()
) -> pd.DataFrame:
    """Score the candidates among ``posts``.

    posts: idx (int, unique), media_id, ig_user_id, published_at (UTC) — candidates and baseline posts.
    snaps: idx, age_h (hours from published_at to fetched_at), eng (engagement), reach. Returns one row per
    candidate: media_id, ig_user_id, idx, age_hours, eval_age_hours, gain, baseline_n, baseline_median,
    baseline_mad, z, decay, score, eligible, status, engagement, reach, weighted_score.
    """
    as_of = pd.Timestamp(as_utc(as_of))
    # positions 0..n-1 in (account, published_at, media_id) order: an account's posts are one contiguous run,
    # oldest first, so "the account's posts published before p" are the positions between the run's start and p
    posts = posts.sort_values(["ig_user_id", "published_at", "media_id"], kind="mergesort").reset_index(drop=True)
    n_posts = len(posts)
    posts["age_hours"] = (as_of - posts["published_at"]).dt.total_seconds().to_numpy() / 3600.0
    max_age_h = params.max_age.total_seconds() / 3600.0
    is_cand = ((posts["age_hours"] >= 0) & (posts["age_hours"] < max_age_h)).to_numpy()
    if not is_cand.any():
        return pd.DataFrame()

    position = pd.Series(np.arange(n_posts), index=posts["idx"].to_numpy())
    snaps = snaps[snaps["eng"].notna() & (snaps["age_h"] > 0) & snaps["idx"].isin(position.index)]
    snap_pos = position.reindex(snaps["idx"].to_numpy()).to_numpy()
    curves = _Curves(snap_pos, snaps["age_h"].to_numpy(float), snaps["eng"].to_numpy(float), n_posts,
                     params.max_gap_hours)
    newest_age, newest_eng = curves.newest(n_posts)
    reach = np.full(n_posts, np.nan)
    if "reach" in snaps.columns and len(snaps):
        # reach of the newest snapshot: sort once by (position, age) and keep each position's last row
        s_age = snaps["age_h"].to_numpy(float)
        order = np.lexsort((s_age, snap_pos))
        sp = snap_pos[order]
        last = np.append(sp[1:] != sp[:-1], True)
        reach[sp[last]] = pd.to_numeric(snaps["reach"], errors="coerce").to_numpy(float)[order][last]

    cpos = np.flatnonzero(is_cand)
    cand = posts.iloc[cpos].copy()
    cand["pos"] = cpos
    cand["eval_age_hours"] = newest_age[cpos]
    cand["engagement"] = newest_eng[cpos]
    cand["reach"] = reach[cpos]
    status = np.full(len(cand), "scored", dtype=object)
    status[np.isnan(cand["eval_age_hours"].to_numpy())] = "no_snapshots"
    stale = (cand["age_hours"] - cand["eval_age_hours"]).to_numpy() > params.max_staleness_hours
    status[stale] = "stale"
    eval_age = cand["eval_age_hours"].to_numpy(float)
    lower = np.maximum(eval_age - params.window_hours, 0.0)
    gain = curves.at(cpos, eval_age) - curves.at(cpos, lower)
    status[(status == "scored") & np.isnan(gain)] = "no_window"
    gain[status != "scored"] = np.nan
    cand["gain"] = gain

    # Baseline pairs (candidate, earlier post of the same account), newest earlier post first.
    run_start = posts.groupby("ig_user_id", sort=False).cumcount().to_numpy()  # position within the account
    active = np.flatnonzero(status == "scored")
    a_pos = cpos[active]
    counts = run_start[a_pos]  # number of earlier posts of the same account
    total = int(counts.sum())
    c_rep = np.repeat(np.arange(len(active)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    b_pos = np.repeat(a_pos, counts) - 1 - offset
    b_gain = curves.at(b_pos, eval_age[active][c_rep]) - curves.at(b_pos, lower[active][c_rep])
    ok = ~np.isnan(b_gain)
    c_rep, b_gain = c_rep[ok], b_gain[ok]
    # rank within each candidate's group (pairs are grouped by candidate, newest first): keep the newest N
    starts = np.r_[0, np.flatnonzero(np.diff(c_rep)) + 1] if len(c_rep) else np.array([], dtype=int)
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(c_rep)])) if len(c_rep) else starts
    keep = (np.arange(len(c_rep)) - group_start) < params.max_baseline_posts
    pairs = pd.DataFrame({"c": c_rep[keep], "g": b_gain[keep]})
    grouped = pairs.groupby("c", sort=False)["g"]
    stats = pd.DataFrame({"baseline_n": grouped.size(), "baseline_median": grouped.median()})
    pairs["dev"] = (pairs["g"] - pairs["c"].map(stats["baseline_median"])).abs()
    stats["baseline_mad"] = pairs.groupby("c", sort=False)["dev"].median()
    stats = stats.reindex(np.arange(len(active)))
    for column in ("baseline_n", "baseline_median", "baseline_mad"):
        values = np.full(len(cand), np.nan)
        values[active] = stats[column].to_numpy(float)
        cand[column] = values
    cand["baseline_n"] = cand["baseline_n"].fillna(0).astype(int)

    scale = np.maximum.reduce([MAD_TO_SIGMA * cand["baseline_mad"].to_numpy(float),
                               params.mad_floor_rel * np.abs(cand["baseline_median"].to_numpy(float)),
                               np.full(len(cand), params.mad_floor_abs)])
    z = (cand["gain"].to_numpy(float) - cand["baseline_median"].to_numpy(float)) / scale
    status[(status == "scored") & (cand["baseline_n"].to_numpy() < params.min_baseline_posts)] = "thin_baseline"
    z[status != "scored"] = np.nan
    cand["status"] = status
    cand["z"] = z
    cand["decay"] = 0.5 ** (cand["age_hours"] / params.half_life_hours)
    cand["score"] = cand["z"] * cand["decay"]
    cand["eligible"] = (cand["status"] == "scored") & (cand["z"] >= params.min_z) & (cand["gain"] > 0)
    cand["weighted_score"] = weighted_score(cand["engagement"], cand["reach"], cand["age_hours"] / 24.0)
    return cand.drop(columns=["pos"]).reset_index(drop=True)


def rank_candidates(scored: pd.DataFrame, params: TrendingParams = TrendingParams()) -> pd.DataFrame:
    """The listed rows: eligible candidates, rank 1.. per account by score (ties: weighted_score, media_id)."""
    if scored.empty:
        return scored.assign(rank=pd.Series(dtype=int))
    listed = scored[scored["eligible"]].sort_values(["ig_user_id", "score", "weighted_score", "media_id"],
                                                    ascending=[True, False, False, True], na_position="last",
                                                    kind="mergesort")
    listed = listed.assign(rank=listed.groupby("ig_user_id").cumcount() + 1)
    return listed[listed["rank"] <= params.top_n]


# ---- database ---------------------------------------------------------------------------------------------

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

# The newest snapshot of every post of the window (the cross-sectional method's input).
_NEWEST_SQL = f"""
SELECT p.idx, p.ig_user_id, round(EXTRACT(epoch FROM s.fetched_at - p.published_at))::int AS age_s,
       {engagement_sql('s')} AS eng, s.reach
FROM _trend_posts p
JOIN LATERAL (
    SELECT * FROM instagram.media_insights_snapshots s
    WHERE s.media_id = p.media_id AND s.captured_at <= %(as_of)s AND s.fetched_at <= %(fetched_until)s
    ORDER BY s.captured_at DESC LIMIT 1
) s ON true
"""

_SNAPS_SQL = f"""
SELECT p.idx, round(EXTRACT(epoch FROM s.fetched_at - p.published_at))::int AS age_s,
       {engagement_sql('s')} AS eng,
       CASE WHEN p.published_at > %(cand_from)s THEN s.reach END AS reach  -- only candidates need it
FROM _trend_posts p
JOIN instagram.media_insights_snapshots s ON s.media_id = p.media_id
WHERE s.captured_at <= %(as_of)s AND s.fetched_at <= %(fetched_until)s
  AND s.fetched_at > p.published_at AND s.fetched_at <= p.published_at + %(max_span)s
"""

ACCOUNTS_PER_CHUNK = 200

TRENDING_COLUMNS = ("ig_user_id", "as_of", "rank", "media_id", "score", "weighted_score", "details", "method",
                    "engagement_rate", "reach")
EVALUATION_COLUMNS = ("ig_user_id", "as_of", "candidates", "scored", "listed", "params", "computed_at")

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
) -> int:
    """Evaluate trending posts at ``as_of`` and replace that evaluation's rows in instagram.trending_posts
    (and instagram.trending_evaluations) for the accounts in scope: the given ones, else every account that
    is not disabled. Returns trending_posts rows written."""
    as_of = as_utc(as_of)
    computed_at = as_utc(now) if now is not None else utc_now()
    users = id_list(ig_user_ids)
    max_age_h = params.max_age.total_seconds() / 3600.0
    values = {
        "as_of": as_of,
        "fetched_until": as_of + timedelta(hours=params.fetch_grace_hours),
        "cand_from": as_of - params.max_age,
        "base_from": as_of - timedelta(days=params.baseline_days),
        "max_span": timedelta(
            hours=max_age_h + params.max_gap_hours + params.window_hours + params.fetch_grace_hours
        ),
    }
    scope_sql = "ig_user_id = ANY(:users)" if users is not None else "status <> 'disabled'"
    scope = [r[0] for r in conn.execute(
        sa.text(f"SELECT ig_user_id FROM instagram.accounts WHERE {scope_sql} ORDER BY 1"), {"users": users}
    )]
    if len(scope) > ACCOUNTS_PER_CHUNK:
        # Scoring is per account: chunks keep memory flat (all 1,000 accounts at once peaked at ~800 MB).
        return sum(
            refresh_trending_posts(conn, as_of=as_of, ig_user_ids=scope[i:i + ACCOUNTS_PER_CHUNK], params=params,
                                   now=computed_at)
            for i in range(0, len(scope), ACCOUNTS_PER_CHUNK)
        )
    values["scope"] = scope
    user_filter = "AND m.ig_user_id = ANY(%(scope)s)"
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.execute(_POSTS_SQL.format(user_filter=user_filter), values)
    posts = read_frame(conn, "SELECT idx, media_id, ig_user_id, published_at FROM _trend_posts",
                       text_columns=("media_id", "ig_user_id"), date_columns=("published_at",))
    snaps = read_frame(conn, _SNAPS_SQL, values) if not posts.empty else pd.DataFrame(
        columns=["idx", "age_s", "eng", "reach"]
    )
    snaps["age_h"] = snaps.pop("age_s").astype(float) / 3600.0
    scored = score_candidates(posts, snaps, as_of, params) if not posts.empty else pd.DataFrame()
    if not scored.empty:
        newest = pd.DataFrame(columns=["idx", "ig_user_id", "age_h", "eng", "reach"])
        # the cross-sectional fallback's inputs are read only when some candidate needs it (or it is forced)
        needs_cross = params.method == "cross_sectional" or (
            params.method != "same_age_growth" and scored["status"].isin(["no_window", "thin_baseline"]).any())
        if needs_cross:
            newest = read_frame(conn, _NEWEST_SQL, values, text_columns=("ig_user_id",))
            newest["age_h"] = newest.pop("age_s").astype(float) / 3600.0
        scored = apply_cross_sectional(scored, newest, params)
    listed = rank_candidates(scored, params)

    rows = []
    if not listed.empty:
        listed = listed.assign(as_of=as_of, reach=listed["reach"].round().astype("Int64"))
        listed["engagement_rate"] = np.where(listed["reach"].astype(float) > 0,
                                             listed["engagement"] / listed["reach"].astype(float) * 100.0, np.nan)
        records = listed.to_dict("records")
        listed = listed.assign(details=[_details(r, r["published_at"], params.window_hours) for r in records])
        rows = frame_rows(listed, TRENDING_COLUMNS)

    db.replace_rows(
        conn, "trending_posts", TRENDING_COLUMNS, rows, "as_of = :as_of AND ig_user_id = ANY(:scope)",
        {"as_of": as_of, "scope": scope},
    )
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
    evaluations["params"] = json.dumps(params.as_dict())
    evaluations["computed_at"] = computed_at
    db.bulk_upsert(
        conn, "trending_evaluations", EVALUATION_COLUMNS, frame_rows(evaluations, EVALUATION_COLUMNS),
        ["ig_user_id", "as_of"],
    )
    return len(rows)


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
