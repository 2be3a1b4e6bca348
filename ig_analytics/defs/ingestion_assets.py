"""Ingestion assets: account insights (daily partitions) and the media catalogue with its insight snapshots
(hourly partitions). Each run loops over the active accounts with bounded concurrency.

How a failing account shows (docs/architecture.md, "Failures"):
- token rejected or permission missing: the account becomes ``needs_reauth`` (alert once), is skipped from then
  on, and the ``accounts_synced`` check of that materialization fails (ERROR) with the account and the reason;
- throttled past the client's patience: recorded as failed, the check fails; no in-run retry, because calling on
  while throttled lengthens the block; the next scheduled run picks the account up;
- transient API trouble: the client has retried already (retries belong to one layer), so the account is recorded
  as failed and the check fails, naming it; the step succeeds, so the analytics and checks of that hour run for
  every account that was captured;
- a lost database connection: the others are written first, then the step raises so its RetryPolicy runs it
  again (skipping the accounts already done); the last attempt materializes what it has instead of failing.
Every outcome is a row of ``instagram.sync_runs``.
"""


import time
from datetime import date, datetime, timedelta
from typing import Any, Mapping

import dagster as dg

from ig_analytics import clock
from ig_analytics.constants import DAILY_CAPTURE_INTERVAL_HOURS, MEDIA_WINDOW_DAYS, YOUNG_POST_HOURS
from ig_analytics.defs.account_runs import (
    GRAPH_API_POOL, SYNC_RETRY_POLICY, account_credentials, accounts_check, needs_reauth_alert, raise_for_retryable,
    refuse_unstarted_partition, run_metadata,
)
from ig_analytics.defs.catalog import ACCOUNT_INSIGHTS, ACCOUNTS, HOURLY, accounts_synced_check, table_asset
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.ingestion.account_insights import sync_account_insights
from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media
from ig_analytics.ingestion.outcome import AccountOutcome
from ig_analytics.ingestion.runner import sync_accounts

class AccountSyncConfig(dg.Config):
    ig_user_ids: list[str] = []  # empty: every active account
    max_concurrent_accounts: int = 4


class MediaSyncConfig(dg.Config):
    ig_user_ids: list[str] = []
    refresh_all: bool = False  # capture every post of the window now (the daily refresh, `ig-analytics sync`)
    max_concurrent_accounts: int = 8
    window_days: int = MEDIA_WINDOW_DAYS
    young_hours: int = YOUNG_POST_HOURS
    daily_interval_hours: int = DAILY_CAPTURE_INTERVAL_HOURS
    # Lifetime values are "as of now": a slot that ended longer ago than this gets no snapshots (a backfill of
    # old hours refreshes the catalogue only). None disables the guard (tests replaying a sandbox clock).
    max_capture_lag_hours: int | None = 1


@dg.asset(
    key="account_insights_daily",
    deps=[ACCOUNTS],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=GRAPH_API_POOL,
    retry_policy=SYNC_RETRY_POLICY,
    group_name="ingestion",
    kinds={"postgres"},
    check_specs=[accounts_synced_check("account_insights_daily")],
    **table_asset("account_insights_daily"),
    freshness_policy=ACCOUNT_INSIGHTS,
    description=(
        "Each account's daily numbers from Instagram (reach, views, new followers, interactions; one row per "
        "account and day) and its follower total at the end of each day. Synced every night at 02:00 UTC for "
        "yesterday and the two days before (Meta revises recent days). A 90-day backfill is one run."
    ),
)
def account_insights_daily(
    context: dg.AssetExecutionContext, config: AccountSyncConfig, database: AnalyticsDatabase, graph_api: GraphApi
):
    started = time.monotonic()
    window = context.partition_time_window
    first_day: date = window.start.date()
    last_day: date = (window.end - timedelta(days=1)).date()
    refuse_unstarted_partition(context, window.end - timedelta(days=1), clock.now())
    key_range = context.partition_key_range
    partition_label = key_range.start if key_range.start == key_range.end else f"{key_range.start}...{key_range.end}"
    engine, creds, problems, done = account_credentials(context, database, "account", config.ig_user_ids)
    client = graph_api.client(database)

    def work(api, account, result: AccountOutcome) -> None:
        result.rows_written = sync_account_insights(
            engine, api, account.ig_user_id, first_day, last_day, client.version, clock.now()
        )

    results = sync_accounts(
        engine, client, creds, sync_type="account", partition_key=partition_label, run_id=context.run_id,
        work=work, max_workers=config.max_concurrent_accounts, on_needs_reauth=needs_reauth_alert(database),
    )
    raise_for_retryable(context, results)
    metadata = run_metadata(results, started, done, problems)
    metadata["days"] = dg.MetadataValue.int((last_day - first_day).days + 1)
    metadata["api_version"] = dg.MetadataValue.text(client.version)
    yield dg.MaterializeResult(metadata=metadata)
    yield accounts_check(dg.AssetKey("account_insights_daily"), results, problems)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "media", deps=[ACCOUNTS], group_name="ingestion", kinds={"postgres"}, **table_asset("media"),
            freshness_policy=HOURLY,
            description=f"Every post and live story of the last {MEDIA_WINDOW_DAYS} days (one row per post): type, "
                        "caption, link, publication time, like and comment counts.",
        ),
        dg.AssetSpec(
            "media_insights_snapshots", deps=["media"], group_name="ingestion", kinds={"postgres"},
            **table_asset("media_insights_snapshots"), freshness_policy=HOURLY,
            description=(
                f"Lifetime insights of each post, one row per capture slot: hourly while a post is under "
                f"{YOUNG_POST_HOURS} h old, then daily until {MEDIA_WINDOW_DAYS} days. View "
                "instagram.media_insights_latest has the newest per post."
            ),
        ),
    ],
    check_specs=[accounts_synced_check("media_insights_snapshots")],
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=GRAPH_API_POOL,
    retry_policy=SYNC_RETRY_POLICY,
    can_subset=False,
)
def media_and_snapshots(
    context: dg.AssetExecutionContext, config: MediaSyncConfig, database: AnalyticsDatabase, graph_api: GraphApi
):
    started = time.monotonic()
    window = context.partition_time_window
    slot_end: datetime = window.end
    slot_start: datetime = slot_end - timedelta(hours=1)  # a range run captures its newest slot only
    now = clock.now()
    refuse_unstarted_partition(context, slot_start, now)
    capture = config.max_capture_lag_hours is None or now - slot_end <= timedelta(hours=config.max_capture_lag_hours)
    if not capture:
        context.log.info(
            f"Slot {slot_start.isoformat()} ended more than {config.max_capture_lag_hours} h ago: lifetime values "
            "cannot be captured in the past, so only the media catalogue is refreshed."
        )
    policy = CapturePolicy(config.window_days, config.young_hours, config.daily_interval_hours)
    key_range = context.partition_key_range
    partition_label = key_range.start if key_range.start == key_range.end else f"{key_range.start}...{key_range.end}"
    engine, creds, problems, done = account_credentials(context, database, "media", config.ig_user_ids)
    client = graph_api.client(database)
    reference_end = min(slot_end, now)  # the hour in progress has not ended: ages are measured up to now

    def work(api, account, result: AccountOutcome) -> None:
        synced = sync_media(
            engine, api, account.ig_user_id, slot_start, reference_end, client.version, clock.now(),
            policy, refresh_all=config.refresh_all, capture_snapshots=capture,
        )
        result.rows_written = synced.rows_written
        result.items_skipped = synced.skipped
        result.details.update(media=synced.media_rows, snapshots=synced.snapshot_rows, due=synced.due,
                              not_captured=synced.not_captured)
        result.finish("partial" if synced.not_captured else "success")

    results = sync_accounts(
        engine, client, creds, sync_type="media", partition_key=partition_label, run_id=context.run_id,
        work=work, max_workers=config.max_concurrent_accounts, on_needs_reauth=needs_reauth_alert(database),
    )
    raise_for_retryable(context, results)

    def total(detail: str) -> int:  # summed after the workers are done: each outcome holds its own account's counts
        return sum(o.details.get(detail, 0) for o in results)

    metadata = run_metadata(results, started, done, problems)
    metadata["captured_slot"] = dg.MetadataValue.text(slot_start.isoformat() if capture else "none (past slot)")
    yield dg.MaterializeResult(
        asset_key="media", metadata={**metadata, "rows_written": dg.MetadataValue.int(total("media"))}
    )
    yield dg.MaterializeResult(
        asset_key="media_insights_snapshots",
        metadata={**metadata, "rows_written": dg.MetadataValue.int(total("snapshots")),
                  "posts_due": dg.MetadataValue.int(total("due"))},
    )
    yield accounts_check(dg.AssetKey("media_insights_snapshots"), results, problems)


def requested_accounts(run_config: Mapping[str, Any]) -> tuple[str, ...]:
    """The accounts a run was asked to sync (``ig-analytics sync --account``), read back from its run config as
    the typed config of the ingestion op that has one; empty: every active account (also for a run without it)."""
    ops = run_config.get("ops") or {}
    for assets_def, config_class in ((account_insights_daily, AccountSyncConfig),
                                     (media_and_snapshots, MediaSyncConfig)):
        op_config = ops.get(assets_def.op.name)
        if op_config is not None:
            config = config_class(**(op_config.get("config") or {}))
            if config.ig_user_ids:
                return tuple(config.ig_user_ids)
    return ()
