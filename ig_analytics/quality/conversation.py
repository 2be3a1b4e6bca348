"""Rules on the conversation and content tables (comments, conversation metrics, tagged posts, hashtags). The
offending rows are listed by id and numbers only: never a comment's text or a commenter's name.

``accounts``: the accounts whose rows are judged (a shard run's own, issue 27: each of N shard runs scanning the
whole tables made the checks N times the work of a tick, ``media_comments`` being ~1 GB at 10,000 accounts);
None judges every account's rows. Each rule is answered from an index (keys leading with ``ig_user_id``, and
migration 0021's), never by a scan of a whole big table."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy.engine import Connection

from ig_analytics.quality.result import CheckResult, Rule, evaluate_rules

FUTURE_SLACK = timedelta(minutes=10)
MIN_HASHTAG_POSTS = 3


def _of(accounts: Sequence[str] | None, alias: str = "") -> str:
    """The condition that keeps the rows of ``accounts`` (parameter ``:accounts``): "true" for every account."""
    return "true" if accounts is None else f"{alias + '.' if alias else ''}ig_user_id = ANY(:accounts)"


def _params(accounts: Sequence[str] | None, **params) -> dict:
    return {**params, "accounts": list(accounts or ())}


def media_comments_validity(conn: Connection, now: datetime, text_days: int,
                            accounts: Sequence[str] | None = None) -> CheckResult:
    scope = f"instagram.media_comments WHERE {_of(accounts)} AND"
    rules = [
        Rule("negative_likes", f"{scope} like_count < 0", "comment_id, media_id, like_count"),
        Rule("future_comment", f"{scope} published_at > :future", "comment_id, published_at"),
        # a reply and its parent belong to the same post, so to the same account
        Rule("reply_to_a_reply", "instagram.media_comments c JOIN instagram.media_comments p"
             f" ON p.comment_id = c.parent_id WHERE {_of(accounts, 'c')} AND c.parent_id IS NOT NULL"
             " AND p.parent_id IS NOT NULL", "c.comment_id, c.parent_id"),
        Rule("text_kept_past_retention", f"{scope} published_at < :retained"
             " AND (text IS NOT NULL OR username IS NOT NULL)", "comment_id, published_at"),
    ]
    return evaluate_rules(conn, rules, _params(accounts, future=now + FUTURE_SLACK,
                                               retained=now - timedelta(days=text_days, hours=26)),
                          description="Comments: no negative likes, none in the future, replies one level deep, and "
                                      f"no text or username kept more than {text_days} days (+ a day for the "
                                      "retention job).")


def conversation_daily_validity(conn: Connection, now: datetime, accounts: Sequence[str] | None = None) -> CheckResult:
    scope = f"instagram.conversation_daily WHERE {_of(accounts)} AND"
    rules = [
        Rule("negative_values", f"{scope} (LEAST(comments, replies, top_level_answered, top_level_unanswered,"
             " unanswered_questions, answered_that_day) < 0 OR median_first_response_minutes < 0)",
             "ig_user_id, date, comments, replies, top_level_answered, top_level_unanswered"),
        Rule("answered_plus_unanswered", f"{scope} top_level_answered + top_level_unanswered <> top_level",
             "ig_user_id, date, top_level, top_level_answered, top_level_unanswered"),
        Rule("questions_above_unanswered", f"{scope} unanswered_questions > top_level_unanswered",
             "ig_user_id, date, unanswered_questions, top_level_unanswered"),
        Rule("median_above_p90", f"{scope} median_first_response_minutes > p90_first_response_minutes + 1e-9",
             "ig_user_id, date, median_first_response_minutes, p90_first_response_minutes"),
        Rule("future_day", f"{scope} date > CAST(:now AS date) + 1", "ig_user_id, date"),
    ]
    return evaluate_rules(conn, rules, _params(accounts, now=now),
                          description="Conversation per day: no negative values, answered + unanswered = top-level, "
                                      "open questions among the unanswered, median <= 90th percentile, no future day.")


def tagged_media_validity(conn: Connection, now: datetime, accounts: Sequence[str] | None = None) -> CheckResult:
    scope = f"instagram.tagged_media WHERE {_of(accounts)} AND"
    rules = [
        Rule("negative_counts", f"{scope} (like_count < 0 OR comments_count < 0)",
             "ig_user_id, media_id, like_count, comments_count"),
        Rule("future_post", f"{scope} published_at > :future", "ig_user_id, media_id, published_at"),
    ]
    return evaluate_rules(conn, rules, _params(accounts, future=now + FUTURE_SLACK),
                          description="Tagged posts: no negative counts, none published in the future.")


def hashtags_validity(conn: Connection, accounts: Sequence[str] | None = None) -> CheckResult:
    performance = f"instagram.hashtag_performance WHERE {_of(accounts)} AND"
    rules = [
        Rule("tag_not_normalised", f"instagram.media_hashtags WHERE {_of(accounts)} AND (hashtag = ''"
             " OR hashtag LIKE '#%' OR hashtag <> lower(hashtag))", "media_id, hashtag"),
        Rule("too_few_posts", f"{performance} posts < :min_posts", "ig_user_id, period_end, hashtag, posts"),
        Rule("lift_formula_mismatch", f"{performance} account_median_engagement_rate_reach > 0"
             " AND abs(lift_vs_account_median - median_engagement_rate_reach / account_median_engagement_rate_reach)"
             " > 1e-9 * GREATEST(1, abs(lift_vs_account_median))",
             "ig_user_id, period_end, hashtag, lift_vs_account_median"),
    ]
    return evaluate_rules(conn, rules, _params(accounts, min_posts=MIN_HASHTAG_POSTS),
                          description="Hashtags: case-folded without '#', at least 3 posts per tag, lift = the tag's "
                                      "median / the account's median.")
