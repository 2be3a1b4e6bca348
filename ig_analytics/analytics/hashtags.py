"""Hashtags of the account's own captions and how the posts using them do (no API call: the stored captions).

A hashtag is ``#`` followed by letters, digits, underscores and combining marks of any script (so ``#हिंदी``,
``#東京``, ``#café`` and ``#straße`` are whole tags), not preceded by a word character (except the end of
the tag before it: ``#two#tags`` is two), and not all digits
(Instagram does not link ``#2024``). Tags are NFC-normalised and case-folded (``#Straße`` = ``#STRASSE`` =
``strasse``). ``hashtag_performance`` compares, per account and period, the median engagement rate by reach of
the posts using a tag with the account's median over all its posts of the period; a tag needs
``MIN_POSTS`` posts (one lucky post does not crown a tag). docs/analytics.md, "Hashtags".
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Sequence

import pandas as pd
from sqlalchemy.engine import Connection

from ig_analytics.analytics.slices import SLICE_ACCOUNTS, in_slices
from ig_analytics.storage.frames import read_frame

MIN_POSTS = 3
PERIOD_DAYS = (30, 90)  # the trailing periods computed every hour, each ending yesterday (UTC)
HASHTAG_COLUMNS = ("media_id", "hashtag", "ig_user_id")
PERFORMANCE_COLUMNS = (
    "ig_user_id", "period_start", "period_end", "hashtag", "posts", "median_engagement_rate_reach", "median_reach",
    "lift_vs_account_median", "account_median_engagement_rate_reach", "computed_at",
)
_CANDIDATE = re.compile(r"#([^\s#]*)")


def _tag_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def parse_hashtags(caption: str | None) -> list[str]:
    """The distinct hashtags of a caption, in order of first use, normalised (NFC, case-folded, no ``#``)."""
    if not caption:
        return []
    text = unicodedata.normalize("NFC", caption)
    out: list[str] = []
    tag_end = -1  # where the previous tag ended: "#two#tags" is two tags, "mail#x" none
    for match in _CANDIDATE.finditer(text):
        start = match.start()
        if start > 0 and start != tag_end and (_tag_char(text[start - 1]) or text[start - 1] == "&"):
            continue
        word = match.group(1)
        end = 0
        while end < len(word) and _tag_char(word[end]):
            end += 1
        tag_end = match.start(1) + end
        tag = unicodedata.normalize("NFC", word[:end].casefold())
        if tag and not tag.isdigit() and tag not in out:
            out.append(tag)
    return out


def hashtag_rows(posts: pd.DataFrame) -> pd.DataFrame:
    """``media_hashtags`` rows of ``posts`` (media_id, ig_user_id, caption): one per post and tag."""
    rows = [(m, tag, u) for m, u, c in posts[["media_id", "ig_user_id", "caption"]].itertuples(index=False)
            for tag in parse_hashtags(c)]
    return pd.DataFrame(rows, columns=list(HASHTAG_COLUMNS))


_POSTS_SQL = """
SELECT m.media_id, m.ig_user_id, m.published_at, m.caption, e.engagement_rate_reach, l.reach
FROM instagram.media m
LEFT JOIN instagram.media_engagement e ON e.media_id = m.media_id
LEFT JOIN instagram.media_insights_latest l ON l.media_id = m.media_id
WHERE m.media_product_type IS DISTINCT FROM 'STORY' AND m.published_at >= %(since)s {user_filter}
"""
# media_hashtags needs the captions alone: the rates' joins (media_insights_latest looks up each post's newest
# snapshot) cost ~17 buffer reads a post, for every post of every account every hour (issue 27).
_CAPTIONS_SQL = """
SELECT m.media_id, m.ig_user_id, m.caption FROM instagram.media m
WHERE m.media_product_type IS DISTINCT FROM 'STORY' AND m.published_at >= %(since)s {user_filter}
"""
# the posts' publication is instagram.media's (media_hashtags holds no copy of it)
_TAGS_SQL = """
SELECT h.media_id, h.hashtag, h.ig_user_id FROM instagram.media_hashtags h JOIN instagram.media m USING (media_id)
WHERE m.published_at >= %(since)s {user_filter}
ORDER BY h.media_id, h.hashtag
"""


def _user_filter(ig_user_ids: Sequence[str] | None, column: str) -> tuple[str, dict]:
    if ig_user_ids is None:
        return "", {}
    return f"AND {column} = ANY(%(users)s)", {"users": list(ig_user_ids)}


def read_posts(conn: Connection, since: datetime, ig_user_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The posts (no stories) published since ``since`` (of the given accounts; None: every account), with
    caption, rate by reach and reach."""
    where, params = _user_filter(ig_user_ids, "m.ig_user_id")
    return read_frame(conn, _POSTS_SQL.format(user_filter=where), {"since": since, **params},
                      text_columns=("media_id", "ig_user_id", "caption"))


def read_captions(conn: Connection, since: datetime, ig_user_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The posts (no stories) published since ``since`` (of the given accounts; None: every account), with
    their captions only (what ``hashtag_rows`` reads)."""
    where, params = _user_filter(ig_user_ids, "m.ig_user_id")
    return read_frame(conn, _CAPTIONS_SQL.format(user_filter=where), {"since": since, **params},
                      text_columns=("media_id", "ig_user_id", "caption"))


def read_tags(conn: Connection, since: datetime, ig_user_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """``media_hashtags`` rows (media_id, hashtag, ig_user_id) of the posts published since ``since`` (of the
    given accounts; None: every account)."""
    where, params = _user_filter(ig_user_ids, "h.ig_user_id")
    posts, _ = _user_filter(ig_user_ids, "m.ig_user_id")  # the posts' too: their index on (account, date) applies
    return read_frame(conn, _TAGS_SQL.format(user_filter=f"{where} {posts}"), {"since": since, **params},
                      text_columns=("media_id", "hashtag", "ig_user_id"))


def performance_rows(posts: pd.DataFrame, tags: pd.DataFrame, today: date, computed_at: datetime,
                     periods: tuple[int, ...] = PERIOD_DAYS, min_posts: int = MIN_POSTS) -> pd.DataFrame:
    """``hashtag_performance`` of each period of ``periods`` days ending ``today``: per account and tag with at
    least ``min_posts`` posts, the posts, the medians of their rate by reach and of their reach, and the lift
    against the account's median rate over all its posts of the period (NULL when that median is 0 or unknown)."""
    frames = []
    published = pd.to_datetime(posts["published_at"], utc=True) if len(posts) else pd.Series(dtype="datetime64[ns, UTC]")
    for days in periods:
        start = today - timedelta(days=days - 1)
        in_period = posts[published.dt.date.between(start, today)] if len(posts) else posts
        if in_period.empty:
            continue
        rate = pd.to_numeric(in_period["engagement_rate_reach"], errors="coerce")
        account_median = rate.groupby(in_period["ig_user_id"]).median().rename("account_median")
        joined = tags.merge(in_period[["media_id", "engagement_rate_reach", "reach"]], on="media_id")
        if joined.empty:
            continue
        joined["engagement_rate_reach"] = pd.to_numeric(joined["engagement_rate_reach"], errors="coerce")
        joined["reach"] = pd.to_numeric(joined["reach"], errors="coerce")
        grouped = joined.groupby(["ig_user_id", "hashtag"]).agg(
            posts=("media_id", "nunique"), median_engagement_rate_reach=("engagement_rate_reach", "median"),
            median_reach=("reach", "median")).reset_index()
        grouped = grouped[grouped["posts"] >= min_posts].join(account_median, on="ig_user_id")
        denominator = grouped["account_median"].where(grouped["account_median"] > 0)
        grouped["lift_vs_account_median"] = grouped["median_engagement_rate_reach"] / denominator
        grouped["period_start"], grouped["period_end"] = pd.Timestamp(start), pd.Timestamp(today)
        frames.append(grouped.rename(columns={"account_median": "account_median_engagement_rate_reach"}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PERFORMANCE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out["computed_at"] = pd.Timestamp(computed_at)
    out["posts"] = out["posts"].astype("int64")
    return out[list(PERFORMANCE_COLUMNS)]


def tags_in_slices(conn: Connection, ig_user_ids: Sequence[str], since: datetime,
                   size: int = SLICE_ACCOUNTS) -> pd.DataFrame:
    """``media_hashtags`` of the given accounts' posts published since ``since``, ``size`` accounts at a time."""
    return in_slices(ig_user_ids, lambda part: hashtag_rows(read_captions(conn, since, part)), size)


def performance_in_slices(conn: Connection, ig_user_ids: Sequence[str], since: datetime, today: date,
                          computed_at: datetime, size: int = SLICE_ACCOUNTS) -> pd.DataFrame:
    """``hashtag_performance`` of the given accounts (their posts and tags published since ``since``), ``size``
    accounts at a time."""
    return in_slices(ig_user_ids, lambda part: performance_rows(read_posts(conn, since, part),
                                                                read_tags(conn, since, part), today, computed_at),
                     size)
