"""The comments of one account's posts, read frugally (docs/data-dictionary.md, ``media_comments``).

Which posts are read (the hourly media sync has just stored every recent post's ``comments_count``):
- a post whose count did not move since its last read: none (no call);
- a post never read: in full (a post with no comment is only remembered, no call);
- a post whose count moved: its newest pages, until a page reaches the newest top-level comment stored; when the new
  comments found fall short of the count's growth (replies to older comments), the post is read again in full;
- at the daily refresh (``full=True``: 02:10 UTC and every ``ig-analytics sync``) every post with comments of the
  window is read in full, and refused posts are asked again: a comment deleted on Instagram leaves the table then.
A full read that reached the last page deletes the stored comments it did not find. A post whose rows retention
compacted into counts (``media_comment_reads.rows_compacted_at``, defs/retention.py) is never read again: its
comments would be stored beside their counts (counted twice) or, in full, delete its open questions.

An account whose token may not read comments is told once (``comment_access``, a warning on the change) and then
asked again once a day; its other syncs are unaffected. No comment text or commenter name is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ig_analytics.analytics.conversation import is_question
from ig_analytics.constants import MEDIA_WINDOW_DAYS
from ig_analytics.graph_api.comments import CommentRequest, CommentsNotPermitted, PostRead, read_comments
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.storage.db import bulk_upsert

log = logging.getLogger("ig_analytics.ingestion")

ACCESS_RETRY = timedelta(hours=23)  # a denied account is asked again about once a day
_COMMENT_COLUMNS = ("comment_id", "media_id", "ig_user_id", "parent_id", "username", "text", "like_count", "hidden",
                    "published_at", "is_own", "is_question", "first_seen_at", "last_seen_at")
_CONTENT_COLUMNS = ("media_id", "parent_id", "username", "text", "like_count", "hidden", "published_at", "is_own",
                    "is_question")


@dataclass
class CommentSyncResult:
    posts_read: int = 0
    posts_refused: int = 0
    comments_written: int = 0
    comments_deleted: int = 0
    denied: str | None = None  # why the account may not read comments
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Post:
    media_id: str
    count: int | None
    read_count: int | None
    read: bool
    refused: bool
    newest_top: datetime | None


def _posts(conn: Connection, ig_user_id: str, since: datetime) -> list[_Post]:
    """The account's posts of the window with what decides their read. ``newest_top`` (an incremental read's
    start) is looked up only for a read, readable post whose count moved, the only one :func:`plan_reads` starts
    from it: the lookup reads every stored comment of the post, and it ran for every post every hour (issue 27)."""
    rows = conn.execute(sa.text(
        "SELECT m.media_id, m.comments_count, r.comments_count, r.media_id IS NOT NULL, r.refused_reason IS NOT NULL,"
        " CASE WHEN r.media_id IS NOT NULL AND r.refused_reason IS NULL"
        "  AND m.comments_count IS DISTINCT FROM r.comments_count THEN (SELECT max(c.published_at)"
        "  FROM instagram.media_comments c WHERE c.media_id = m.media_id AND c.parent_id IS NULL) END"
        " FROM instagram.media m LEFT JOIN instagram.media_comment_reads r ON r.media_id = m.media_id"
        " WHERE m.ig_user_id = :id AND m.published_at >= :since AND m.media_product_type IS DISTINCT FROM 'STORY'"
        " AND r.rows_compacted_at IS NULL ORDER BY m.published_at DESC"), {"id": ig_user_id, "since": since}).all()
    return [_Post(*row) for row in rows]


def plan_reads(posts: list[_Post], full: bool) -> tuple[list[CommentRequest], list[_Post]]:
    """The reads to make, and the posts to remember without a call (never read, no comment)."""
    requests, quiet = [], []
    for p in posts:
        if p.count is None:
            continue  # the count is unknown this hour: nothing says whether it moved
        if not p.read and p.count == 0:
            quiet.append(p)
        elif full and (p.count > 0 or p.refused):
            requests.append(CommentRequest(p.media_id, full=True))
        elif p.refused or (p.read and p.count == p.read_count):
            continue
        elif not p.read or p.read_count is None or p.count < p.read_count or p.newest_top is None:
            requests.append(CommentRequest(p.media_id, full=True))
        else:
            requests.append(CommentRequest(p.media_id, full=False, known_until=p.newest_top))
    return requests, quiet


def _stored_ids(conn: Connection, media_ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {m: set() for m in media_ids}
    if media_ids:
        for media_id, comment_id in conn.execute(sa.text(
                "SELECT media_id, comment_id FROM instagram.media_comments WHERE media_id = ANY(:ids)"),
                {"ids": media_ids}):
            out[media_id].add(comment_id)
    return out


def _access(conn: Connection, ig_user_id: str) -> tuple[str, datetime] | None:
    row = conn.execute(sa.text("SELECT status, checked_at FROM instagram.comment_access WHERE ig_user_id = :id"),
                       {"id": ig_user_id}).first()
    return (row[0], row[1]) if row else None


def _set_access(conn: Connection, ig_user_id: str, status: str, reason: str | None, now: datetime) -> bool:
    """Record the account's comment permission; True when it changed (the caller tells it then, once)."""
    previous = _access(conn, ig_user_id)
    conn.execute(sa.text(
        "INSERT INTO instagram.comment_access (ig_user_id, status, reason, checked_at, changed_at)"
        " VALUES (:id, :s, :r, :now, :now) ON CONFLICT (ig_user_id) DO UPDATE SET status = EXCLUDED.status,"
        " reason = EXCLUDED.reason, checked_at = EXCLUDED.checked_at,"
        " changed_at = CASE WHEN comment_access.status = EXCLUDED.status THEN comment_access.changed_at"
        " ELSE EXCLUDED.changed_at END"), {"id": ig_user_id, "s": status, "r": reason, "now": now})
    return previous is None or previous[0] != status


def _second_pass(reads: list[PostRead], requests: list[CommentRequest], posts: dict[str, _Post],
                 stored: dict[str, set[str]]) -> list[CommentRequest]:
    """Incremental reads whose new comments fall short of the count's growth: replies to older comments, read
    in full."""
    again = []
    for read, request in zip(reads, requests):
        post = posts[read.media_id]
        if request.full or read.refused or read.failed:
            continue
        new = sum(1 for c in read.comments if c.comment_id not in stored[read.media_id])
        if new < (post.count or 0) - (post.read_count or 0):
            again.append(CommentRequest(read.media_id, full=True))
    return again


def sync_comments(engine: Engine, api: InsightsApi, ig_user_id: str, username: str | None, now: datetime,
                  full: bool = False, window_days: int = MEDIA_WINDOW_DAYS) -> CommentSyncResult:
    """Read the comments of the account's posts that need it and store them (one transaction)."""
    result = CommentSyncResult()
    with engine.connect() as conn:
        access = _access(conn, ig_user_id)
        if access and access[0] == "denied" and now - access[1] < ACCESS_RETRY:
            result.denied = "comments permission missing (asked again once a day)"
            return result
        posts = _posts(conn, ig_user_id, now - timedelta(days=window_days))
    requests, quiet = plan_reads(posts, full)
    by_id = {p.media_id: p for p in posts}
    try:
        reads = read_comments(api, requests) if requests else []
        with engine.connect() as conn:
            stored = _stored_ids(conn, [r.media_id for r in requests])
        again = _second_pass(reads, requests, by_id, stored)
        if again:
            redone = {r.media_id: r for r in read_comments(api, again)}
            reads = [redone.get(r.media_id, r) for r in reads]
            requests = [CommentRequest(r.media_id, True) if r.media_id in redone else r for r in requests]
    except CommentsNotPermitted as exc:
        with engine.begin() as conn:
            if _set_access(conn, ig_user_id, "denied", str(exc), now):
                log.warning("account %s: comments not stored: %s", ig_user_id, exc, extra={"ig_user_id": ig_user_id})
        result.denied = str(exc)
        return result
    with engine.begin() as conn:
        if requests and _set_access(conn, ig_user_id, "granted", None, now) and access:
            log.info("account %s: comments readable again", ig_user_id)
        _store(conn, result, ig_user_id, username, now, reads, requests, by_id, quiet)
    return result


def _store(conn: Connection, result: CommentSyncResult, ig_user_id: str, username: str | None, now: datetime,
           reads: list[PostRead], requests: list[CommentRequest], posts: dict[str, _Post], quiet: list[_Post]) -> None:
    own = (username or "").casefold()
    rows = [(c.comment_id, c.media_id, ig_user_id, c.parent_id, c.username, c.text, c.like_count, c.hidden,
             c.published_at, bool(own) and (c.username or "").casefold() == own,
             c.parent_id is None and is_question(c.text), now, now)
            for read in reads for c in read.comments]
    # A comment read again unchanged is not rewritten (issue 27: a full read rewrote every comment of the post
    # for last_seen_at alone, about half the server's WAL in a steady hour); last_seen_at moves when it changed.
    result.comments_written = bulk_upsert(
        conn, "media_comments", _COMMENT_COLUMNS, rows, key_columns=("comment_id",),
        update_columns=[c for c in _COMMENT_COLUMNS if c not in ("comment_id", "first_seen_at")],
        only_if_changed=_CONTENT_COLUMNS)
    state = []
    for read, request in zip(reads, requests):
        if read.failed:
            continue
        post = posts[read.media_id]
        result.posts_read += 1
        result.posts_refused += bool(read.refused)
        complete_full = request.full and read.complete and not read.refused
        if complete_full:  # comments deleted on Instagram leave with the read that no longer finds them
            result.comments_deleted += conn.execute(sa.text(
                "DELETE FROM instagram.media_comments WHERE media_id = :m AND NOT (comment_id = ANY(:ids))"),
                {"m": read.media_id, "ids": [c.comment_id for c in read.comments]}).rowcount
        state.append((read.media_id, ig_user_id, post.count, now, now if complete_full else None, read.refused))
    state += [(p.media_id, ig_user_id, p.count, now, now, None) for p in quiet]
    bulk_upsert(conn, "media_comment_reads",
                ("media_id", "ig_user_id", "comments_count", "read_at", "full_read_at", "refused_reason"), state,
                key_columns=("media_id",), keep_existing_when_null=("full_read_at",))
