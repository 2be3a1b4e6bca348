"""The report's "Conversation", "Posts that tagged you" and "Hashtags" sections (JSON keys ``conversation``,
``tagged_media``, ``hashtags``, present only when there is data for them) and their HTML.

Conversation covers the top-level comments of others written in the report's period (UTC days): how many the
account answered so far (response rate), the median and 90th-percentile minutes to its first reply, the open
questions newest first with a link to the post, and the posts with most conversation. A comment whose text was
blanked by retention (IG_ANALYTICS_COMMENT_TEXT_DAYS) is listed without its words."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

UNANSWERED_LIMIT = 10
TOP_POSTS = 5
TAGGED_LIMIT = 10
HASHTAG_LIMIT = 10
HASHTAG_PERIOD_DAYS = 30

_BOUNDS = "c.published_at >= CAST(:start AS date) AND c.published_at < CAST(:end AS date) + 1"
# The comments of old posts are counts per post and UTC day (comment_day_counts, retention's compact_comment_rows)
# beside the rows it keeps (open questions): every figure adds both, so a period reads the same after compaction.
_DAY_BOUNDS = "d.ig_user_id = :id AND d.day BETWEEN CAST(:start AS date) AND CAST(:end AS date)"
_SUMMARY = f"""
WITH tops AS (
    SELECT c.ig_user_id, c.published_at,
           (SELECT min(r.published_at) FROM instagram.media_comments r
            WHERE r.parent_id = c.comment_id AND r.is_own) AS first_at
    FROM instagram.media_comments c
    WHERE c.ig_user_id = :id AND c.parent_id IS NULL AND NOT c.is_own AND {_BOUNDS}),
days AS (SELECT top_level, replies, response_minutes FROM instagram.comment_day_counts d WHERE {_DAY_BOUNDS}),
minutes AS (
    SELECT CAST(extract(epoch FROM first_at - published_at) / 60 AS double precision) AS m FROM tops
    WHERE first_at IS NOT NULL
    UNION ALL SELECT unnest(response_minutes) FROM days)
SELECT (SELECT count(*) FROM tops) + (SELECT COALESCE(sum(top_level), 0) FROM days) AS comments,
       (SELECT count(first_at) FROM tops)
           + (SELECT COALESCE(sum(cardinality(response_minutes)), 0) FROM days) AS answered,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY m) FROM minutes) AS median_first_response_minutes,
       (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY m) FROM minutes) AS p90_first_response_minutes,
       (SELECT count(*) FROM instagram.media_comments c
        WHERE c.ig_user_id = :id AND c.parent_id IS NOT NULL AND {_BOUNDS})
           + (SELECT COALESCE(sum(replies), 0) FROM days) AS replies"""
_UNANSWERED = f"""
SELECT c.comment_id, c.media_id, m.permalink, c.text, c.published_at
FROM instagram.media_comments c JOIN instagram.media m ON m.media_id = c.media_id
WHERE c.ig_user_id = :id AND c.parent_id IS NULL AND NOT c.is_own AND c.is_question AND {_BOUNDS}
  AND NOT EXISTS (SELECT 1 FROM instagram.media_comments r WHERE r.parent_id = c.comment_id AND r.is_own)
ORDER BY c.published_at DESC, c.comment_id LIMIT :limit"""
_TOP_POSTS = f"""
SELECT p.media_id, m.permalink, left(m.caption, 80) AS caption, CAST(sum(p.n) AS bigint) AS comments_and_replies
FROM (SELECT c.media_id, count(*) AS n FROM instagram.media_comments c WHERE c.ig_user_id = :id AND {_BOUNDS}
      GROUP BY c.media_id
      UNION ALL SELECT d.media_id, d.comments_and_replies FROM instagram.comment_day_counts d WHERE {_DAY_BOUNDS}) p
JOIN instagram.media m ON m.media_id = p.media_id
GROUP BY p.media_id, m.permalink, m.caption ORDER BY sum(p.n) DESC, p.media_id LIMIT :limit"""
_TAGGED = """
SELECT media_id, username, media_product_type, published_at, permalink, left(caption, 100) AS caption, like_count,
       comments_count, count(*) OVER () AS total
FROM instagram.tagged_media c
WHERE c.ig_user_id = :id AND c.published_at >= CAST(:start AS date) AND c.published_at < CAST(:end AS date) + 1
ORDER BY published_at DESC, media_id LIMIT :limit"""
_HASHTAGS = """
SELECT hashtag, posts, median_engagement_rate_reach, median_reach, lift_vs_account_median, period_start, period_end
FROM instagram.hashtag_performance
WHERE ig_user_id = :id AND period_end = (
    SELECT max(period_end) FROM instagram.hashtag_performance
    WHERE ig_user_id = :id AND period_end <= :end AND period_end - period_start = :span)
  AND period_end - period_start = :span
ORDER BY lift_vs_account_median DESC NULLS LAST, posts DESC, hashtag LIMIT :limit"""


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def unanswered_questions(conn: Connection, ig_user_id: str, start: date, end: date,
                         limit: int = UNANSWERED_LIMIT) -> list[dict]:
    """Top-level questions of others written start..end with no reply of the account, newest first."""
    return _rows(conn, _UNANSWERED, id=ig_user_id, start=start, end=end, limit=limit)


def _conversation(conn: Connection, ig_user_id: str, start: date, end: date) -> dict | None:
    [summary] = _rows(conn, _SUMMARY, id=ig_user_id, start=start, end=end)
    if not summary["comments"] and not summary["replies"]:
        return None
    comments, answered = int(summary["comments"]), int(summary["answered"])
    return {
        "covers": "top-level comments of others written in the period (UTC days); answered so far",
        "comments": comments, "replies": int(summary["replies"]), "answered": answered,
        "response_rate": answered * 100.0 / comments if comments else None,
        "median_first_response_minutes": summary["median_first_response_minutes"],
        "p90_first_response_minutes": summary["p90_first_response_minutes"],
        "unanswered_questions": unanswered_questions(conn, ig_user_id, start, end),
        "top_posts": _rows(conn, _TOP_POSTS, id=ig_user_id, start=start, end=end, limit=TOP_POSTS),
    }


def conversation_sections(conn: Connection, ig_user_id: str, start: date, end: date) -> dict:
    """The sections that have data: ``conversation``, ``tagged_media``, ``hashtags``."""
    out: dict[str, Any] = {}
    conversation = _conversation(conn, ig_user_id, start, end)
    if conversation:
        out["conversation"] = conversation
    tagged = _rows(conn, _TAGGED, id=ig_user_id, start=start, end=end, limit=TAGGED_LIMIT)
    if tagged:
        out["tagged_media"] = {"total": int(tagged[0]["total"]),
                               "posts": [{k: v for k, v in t.items() if k != "total"} for t in tagged]}
    tags = _rows(conn, _HASHTAGS, id=ig_user_id, end=end, span=HASHTAG_PERIOD_DAYS - 1, limit=HASHTAG_LIMIT)
    if tags:
        out["hashtags"] = {"period_start": tags[0]["period_start"], "period_end": tags[0]["period_end"],
                           "min_posts": 3, "tags": [{k: v for k, v in t.items() if not k.startswith("period")}
                                                    for t in tags]}
    return out


def _minutes(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


def _link(url: str | None, label: str) -> str:
    return f'<a href="{escape(url)}">{escape(label)}</a>' if url else escape(label)


def conversation_html(report: dict) -> str:
    """The three sections' HTML; nothing for a section without data."""
    parts = []
    c = report.get("conversation")
    if c:
        rate = "n/a" if c["response_rate"] is None else f"{c['response_rate']:.0f}%"
        questions = "".join(
            f"<li>{escape(str(q['published_at'])[:16])}: {escape(q['text']) if q['text'] else '<em>text removed (retention)</em>'}"
            f" ({_link(q['permalink'], 'post')})</li>" for q in c["unanswered_questions"]) or "<li>none</li>"
        posts = "".join(f"<tr><td>{_link(p['permalink'], p['caption'] or p['media_id'])}</td>"
                        f"<td class=n>{p['comments_and_replies']}</td></tr>" for p in c["top_posts"])
        parts.append(
            f"<h2>Conversation</h2><p>{c['comments']} comments, {c['replies']} replies; response rate {rate} "
            f"({c['answered']} answered); first response: median {_minutes(c['median_first_response_minutes'])}, "
            f"90th percentile {_minutes(c['p90_first_response_minutes'])}.</p>"
            f"<h3>Unanswered questions (newest first)</h3><ul>{questions}</ul>"
            f"<h3>Posts with most conversation</h3><table><tr><th>post</th><th>comments and replies</th></tr>"
            f"{posts}</table>")
    t = report.get("tagged_media")
    if t:
        rows = "".join(f"<tr><td>{escape(str(p['published_at'])[:10])}</td><td>@{escape(p['username'] or '?')}</td>"
                       f"<td>{_link(p['permalink'], (p['caption'] or 'post')[:60])}</td>"
                       f"<td class=n>{'hidden' if p['like_count'] is None else p['like_count']}</td>"
                       f"<td class=n>{p['comments_count'] if p['comments_count'] is not None else 'n/a'}</td></tr>"
                       for p in t["posts"])
        parts.append(f"<h2>Posts that tagged you</h2><p>{t['total']} in the period.</p><table><tr><th>published</th>"
                     f"<th>by</th><th>post</th><th>likes</th><th>comments</th></tr>{rows}</table>")
    h = report.get("hashtags")
    if h:
        rows = "".join(f"<tr><td>#{escape(x['hashtag'])}</td><td class=n>{x['posts']}</td>"
                       f"<td class=n>{_num(x['median_engagement_rate_reach'], '%')}</td>"
                       f"<td class=n>{_num(x['median_reach'])}</td><td class=n>{_num(x['lift_vs_account_median'], 'x')}</td></tr>"
                       for x in h["tags"])
        parts.append(f"<h2>Hashtags</h2><div class=sub>{escape(str(h['period_start']))} to {escape(str(h['period_end']))}"
                     f", tags used on at least {h['min_posts']} posts</div><table><tr><th>hashtag</th><th>posts</th>"
                     f"<th>median rate by reach</th><th>median reach</th><th>vs the account's median</th></tr>{rows}</table>")
    return "\n".join(parts)


def _num(value, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f}{suffix}" if suffix else f"{value:,.0f}"
