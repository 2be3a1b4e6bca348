"""Analytics computed from the synced tables: engagement, trending posts, best posting times, reports.
See docs/analytics.md for every formula."""

from ig_analytics.analytics.best_times import BestTimesParams
from ig_analytics.analytics.engagement import engagement_frame
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
    "refresh_follower_history",
    "refresh_trending_posts",
    "write_reports",
]
