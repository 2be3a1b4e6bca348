"""`ig-analytics sync`: run the sync jobs now, in this process, on the persistent Dagster instance (so the runs
show in the UI's history), then read each account's outcome back from ``instagram.sync_runs``.

One run per job, whatever the date range: a 90-day account sync is one partition-range run (the assets use
single-run backfill policies), so Dagster's per-run start-up is paid once, not 90 times.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ig_analytics.defs.partitions import daily_partitions

SYNC_TYPES = ("full", "account", "media")
DEFAULT_ACCOUNT_DAYS = 90
DEFAULT_MEDIA_WINDOW_DAYS = 30
PID_TAG = "ig_analytics/pid"
HOST_TAG = "ig_analytics/host"


class UsageError(ValueError):
    pass


@dataclass
class AccountLine:
    ig_user_id: str
    username: str | None
    parts: dict[str, tuple[str, str]] = field(default_factory=dict)  # sync_type -> (status, summary)

    @property
    def ok(self) -> bool:
        return bool(self.parts) and all(status in ("success", "partial") for status, _ in self.parts.values())

    def render(self) -> str:
        name = f"{self.ig_user_id} (@{self.username})" if self.username else self.ig_user_id
        label = {"account": "account insights", "media": "media"}
        body = "; ".join(f"{label[k]}: {summary}" for k, (_, summary) in sorted(self.parts.items()))
        return f"{'OK  ' if self.ok else 'FAIL'} {name} — {body or 'not synced'}"


@dataclass
class SyncReport:
    lines: list[AccountLine]
    run_errors: list[str]
    run_ids: list[str]

    @property
    def exit_code(self) -> int:
        return 0 if self.lines and all(line.ok for line in self.lines) and not self.run_errors else 1


def resolve_range(since: date | None, until: date | None, today: date) -> tuple[date, date]:
    until = until or today - timedelta(days=1)
    since = since or until - timedelta(days=DEFAULT_ACCOUNT_DAYS - 1)
    if since > until:
        raise UsageError(f"--since {since} is after --until {until}")
    if until >= today:
        raise UsageError(f"--until {until} is not a finished day yet; the newest day to sync is {today - timedelta(days=1)}")
    start = daily_partitions.start.date()
    if since < start:
        raise UsageError(f"--since {since} is before the first daily partition {start} (IG_ANALYTICS_DAILY_START)")
    return since, until


def run_sync(
    account_ids: list[str], sync_type: str, since: date | None, until: date | None, *, now: datetime | None = None
) -> SyncReport:
    from dagster import DagsterInstance

    from ig_analytics import runtime
    from ig_analytics.definitions import defs
    from ig_analytics.storage import db

    now = now or datetime.now(timezone.utc)
    if sync_type not in SYNC_TYPES:
        raise UsageError(f"--type must be one of {', '.join(SYNC_TYPES)}")
    first_day, last_day = resolve_range(since, until, now.date())
    settings = runtime.prepare()
    engine = db.get_engine(db.analytics_url(settings))
    instance = DagsterInstance.get()
    # Dagster's PostgreSQL storages open a connection per event by default (NullPool): ~10 ms x ~300 events per
    # run. The webserver's setting keeps one pooled connection instead; a statement timeout of 0 means none.
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    reap_abandoned_cli_runs(instance)
    run_ids: list[str] = []
    errors: list[str] = []
    tags = {"ig_analytics/trigger": "cli", PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}

    def execute(job_name: str, run_config: dict | None = None, **kwargs) -> None:
        job = defs.resolve_job_def(job_name)
        # The console gets warnings only; the full event log is in the UI's run view.
        run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config, **kwargs)
        run_ids.append(result.run_id)
        if not result.success:
            failures = [e.message for e in result.all_events if e.is_step_failure or e.is_failure]
            errors.append(f"{job_name} run {result.run_id} failed: {failures[-1] if failures else 'see the Dagster UI'}")

    if sync_type in ("full", "media"):
        # --since reaching further back than the default window widens it (posts older than 30 days get one
        # snapshot now); it never narrows it.
        window_days = DEFAULT_MEDIA_WINDOW_DAYS
        if since is not None:
            window_days = max(window_days, (now.date() - since).days + 1)
        hour_key = now.strftime("%Y-%m-%d-%H:00")  # the hour in progress (hourly partitions have end_offset=1)
        execute(
            "media_sync_job",
            partition_key=hour_key,
            tags=tags,
            run_config={"ops": {"media_and_snapshots": {"config": {
                "ig_user_ids": account_ids, "refresh_all": True, "window_days": window_days}}}},
        )
    if sync_type in ("full", "account"):
        execute(
            "account_insights_job",
            tags={**tags, ASSET_PARTITION_RANGE_START_TAG: first_day.isoformat(),
                  ASSET_PARTITION_RANGE_END_TAG: last_day.isoformat()},
            run_config={"ops": {"account_insights_daily": {"config": {"ig_user_ids": account_ids}}}},
        )
    if sync_type == "full":
        execute("reports_job", partition_key=last_day.isoformat(), tags=tags)
    return SyncReport(lines=_account_lines(engine, run_ids, account_ids), run_errors=errors, run_ids=run_ids)


def reap_abandoned_cli_runs(instance) -> list[str]:
    """Fail the in-process runs of a `sync` that was killed, and free their pool slots.

    The daemon's run monitoring only watches runs it launched; an in-process run whose process died stays
    STARTED and keeps its `graph_api` pool slot, so the next sync would wait forever.
    """
    from dagster import DagsterRunStatus, RunsFilter

    from ig_analytics.embedded_db import process_alive

    reaped = []
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={"ig_analytics/trigger": "cli"}
        ),
        limit=100,
    )
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG)
        if run.tags.get(HOST_TAG) != host or not pid or process_alive(int(pid)):
            continue
        instance.report_run_failed(run, f"The ig-analytics sync process (pid {pid}) ended before this run finished.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


def _account_lines(engine, run_ids: list[str], account_ids: list[str]) -> list[AccountLine]:
    with engine.connect() as conn:
        accounts = conn.execute(
            sa.text("SELECT ig_user_id, username, status, status_reason FROM instagram.accounts ORDER BY ig_user_id")
        ).all()
        rows = conn.execute(
            sa.text(
                "SELECT ig_user_id, sync_type, status, rows_written, api_calls, items_skipped, error"
                " FROM instagram.sync_runs WHERE dagster_run_id = ANY(:runs)"
            ),
            {"runs": run_ids},
        ).all()
    by_id = {a.ig_user_id: a for a in accounts}
    # Every account that is not disabled gets a line: one waiting for re-authentication is a failure to report.
    wanted = account_ids or [a.ig_user_id for a in accounts if a.status != "disabled"]
    def username(ig_user_id: str) -> str | None:
        return by_id[ig_user_id].username if ig_user_id in by_id else None

    lines = {i: AccountLine(i, username(i)) for i in wanted}
    for row in rows:
        line = lines.setdefault(row.ig_user_id, AccountLine(row.ig_user_id, username(row.ig_user_id)))
        summary = f"{row.status}, {row.rows_written} rows, {row.api_calls} calls"
        if row.items_skipped:
            summary += f", {row.items_skipped} skipped"
        if row.error:
            summary += f" ({row.error})"
        line.parts[row.sync_type] = (row.status, summary)
    for ig_user_id, line in lines.items():
        if not line.parts:
            account = by_id.get(ig_user_id)
            reason = "no such account" if account is None else f"account is {account.status}" + (
                f": {account.status_reason}" if account.status_reason else "")
            line.parts["account"] = ("failed", f"not synced ({reason})")
    return sorted(lines.values(), key=lambda l: l.ig_user_id)
