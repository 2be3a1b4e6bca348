"""Rules on ``instagram.media`` and ``instagram.media_insights_snapshots``: validity of a capture slot, reach
within views, counters that only grow, and (unpartitioned) recent completeness and freshness of young posts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.constants import MEDIA_WINDOW_DAYS, YOUNG_POST_HOURS
from ig_analytics.quality.result import ERROR, SAMPLE_ROWS, WARN, CheckResult, Rule, any_negative, evaluate_rules
from ig_analytics.storage import sync_runs

SNAPSHOT_MAX_AGE = timedelta(hours=2)  # young posts (hourly captures) must have a snapshot at most this old
RECENT_SNAPSHOT_WINDOW = timedelta(hours=26)  # every post of the window is captured daily (02:10) + slack
COUNTER_DROP_RELATIVE = 0.02  # Meta revises lifetime counters: a drop within 2 % ...
COUNTER_DROP_ABSOLUTE = 2  # ... or within 2 units (an unlike, a deleted comment on a small post) is tolerated

SNAPSHOT_COUNT_COLUMNS = (
    "reach", "views", "impressions", "likes", "comments", "saved", "shares", "total_interactions", "video_views",
    "plays", "follows", "profile_visits", "replies", "reposts", "avg_watch_time_ms", "total_watch_time_ms",
)
# Lifetime counters that should only grow (reach and views included: Meta revises them, hence the tolerance).
MONOTONIC_COLUMNS = ("reach", "views", "impressions", "likes", "comments", "saved", "shares", "total_interactions",
                     "video_views", "plays")
_SNAPSHOT_SCOPE = "instagram.media_insights_snapshots s WHERE s.captured_at >= :start AND s.captured_at < :end"


def media_validity(conn: Connection, window_end: datetime, now: datetime) -> CheckResult:
    scope = "instagram.media WHERE published_at >= :since"
    rules = [
        Rule("future_published_at", f"{scope} AND published_at > CAST(:now AS timestamptz) + interval '1 hour'",
             "media_id, ig_user_id, published_at"),
        Rule("negative_counts", f"{scope} AND (like_count < 0 OR comments_count < 0)",
             "media_id, like_count, comments_count"),
    ]
    return evaluate_rules(conn, rules, {"since": window_end - timedelta(days=MEDIA_WINDOW_DAYS + 1), "now": now},
                          description="Posts of the sync window: no publication in the future, no negative counts.")


def snapshots_validity(conn: Connection, start: datetime, end: datetime, now: datetime) -> CheckResult:
    scope = _SNAPSHOT_SCOPE
    rules = [
        Rule("negative_counts", f"{scope} AND {any_negative(SNAPSHOT_COUNT_COLUMNS, 's')}",
             "s.media_id, s.captured_at, " + ", ".join(f"s.{c}" for c in SNAPSHOT_COUNT_COLUMNS[:9])),
        Rule("future_timestamps",
             f"{scope} AND (s.captured_at > CAST(:now AS timestamptz) + interval '1 hour'"
             " OR s.fetched_at > CAST(:now AS timestamptz) + interval '5 minutes')",
             "s.media_id, s.captured_at, s.fetched_at"),
        Rule("duplicate_keys",
             f"(SELECT s.media_id, s.captured_at, count(*) AS n FROM {scope} GROUP BY 1, 2 HAVING count(*) > 1) d"),
    ]
    return evaluate_rules(conn, rules, {"start": start, "end": end, "now": now},
                          description="Snapshots of the slot(s): no negative counts, no future timestamps, one row "
                                      "per post and capture slot.")


def snapshots_reach_views(conn: Connection, start: datetime, end: datetime) -> CheckResult:
    rules = [Rule("reach_above_views", f"{_SNAPSHOT_SCOPE} AND s.reach > COALESCE(s.views, s.impressions)",
                  "s.media_id, s.captured_at, s.reach, s.views, s.impressions", severity=WARN)]
    return evaluate_rules(conn, rules, {"start": start, "end": end},
                          description="A post's reach is not above its views (impressions on API versions "
                                      "without views) where both are reported.")


def snapshots_monotonic(conn: Connection, start: datetime, end: datetime) -> CheckResult:
    drops = " OR ".join(
        f"s.{c} < p.{c} - GREATEST(:abs, p.{c} * :rel)" for c in MONOTONIC_COLUMNS
    )
    from_where = (
        "instagram.media_insights_snapshots s"
        " JOIN LATERAL (SELECT * FROM instagram.media_insights_snapshots p WHERE p.media_id = s.media_id"
        "  AND p.captured_at < s.captured_at ORDER BY p.captured_at DESC LIMIT 1) p ON true"
        f" WHERE s.captured_at >= :start AND s.captured_at < :end AND ({drops})"
    )
    columns = "s.media_id, p.captured_at AS previous_at, s.captured_at, " + ", ".join(
        f"p.{c} AS previous_{c}, s.{c}" for c in ("reach", "views", "likes", "comments", "saved", "shares"))
    rules = [Rule("lifetime_counter_decreased", from_where, columns, severity=WARN)]
    return evaluate_rules(
        conn, rules, {"start": start, "end": end, "abs": COUNTER_DROP_ABSOLUTE, "rel": COUNTER_DROP_RELATIVE},
        description=(f"Lifetime counters never drop between successive snapshots of a post by more than "
                     f"{COUNTER_DROP_RELATIVE:.0%} or {COUNTER_DROP_ABSOLUTE} (Meta revises its numbers)."),
    )


def _accounts_with_recent_posts(conn: Connection, now: datetime, min_age: timedelta, max_age: timedelta) -> list[str]:
    return [r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT m.ig_user_id FROM instagram.media m JOIN instagram.accounts a USING (ig_user_id)"
        " WHERE a.status = 'active' AND m.insights_unavailable_reason IS NULL"
        " AND m.published_at <= :newest AND m.published_at > :oldest ORDER BY 1"),
        {"newest": now - min_age, "oldest": now - max_age})]


def _reasons_since(conn: Connection, accounts: Sequence[str], since: datetime) -> dict[str, str]:
    """The error of each account's newest media sync since ``since``, when that sync failed."""
    reasons: dict[str, str] = {}
    for r in sync_runs.account_runs(conn, "media", accounts, since):
        if r.ig_user_id not in reasons and r.status == "failed":
            reasons[r.ig_user_id] = (r.error or "failed")[:300]
    return reasons


def snapshots_recent_completeness(conn: Connection, now: datetime) -> CheckResult:
    since = now - RECENT_SNAPSHOT_WINDOW
    accounts = _accounts_with_recent_posts(conn, now, timedelta(hours=1), timedelta(days=MEDIA_WINDOW_DAYS))
    with_snapshots = {r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT ig_user_id FROM instagram.media_insights_snapshots WHERE captured_at >= :since"
        " AND ig_user_id = ANY(:ids)"), {"since": since, "ids": accounts})}
    lacking = [a for a in accounts if a not in with_snapshots]
    reasons = _reasons_since(conn, lacking, since) if lacking else {}
    unexplained = [a for a in lacking if a not in reasons]
    return CheckResult(
        passed=not unexplained, severity=ERROR,
        metadata={"accounts_with_recent_posts": len(accounts),
                  "without_snapshots_no_reason": unexplained,
                  "without_snapshots_failure_reason": reasons},
        description=(f"Every active account with posts from the last {MEDIA_WINDOW_DAYS} days has snapshots "
                     f"captured in the last {RECENT_SNAPSHOT_WINDOW.total_seconds() / 3600:.0f} h, or a failed "
                     "media sync recorded in that time."),
    )


def snapshots_freshness(conn: Connection, now: datetime) -> CheckResult:
    """Young posts (captured hourly) have a snapshot no older than SNAPSHOT_MAX_AGE."""
    rows = conn.execute(sa.text(
        "SELECT m.ig_user_id, m.media_id, m.published_at,"
        "  (SELECT max(s.captured_at) FROM instagram.media_insights_snapshots s WHERE s.media_id = m.media_id) AS newest"
        " FROM instagram.media m JOIN instagram.accounts a USING (ig_user_id)"
        " WHERE a.status = 'active' AND m.insights_unavailable_reason IS NULL"
        " AND m.published_at > :young AND m.published_at <= :settled"),
        {"young": now - timedelta(hours=YOUNG_POST_HOURS), "settled": now - SNAPSHOT_MAX_AGE}).all()
    stale = [r for r in rows if r.newest is None or now - r.newest > SNAPSHOT_MAX_AGE]
    reasons = _reasons_since(conn, sorted({r.ig_user_id for r in stale}), now - SNAPSHOT_MAX_AGE)
    unexplained = [r for r in stale if r.ig_user_id not in reasons]
    sample = [{"media_id": r.media_id, "ig_user_id": r.ig_user_id,
               "newest_capture": r.newest.isoformat() if r.newest else None} for r in unexplained[:SAMPLE_ROWS]]
    return CheckResult(
        passed=not unexplained, severity=ERROR,
        metadata={"young_posts": len(rows),
                  "stale_posts": len(unexplained),
                  "stale_sample": sample,
                  "stale_with_failure_reason": reasons},
        description=(f"Posts younger than {YOUNG_POST_HOURS} h have a snapshot at most "
                     f"{SNAPSHOT_MAX_AGE.total_seconds() / 3600:.0f} h old (or a failed media sync is recorded)."),
    )
