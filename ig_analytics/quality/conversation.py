"""Rules on the conversation and content tables (comments, conversation metrics, tagged posts, hashtags). The
offending rows are listed by id and numbers only: never a comment's text or a commenter's name."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from ig_analytics.quality.result import CheckResult, Rule, evaluate_rules

FUTURE_SLACK = timedelta(minutes=10)
MIN_HASHTAG_POSTS = 3


def media_comments_validity(conn: Connection, now: datetime, text_days: int) -> CheckResult:
    rules = [
        Rule("negative_likes", "instagram.media_comments WHERE like_count < 0", "comment_id, media_id, like_count"),
        Rule("future_comment", "instagram.media_comments WHERE published_at > :future", "comment_id, published_at"),
        Rule("reply_to_a_reply", "instagram.media_comments c JOIN instagram.media_comments p"
             " ON p.comment_id = c.parent_id WHERE p.parent_id IS NOT NULL", "c.comment_id, c.parent_id"),
        Rule("text_kept_past_retention", "instagram.media_comments WHERE published_at < :retained"
             " AND (text IS NOT NULL OR username IS NOT NULL)", "comment_id, published_at"),
    ]
    return evaluate_rules(conn, rules, {"future": now + FUTURE_SLACK, "retained": now - timedelta(days=text_days, hours=26)},
                          description="Comments: no negative likes, none in the future, replies one level deep, and "
                                      f"no text or username kept more than {text_days} days (+ a day for the "
                                      "retention job).")


def conversation_daily_validity(conn: Connection, now: datetime) -> CheckResult:
    scope = "instagram.conversation_daily WHERE"
    rules = [
        Rule("negative_values", f"{scope} LEAST(comments, replies, top_level_answered, top_level_unanswered,"
             " unanswered_questions, answered_that_day) < 0 OR median_first_response_minutes < 0",
             "ig_user_id, date, comments, replies, top_level_answered, top_level_unanswered"),
        Rule("answered_plus_unanswered", f"{scope} top_level_answered + top_level_unanswered <> top_level",
             "ig_user_id, date, top_level, top_level_answered, top_level_unanswered"),
        Rule("questions_above_unanswered", f"{scope} unanswered_questions > top_level_unanswered",
             "ig_user_id, date, unanswered_questions, top_level_unanswered"),
        Rule("median_above_p90", f"{scope} median_first_response_minutes > p90_first_response_minutes + 1e-9",
             "ig_user_id, date, median_first_response_minutes, p90_first_response_minutes"),
        Rule("future_day", f"{scope} date > CAST(:now AS date) + 1", "ig_user_id, date"),
    ]
    return evaluate_rules(conn, rules, {"now": now},
                          description="Conversation per day: no negative values, answered + unanswered = top-level, "
                                      "open questions among the unanswered, median <= 90th percentile, no future day.")


def tagged_media_validity(conn: Connection, now: datetime) -> CheckResult:
    rules = [
        Rule("negative_counts", "instagram.tagged_media WHERE like_count < 0 OR comments_count < 0",
             "ig_user_id, media_id, like_count, comments_count"),
        Rule("future_post", "instagram.tagged_media WHERE published_at > :future", "ig_user_id, media_id, published_at"),
    ]
    return evaluate_rules(conn, rules, {"future": now + FUTURE_SLACK},
                          description="Tagged posts: no negative counts, none published in the future.")


def hashtags_validity(conn: Connection) -> CheckResult:
    rules = [
        Rule("tag_not_normalised", "instagram.media_hashtags WHERE hashtag = '' OR hashtag LIKE '#%'"
             " OR hashtag <> lower(hashtag)", "media_id, hashtag"),
        Rule("too_few_posts", "instagram.hashtag_performance WHERE posts < :min_posts",
             "ig_user_id, period_end, hashtag, posts"),
        Rule("lift_formula_mismatch", "instagram.hashtag_performance WHERE account_median_engagement_rate_reach > 0"
             " AND abs(lift_vs_account_median - median_engagement_rate_reach / account_median_engagement_rate_reach)"
             " > 1e-9 * GREATEST(1, abs(lift_vs_account_median))",
             "ig_user_id, period_end, hashtag, lift_vs_account_median"),
    ]
    return evaluate_rules(conn, rules, {"min_posts": MIN_HASHTAG_POSTS},
                          description="Hashtags: case-folded without '#', at least 3 posts per tag, lift = the tag's "
                                      "median / the account's median.")
