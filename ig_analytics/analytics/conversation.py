"""Conversation metrics from the stored comments (docs/analytics.md, "Conversation"): pure functions on frames.

- A **top-level comment** is a comment of someone else with no parent (the account's own top-level comments are
  not conversation it is asked to answer); a **reply** is any comment with a parent, the account's included.
- A top-level comment is **answered** once a reply of the account (``is_own``) exists; its **first response** is
  the account's earliest reply, and the first-response time is that reply's time minus the comment's, in minutes.
- An **unanswered question** is an unanswered top-level comment whose text held a ``?`` (also ``？`` and ``؟``),
  decided when it was read (``is_question``), so it survives the blanking of the text.
- Per day (UTC, the day the comment was written): comments, replies, and of that day's top-level comments those
  answered and unanswered so far; the median and 90th percentile (linear interpolation) of the first-response
  times of the comments whose first response was written that day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Sequence

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from ig_analytics.analytics.slices import SLICE_ACCOUNTS, account_slices, concat_slices
from ig_analytics.storage.frames import read_frame

QUESTION_MARKS = ("?", "？", "؟")
WINDOW_DAYS = 35  # recomputed every hour: replies keep arriving on recent comments
RESPONSE_LOOKBACK_DAYS = 7  # conversation_daily reads a week more: first responses of the first days' comments
DAILY_COLUMNS = (
    "ig_user_id", "date", "comments", "replies", "top_level", "top_level_answered", "top_level_unanswered",
    "unanswered_questions", "answered_that_day", "median_first_response_minutes", "p90_first_response_minutes",
    "computed_at",
)
POST_COLUMNS = (
    "media_id", "ig_user_id", "published_at", "comments", "replies", "top_level_answered", "top_level_unanswered",
    "unanswered_questions", "median_first_response_minutes", "computed_at",
)


def is_question(text: str | None) -> bool:
    return bool(text) and any(mark in text for mark in QUESTION_MARKS)


_COMMENTS_SQL = """
SELECT c.comment_id, c.media_id, c.ig_user_id, c.parent_id, c.published_at, c.is_own, c.is_question,
       m.published_at AS post_published_at
FROM instagram.media_comments c JOIN instagram.media m ON m.media_id = c.media_id
WHERE {where}
"""


def read_comments(conn: Connection, since: datetime, by_post: bool = False,
                  ig_user_ids: Sequence[str] | None = None, posts_since: datetime | None = None) -> pd.DataFrame:
    """The comments written since ``since`` (``by_post``: every comment of the posts published since then), on
    the posts of the given accounts (None: every account); ``posts_since``: also every comment of the posts
    published since then."""
    where = "m.published_at >= %(since)s" if by_post else "c.published_at >= %(since)s"
    params: dict = {"since": since}
    if posts_since is not None:
        where = f"({where} OR m.published_at >= %(posts_since)s)"
        params["posts_since"] = posts_since
    if ig_user_ids is not None:
        where += " AND c.ig_user_id = ANY(%(users)s)"
        params["users"] = list(ig_user_ids)
    return read_frame(conn, _COMMENTS_SQL.format(where=where), params,
                      text_columns=("comment_id", "media_id", "ig_user_id", "parent_id"))


def _bool(values: pd.Series) -> pd.Series:
    """Booleans as read from PostgreSQL's COPY text ('t'/'f') or already bool; NULL is False."""
    return pd.Series(values.isin(("t", True)).to_numpy(dtype=bool), index=values.index, name=values.name)


def first_responses(comments: pd.DataFrame) -> pd.DataFrame:
    """One row per top-level comment of someone else: its account, post, time, question flag, and the time of the
    account's first reply (NaT while unanswered) and the minutes it took."""
    frame = comments.copy()
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    frame["is_question"] = _bool(frame["is_question"])
    is_own = _bool(frame["is_own"])
    tops = frame[frame["parent_id"].isna() & ~is_own]
    own_replies = frame[frame["parent_id"].notna() & is_own]
    first = own_replies.groupby("parent_id")["published_at"].min().rename("first_response_at")
    out = tops.join(first, on="comment_id")
    out["response_minutes"] = (out["first_response_at"] - out["published_at"]).dt.total_seconds() / 60
    return out


def percentile_by(values: pd.Series, keys: list[pd.Series], q: float) -> pd.Series:
    """Per group of ``keys``: ``np.percentile`` (linear) of its non-missing ``values``, NaN for a group with none;
    indexed by the groups, sorted. The same float as ``np.percentile`` per group (its virtual index, neighbours
    and interpolation, element by element), without a Python call per group (issue 27: a call per account and
    day cost more than the rest of ``daily_rows``)."""
    index = values.groupby(keys, sort=True).size().index
    frame = pd.DataFrame({"v": values.to_numpy(dtype="float64")})
    for i, key in enumerate(keys):
        frame[f"k{i}"] = key.to_numpy()
    frame = frame[frame["v"].notna()]
    names = [f"k{i}" for i in range(len(keys))]
    frame = frame.sort_values([*names, "v"], kind="mergesort")
    sizes = frame.groupby(names, sort=True).size()
    if sizes.empty:
        return pd.Series(np.nan, index=index, dtype="float64")
    n = sizes.to_numpy()
    starts = np.concatenate(([0], np.cumsum(n)[:-1]))
    virtual = (n - 1) * np.true_divide(q, 100)
    previous = np.floor(virtual)
    above = virtual >= n - 1
    gamma = virtual - np.where(above, -1, previous)  # numpy's own (the neighbours are equal there)
    low = np.where(above, n - 1, previous).astype(np.intp)
    high = np.where(above, n - 1, previous + 1).astype(np.intp)
    ordered = frame["v"].to_numpy()
    a, b = ordered[starts + low], ordered[starts + high]
    diff = b - a
    out = a + diff * gamma
    out = np.where(gamma >= 0.5, b - diff * (1 - gamma), out)  # numpy's _lerp
    found = pd.Series(out, index=sizes.index.set_names(index.names))
    return found.reindex(index)


def daily_rows(comments: pd.DataFrame, first_day: date, computed_at: datetime) -> pd.DataFrame:
    """``conversation_daily`` of the days from ``first_day`` on that have comments or responses."""
    if comments.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DAILY_COLUMNS})
    frame = comments.assign(published_at=pd.to_datetime(comments["published_at"], utc=True))
    frame["day"] = frame["published_at"].dt.date
    tops = first_responses(frame)
    tops["day"] = tops["published_at"].dt.date
    tops["answered"] = tops["first_response_at"].notna()
    tops["open_question"] = ~tops["answered"] & tops["is_question"]
    tops["response_day"] = tops["first_response_at"].dt.date
    keys = ["ig_user_id", "day"]
    by_day = tops.groupby(keys).agg(top_level=("comment_id", "size"), top_level_answered=("answered", "sum"),
                                    unanswered_questions=("open_question", "sum"))
    replies = frame[frame["parent_id"].notna()].groupby(keys).size().rename("replies")
    answered = tops[tops["answered"]]
    times = answered.groupby(["ig_user_id", "response_day"])["response_minutes"]
    p90 = percentile_by(answered["response_minutes"], [answered["ig_user_id"], answered["response_day"]], 90)
    timing = pd.DataFrame({"answered_that_day": times.size(), "median_first_response_minutes": times.median(),
                           "p90_first_response_minutes": p90})
    timing.index = timing.index.set_names(keys)
    out = by_day.join(replies, how="outer").join(timing, how="outer").reset_index()
    out = out[out["day"] >= first_day]
    for column in ("top_level", "top_level_answered", "unanswered_questions", "replies", "answered_that_day"):
        out[column] = out[column].fillna(0).astype("int64")
    out["comments"] = out["top_level"]
    out["top_level_unanswered"] = out["top_level"] - out["top_level_answered"]
    out["date"] = pd.to_datetime(out["day"])
    out["computed_at"] = pd.Timestamp(computed_at)
    return out[list(DAILY_COLUMNS)].reset_index(drop=True)


def post_rows(comments: pd.DataFrame, computed_at: datetime) -> pd.DataFrame:
    """``conversation_posts``: per post, its comments, replies, answered and unanswered, open questions and the
    median first-response time."""
    if comments.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in POST_COLUMNS})
    tops = first_responses(comments)
    tops["answered"] = tops["first_response_at"].notna()
    tops["open_question"] = ~tops["answered"] & tops["is_question"]
    posts = comments.assign(is_reply=comments["parent_id"].notna()).groupby(["media_id", "ig_user_id"]).agg(
        published_at=("post_published_at", "first"), replies=("is_reply", "sum")).reset_index()
    per_post = tops.groupby("media_id").agg(comments=("comment_id", "size"), top_level_answered=("answered", "sum"),
                                            unanswered_questions=("open_question", "sum"),
                                            median_first_response_minutes=("response_minutes", "median"))
    out = posts.join(per_post, on="media_id")
    for column in ("comments", "top_level_answered", "unanswered_questions", "replies"):
        out[column] = out[column].fillna(0).astype("int64")
    out["top_level_unanswered"] = out["comments"] - out["top_level_answered"]
    out["published_at"] = pd.to_datetime(out["published_at"], utc=True)
    out["computed_at"] = pd.Timestamp(computed_at)
    return out[list(POST_COLUMNS)]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def tables_in_slices(conn: Connection, ig_user_ids: Sequence[str], first_day: date, computed_at: datetime,
                     daily: bool = True, posts: bool = True,
                     size: int = SLICE_ACCOUNTS) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(``conversation_daily`` of the days from ``first_day`` on, ``conversation_posts`` of the posts published
    from then on) of the given accounts, None for a table not asked; ``size`` accounts at a time (the same rows as
    all at once: every row is one account's). One read of each slice's comments serves both tables (issue 27:
    they read the same ~5 M comments in a steady hour of 10,000 accounts, twice): the comments written since a
    week before ``first_day`` (the daily table's: the first responses of the first days' comments) or on the posts
    published since ``first_day`` (the posts table's), each table then taking its own."""
    since_written = _midnight(first_day - timedelta(days=RESPONSE_LOOKBACK_DAYS))
    since_posted = _midnight(first_day)
    days, per_post = [], []
    for part in account_slices(ig_user_ids, size):
        comments = read_comments(conn, since_written, ig_user_ids=part, posts_since=since_posted if posts else None)
        if daily:
            written = pd.to_datetime(comments["published_at"], utc=True, format="ISO8601")
            days.append(daily_rows(comments[(written >= since_written).to_numpy()], first_day, computed_at))
        if posts:
            posted = pd.to_datetime(comments["post_published_at"], utc=True, format="ISO8601")
            per_post.append(post_rows(comments[(posted >= since_posted).to_numpy()], computed_at))
    return (concat_slices(days) if daily else None), (concat_slices(per_post) if posts else None)
