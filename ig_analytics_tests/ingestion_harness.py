"""Helpers for tests that run the ingestion assets against the sandbox Graph API and a real PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ig_analytics.accounts import repository as repo
from ig_analytics.defs import analytics_assets, ingestion_assets
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.settings import Settings
from ig_analytics.accounts.token_vault import TokenVault

# Sandbox time used by most tests: a frozen clock makes every value reproducible.
SANDBOX_NOW = datetime(2026, 11, 20, 12, 10, tzinfo=timezone.utc)

RESOURCES = {
    "database": AnalyticsDatabase(),
    "graph_api": GraphApi(backoff_base_s=0.01, max_throttle_wait_s=1.0),
    **analytics_assets.analytics_resources(AnalyticsDatabase()),  # postgres_io and the analytics' inputs
}


def served(engine, monkeypatch, world: SandboxWorld):
    """``world`` served over HTTP on a free port, its accounts registered and ``IG_GRAPH_API_URL`` pointing at it;
    yields the server and stops it afterwards (a fixture's body: ``yield from served(...)``)."""
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        yield server


def register(engine, world, skip: set[str] = frozenset()) -> None:
    vault = TokenVault.from_settings(Settings.from_env())
    for account in world.accounts:
        if account.ig_user_id not in skip:
            repo.add_account(engine, vault, ig_user_id=account.ig_user_id, token=account.token,
                             username=account.username, timezone_name=account.timezone)


def materialize_account_insights(first: date, last: date, instance=None, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ingestion_assets.ACCOUNTS, ingestion_assets.account_insights_daily],
        selection=[ingestion_assets.account_insights_daily],
        resources=RESOURCES,
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()},
        run_config={"ops": {"account_insights_daily": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def materialize_media(hour_key: str, instance=None, with_analytics: bool = False, **config) -> dg.ExecuteInProcessResult:
    config.setdefault("max_capture_lag_hours", None)  # the sandbox clock is not the wall clock
    assets = [ingestion_assets.ACCOUNTS, ingestion_assets.media_and_snapshots]
    if with_analytics:
        assets += [analytics_assets.media_engagement, analytics_assets.trending_posts]
    return dg.materialize(
        assets,
        selection=assets[1:],
        resources=RESOURCES,
        instance=instance,
        partition_key=hour_key,
        run_config={"ops": {"media_and_snapshots": {"config": config}}},
        raise_on_error=False,
    )


def hour_key(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d-%H:00")
