"""What one account's sync did, and how it is recorded in ``instagram.sync_runs`` (``storage/sync_runs.py``).

Every account sync ends in an :class:`AccountOutcome`, also when it failed: the failure costs that account,
never the others, and its reason is stored for the CLI, the asset checks and the status command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from ig_analytics import clock
from ig_analytics.graph_api.errors import GraphApiError, PermissionDeniedError, ThrottledError, TokenInvalidError
from ig_analytics.ingestion.stored_text import storable
from ig_analytics.redaction import redact
from ig_analytics.storage import sync_runs
from ig_analytics.storage.db import describe_database_failure

# Failures that a retry of the same run cannot fix: the account needs its owner.
NEEDS_REAUTH_ERRORS = (TokenInvalidError, PermissionDeniedError)


@dataclass
class AccountOutcome:
    ig_user_id: str
    sync_type: str  # 'account' | 'media' | 'demographics' | 'followers'
    partition_key: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | success | partial | failed
    api_calls: int = 0
    rows_written: int = 0
    throttle_wait_seconds: float = 0.0
    items_skipped: int = 0
    error: str | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    fbtrace_id: str | None = None
    needs_reauth: bool = False
    throttled: bool = False
    # A step retry may help: only a lost database connection. Retries belong to one layer: the client has already
    # retried transient API errors (a step retry would multiply its attempts), and a failure that fails the same
    # way again (bad data, a 4xx, a ValueError) is never retried. Throttling is not retried within the run either:
    # calling on while throttled lengthens the block, so the next scheduled run picks the account up.
    retryable: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("success", "partial")

    def finish(self, status: str) -> "AccountOutcome":
        self.status = status
        self.finished_at = clock.now()
        return self

    def fail(self, exc: BaseException) -> "AccountOutcome":
        self.error = storable(redact(str(exc))) or type(exc).__name__  # the API's words may hold a NUL
        if isinstance(exc, GraphApiError):
            self.error_code, self.error_subcode, self.fbtrace_id = exc.code, exc.subcode, exc.fbtrace_id
        self.needs_reauth = isinstance(exc, NEEDS_REAUTH_ERRORS)
        self.throttled = isinstance(exc, ThrottledError)
        self.retryable = describe_database_failure(exc) is not None
        return self.finish("failed")

    def summary(self) -> str:
        text = f"{self.status}: {self.rows_written} rows, {self.api_calls} API calls"
        if self.items_skipped:
            text += f", {self.items_skipped} items skipped"
        if self.throttle_wait_seconds:
            text += f", waited {self.throttle_wait_seconds:.0f}s for rate limits"
        if self.error:
            text += f" — {self.error}"
        return text


def record(engine: Engine, run_id: str, outcome: AccountOutcome) -> None:
    """Store the outcome in ``instagram.sync_runs`` (a step retry updates its row)."""
    sync_runs.upsert(engine, {"dagster_run_id": run_id, **{
        column: getattr(outcome, column) for column in sync_runs.COLUMNS if column != "dagster_run_id"}})
