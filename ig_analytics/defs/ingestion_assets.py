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
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

import dagster as dg

from ig_analytics import stopping
from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.constants import DAILY_CAPTURE_INTERVAL_HOURS, MEDIA_WINDOW_DAYS, YOUNG_POST_HOURS
from ig_analytics.defs.catalog import ACCOUNT_INSIGHTS, ACCOUNTS, HOURLY, accounts_synced_check, table_asset
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.ingestion.account_insights import sync_account_insights
from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media
from ig_analytics.ingestion.outcome import AccountOutcome
from ig_analytics.ingestion.runner import sync_accounts
from ig_analytics.accounts.shards import in_shard, shard_from_tags
from ig_analytics.storage import sync_runs

GRAPH_API_POOL = "graph_api"

SYNC_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


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


def refuse_unstarted_partition(context, newest_start: datetime, now: datetime) -> None:
    """A partition that has not begun has nothing to measure, and a capture now would be stored under a time that
    is still to come. The schedules never ask for one; a GraphQL launch or a hand-written tag can."""
    if newest_start > now:
        key = context.partition_key_range.end
        raise dg.Failure(
            description=(f"Partition {key} has not started yet (it is {now:%Y-%m-%d %H:%M} UTC): nothing can be "
                         "measured for it. Launch a partition that has begun: the hourly schedule asks for the hour "
                         "in progress, the daily ones for yesterday."),
            allow_retries=False,
        )


def _outcomes_markdown(results: list[AccountOutcome]) -> str:
    lines = ["| account | status | rows | API calls | detail |", "|---|---|---|---|---|"]
    for o in results:
        # one table row per account: a newline or a pipe in an API error would break the Markdown table
        detail = " ".join((o.error or "").split()).replace("|", "\\|")[:200]
        lines.append(f"| {o.ig_user_id} | {o.status} | {o.rows_written} | {o.api_calls} | {detail} |")
    return "\n".join(lines)


def _run_metadata(results: list[AccountOutcome], started: float, skipped_done: set[str], problems: dict) -> dict:
    return {
        "rows_written": dg.MetadataValue.int(sum(o.rows_written for o in results)),
        "api_calls": dg.MetadataValue.int(sum(o.api_calls for o in results)),
        "accounts_ok": dg.MetadataValue.int(sum(1 for o in results if o.ok) + len(skipped_done)),
        "accounts_failed": dg.MetadataValue.int(sum(1 for o in results if not o.ok)),
        "accounts_not_synced": dg.MetadataValue.int(len(problems)),
        "throttle_wait_seconds": dg.MetadataValue.float(float(round(sum(o.throttle_wait_seconds for o in results), 3))),
        "items_skipped": dg.MetadataValue.int(sum(o.items_skipped for o in results)),
        "items_refused": dg.MetadataValue.json(_refused_items(results)),
        "duration_seconds": dg.MetadataValue.float(float(round(time.monotonic() - started, 3))),
        "accounts": dg.MetadataValue.md(_outcomes_markdown(results) if results else "no account synced"),
    }


def _accounts_check(asset_key: dg.AssetKey, results: list[AccountOutcome], problems: dict) -> dg.AssetCheckResult:
    failed = {o.ig_user_id: o.error for o in results if not o.ok}
    description = "Every account this run was asked to sync succeeded (partial counts as success)."
    if failed:
        description = f"Failed: {', '.join(sorted(failed))} (reasons in failed_accounts); the others were written."
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="accounts_synced",
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failed_accounts": dg.MetadataValue.json(failed),
            "not_synced_accounts": dg.MetadataValue.json(problems),
        },
        description=description,
    )


def _refused_items(results: list[AccountOutcome]) -> dict[str, list[dict]]:
    """Per account, the posts the API refused while the account's other calls worked (errors by scope)."""
    refused = {o.ig_user_id: [s for s in o.details.get("skipped", []) if s.get("refused")] for o in results}
    return {account: items for account, items in refused.items() if items}


def _raise_for_retryable(context, results: list[AccountOutcome]) -> None:
    """Only a lost database connection is retried by the step; on its last attempt the step keeps what it has,
    so the analytics and checks of the hour still run for the accounts that were written."""
    reason = stopping.requested()
    if reason is not None:  # SIGTERM/SIGINT: the step ends here, no retry; the next sync carries on
        raise dg.Failure(description=str(stopping.Stopped(reason)), allow_retries=False)
    retryable = [o for o in results if not o.ok and o.retryable]
    if retryable and context.retry_number < SYNC_RETRY_POLICY.max_retries:
        summary = "; ".join(f"{o.ig_user_id}: {o.error}" for o in retryable)
        raise dg.Failure(
            description=(
                f"{len(retryable)} account(s) lost the database connection after the others were written "
                f"({summary}). The step retries and skips the accounts already done."
            ),
            metadata={"accounts": dg.MetadataValue.md(_outcomes_markdown(results))},
            allow_retries=True,
        )


def _credentials(context, database: AnalyticsDatabase, sync_type: str, ig_user_ids: list[str]):
    engine = database.engine()
    creds, problems = accounts_repo.active_credentials(engine, database.vault(), ig_user_ids or None)
    shard = shard_from_tags(context.run.tags)  # a schedule's shard run syncs only its shard's accounts
    if shard is not None:
        creds = [c for c in creds if in_shard(c.ig_user_id, shard)]
        problems = {k: v for k, v in problems.items() if in_shard(k, shard)}
        context.log.info(f"shard {shard[0]} of {shard[1]}: {len(creds)} account(s)")
    done = sync_runs.succeeded_in_run(engine, context.run_id, sync_type) if context.retry_number else set()
    for ig_user_id, reason in problems.items():
        context.log.warning(f"account {ig_user_id} not synced: {reason}")
    return engine, [c for c in creds if c.ig_user_id not in done], problems, done


def _needs_reauth_alert(database: AnalyticsDatabase):
    def alert(outcome: AccountOutcome) -> None:
        from ig_analytics.notify import notify_needs_reauth

        notify_needs_reauth(database.notifier(), outcome.ig_user_id, outcome.error or "")

    return alert


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
    refuse_unstarted_partition(context, window.end - timedelta(days=1), datetime.now(timezone.utc))
    key_range = context.partition_key_range
    partition_label = key_range.start if key_range.start == key_range.end else f"{key_range.start}...{key_range.end}"
    engine, creds, problems, done = _credentials(context, database, "account", config.ig_user_ids)
    client = graph_api.client(database)

    def work(api, account, result: AccountOutcome) -> None:
        result.rows_written = sync_account_insights(
            engine, api, account.ig_user_id, first_day, last_day, client.version, datetime.now(timezone.utc)
        )

    results = sync_accounts(
        engine, client, creds, sync_type="account", partition_key=partition_label, run_id=context.run_id,
        work=work, max_workers=config.max_concurrent_accounts, on_needs_reauth=_needs_reauth_alert(database),
    )
    _raise_for_retryable(context, results)
    metadata = _run_metadata(results, started, done, problems)
    metadata["days"] = dg.MetadataValue.int((last_day - first_day).days + 1)
    metadata["api_version"] = dg.MetadataValue.text(client.version)
    yield dg.MaterializeResult(metadata=metadata)
    yield _accounts_check(dg.AssetKey("account_insights_daily"), results, problems)


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
    now = datetime.now(timezone.utc)
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
    engine, creds, problems, done = _credentials(context, database, "media", config.ig_user_ids)
    client = graph_api.client(database)
    reference_end = min(slot_end, now)  # the hour in progress has not ended: ages are measured up to now

    def work(api, account, result: AccountOutcome) -> None:
        synced = sync_media(
            engine, api, account.ig_user_id, slot_start, reference_end, client.version, datetime.now(timezone.utc),
            policy, refresh_all=config.refresh_all, capture_snapshots=capture,
        )
        result.rows_written = synced.rows_written
        result.items_skipped = synced.skipped
        result.details.update(media=synced.media_rows, snapshots=synced.snapshot_rows, due=synced.due,
                              not_captured=synced.not_captured)
        result.finish("partial" if synced.not_captured else "success")

    results = sync_accounts(
        engine, client, creds, sync_type="media", partition_key=partition_label, run_id=context.run_id,
        work=work, max_workers=config.max_concurrent_accounts, on_needs_reauth=_needs_reauth_alert(database),
    )
    _raise_for_retryable(context, results)

    def total(detail: str) -> int:  # summed after the workers are done: each outcome holds its own account's counts
        return sum(o.details.get(detail, 0) for o in results)

    metadata = _run_metadata(results, started, done, problems)
    metadata["captured_slot"] = dg.MetadataValue.text(slot_start.isoformat() if capture else "none (past slot)")
    yield dg.MaterializeResult(
        asset_key="media", metadata={**metadata, "rows_written": dg.MetadataValue.int(total("media"))}
    )
    yield dg.MaterializeResult(
        asset_key="media_insights_snapshots",
        metadata={**metadata, "rows_written": dg.MetadataValue.int(total("snapshots")),
                  "posts_due": dg.MetadataValue.int(total("due"))},
    )
    yield _accounts_check(dg.AssetKey("media_insights_snapshots"), results, problems)


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
