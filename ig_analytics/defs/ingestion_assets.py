"""Ingestion assets: account insights (daily partitions) and the media catalogue with its insight snapshots
(hourly partitions). Each run loops over the active accounts with bounded concurrency.

How a failing account shows (docs/architecture.md, "Failures"):
- token rejected or permission missing: the account becomes ``needs_reauth`` (alert once), is skipped from then
  on, and the ``accounts_synced`` check of that materialization fails (ERROR) with the account and the reason;
- throttled past the client's patience: recorded as failed, the check fails; no in-run retry, because calling on
  while throttled lengthens the block; the next scheduled run picks the account up;
- transient API or database trouble: the others are written first, then the step raises so its RetryPolicy runs
  it again; the retry skips the accounts that already succeeded in this run.
Every outcome is a row of ``instagram.sync_runs``.
"""


import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from ig_analytics import accounts as accounts_repo
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.ingestion import outcome as outcomes
from ig_analytics.ingestion.account_insights import ACCOUNT_METRIC_COLUMNS, sync_account_insights
from ig_analytics.ingestion.media_snapshots import SNAPSHOT_METRIC_COLUMNS, CapturePolicy, sync_media
from ig_analytics.ingestion.outcome import AccountOutcome
from ig_analytics.ingestion.runner import sync_accounts

GRAPH_API_POOL = "graph_api"

SYNC_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

ACCOUNTS = dg.AssetSpec(
    "accounts",
    group_name="ingestion",
    kinds={"postgres"},
    description="Connected Instagram business accounts (instagram.accounts), managed with `ig-analytics accounts`.",
    metadata={"dagster/table_name": "instagram.accounts"},
)


class AccountSyncConfig(dg.Config):
    ig_user_ids: list[str] = []  # empty: every active account
    max_concurrent_accounts: int = 4


class MediaSyncConfig(dg.Config):
    ig_user_ids: list[str] = []
    refresh_all: bool = False  # capture every post of the window now (the daily refresh, `ig-analytics sync`)
    max_concurrent_accounts: int = 8
    window_days: int = 30
    young_hours: int = 48
    daily_interval_hours: int = 23
    # Lifetime values are "as of now": a slot that ended longer ago than this gets no snapshots (a backfill of
    # old hours refreshes the catalogue only). None disables the guard (tests replaying a sandbox clock).
    max_capture_lag_hours: int | None = 1


def _column_schema(columns: list[tuple[str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])


ACCOUNT_INSIGHTS_SCHEMA = _column_schema(
    [("ig_user_id", "text"), ("date", "date"), *[(c, "bigint") for c in ACCOUNT_METRIC_COLUMNS],
     ("followers_total", "bigint"), ("api_version", "text"), ("synced_at", "timestamptz")]
)
SNAPSHOT_SCHEMA = _column_schema(
    [("media_id", "text"), ("captured_at", "timestamptz"), ("fetched_at", "timestamptz"), ("ig_user_id", "text"),
     *[(c, "bigint") for c in SNAPSHOT_METRIC_COLUMNS], ("other_metrics", "jsonb"), ("api_version", "text")]
)
MEDIA_SCHEMA = _column_schema(
    [("media_id", "text"), ("ig_user_id", "text"), ("media_type", "text"), ("media_product_type", "text"),
     ("caption", "text"), ("permalink", "text"), ("published_at", "timestamptz"), ("like_count", "bigint"),
     ("comments_count", "bigint"), ("insights_unavailable_reason", "text")]
)


def _outcomes_markdown(results: list[AccountOutcome]) -> str:
    lines = ["| account | status | rows | API calls | detail |", "|---|---|---|---|---|"]
    for o in results:
        detail = (o.error or "").replace("|", "/")[:200]
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
        "duration_seconds": dg.MetadataValue.float(float(round(time.monotonic() - started, 3))),
        "accounts": dg.MetadataValue.md(_outcomes_markdown(results) if results else "no account synced"),
    }


def _accounts_check(asset_key: dg.AssetKey, results: list[AccountOutcome], problems: dict) -> dg.AssetCheckResult:
    failed = {o.ig_user_id: o.error for o in results if not o.ok}
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name="accounts_synced",
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failed_accounts": dg.MetadataValue.json(failed),
            "not_synced_accounts": dg.MetadataValue.json(problems),
        },
        description="Every account this run was asked to sync succeeded (partial counts as success).",
    )


def _raise_for_retryable(context, results: list[AccountOutcome]) -> None:
    retryable = [o for o in results if not o.ok and o.retryable]
    if retryable:
        summary = "; ".join(f"{o.ig_user_id}: {o.error}" for o in retryable)
        raise dg.Failure(
            description=(
                f"{len(retryable)} account(s) hit transient API or database trouble after the others were written "
                f"({summary}). The step retries and skips the accounts already done."
            ),
            metadata={"accounts": dg.MetadataValue.md(_outcomes_markdown(results))},
            allow_retries=True,
        )


def _credentials(context, database: AnalyticsDatabase, sync_type: str, ig_user_ids: list[str]):
    engine = database.engine()
    creds, problems = accounts_repo.active_credentials(engine, database.vault(), ig_user_ids or None)
    done = outcomes.succeeded_in_run(engine, context.run_id, sync_type) if context.retry_number else set()
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
    check_specs=[dg.AssetCheckSpec("accounts_synced", asset="account_insights_daily")],
    metadata={"dagster/table_name": "instagram.account_insights_daily", "dagster/column_schema": ACCOUNT_INSIGHTS_SCHEMA},
    description=(
        "Daily account insights (one row per account and day) plus a profile snapshot for the follower total. "
        "A run over a partition range fetches it in API windows of 29 days: a 90-day backfill is one run."
    ),
)
def account_insights_daily(
    context: dg.AssetExecutionContext, config: AccountSyncConfig, database: AnalyticsDatabase, graph_api: GraphApi
):
    started = time.monotonic()
    window = context.partition_time_window
    first_day: date = window.start.date()
    last_day: date = (window.end - timedelta(days=1)).date()
    key_range = context.partition_key_range
    partition_label = key_range.start if key_range.start == key_range.end else f"{key_range.start}...{key_range.end}"
    engine, creds, problems, done = _credentials(context, database, "account", config.ig_user_ids)
    client = graph_api.client()

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
            "media", deps=[ACCOUNTS], group_name="ingestion", kinds={"postgres"},
            description="The catalogue of recent posts and live stories (one row per post).",
            metadata={"dagster/table_name": "instagram.media", "dagster/column_schema": MEDIA_SCHEMA},
        ),
        dg.AssetSpec(
            "media_insights_snapshots", deps=["media"], group_name="ingestion", kinds={"postgres"},
            description=(
                "Lifetime insights of each post, one row per capture slot: hourly while a post is under 48 h "
                "old, then daily until 30 days. View instagram.media_insights_latest has the newest per post."
            ),
            metadata={"dagster/table_name": "instagram.media_insights_snapshots", "dagster/column_schema": SNAPSHOT_SCHEMA},
        ),
    ],
    check_specs=[dg.AssetCheckSpec("accounts_synced", asset="media_insights_snapshots")],
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
    client = graph_api.client()
    reference_end = min(slot_end, now)  # the hour in progress has not ended: ages are measured up to now
    totals = {"media_rows": 0, "snapshot_rows": 0, "due": 0}

    def work(api, account, result: AccountOutcome) -> None:
        synced = sync_media(
            engine, api, account.ig_user_id, slot_start, reference_end, client.version, datetime.now(timezone.utc),
            policy, refresh_all=config.refresh_all, capture_snapshots=capture,
        )
        result.rows_written = synced.rows_written
        result.items_skipped = synced.skipped
        result.details.update(media=synced.media_rows, snapshots=synced.snapshot_rows, due=synced.due,
                              not_captured=synced.not_captured)
        for key in totals:
            totals[key] += getattr(synced, key)
        result.finish("partial" if synced.not_captured else "success")

    results = sync_accounts(
        engine, client, creds, sync_type="media", partition_key=partition_label, run_id=context.run_id,
        work=work, max_workers=config.max_concurrent_accounts, on_needs_reauth=_needs_reauth_alert(database),
    )
    _raise_for_retryable(context, results)
    metadata = _run_metadata(results, started, done, problems)
    metadata["captured_slot"] = dg.MetadataValue.text(slot_start.isoformat() if capture else "none (past slot)")
    yield dg.MaterializeResult(
        asset_key="media", metadata={**metadata, "rows_written": dg.MetadataValue.int(totals["media_rows"])}
    )
    yield dg.MaterializeResult(
        asset_key="media_insights_snapshots",
        metadata={**metadata, "rows_written": dg.MetadataValue.int(totals["snapshot_rows"]),
                  "posts_due": dg.MetadataValue.int(totals["due"])},
    )
    yield _accounts_check(dg.AssetKey("media_insights_snapshots"), results, problems)
