"""The Dagster code location: every asset, check, job, schedule and sensor of ig-analytics."""

from __future__ import annotations

import dagster as dg

from ig_analytics.defs import (
    analytics_assets, audience_assets, competitor_assets, conversation_assets, ingestion_assets, user_modules,
)
from ig_analytics.defs.checks import asset_checks, check_jobs, check_schedules
from ig_analytics.defs.follower_anchor_assets import daily_follower_anchors, follower_anchor_job, follower_anchors
from ig_analytics.defs.follower_rates import follower_rates, follower_rates_job
from ig_analytics.defs.jobs import jobs, schedules
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.defs.retention import retention_job, retention_schedule
from ig_analytics.defs.sensors import alert_sensors
from ig_analytics.defs.token_jobs import token_maintenance_job, token_maintenance_schedule
from ig_analytics.logging_setup import configure_logging
from ig_analytics.malloc_arenas import limit_malloc_arenas
from ig_analytics.defs.run_output import python_logging_console


def build_definitions() -> dg.Definitions:
    configure_logging()  # JSON with IG_ANALYTICS_LOG_FORMAT=json; tokens redacted on every handler
    limit_malloc_arenas()  # before any step's threads: a run worker's heap stays smaller (malloc_arenas.py)
    # One database resource, bound by its key: the assets and the IO manager's own reads and writes use the same
    # one, so a database_url set on `database` in a run's config reaches them all (a nested instance would not).
    database = AnalyticsDatabase.configure_at_launch()
    return dg.Definitions(
        assets=[
            ingestion_assets.ACCOUNTS,
            ingestion_assets.account_insights_daily,
            ingestion_assets.media_and_snapshots,
            audience_assets.audience_demographics,
            follower_anchors,
            analytics_assets.media_engagement,
            analytics_assets.trending_posts,
            analytics_assets.account_engagement_daily,
            analytics_assets.best_posting_times,
            analytics_assets.performance_reports,
            analytics_assets.weekly_performance_reports,
            competitor_assets.competitor_snapshots,
            competitor_assets.competitor_benchmarks,
            *conversation_assets.conversation_assets,  # comments, tags, hashtags (issue 25)
            *user_modules.user_assets(),  # IG_ANALYTICS_USER_MODULES: analysts' own assets
        ],
        asset_checks=[*asset_checks, *conversation_assets.conversation_checks],
        jobs=[*jobs, *check_jobs, retention_job, token_maintenance_job, audience_assets.audience_job,
              follower_anchor_job, follower_rates_job, competitor_assets.competitors_job],
        schedules=[*schedules, *check_schedules, retention_schedule, token_maintenance_schedule,
                   audience_assets.daily_audience_demographics, daily_follower_anchors,
                   competitor_assets.daily_competitor_snapshots],
        sensors=[*alert_sensors, follower_rates],
        resources={"database": database, "graph_api": GraphApi(),
                   **analytics_assets.analytics_resources(database)},  # postgres_io, analytics_inputs
        # Run output on the terminal goes through Python logging (one line per record, JSON when asked, tokens
        # redacted). Set here, not per call, so runs of `sync` and of the UI have the same job snapshot.
        loggers={"console": python_logging_console},
        # Steps are short and mostly sequential; a process per step would cost ~5 s of imports each on 2 cores.
        # Concurrency lives inside the ingestion steps (accounts in parallel threads).
        executor=dg.in_process_executor,
    )


defs = build_definitions()
