"""Data-quality rules of the competitor capture (``competitor_snapshots``) for one capture day.

- no negative counts (profiles and post snapshots);
- followers consistent day to day: a public follower count that moves by more than half (and by more than 1000)
  from one captured day to the next is suspicious (a renamed username now pointing at another account, or a
  count Meta rounded for display): WARN, as it is what Meta served;
- every competitor of an account was either captured that day or has its failure recorded (status and reason of
  an attempt made since the day ended).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Connection

from ig_analytics.quality.result import WARN, CheckResult, Rule, any_negative, evaluate_rules

FOLLOWER_JUMP_SHARE = 0.5
FOLLOWER_JUMP_MIN = 1000

DAY_START = "(CAST(:day AS timestamp) AT TIME ZONE 'UTC')"  # 00:00 UTC of the capture's day

_NEGATIVE = [
    Rule("negative_profile_counts", "instagram.competitor_profiles_daily p WHERE p.date = :day AND "
         + any_negative(("followers_count", "follows_count", "media_count"), "p"),
         "p.ig_user_id, p.username, p.followers_count, p.follows_count, p.media_count"),
    Rule("negative_post_counts", f"instagram.competitor_media_snapshots s WHERE s.captured_at >= {DAY_START} "
         f"AND s.captured_at < {DAY_START} + interval '2 days' AND "
         + any_negative(("like_count", "comments_count"), "s"),
         "s.media_id, s.captured_at, s.like_count, s.comments_count"),
]

_JUMPS = [Rule("follower_jumps", f"""
    instagram.competitor_profiles_daily p
    JOIN LATERAL (SELECT q.date, q.followers_count FROM instagram.competitor_profiles_daily q
                  WHERE q.ig_user_id = p.ig_user_id AND q.username = p.username AND q.date < p.date
                  ORDER BY q.date DESC LIMIT 1) prev ON true
    WHERE p.date = :day AND abs(p.followers_count - prev.followers_count) > {FOLLOWER_JUMP_MIN}
      AND abs(p.followers_count - prev.followers_count) > {FOLLOWER_JUMP_SHARE} * prev.followers_count""",
               "p.ig_user_id, p.username, prev.date AS previous_date, prev.followers_count AS previous, "
               "p.followers_count", WARN)]

# A competitor added before the capture's day ended must have been captured for it or have a recorded attempt
# (its status and reason) at or after that day.
_UNACCOUNTED = [Rule("competitors_not_accounted_for", f"""
    instagram.competitors c JOIN instagram.accounts a ON a.ig_user_id = c.ig_user_id AND a.status = 'active'
    WHERE c.added_at < {DAY_START} + interval '1 day'
      AND NOT EXISTS (SELECT 1 FROM instagram.competitor_profiles_daily p
                      WHERE p.ig_user_id = c.ig_user_id AND p.username = c.username AND p.date = :day)
      AND (c.last_attempt_at IS NULL OR c.last_attempt_at < {DAY_START} OR c.status = 'active')""",
                     "c.ig_user_id, c.username, c.status, c.last_attempt_at")]


def _params(day: date) -> dict:
    return {"day": day}


def no_negative_counts(conn: Connection, day: date) -> CheckResult:
    return evaluate_rules(conn, _NEGATIVE, _params(day), description="No negative follower, post, like or comment "
                          "count in the day's competitor capture.")


def followers_consistent(conn: Connection, day: date) -> CheckResult:
    return evaluate_rules(conn, _JUMPS, _params(day), description=(
        f"WARN: no public follower count moved by more than {FOLLOWER_JUMP_SHARE:.0%} (and {FOLLOWER_JUMP_MIN}) "
        "since the subject's previous captured day."))


def every_competitor_accounted_for(conn: Connection, day: date) -> CheckResult:
    return evaluate_rules(conn, _UNACCOUNTED, _params(day), description=(
        "Every competitor of an active account was captured for the day, or its failure (status and reason) was "
        "recorded by an attempt made since."))
