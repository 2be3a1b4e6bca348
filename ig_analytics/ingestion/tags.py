"""The posts of other accounts that tag one account (``tagged_media``): read about once a day, by every sync.

The first read takes up to 20 pages of 50 (the newest 1,000 posts); later reads page only through the posts of
the last ``REFRESH_DAYS`` days, whose counts still move. A read replaces nothing: a post seen before gets its new
like and comment counts and ``last_seen_at``; a post no longer served (deleted, made private) stays as it was last
seen."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.graph_api.comments import read_tags
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.storage.db import bulk_upsert

READ_EVERY = timedelta(hours=23)
REFRESH_DAYS = 30
_COLUMNS = ("ig_user_id", "media_id", "username", "media_type", "media_product_type", "published_at", "permalink",
            "caption", "like_count", "comments_count", "first_seen_at", "last_seen_at")


def _last_read(engine: Engine, ig_user_id: str) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT read_at FROM instagram.tag_reads WHERE ig_user_id = :id"),
                            {"id": ig_user_id}).scalar()


def tags_due(engine: Engine, ig_user_id: str, now: datetime) -> bool:
    last = _last_read(engine, ig_user_id)
    return last is None or now - last >= READ_EVERY


def sync_tags(engine: Engine, api: InsightsApi, ig_user_id: str, now: datetime, text_days: int) -> int:
    """Read the account's tagged posts and store them; returns the posts read. The caption and username of a post
    published more than ``text_days`` ago (IG_ANALYTICS_COMMENT_TEXT_DAYS) are not kept: they belong to someone
    who is not our user, and retention has blanked them (or would)."""
    first = _last_read(engine, ig_user_id) is None
    posts = read_tags(api, since=None if first else now - timedelta(days=REFRESH_DAYS))
    keep_text_since = now - timedelta(days=text_days)
    rows = []
    for p in posts:
        username, caption = (p.username, p.caption) if p.published_at >= keep_text_since else (None, None)
        rows.append((ig_user_id, p.media_id, username, p.media_type, p.media_product_type, p.published_at,
                     p.permalink, caption, p.like_count, p.comments_count, now, now))
    with engine.begin() as conn:
        bulk_upsert(conn, "tagged_media", _COLUMNS, rows, key_columns=("ig_user_id", "media_id"),
                    update_columns=[c for c in _COLUMNS[2:] if c != "first_seen_at"])
        conn.execute(sa.text(
            "INSERT INTO instagram.tag_reads (ig_user_id, read_at, posts) VALUES (:id, :now, :n)"
            " ON CONFLICT (ig_user_id) DO UPDATE SET read_at = EXCLUDED.read_at, posts = EXCLUDED.posts"),
            {"id": ig_user_id, "now": now, "n": len(posts)})
    return len(posts)
