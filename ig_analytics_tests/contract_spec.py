"""The public contract (shared/docs/product.md, beside the checkout) as data, for test_contract.py.

One entry per documented table, column, command flag, report field and setting, so that a missing column fails
one clearly named test case. Items not built yet are listed in PENDING with the issue that builds them: their
test cases are strict xfails, so the suite turns red the moment an item lands without PENDING being updated.
"""

from __future__ import annotations

# PostgreSQL type names as information_schema.columns.data_type spells them.
TEXT, BIGINT, DOUBLE, TSTZ, DATE, JSONB = "text", "bigint", "double precision", "timestamp with time zone", "date", "jsonb"
INTEGER_LIKE = ("smallint", "integer", "bigint")  # small ordinals (rank, weekday, hour): any integer type
ANY = None  # the contract names the column but not its type

COUNTS = ("reach", "views", "impressions")

# table -> (kind, grain = one row per, {column: type or tuple of accepted types or ANY})
TABLES: dict[str, tuple[str, tuple[str, ...], dict]] = {
    "accounts": ("table", ("ig_user_id",), {
        "ig_user_id": TEXT, "username": TEXT, "timezone": TEXT, "status": TEXT, "login_kind": TEXT,
        "token_expires_at": TSTZ, "token_scopes": ANY,
    }),
    "account_insights_daily": ("table", ("ig_user_id", "date"), {
        "ig_user_id": TEXT, "date": DATE, "reach": BIGINT, "views": BIGINT, "impressions": BIGINT,
        "follower_count": BIGINT, "followers_total": BIGINT, "followers_total_source": TEXT,
        "profile_views": BIGINT, "website_clicks": BIGINT, "accounts_engaged": BIGINT, "total_interactions": BIGINT,
    }),
    "media": ("table", ("media_id",), {
        "media_id": TEXT, "ig_user_id": TEXT, "media_type": TEXT, "media_product_type": TEXT, "caption": TEXT,
        "permalink": TEXT, "published_at": TSTZ,
    }),
    "media_insights_snapshots": ("table", ("media_id", "captured_at"), {
        "media_id": TEXT, "captured_at": TSTZ, "reach": BIGINT, "views": BIGINT, "impressions": BIGINT,
        "likes": BIGINT, "comments": BIGINT, "saved": BIGINT, "shares": BIGINT, "total_interactions": BIGINT,
        "video_views": BIGINT,
    }),
    "media_engagement": ("table", ("media_id",), {
        "media_id": TEXT, "ig_user_id": TEXT, "engagement": BIGINT, "engagement_rate_reach": DOUBLE,
        "engagement_rate_views": DOUBLE, "engagement_rate_followers": DOUBLE, "followers_at_publish": BIGINT,
        "like_rate": DOUBLE, "comment_rate": DOUBLE, "save_rate": DOUBLE, "share_rate": DOUBLE,
        "performance_score": DOUBLE,
    }),
    "account_engagement_daily": ("table", ("ig_user_id", "date"), {
        "ig_user_id": TEXT, "date": DATE, "posts": BIGINT, "engagement": BIGINT, "engagement_rate_reach": DOUBLE,
    }),
    "trending_posts": ("table", ("ig_user_id", "as_of", "rank"), {
        "ig_user_id": TEXT, "as_of": TSTZ, "rank": INTEGER_LIKE, "media_id": TEXT, "score": DOUBLE, "method": TEXT,
        "engagement_rate": DOUBLE, "reach": BIGINT,
    }),
    "audience_demographics": ("table", ("ig_user_id", "date", "metric", "breakdown", "key"), {
        "ig_user_id": TEXT, "date": DATE, "metric": TEXT, "breakdown": TEXT, "key": TEXT, "value": BIGINT,
        "timeframe": TEXT,
    }),
    "best_posting_times": ("table", ("ig_user_id", "weekday", "hour"), {
        "ig_user_id": TEXT, "weekday": INTEGER_LIKE, "hour": INTEGER_LIKE, "posts": BIGINT,
        "avg_engagement_rate_reach": DOUBLE,
    }),
    "performance_reports": ("table", ("ig_user_id", "period_start", "period_end"), {
        "ig_user_id": TEXT, "period_start": DATE, "period_end": DATE, "generated_at": TSTZ, "report": JSONB,
    }),
    "sync_runs": ("table", ("ig_user_id",), {  # account x sync: the sync's own id completes the key
        "ig_user_id": TEXT, "sync_type": TEXT, "started_at": TSTZ, "finished_at": TSTZ, "status": TEXT,
        "api_calls": BIGINT, "rows_written": BIGINT, "error": TEXT,
    }),
    "competitors": ("table", ("ig_user_id", "username"), {
        "ig_user_id": TEXT, "username": TEXT, "added_at": TSTZ, "status": TEXT, "status_reason": TEXT,
    }),
    "competitor_profiles_daily": ("table", ("ig_user_id", "username", "date"), {
        "ig_user_id": TEXT, "username": TEXT, "date": DATE, "followers_count": BIGINT, "follows_count": BIGINT,
        "media_count": BIGINT,
    }),
    "competitor_media": ("table", ("media_id",), {
        "media_id": TEXT, "username": TEXT, "media_product_type": TEXT, "media_type": TEXT, "published_at": TSTZ,
        "permalink": TEXT,
    }),
    "competitor_media_snapshots": ("table", ("media_id", "captured_at"), {
        "media_id": TEXT, "captured_at": TSTZ, "like_count": BIGINT, "comments_count": BIGINT,
    }),
    "competitor_benchmarks": ("table", ("ig_user_id", "week_start", "subject"), {
        "ig_user_id": TEXT, "week_start": DATE, "subject": TEXT, "followers": BIGINT, "follower_growth": BIGINT,
        "follower_growth_pct": DOUBLE, "posts": BIGINT, "reels": BIGINT, "carousels": BIGINT, "images": BIGINT,
        "avg_interactions_per_post": DOUBLE, "engagement_per_follower": DOUBLE,
        "rank_engagement_per_follower": INTEGER_LIKE, "rank_follower_growth_pct": INTEGER_LIKE,
    }),
    "media_comments": ("table", ("comment_id",), {
        "comment_id": TEXT, "media_id": TEXT, "ig_user_id": TEXT, "parent_id": TEXT, "username": TEXT, "text": TEXT,
        "like_count": BIGINT, "hidden": "boolean", "published_at": TSTZ, "is_own": "boolean",
    }),
    "conversation_daily": ("table", ("ig_user_id", "date"), {
        "ig_user_id": TEXT, "date": DATE, "comments": BIGINT, "replies": BIGINT, "top_level_answered": BIGINT,
        "top_level_unanswered": BIGINT, "median_first_response_minutes": DOUBLE, "p90_first_response_minutes": DOUBLE,
    }),
    "tagged_media": ("table", ("ig_user_id", "media_id"), {
        "media_id": TEXT, "ig_user_id": TEXT, "username": TEXT, "media_product_type": TEXT, "published_at": TSTZ,
        "permalink": TEXT, "caption": TEXT, "like_count": BIGINT, "comments_count": BIGINT,
    }),
    "media_hashtags": ("table", ("media_id", "hashtag"), {"media_id": TEXT, "ig_user_id": TEXT, "hashtag": TEXT}),
    "hashtag_performance": ("table", ("ig_user_id", "period_start", "period_end", "hashtag"), {
        "ig_user_id": TEXT, "period_start": DATE, "period_end": DATE, "hashtag": TEXT, "posts": BIGINT,
        "median_engagement_rate_reach": DOUBLE, "median_reach": ANY, "lift_vs_account_median": DOUBLE,
    }),
}
# The view has the snapshot table's columns.
TABLES["media_insights_latest"] = ("view", ("media_id",), dict(TABLES["media_insights_snapshots"][2]))
# The analysts' wide views (issue 26).
TABLES["posts"] = ("view", ("media_id",), {
    "media_id": TEXT, "ig_user_id": TEXT, "username": TEXT, "media_product_type": TEXT, "published_at": TSTZ,
    "published_local": ANY, "caption": TEXT, "permalink": TEXT, "reach": BIGINT, "views": BIGINT, "likes": BIGINT,
    "comments": BIGINT, "saved": BIGINT, "shares": BIGINT, "engagement": BIGINT, "engagement_rate_reach": DOUBLE,
    "engagement_rate_views": DOUBLE, "engagement_rate_followers": DOUBLE, "like_rate": DOUBLE, "comment_rate": DOUBLE,
    "save_rate": DOUBLE, "share_rate": DOUBLE, "performance_score": DOUBLE, "followers_at_publish": BIGINT,
    "hashtags": ANY, "trended": "boolean",
})
TABLES["account_days"] = ("view", ("ig_user_id", "date"), {
    "ig_user_id": TEXT, "username": TEXT, "date": DATE, "reach": BIGINT, "views": BIGINT, "follows": BIGINT,
    "unfollows": BIGINT, "followers_total": BIGINT, "followers_total_source": TEXT, "posts": BIGINT, "stories": BIGINT,
    "engagement": BIGINT, "engagement_rate_reach": DOUBLE,
})

# (table, column) -> the values the contract allows
ENUMS = {
    ("accounts", "status"): {"active", "needs_reauth", "disabled"},
    ("accounts", "login_kind"): {"facebook", "instagram"},
    ("account_insights_daily", "followers_total_source"): {"observed", "derived"},
    ("audience_demographics", "metric"): {"follower_demographics", "engaged_audience_demographics"},
    ("audience_demographics", "breakdown"): {"age", "gender", "country", "city"},
    ("sync_runs", "status"): {"success", "partial", "failed"},
    ("competitors", "status"): {"active", "not_found", "not_professional", "unavailable"},
}

# `ig-analytics ...` -> the flags its --help must list (an empty tuple: the command itself)
COMMANDS: dict[str, tuple[str, ...]] = {
    "db start": (), "db stop": (), "db status": (), "db url": ("--read-only",),
    "status": (),
    "report": ("--account", "--days"),
    "export": ("--account", "--since", "--until", "--format", "--output"),
    "accounts add": ("--ig-user-id", "--token", "--username", "--timezone", "--login", "--no-verify"),
    "accounts discover": ("--facebook-token", "--dry-run"),
    "accounts refresh-tokens": (),
    "accounts list": (),
    "accounts disable": (),
    "competitors add": ("--account",),
    "competitors remove": ("--account",),
    "competitors list": ("--account",),
    "sync": ("--account", "--type", "--since", "--until", "--record"),
    "sandbox": ("--port", "--replay"),
    "demo": (),
    "ui": (),
}

# The report JSON (performance_reports.report): top-level keys and the documented sub-keys.
REPORT_FIELDS = (
    "period", "account_metrics", "content_metrics", "engagement", "trends", "best_posting_times",
    "account_metrics.total_reach", "account_metrics.total_views", "account_metrics.avg_profile_views",
    "account_metrics.follower_growth", "account_metrics.followers_total",
    "content_metrics.total_posts", "content_metrics.total_stories", "content_metrics.avg_engagement_rate",
    "content_metrics.avg_reach", "content_metrics.avg_views", "content_metrics.best_performing_post",
)

SETTINGS = (
    "DATABASE_URL", "IG_ANALYTICS_HOME", "IG_GRAPH_API_URL", "IG_GRAPH_API_VERSION", "IG_APP_SECRET", "IG_APP_ID",
    "IG_ANALYTICS_SHARDS", "IG_ANALYTICS_LOG_FORMAT", "IG_ANALYTICS_LOG_LEVEL", "IG_TOKEN_KEY",
    "IG_NOTIFY_WEBHOOK_URL", "IG_ANALYTICS_COMMENT_TEXT_DAYS",
)

# Settings whose test needs more than the contract's install (a second key, a webhook receiver): module::test.
SETTINGS_TESTED_IN = {
    "IG_APP_SECRET": "ig_analytics_tests.test_cli_settings::test_app_secret_setting_adds_appsecret_proof_to_every_call",
    "IG_TOKEN_KEY": "ig_analytics_tests.test_cli_settings::test_token_key_setting_encrypts_tokens_with_that_key",
    "IG_NOTIFY_WEBHOOK_URL": "ig_analytics_tests.test_alerts::test_a_failing_run_posts_exactly_one_alert_without_the_token",
    "IG_ANALYTICS_COMMENT_TEXT_DAYS":
        "ig_analytics_tests.test_conversation::test_the_assets_store_the_example_and_retention_blanks_text_while_counts_stay",
}

# Contract items that are not built yet -> the issue building them (e.g. "setting X": "issue N"). Add an entry
# when the contract grows ahead of the code; remove it when the item lands. Every item is built today.
PENDING: dict[str, str] = {}
