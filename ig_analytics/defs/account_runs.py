"""What every per-account ingestion asset shares (account insights, media, audience, follower anchors, comments):
the Graph API pool and the step's retry rule, the refusal of a partition that has not begun, the accounts a run
syncs (its shard, those a retry already did), the run's metadata and its `accounts_synced` check, and the
needs-reauth alert."""

import time
from datetime import datetime

import dagster as dg

from ig_analytics import stopping
from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.accounts.shards import in_shard, shard_from_tags
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.ingestion.outcome import AccountOutcome
from ig_analytics.storage import sync_runs

GRAPH_API_POOL = "graph_api"

SYNC_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


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


def outcomes_markdown(results: list[AccountOutcome]) -> str:
    lines = ["| account | status | rows | API calls | detail |", "|---|---|---|---|---|"]
    for o in results:
        # one table row per account: a newline or a pipe in an API error would break the Markdown table
        detail = " ".join((o.error or "").split()).replace("|", "\\|")[:200]
        lines.append(f"| {o.ig_user_id} | {o.status} | {o.rows_written} | {o.api_calls} | {detail} |")
    return "\n".join(lines)


def run_metadata(results: list[AccountOutcome], started: float, skipped_done: set[str], problems: dict) -> dict:
    return {
        "rows_written": dg.MetadataValue.int(sum(o.rows_written for o in results)),
        "api_calls": dg.MetadataValue.int(sum(o.api_calls for o in results)),
        "accounts_ok": dg.MetadataValue.int(sum(1 for o in results if o.ok) + len(skipped_done)),
        "accounts_failed": dg.MetadataValue.int(sum(1 for o in results if not o.ok)),
        "accounts_not_synced": dg.MetadataValue.int(len(problems)),
        "throttle_wait_seconds": dg.MetadataValue.float(float(round(sum(o.throttle_wait_seconds for o in results), 3))),
        "items_skipped": dg.MetadataValue.int(sum(o.items_skipped for o in results)),
        "items_refused": dg.MetadataValue.json(refused_items(results)),
        "duration_seconds": dg.MetadataValue.float(float(round(time.monotonic() - started, 3))),
        "accounts": dg.MetadataValue.md(outcomes_markdown(results) if results else "no account synced"),
    }


def accounts_check(asset_key: dg.AssetKey, results: list[AccountOutcome], problems: dict) -> dg.AssetCheckResult:
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


def refused_items(results: list[AccountOutcome]) -> dict[str, list[dict]]:
    """Per account, the posts the API refused while the account's other calls worked (errors by scope)."""
    refused = {o.ig_user_id: [s for s in o.details.get("skipped", []) if s.get("refused")] for o in results}
    return {account: items for account, items in refused.items() if items}


def raise_for_retryable(context, results: list[AccountOutcome]) -> None:
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
            metadata={"accounts": dg.MetadataValue.md(outcomes_markdown(results))},
            allow_retries=True,
        )


def account_credentials(context, database: AnalyticsDatabase, sync_type: str, ig_user_ids: list[str]):
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


def needs_reauth_alert(database: AnalyticsDatabase):
    def alert(outcome: AccountOutcome) -> None:
        from ig_analytics.alerts.notify import notify_needs_reauth

        notify_needs_reauth(database.notifier(), outcome.ig_user_id, outcome.error or "")

    return alert
