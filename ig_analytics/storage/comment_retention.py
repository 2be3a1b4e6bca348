"""Retention of other people's words (docs/operations.md, "Retention"): the comments' text and usernames blanked
after ``IG_ANALYTICS_COMMENT_TEXT_DAYS``, the tagged posts' captions too, and the comment rows of old posts
replaced by counts per post and day. Called by ``defs/retention.apply_retention``, which says when."""

from datetime import datetime
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ig_analytics.storage.account_batches import BATCH_ACCOUNTS, each_batch


def blank_comment_text(engine: Engine, before: datetime, now: datetime) -> int:
    """Blank the text and username of the comments written before ``before``; the rows stay. The reports'
    lists of open questions (performance_reports.report) lose the text of questions written before then too."""
    with engine.begin() as conn:
        blanked = conn.execute(sa.text(
            "UPDATE instagram.media_comments SET text = NULL, username = NULL, text_blanked_at = :now"
            " WHERE published_at < :before AND text_blanked_at IS NULL"), {"before": before, "now": now}).rowcount
        conn.execute(sa.text(  # a report lists the questions of its own period: only older periods can hold them
            "UPDATE instagram.performance_reports SET report = jsonb_set(report, '{conversation,unanswered_questions}',"
            " (SELECT COALESCE(jsonb_agg(CASE WHEN (q->>'published_at')::timestamptz < :before"
            "  THEN q || jsonb_build_object('text', NULL) ELSE q END), '[]'::jsonb)"
            "  FROM jsonb_array_elements(report->'conversation'->'unanswered_questions') q))"
            " WHERE jsonb_typeof(report->'conversation'->'unanswered_questions') = 'array'"
            " AND period_start <= CAST(:before AS date)"), {"before": before})
        return blanked


def blank_tagged_text(engine: Engine, before: datetime) -> int:
    """Caption and username of the tagged posts published before ``before``, in the table and in the reports."""
    with engine.begin() as conn:
        return _blank_tagged_text(conn, before)


def _blank_tagged_text(conn, before: datetime) -> int:
    blanked = conn.execute(sa.text(
        "UPDATE instagram.tagged_media SET caption = NULL, username = NULL"
        " WHERE published_at < :before AND (caption IS NOT NULL OR username IS NOT NULL)"), {"before": before}).rowcount
    conn.execute(sa.text(
        "UPDATE instagram.performance_reports SET report = jsonb_set(report, '{tagged_media,posts}',"
        " (SELECT COALESCE(jsonb_agg(CASE WHEN (t->>'published_at')::timestamptz < :before"
        "  THEN t || jsonb_build_object('caption', NULL, 'username', NULL) ELSE t END), '[]'::jsonb)"
        "  FROM jsonb_array_elements(report->'tagged_media'->'posts') t))"
        " WHERE jsonb_typeof(report->'tagged_media'->'posts') = 'array'"
        " AND period_start <= CAST(:before AS date)"), {"before": before})
    return blanked


_COMPACTED_ROWS = """
CREATE TEMP TABLE _comment_rows ON COMMIT DROP AS
SELECT c.comment_id, c.media_id, c.ig_user_id, c.published_at, c.parent_id IS NOT NULL AS is_reply,
       c.parent_id IS NULL AND NOT c.is_own AS is_top, f.first_at,
       c.parent_id IS NULL AND NOT c.is_own AND c.is_question AND f.first_at IS NULL AS open_question
FROM instagram.media_comments c JOIN instagram.media m ON m.media_id = c.media_id
LEFT JOIN LATERAL (SELECT min(r.published_at) AS first_at FROM instagram.media_comments r
                   WHERE r.parent_id = c.comment_id AND r.is_own) f ON c.parent_id IS NULL
WHERE m.ig_user_id = ANY(:ids) AND m.published_at < :before
  AND NOT EXISTS (SELECT 1 FROM instagram.media_comment_reads x
                  WHERE x.media_id = c.media_id AND x.rows_compacted_at IS NOT NULL)"""
# The minutes as the report computes them from rows (percentile_cont reads a double precision): the same floats.
_COMPACTED_COUNTS = """
INSERT INTO instagram.comment_day_counts
SELECT ig_user_id, CAST(published_at AT TIME ZONE 'UTC' AS date), media_id, count(*), count(*) FILTER (WHERE is_top),
       count(*) FILTER (WHERE is_reply), array_agg(CAST(extract(epoch FROM first_at - published_at) / 60
       AS double precision) ORDER BY published_at, comment_id) FILTER (WHERE is_top AND first_at IS NOT NULL)
FROM _comment_rows WHERE NOT open_question GROUP BY 1, 2, 3"""
_COMPACTED_POSTS = """
INSERT INTO instagram.media_comment_reads (media_id, ig_user_id, read_at, rows_compacted_at)
SELECT DISTINCT media_id, ig_user_id, CAST(:now AS timestamptz), CAST(:now AS timestamptz) FROM _comment_rows
ON CONFLICT (media_id) DO UPDATE SET rows_compacted_at = EXCLUDED.rows_compacted_at"""


def compact_comment_rows(engine: Engine, before: datetime, now: datetime,
                         batch_accounts: int = BATCH_ACCOUNTS) -> int:
    """Replace the comment rows of the posts published before ``before`` by their counts per post and UTC day
    (``comment_day_counts``), except the open questions (unanswered top-level questions of others: a report
    lists them); mark the posts compacted (``media_comment_reads.rows_compacted_at``: not read again). Returns
    the posts compacted. The report's conversation section reads rows and counts: the same numbers after.
    The posts of ``batch_accounts`` accounts (their owners in ``instagram.media``) per transaction, each committed
    (``storage/account_batches``: the first run after an upgrade compacts every account's older posts); a post's
    rows, counts and mark in one."""
    return sum(each_batch(engine, ("media",), lambda conn, ids: compact_accounts_comment_rows(conn, ids, before, now),
                          batch_accounts))


def compact_accounts_comment_rows(conn: Connection, ig_user_ids: Sequence[str], before: datetime,
                                  now: datetime) -> int:
    """:func:`compact_comment_rows` of these accounts' posts, in the caller's transaction."""
    conn.execute(sa.text(_COMPACTED_ROWS), {"before": before, "ids": list(ig_user_ids)})
    conn.execute(sa.text("ANALYZE _comment_rows"))  # its size, for the delete's plan: a batch is a few posts
    conn.execute(sa.text(_COMPACTED_COUNTS))
    conn.execute(sa.text("DELETE FROM instagram.media_comments c USING _comment_rows r"
                         " WHERE c.comment_id = r.comment_id AND NOT r.open_question"))
    return conn.execute(sa.text(_COMPACTED_POSTS), {"now": now}).rowcount
