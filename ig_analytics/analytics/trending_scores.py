"""Trending scores as pure functions on DataFrames: the parameters, each post's engagement curve, the gain over
the last window against the account's own earlier posts at the same age, the robust z and its decay, the ranks.
The outline of one evaluation and where its inputs come from: trending.py; formulas: docs/analytics.md."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable

import numpy as np
import pandas as pd

from ig_analytics.analytics._common import as_utc

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
    reach = _newest_reach(snaps, snap_pos, n_posts)

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

    active = np.flatnonzero(status == "scored")
    stats = _baseline_stats(posts, curves, cpos[active], eval_age[active], lower[active], params.max_baseline_posts)
    for column in ("baseline_n", "baseline_median", "baseline_mad"):
        values = np.full(len(cand), np.nan)
        values[active] = stats[column].to_numpy(float)
        cand[column] = values
    cand["baseline_n"] = cand["baseline_n"].fillna(0).astype(int)
    return _finish_scores(cand, status, params)


def _newest_reach(snaps: pd.DataFrame, snap_pos: np.ndarray, n_posts: int) -> np.ndarray:
    """Each post's reach in its newest snapshot (NaN without one): sort once by (position, age), keep the last."""
    reach = np.full(n_posts, np.nan)
    if "reach" in snaps.columns and len(snaps):
        order = np.lexsort((snaps["age_h"].to_numpy(float), snap_pos))
        sp = snap_pos[order]
        last = np.append(sp[1:] != sp[:-1], True)
        reach[sp[last]] = pd.to_numeric(snaps["reach"], errors="coerce").to_numpy(float)[order][last]
    return reach


def _baseline_stats(posts: pd.DataFrame, curves: "_Curves", a_pos: np.ndarray, eval_age: np.ndarray,
                    lower: np.ndarray, max_baseline_posts: int) -> pd.DataFrame:
    """For each scored candidate (at positions ``a_pos``), the gains of the account's earlier posts over the same
    age window (the newest ``max_baseline_posts`` that have one): baseline_n, baseline_median, baseline_mad."""
    run_start = posts.groupby("ig_user_id", sort=False).cumcount().to_numpy()  # position within the account
    counts = run_start[a_pos]  # number of earlier posts of the same account
    total = int(counts.sum())
    c_rep = np.repeat(np.arange(len(a_pos)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    b_pos = np.repeat(a_pos, counts) - 1 - offset  # pairs grouped by candidate, newest earlier post first
    b_gain = curves.at(b_pos, eval_age[c_rep]) - curves.at(b_pos, lower[c_rep])
    ok = ~np.isnan(b_gain)
    c_rep, b_gain = c_rep[ok], b_gain[ok]
    # rank within each candidate's group: keep the newest N
    starts = np.r_[0, np.flatnonzero(np.diff(c_rep)) + 1] if len(c_rep) else np.array([], dtype=int)
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(c_rep)])) if len(c_rep) else starts
    keep = (np.arange(len(c_rep)) - group_start) < max_baseline_posts
    pairs = pd.DataFrame({"c": c_rep[keep], "g": b_gain[keep]})
    grouped = pairs.groupby("c", sort=False)["g"]
    stats = pd.DataFrame({"baseline_n": grouped.size(), "baseline_median": grouped.median()})
    pairs["dev"] = (pairs["g"] - pairs["c"].map(stats["baseline_median"])).abs()
    stats["baseline_mad"] = pairs.groupby("c", sort=False)["dev"].median()
    return stats.reindex(np.arange(len(a_pos)))


def _finish_scores(cand: pd.DataFrame, status: np.ndarray, params: TrendingParams) -> pd.DataFrame:
    """z against the baseline (robust scale with floors), decay by age, the score and who is eligible."""
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
