import json
import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics.analytics.trending import new_trending_entries, refresh_trending_posts
from ig_analytics.analytics.trending_scores import TrendingParams, robust_z, score_candidates, weighted_score
from ig_analytics_tests.analytics_data import add_account, add_media, add_snapshots, ts

T0 = ts(2026, 3, 1, 12)  # the viral post is published at T0 + 10 min


def test_robust_z_hand_computed():
    # median 10, |dev| = 2,0,2,1,3 -> MAD 2 -> scale 2.9652
    assert robust_z(16, [8, 10, 12, 11, 7]) == pytest.approx(6 / (1.4826 * 2))
    # MAD 0: floored by 10% of the median ...
    assert robust_z(120, [100, 100, 100, 100, 100]) == pytest.approx(2.0)
    # ... and by 1 engagement when the median is small
    assert robust_z(3, [0, 0, 0, 0, 0]) == pytest.approx(3.0)


def test_weighted_score_hand_computed():
    # rate 5% -> 2.0; 500 eng -> 0.15; reach 10000 -> 0.2; 2 days -> 8.0
    assert weighted_score([500], [10000], [2.0])[0] == pytest.approx(2.0 + 0.15 + 0.2 + 8.0)
    assert weighted_score([10_000_000], [100], [20])[0] == pytest.approx(0.4 * 10_000_000 + 30 + 0.002)
    assert math.isnan(weighted_score([5], [0], [1])[0])


def _curve(age_h: float, scale: float) -> float:
    """An ordinary post: most engagement in the first day."""
    return scale * 200 * (1 - math.exp(-age_h / 8))


def _snap_times(published, until):
    """Capture slots: hourly for the first 48 h, then daily, up to 30 days; read 5 min after the slot."""
    slot0 = published.replace(minute=0) + timedelta(hours=1)
    out = [slot0 + timedelta(hours=h) for h in range(48)]
    out += [slot0 + timedelta(hours=48 + 24 * d) for d in range(1, 29)]
    return [s for s in out if s + timedelta(minutes=5) <= until]


def _snapshots(media_id, user, published, until, value):
    rows = []
    for slot in _snap_times(published, until):
        fetched = slot + timedelta(minutes=5)
        age = (fetched - published).total_seconds() / 3600
        e = int(round(value(age)))
        rows.append({"media_id": media_id, "ig_user_id": user, "captured_at": slot, "fetched_at": fetched,
                     "reach": e * 10 + 50, "total_interactions": e})
    return rows


def _build(conn, until):
    add_account(conn, "T")
    rng = np.random.default_rng(7)
    media, snaps = [], []
    # 20 ordinary past posts, one a day
    for i in range(20):
        pub = T0 - timedelta(days=20 - i, hours=3) + timedelta(minutes=17)
        scale = float(rng.uniform(0.7, 1.3))
        media.append({"media_id": f"p{i:02d}", "ig_user_id": "T", "published_at": pub})
        snaps += _snapshots(f"p{i:02d}", "T", pub, until, lambda a, s=scale: _curve(a, s))
    # an old post (6 days) with huge lifetime totals, flat for days
    old_pub = T0 - timedelta(days=6) + timedelta(minutes=40)
    media.append({"media_id": "old", "ig_user_id": "T", "published_at": old_pub})
    snaps += _snapshots("old", "T", old_pub, until, lambda a: 80000 * min(a, 20) / 20)
    # the viral post: ordinary for 2 hours, then +400 engagements an hour
    viral_pub = T0 + timedelta(minutes=10)
    media.append({"media_id": "viral", "ig_user_id": "T", "published_at": viral_pub})
    snaps += _snapshots("viral", "T", viral_pub, until, lambda a: _curve(a, 1.0) + 400 * max(0.0, a - 2))
    # an ordinary post from yesterday
    y_pub = T0 - timedelta(hours=20)
    media.append({"media_id": "yday", "ig_user_id": "T", "published_at": y_pub})
    snaps += _snapshots("yday", "T", y_pub, until, lambda a: _curve(a, 1.0))
    # a brand-new account whose only posts take off: no baseline, no noise
    add_account(conn, "N")
    for j in range(2):
        pub = T0 - timedelta(hours=30 * j) + timedelta(minutes=10)
        media.append({"media_id": f"n{j}", "ig_user_id": "N", "published_at": pub})
        snaps += _snapshots(f"n{j}", "N", pub, until, lambda a: 1000 * a)
    add_media(conn, media)
    add_snapshots(conn, snaps)


def _listing(conn, as_of):
    return conn.execute(sa.text(
        "SELECT ig_user_id, rank, media_id, score, weighted_score, details FROM instagram.trending_posts "
        "WHERE as_of = :a ORDER BY ig_user_id, rank"), {"a": as_of}).all()


def test_viral_post_ranks_first_and_old_post_does_not(engine):
    with engine.begin() as conn:
        _build(conn, until=T0 + timedelta(hours=12))
        listings = {}
        for h in range(2, 8):
            as_of = T0 + timedelta(hours=h, minutes=30)
            refresh_trending_posts(conn, as_of=as_of, now=as_of)
            listings[h] = _listing(conn, as_of)
        # at +2h30 the viral post has one fast snapshot: not yet; after two or three hourly snapshots it leads
        assert all(r.media_id != "viral" for r in listings[2])
        for h in (4, 5, 6, 7):
            top = listings[h][0]
            assert (top.ig_user_id, top.media_id, top.rank) == ("T", "viral", 1), listings[h]
            assert top.details["baseline_n"] >= 5 and top.details["z"] > 10
        for h, rows in listings.items():
            assert all(r.media_id != "old" for r in rows)  # no recent growth: not listed at all
            assert all(r.ig_user_id != "N" for r in rows)  # brand-new account: no baseline, no listing
        # the old post's lifetime totals make it the story's weighted-score favourite, which is why that score
        # is kept only for comparison
        ev = conn.execute(sa.text(
            "SELECT ig_user_id, candidates, scored, listed FROM instagram.trending_evaluations "
            "WHERE as_of = :a ORDER BY 1"), {"a": T0 + timedelta(hours=5, minutes=30)}).all()
        assert ev[0].ig_user_id == "N" and ev[0].scored == 0 and ev[0].listed == 0
        # evaluated at a capture slot's start (as the hourly asset does), that slot's snapshots (read 5 min
        # later) count: the freshest observation is 5 min after as_of, not an hour before
        at_slot = T0 + timedelta(hours=5)
        refresh_trending_posts(conn, as_of=at_slot, now=at_slot)
        viral = next(r for r in _listing(conn, at_slot) if r.media_id == "viral")
        assert viral.details["eval_age_hours"] == pytest.approx(viral.details["age_hours"] + 5 / 60, abs=0.01)
        assert ev[1].ig_user_id == "T" and ev[1].candidates == 9 and ev[1].scored == 9  # 6 past posts + old, yday, viral


def test_old_post_scored_low_and_weighted_score_prefers_it():
    # pure path: the same data without a database
    posts = pd.DataFrame({
        "idx": range(1, 8),
        "media_id": [f"b{i}" for i in range(5)] + ["old", "new"],
        "ig_user_id": "X",
        "published_at": [T0 - timedelta(days=30 - i) for i in range(5)] + [T0 - timedelta(days=5), T0],
    })
    as_of = T0 + timedelta(hours=6)
    rows = []
    for idx, pub in zip(posts["idx"], posts["published_at"]):
        for h in range(1, 24 * 40):
            fetched = pub + timedelta(hours=h)
            if fetched > as_of:
                break
            age = float(h)
            if idx == 6:
                e = 90000.0  # flat
            elif idx == 7:
                e = 50.0 * age * age
            else:
                e = 20.0 * min(age, 10) + idx
            rows.append((idx, age, e, 1000.0 + e))
    snaps = pd.DataFrame(rows, columns=["idx", "age_h", "eng", "reach"])
    scored = score_candidates(posts, snaps, as_of, TrendingParams()).set_index("media_id")
    assert scored.loc["new", "eligible"] and scored.loc["new", "z"] > 10
    assert scored.loc["new", "gain"] == pytest.approx(50 * 36 - 50 * 9)
    assert not scored.loc["old", "eligible"] and scored.loc["old", "gain"] == 0
    assert scored.loc["old", "weighted_score"] > scored.loc["new", "weighted_score"]


def test_new_entries_and_idempotence(engine):
    with engine.begin() as conn:
        _build(conn, until=T0 + timedelta(hours=12))
        a1, a2, a3 = (T0 + timedelta(hours=h, minutes=30) for h in (2, 4, 5))
        refresh_trending_posts(conn, as_of=a1, now=a1)
        refresh_trending_posts(conn, as_of=a2, now=a2)
        new = new_trending_entries(conn, a2)
        assert [(e["ig_user_id"], e["media_id"], e["rank"]) for e in new] == [("T", "viral", 1)]
        assert new[0]["permalink"].endswith("/viral")
        refresh_trending_posts(conn, as_of=a3, now=a3)
        assert all(e["media_id"] != "viral" for e in new_trending_entries(conn, a3))
        before = _listing(conn, a2)
        tables = lambda: conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM instagram.trending_posts), (SELECT count(*) FROM instagram.trending_evaluations)")).one()
        counts = tables()
        refresh_trending_posts(conn, as_of=a2, now=a2)
        assert _listing(conn, a2) == before and tables() == counts
        # a single account's re-evaluation leaves the other accounts' rows alone
        refresh_trending_posts(conn, as_of=a2, ig_user_ids=["N"], now=a2)
        assert _listing(conn, a2) == before


def test_stale_candidates_are_not_scored():
    posts = pd.DataFrame({"idx": [1], "media_id": ["s"], "ig_user_id": "X", "published_at": [T0]})
    snaps = pd.DataFrame({"idx": [1], "age_h": [1.0], "eng": [10.0], "reach": [100.0]})
    scored = score_candidates(posts, snaps, T0 + timedelta(hours=40), TrendingParams())
    assert scored.loc[0, "status"] == "stale" and not scored.loc[0, "eligible"]


def test_vectorized_scoring_matches_a_naive_reference():
    """score_candidates against a per-post reimplementation with np.interp, on random curves."""
    rng = np.random.default_rng(3)
    params = TrendingParams(min_baseline_posts=3, max_baseline_posts=6)
    as_of = T0
    posts, rows, idx = [], [], 0
    for acc in ("A", "B"):
        for k in range(14):
            idx += 1
            pub = as_of - timedelta(hours=float(rng.uniform(1, 24 * 12)))
            posts.append((idx, f"{acc}{k}", acc, pub))
            age_now = (as_of - pub).total_seconds() / 3600
            ages = np.sort(np.r_[np.arange(0.3, min(age_now, 48), 1.0), np.arange(48.3, age_now, 24.0)])
            ages = ages[ages <= age_now]
            e = np.maximum.accumulate(rng.uniform(0, 30, len(ages)).cumsum()) if len(ages) else ages
            rows += [(idx, a, v, 10 * v) for a, v in zip(ages, e)]
    posts = pd.DataFrame(posts, columns=["idx", "media_id", "ig_user_id", "published_at"])
    snaps = pd.DataFrame(rows, columns=["idx", "age_h", "eng", "reach"])
    got = score_candidates(posts, snaps, as_of, params).set_index("media_id")

    def curve(i, t):
        s = snaps[snaps.idx == i]
        ages, vals = np.r_[0.0, s.age_h.to_numpy()], np.r_[0.0, s.eng.to_numpy()]
        if t > ages[-1] or t < 0:
            return np.nan
        j = np.searchsorted(ages, t, side="right") - 1
        if ages[j] == t:
            return vals[j]
        if ages[j + 1] - ages[j] > params.max_gap_hours:
            return np.nan
        return float(np.interp(t, ages, vals))

    checked = 0
    for _, p in posts.iterrows():
        age = (as_of - p.published_at).total_seconds() / 3600
        if age >= 24 * 7 or p.media_id not in got.index:
            continue
        s = snaps[snaps.idx == p.idx]
        a = s.age_h.max()
        lo = max(a - 3, 0)
        gain = curve(p.idx, a) - curve(p.idx, lo)
        earlier = posts[(posts.ig_user_id == p.ig_user_id) & (posts.published_at < p.published_at)]
        earlier = earlier.sort_values("published_at", ascending=False)
        base = [g for g in (curve(b, a) - curve(b, lo) for b in earlier.idx) if not np.isnan(g)][:6]
        row = got.loc[p.media_id]
        assert row["gain"] == pytest.approx(gain)
        assert row["baseline_n"] == len(base)
        if len(base) >= 3:
            assert row["z"] == pytest.approx(robust_z(gain, base, params))
            checked += 1
    assert checked >= 5


def test_chunked_accounts_give_the_same_listing(engine, monkeypatch):
    from ig_analytics.analytics import trending

    as_of = T0 + timedelta(hours=5, minutes=30)
    with engine.begin() as conn:
        _build(conn, until=T0 + timedelta(hours=12))
        refresh_trending_posts(conn, as_of=as_of, now=as_of)
        whole = _listing(conn, as_of)
        monkeypatch.setattr(trending, "ACCOUNTS_PER_CHUNK", 1)  # two accounts: two chunks
        written = refresh_trending_posts(conn, as_of=as_of, now=as_of)
        assert _listing(conn, as_of) == whole and written == len(whole) > 0


def _build_designed(conn, until, curves: bool):
    """Account "D": 24 ordinary posts, one a day, and a designed viral post published at T0 + 10 min. With
    ``curves`` every post has its snapshots from publication; without, only one snapshot, read at ``until``
    (a fresh install's first sync)."""
    add_account(conn, "D")
    rng = np.random.default_rng(11)
    media, snaps = [], []
    posts = [(f"d{i:02d}", T0 - timedelta(days=24 - i, hours=2) + timedelta(minutes=7), float(rng.uniform(0.6, 1.4)))
             for i in range(24)]
    for media_id, pub, scale in posts:
        media.append({"media_id": media_id, "ig_user_id": "D", "published_at": pub})
        snaps += _snapshots(media_id, "D", pub, until, lambda a, s=scale: _curve(a, s))
    viral_pub = T0 + timedelta(minutes=10)
    media.append({"media_id": "viral", "ig_user_id": "D", "published_at": viral_pub})
    snaps += _snapshots("viral", "D", viral_pub, until, lambda a: _curve(a, 1.0) + 400 * max(0.0, a - 2))
    if not curves:
        newest = {}
        for s in snaps:
            if s["media_id"] not in newest or s["captured_at"] > newest[s["media_id"]]["captured_at"]:
                newest[s["media_id"]] = s
        snaps = list(newest.values())
    add_media(conn, media)
    add_snapshots(conn, snaps)


@pytest.mark.parametrize("method", ["same_age_growth", "cross_sectional"])
def test_designed_viral_post_ranks_first_by_both_methods(engine, method):
    as_of = T0 + timedelta(hours=6, minutes=30)
    with engine.begin() as conn:
        _build_designed(conn, until=as_of, curves=True)
        refresh_trending_posts(conn, as_of=as_of, now=as_of, params=TrendingParams(method=method))
        rows = conn.execute(sa.text(
            "SELECT rank, media_id, method, engagement_rate, reach, details FROM instagram.trending_posts"
            " WHERE as_of = :a ORDER BY rank"), {"a": as_of}).all()
    assert rows and (rows[0].rank, rows[0].media_id, rows[0].method) == (1, "viral", method)
    assert {r.method for r in rows} == {method}
    # the story's fields: engagement rate by reach and reach of the newest snapshot (_snapshots: reach = 10 e + 50)
    e = rows[0].details["engagement"]
    assert rows[0].reach == 10 * e + 50 and rows[0].engagement_rate == pytest.approx(e / (10 * e + 50) * 100)


def test_fresh_install_lists_by_the_cross_sectional_method_then_same_age_takes_over(engine):
    as_of = T0 + timedelta(hours=6, minutes=30)
    with engine.begin() as conn:
        _build_designed(conn, until=as_of, curves=False)  # one snapshot per post: no curve from publication
        refresh_trending_posts(conn, as_of=as_of, now=as_of)
        first = _listing(conn, as_of)
        methods = dict(conn.execute(sa.text(
            "SELECT media_id, method FROM instagram.trending_posts WHERE as_of = :a"), {"a": as_of}).all())
        assert first and first[0].media_id == "viral" and methods["viral"] == "cross_sectional"
        assert first[0].details["expected_engagement"] < first[0].details["engagement"] / 3
        # fitted on the current totals of the account's other posts: a quiet account is not listed
        quiet = conn.execute(sa.text("SELECT count(*) FROM instagram.trending_posts WHERE media_id <> 'viral'")).scalar()
        assert quiet == 0
    with engine.begin() as conn:  # the same posts once their curves from publication exist: same-age growth
        conn.execute(sa.text("DELETE FROM instagram.accounts WHERE ig_user_id = 'D'"))  # cascades to posts
        _build_designed(conn, until=as_of, curves=True)
        refresh_trending_posts(conn, as_of=as_of, now=as_of)
        method = conn.execute(sa.text(
            "SELECT method FROM instagram.trending_posts WHERE as_of = :a AND media_id = 'viral'"), {"a": as_of}).scalar()
    assert method == "same_age_growth"


def test_each_evaluation_names_its_parameter_set_stored_once(engine):
    """Issue 27: the hourly evaluation rows held the same ~500 B of parameters each; now one row per distinct set,
    and the view shows each evaluation with the parameters it ran with."""
    other = TrendingParams(min_z=3.5)
    with engine.begin() as conn:
        _build(conn, until=T0 + timedelta(hours=8))
        for h, params in ((3, TrendingParams()), (4, TrendingParams()), (5, other), (6, TrendingParams())):
            as_of = T0 + timedelta(hours=h)
            refresh_trending_posts(conn, as_of=as_of, now=as_of, params=params)
        sets = conn.execute(sa.text("SELECT params FROM instagram.trending_parameter_sets ORDER BY params_id")).scalars()
        shown = conn.execute(sa.text("SELECT DISTINCT as_of, params FROM instagram.trending_evaluations_with_params"
                                     " ORDER BY as_of")).all()
    assert list(sets) == [TrendingParams().as_dict(), other.as_dict()]
    assert [p for _, p in shown] == [TrendingParams().as_dict()] * 2 + [other.as_dict(), TrendingParams().as_dict()]


def test_the_parameter_migration_keeps_what_each_existing_evaluation_ran_with(pg_url, monkeypatch):
    """0020 on a database with evaluations that hold their parameters: one set per distinct JSON, every row names
    its own, and the view shows the same parameters as the old column did."""
    from ig_analytics.storage import db

    eng = db.get_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS instagram CASCADE"))
    every = db._migration_files()
    monkeypatch.setattr(db, "_migration_files", lambda: [m for m in every if m[0] < 20])
    db.migrate(eng)
    old = {(h, '{"min_z": 3.0, "method": "auto"}' if h % 3 else '{"method": "auto", "min_z": 4.0}') for h in range(9)}
    with eng.begin() as conn:
        add_account(conn, "T")
        for h, params in old:
            conn.execute(sa.text(
                "INSERT INTO instagram.trending_evaluations (ig_user_id, as_of, candidates, scored, listed, params,"
                " computed_at) VALUES ('T', :t, 1, 1, 0, CAST(:p AS jsonb), :t)"),
                {"t": T0 + timedelta(hours=h), "p": params})
    monkeypatch.setattr(db, "_migration_files", lambda: every)
    assert "0020_trending_parameter_sets.sql" in db.migrate(eng)
    with eng.connect() as conn:
        shown = conn.execute(sa.text("SELECT as_of, params FROM instagram.trending_evaluations_with_params")).all()
        sets = conn.execute(sa.text("SELECT count(*) FROM instagram.trending_parameter_sets")).scalar()
        columns = conn.execute(sa.text("SELECT column_name FROM information_schema.columns WHERE table_schema ="
                                       " 'instagram' AND table_name = 'trending_evaluations'")).scalars().all()
    assert sorted((t, p) for t, p in shown) == sorted((T0 + timedelta(hours=h), json.loads(p)) for h, p in old)
    assert sets == 2 and "params" not in columns and "params_id" in columns
