"""Run one sync over many accounts with bounded concurrency, so one account's failure costs only that account.

Plain Python (no Dagster): the assets call :func:`sync_accounts` and turn its outcomes into metadata, checks and
retries.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from sqlalchemy.engine import Engine

from ig_analytics import clock
from ig_analytics import stopping
from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.accounts.repository import AccountCredentials
from ig_analytics.graph_api.protocol import AccountsClient, InsightsApi
from ig_analytics.ingestion import outcome as outcomes
from ig_analytics.ingestion.circuit_breaker import CircuitBreaker
from ig_analytics.ingestion.outcome import AccountOutcome
from ig_analytics.ingestion.stored_text import storable
from ig_analytics.storage.db import describe_database_failure

log = logging.getLogger("ig_analytics.ingestion")

# work(api, credentials, outcome) -> None: does the sync, sets outcome.rows_written / status / details.
AccountWork = Callable[[InsightsApi, AccountCredentials, AccountOutcome], None]


def sync_accounts(
    engine: Engine,
    client: AccountsClient,
    credentials: Sequence[AccountCredentials],
    *,
    sync_type: str,
    partition_key: str,
    run_id: str,
    work: AccountWork,
    max_workers: int = 4,
    on_needs_reauth: Callable[[AccountOutcome], None] | None = None,
    breaker: CircuitBreaker | None = None,
) -> list[AccountOutcome]:
    """Sync every account; a :class:`CircuitBreaker` stops the run early when the API is down for everyone."""
    breaker = breaker or CircuitBreaker.for_run(len(credentials), getattr(client, "base_url", None))

    def one(creds: AccountCredentials) -> AccountOutcome:
        outcome = AccountOutcome(
            ig_user_id=creds.ig_user_id, sync_type=sync_type, partition_key=partition_key,
            started_at=clock.now(),
        )
        if breaker.open:  # the API is down for everyone: do not spend minutes of retries on this account too
            outcome.error = breaker.reason()
            outcome.finish("failed")
            _safe_record(engine, run_id, outcome)
            return outcome
        api = client.account(creds.ig_user_id, creds.token, creds.login_kind)
        failure: BaseException | None = None
        try:
            outcomes.record(engine, run_id, outcome)  # 'running': visible while it works
            work(api, creds, outcome)
            if outcome.status == "running":
                outcome.finish("success")
        except Exception as exc:  # noqa: BLE001 - every failure is this account's outcome, never the run's
            failure = exc
            outcome.fail(exc)
            log.warning(
                "%s sync of account %s failed: %s", sync_type, creds.ig_user_id, outcome.error,
                extra={"ig_user_id": creds.ig_user_id, "code": outcome.error_code,
                       "subcode": outcome.error_subcode, "fbtrace_id": outcome.fbtrace_id,
                       # a database outage fails every account: the command reports it once, in one line
                       "log_only": describe_database_failure(exc) is not None or isinstance(exc, stopping.Stopped)},
            )
        finally:
            _add_call_stats(outcome, api.stats)
        breaker.record(outcome.ok, failure)
        if outcome.needs_reauth:
            _mark_needs_reauth(engine, outcome, on_needs_reauth)
        _safe_record(engine, run_id, outcome)
        return outcome

    if not credentials:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(credentials))), thread_name_prefix="ig-sync") as pool:
        futures = [pool.submit(one, creds) for creds in credentials]
        try:
            results = [future.result() for future in futures]
        except BaseException:
            # Dagster's interrupt (raised in this thread on SIGTERM/SIGINT) would become a step retry: when it is
            # a stop, let the accounts end stopping (each records its outcome) and return them instead.
            if stopping.wait_requested(2.0) is None:
                raise
            results = [future.result() for future in futures]
    if breaker.open:
        log.error("stopped early: %s", breaker.reason().removeprefix("not attempted: "))
    return results


def _add_call_stats(outcome: AccountOutcome, stats) -> None:
    """What the client counted for the account: calls, throttle waits, skipped items (the first 50, with why),
    dropped metrics, and lists cut short (graph_api/paging.py), which make a success partial."""
    outcome.api_calls = stats.calls
    outcome.throttle_wait_seconds = stats.throttle_wait_s
    outcome.items_skipped = max(outcome.items_skipped, len(stats.skipped))
    if stats.skipped:
        outcome.details["skipped"] = [
            {"media_id": s.media_id, "code": s.code, "subcode": s.subcode, "reason": storable(s.reason),
             "refused": s.refused}
            for s in stats.skipped[:50]
        ]
    if stats.dropped_metrics:
        outcome.details["dropped_metrics"] = sorted({metric for _, metric in stats.dropped_metrics})
    if stats.incomplete:
        outcome.details["incomplete"] = list(stats.incomplete)
        if outcome.status == "success":
            outcome.status, outcome.error = "partial", outcome.error or "; ".join(stats.incomplete)


def _mark_needs_reauth(engine: Engine, outcome: AccountOutcome,
                       on_needs_reauth: Callable[[AccountOutcome], None] | None) -> None:
    try:
        changed = accounts_repo.set_status(engine, outcome.ig_user_id, "needs_reauth", outcome.error)
        if changed and on_needs_reauth:
            on_needs_reauth(outcome)
    except Exception as exc:  # noqa: BLE001
        log.error("could not mark account %s as needs_reauth: %s", outcome.ig_user_id, exc)


def _safe_record(engine: Engine, run_id: str, outcome: AccountOutcome) -> None:
    try:
        outcomes.record(engine, run_id, outcome)
    except Exception as exc:  # noqa: BLE001 - the database may be the thing that is down
        log.error("could not record the %s outcome of account %s: %s", outcome.sync_type, outcome.ig_user_id, exc,
                  extra={"log_only": describe_database_failure(exc) is not None})
        if outcome.status in ("success", "partial", "running"):
            outcome.fail(exc)
