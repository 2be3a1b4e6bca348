"""Weekly benchmarks of each account against its competitors, from public fields only (docs/analytics.md,
"Competitors"): followers, follower growth, posts by format, likes + comments per post, engagement per
follower, and the ranks. The account's own row is computed the same way from its own public numbers (business
discovery of its own username), so the comparison is like for like.

``read_profiles`` and ``read_posts`` read the inputs (SQL); ``benchmark_rows`` is pure (frames in, frame out).
Weeks are ISO weeks of UTC days, Monday first.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Connection

from ig_analytics.storage.frames import read_frame

COLUMNS = ["ig_user_id", "week_start", "subject", "is_self", "followers", "follower_growth", "follower_growth_pct",
           "posts", "reels", "carousels", "images", "avg_interactions_per_post", "engagement_per_follower",
           "rank_follower_growth", "rank_follower_growth_pct", "rank_posts", "rank_avg_interactions",
           "rank_engagement_per_follower", "subjects", "computed_at"]
RANKS = {"rank_follower_growth": "follower_growth", "rank_follower_growth_pct": "follower_growth_pct",
         "rank_posts": "posts", "rank_avg_interactions": "avg_interactions_per_post",
         "rank_engagement_per_follower": "engagement_per_follower"}

# Subjects: the account itself and its competitors that are still watched and active. Captures of the week and
# everything before it (the growth's base is the last capture before the week).
_PROFILES_SQL = """
SELECT p.ig_user_id, p.username, p.is_self, p.date, p.followers_count
FROM instagram.competitor_profiles_daily p
LEFT JOIN instagram.competitors c ON c.ig_user_id = p.ig_user_id AND c.username = p.username
WHERE p.date <= %(day_to)s AND (p.is_self OR c.status = 'active')
"""
# Each post's newest snapshot, once per account that watches its owner.
_POSTS_SQL = """
SELECT w.ig_user_id, m.username, m.media_id, m.published_at, m.media_product_type, m.media_type,
       s.like_count, s.comments_count
FROM (SELECT DISTINCT ig_user_id, username FROM instagram.competitor_profiles_daily) w
JOIN instagram.competitor_media m ON m.username = w.username
JOIN LATERAL (SELECT like_count, comments_count FROM instagram.competitor_media_snapshots x
              WHERE x.media_id = m.media_id ORDER BY x.captured_at DESC LIMIT 1) s ON true
WHERE m.published_at >= %(start)s AND m.published_at < %(end)s
"""


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def read_profiles(conn: Connection, day_to: date) -> pd.DataFrame:
    frame = read_frame(conn, _PROFILES_SQL, {"day_to": day_to}, text_columns=("ig_user_id", "username"))
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame["is_self"] = frame["is_self"].astype(str).str.lower().isin(("t", "true"))
    return frame


def read_posts(conn: Connection, first_week: date, last_week: date) -> pd.DataFrame:
    start = datetime(first_week.year, first_week.month, first_week.day)
    end = datetime(last_week.year, last_week.month, last_week.day) + timedelta(days=7)
    return read_frame(conn, _POSTS_SQL, {"start": f"{start.isoformat()}+00:00", "end": f"{end.isoformat()}+00:00"},
                      text_columns=("ig_user_id", "username", "media_id"), date_columns=("published_at",))


def benchmark_rows(profiles: pd.DataFrame, posts: pd.DataFrame, first_week: date, last_week: date,
                   computed_at: datetime) -> pd.DataFrame:
    """One row per account, week (first_week..last_week, Mondays) and subject captured in that week. Pure."""
    rows = []
    week = week_start(first_week)
    while week <= last_week:
        rows.extend(_week_rows(profiles, posts, week))
        week += timedelta(days=7)
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if not c.startswith("rank_") and c not in
                                        ("subjects", "computed_at")])
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    groups = frame.groupby(["ig_user_id", "week_start"], sort=False)
    for rank, value in RANKS.items():
        frame[rank] = groups[value].rank(method="min", ascending=False).astype("Int64")
    frame["subjects"] = groups["subject"].transform("size").astype("Int64")
    frame["computed_at"] = computed_at
    return frame[COLUMNS]


def _week_rows(profiles: pd.DataFrame, posts: pd.DataFrame, week: date) -> list[dict]:
    end = week + timedelta(days=7)
    captured = profiles[(profiles["date"] >= week) & (profiles["date"] < end)]
    out = []
    for (ig_user_id, subject), caps in captured.groupby(["ig_user_id", "username"], sort=True):
        before = profiles[(profiles["ig_user_id"] == ig_user_id) & (profiles["username"] == subject)
                          & (profiles["date"] < week)]
        caps = caps.sort_values("date")
        followers = _int(caps["followers_count"].iloc[-1])
        base = _int(before.sort_values("date")["followers_count"].iloc[-1]) if len(before) else \
            _int(caps["followers_count"].iloc[0])
        growth = None if followers is None or base is None else followers - base
        mine = posts[(posts["ig_user_id"] == ig_user_id) & (posts["username"] == subject)] if len(posts) else posts
        if len(mine):
            published = mine["published_at"].dt.tz_convert("UTC").dt.date
            mine = mine[(published >= week) & (published < end)]
        out.append({
            "ig_user_id": ig_user_id, "week_start": week, "subject": subject, "is_self": bool(caps["is_self"].iloc[-1]),
            "followers": followers, "follower_growth": growth,
            "follower_growth_pct": growth * 100.0 / base if growth is not None and base else None,
            **_post_numbers(mine, followers),
        })
    return out


def _post_numbers(posts: pd.DataFrame, followers: int | None) -> dict:
    """Posts by format, mean likes + comments of the posts whose likes are public, engagement per follower."""
    if not len(posts):
        return {"posts": 0, "reels": 0, "carousels": 0, "images": 0, "avg_interactions_per_post": None,
                "engagement_per_follower": None}
    reels = posts["media_product_type"] == "REELS"
    public = posts[posts["like_count"].notna()]
    avg = float((public["like_count"] + public["comments_count"].fillna(0)).mean()) if len(public) else None
    return {
        "posts": int(len(posts)), "reels": int(reels.sum()),
        "carousels": int((~reels & (posts["media_type"] == "CAROUSEL_ALBUM")).sum()),
        "images": int((~reels & (posts["media_type"] == "IMAGE")).sum()),
        "avg_interactions_per_post": avg,
        "engagement_per_follower": avg * 100.0 / followers if avg is not None and followers else None,
    }


def _int(value) -> int | None:
    return None if pd.isna(value) else int(value)
