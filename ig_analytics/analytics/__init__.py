"""Analytics computed from the synced tables: engagement, trending posts, best posting times, reports.
See docs/analytics.md for every formula."""

from ig_analytics.analytics.best_times import BestTimesParams, refresh_best_posting_times
from ig_analytics.analytics.engagement import (
    engagement_frame,
    refresh_account_engagement_daily,
    refresh_media_engagement,
)
from ig_analytics.analytics.followers import refresh_follower_history
from ig_analytics.analytics.reports import ReportResult, build_report, build_reports, write_reports
from ig_analytics.analytics.trending import TrendingParams, new_trending_entries, refresh_trending_posts

__all__ = [
    "BestTimesParams",
    "ReportResult",
    "TrendingParams",
    "build_report",
    "build_reports",
    "engagement_frame",
    "new_trending_entries",
    "refresh_account_engagement_daily",
    "refresh_best_posting_times",
    "refresh_follower_history",
    "refresh_media_engagement",
    "refresh_trending_posts",
    "write_reports",
]
