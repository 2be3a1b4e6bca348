"""Trending from day one: the cross-sectional method (``trending_posts.method = 'cross_sectional'``).

The same-age method (trending.py) needs each post's engagement curve from publication, which an install cannot
have for posts published before it. This method needs only each post's newest snapshot: per account, it fits
log(1 + engagement) as a line in log(age in hours) over the account's posts of the baseline window (their
current totals at their current ages; a second fit leaves out the points more than 3 robust sigmas off), and
scores a candidate by how far above the curve it lies, against the spread of the account's other posts:

    r_p = log(1 + E_p) - fit(log age_p)
    z   = (r_p - median(r_others)) / max(1.4826 * MAD(r_others), cross_scale_floor)

Listed when the account has >= ``min_fit_posts`` posts with data, z >= ``min_z_cross`` and E_p > 0; score =
z * 0.5 ** (age_hours / half_life_hours), like the same-age method. It compares totals, not recent growth: a
post that did very well and has stopped growing still scores until it leaves ``max_age``. Formulas and the
evidence each method needs: docs/analytics.md, "Trending".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients of the line y ~ c0 + c1 x by least squares (a constant when every age is the same). A line
    in log-log (a power law) extrapolates to the youngest posts more safely than a curve with more freedom."""
    if len(np.unique(np.round(x, 3))) < 2:
        return np.array([float(np.mean(y))])
    return np.polyfit(x, y, 1)


def _robust_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef = _fit(x, y)
    resid = y - np.polyval(coef, x)
    mad = float(np.median(np.abs(resid - np.median(resid))))
    keep = np.abs(resid - np.median(resid)) <= 3 * max(MAD_TO_SIGMA * mad, 1e-9)
    return _fit(x[keep], y[keep]) if keep.sum() >= 3 else coef


def score_cross_sectional(newest: pd.DataFrame, candidates: np.ndarray, params) -> pd.DataFrame:
    """newest: one row per post of the baseline window with ig_user_id, idx, age_h (age of its newest
    snapshot), eng; ``candidates``: the idx values to score. Returns, per scored candidate idx: cs_z, cs_n
    (posts in the account's fit), cs_expected (engagement the curve expects at that age), cs_residual."""
    data = newest[newest["eng"].notna() & (newest["age_h"] > 0)]
    out = []
    for _, acct in data.groupby("ig_user_id", sort=False):
        if len(acct) < params.min_fit_posts:
            continue
        x = np.log(acct["age_h"].to_numpy(float))
        y = np.log1p(np.maximum(acct["eng"].to_numpy(float), 0.0))
        idx = acct["idx"].to_numpy()
        for i in np.flatnonzero(np.isin(idx, candidates)):
            # the curve of the OTHER posts: a young outlier would otherwise bend the curve toward itself
            xo, yo = np.delete(x, i), np.delete(y, i)
            coef = _robust_fit(xo, yo)
            others = yo - np.polyval(coef, xo)
            median = float(np.median(others))
            scale = max(MAD_TO_SIGMA * float(np.median(np.abs(others - median))), params.cross_scale_floor)
            resid = float(y[i] - np.polyval(coef, x[i]))
            out.append((idx[i], (resid - median) / scale, len(acct), float(np.expm1(np.polyval(coef, x[i]))), resid))
    return pd.DataFrame(out, columns=["idx", "cs_z", "cs_n", "cs_expected", "cs_residual"])


def apply_cross_sectional(scored: pd.DataFrame, newest: pd.DataFrame, params) -> pd.DataFrame:
    """Label every candidate with its method and, where the same-age method cannot score it (no curve from
    publication, or too few earlier posts with data at its age) or ``params.method`` asks for it, replace its
    score by the cross-sectional one."""
    scored = scored.copy()
    scored["method"] = "same_age_growth"
    if params.method == "same_age_growth" or scored.empty:
        return scored
    use = scored["status"].isin(["no_window", "thin_baseline"]).to_numpy()
    if params.method == "cross_sectional":
        use = np.ones(len(scored), dtype=bool)
    if not use.any():
        return scored
    cs = score_cross_sectional(newest, scored.loc[use, "idx"].to_numpy(), params).set_index("idx")
    hit = use & scored["idx"].isin(cs.index).to_numpy()
    if params.method == "cross_sectional":
        scored.loc[~hit, ["z", "score"]] = np.nan
        scored.loc[~hit, "eligible"] = False
    if not hit.any():
        return scored
    rows = cs.loc[scored.loc[hit, "idx"]]
    newest_by_idx = newest.set_index("idx")
    eng = newest_by_idx.loc[scored.loc[hit, "idx"], "eng"].to_numpy(float)
    scored.loc[hit, "method"] = "cross_sectional"
    scored.loc[hit, "status"] = "scored"
    scored.loc[hit, "z"] = rows["cs_z"].to_numpy()
    scored.loc[hit, "baseline_n"] = rows["cs_n"].to_numpy() - 1
    scored.loc[hit, "engagement"] = eng
    scored.loc[hit, "eval_age_hours"] = newest_by_idx.loc[scored.loc[hit, "idx"], "age_h"].to_numpy(float)
    scored.loc[hit, "reach"] = newest_by_idx.loc[scored.loc[hit, "idx"], "reach"].to_numpy(float)
    scored.loc[hit, "expected_engagement"] = rows["cs_expected"].to_numpy()
    scored.loc[hit, "score"] = scored.loc[hit, "z"] * scored.loc[hit, "decay"]
    scored.loc[hit, "eligible"] = (scored.loc[hit, "z"] >= params.min_z_cross) & (eng > 0)
    return scored
