"""The Dagster code location: every asset, check, job, schedule and sensor of ig-analytics."""

from __future__ import annotations

import dagster as dg

from ig_analytics.defs import analytics_assets, ingestion_assets
from ig_analytics.defs.jobs import jobs, schedules
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            ingestion_assets.ACCOUNTS,
            ingestion_assets.account_insights_daily,
            ingestion_assets.media_and_snapshots,
            analytics_assets.media_engagement,
            analytics_assets.trending_posts,
            analytics_assets.account_engagement_daily,
            analytics_assets.best_posting_times,
            analytics_assets.performance_reports,
            analytics_assets.weekly_performance_reports,
        ],
        jobs=jobs,
        schedules=schedules,
        resources={"database": AnalyticsDatabase(), "graph_api": GraphApi()},
    )


defs = build_definitions()
