"""`ig-analytics sync`: run the sync jobs now, in this process, on the persistent Dagster instance (so the runs
show in the UI's history), then read each account's outcome back from ``instagram.sync_runs``.

One run per job, whatever the date range: a 90-day account sync is one partition-range run (the assets use
single-run backfill policies), so Dagster's per-run start-up is paid once, not 90 times.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from ig_analytics import clock, stopping
from ig_analytics.constants import MEDIA_WINDOW_DAYS, TRIGGER_TAG
from ig_analytics.defs.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from ig_analytics.install_marker import FIRST_SYNC_DAYS, planned_daily_start
from ig_analytics.storage import sync_runs
from ig_analytics.terminal_text import printable

SYNC_TYPES = ("full", "account", "media")
DEFAULT_ACCOUNT_DAYS = FIRST_SYNC_DAYS  # the daily partitions start this far before the install
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
        """One line: every field from the database or the API is escaped (no newline can split it)."""
        name = printable(self.ig_user_id, 32) + (f" (@{printable(self.username, 30)})" if self.username else "")
        label = {"account": "account insights", "media": "media", "demographics": "audience"}
        body = "; ".join(f"{label[k]}: {printable(summary, 500)}" for k, (_, summary) in sorted(self.parts.items()))
        return f"{'OK  ' if self.ok else 'FAIL'} {name} — {body or 'not synced'}"


@dataclass
class SyncReport:
    lines: list[AccountLine]
    run_errors: list[str]
    run_ids: list[str]

    @property
    def exit_code(self) -> int:
        return 0 if self.lines and all(line.ok for line in self.lines) and not self.run_errors else 1


def resolve_range(since: date | None, until: date | None, today: date, first_partition: date) -> tuple[date, date]:
    until = until or today - timedelta(days=1)
    since = since or until - timedelta(days=DEFAULT_ACCOUNT_DAYS - 1)
    if since > until:
        raise UsageError(f"--since {since} is after --until {until}")
    if until >= today:
        raise UsageError(f"--until {until} is not a finished day yet; the newest day to sync is {today - timedelta(days=1)}")
    if since < first_partition:
        raise UsageError(f"--since {since} is before the first daily partition {first_partition}: set "
                         f"IG_ANALYTICS_DAILY_START={since} in every process of the deployment to reach further back")
    return since, until


def check_accounts_exist(engine, account_ids: list[str]) -> None:
    """A mistyped --account is a usage mistake: say so before launching anything."""
    if not account_ids:
        return
    with engine.connect() as conn:
        known = {row[0] for row in conn.execute(
            sa.text("SELECT ig_user_id FROM instagram.accounts WHERE ig_user_id = ANY(:ids)"), {"ids": account_ids})}
    unknown = [i for i in dict.fromkeys(account_ids) if i not in known]
    if unknown:
        raise UsageError(f"no account {', '.join(printable(i, 40) for i in unknown[:5])}"
                         f"{' ...' if len(unknown) > 5 else ''}; see: ig-analytics accounts list")


def check_account_ids(account_ids: list[str]) -> None:
    for ig_user_id in account_ids:
        if not ig_user_id.isascii() or not ig_user_id.isdigit() or len(ig_user_id) > 32:
            raise UsageError(f"--account must be an Instagram user id (digits), not '{printable(ig_user_id, 40)}'")


def full_weeks(first_day: date, last_day: date) -> list[str]:
    """Keys of the weekly partitions (Mondays) whose Monday-to-Sunday week lies within the days."""
    monday = first_day + timedelta(days=(7 - first_day.weekday()) % 7)
    weeks = []
    while monday + timedelta(days=6) <= last_day:
        weeks.append(monday.isoformat())
        monday += timedelta(days=7)
    return weeks


@stopping.on_signals()  # SIGTERM/SIGINT: every loop ends at its next check, then Stopped is raised (stopping.py)
def run_sync(
    account_ids: list[str], sync_type: str, since: date | None, until: date | None, *, now: datetime | None = None,
    every_report: bool = False, record_dir: str | None = None,
) -> SyncReport:
    """``every_report`` (the demo): the daily reports of every synced day and the weekly reports of every full
    week, one run each, instead of the last day's report only. ``record_dir`` (``--record``): every Graph API
    request and reply of the runs is written there (graph_api/recording.py)."""
    from ig_analytics.cli import runtime
    from ig_analytics.settings import Settings
    from ig_analytics.storage import db

    now = now or clock.now()
    if sync_type not in SYNC_TYPES:
        raise UsageError(f"--type must be one of {', '.join(SYNC_TYPES)}")
    check_account_ids(account_ids)
    record_dir = _record_dir(record_dir) if record_dir is not None else None
    first_day, last_day = resolve_range(since, until, now.date(),
                                        planned_daily_start(Settings.from_env().home, now.date()))
    settings = runtime.prepare()
    engine = db.get_engine(db.analytics_url(settings))
    check_accounts_exist(engine, account_ids)  # before any run is launched

    from dagster import DagsterInstance

    import ig_analytics.definitions  # noqa: F401 - loaded (and logging configured) before stderr is redirected
    from ig_analytics.defs.launch import prepare_instance
    from ig_analytics.logging_setup import log_level_from_env

    _terminal_quiet_once_stopped()  # the handlers the definitions installed
    instance = prepare_instance(DagsterInstance.get())  # one instance, pooled and batched, for every run below
    reap_abandoned_cli_runs(instance, engine)
    # The console gets warnings (or what IG_ANALYTICS_LOG_LEVEL asks when it is stricter, or DEBUG); the full
    # event log is in the UI's run view.
    level = log_level_from_env()
    runs = _Runs(instance, {TRIGGER_TAG: "cli", PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
                 logging.getLevelName(level if level == logging.DEBUG else max(level, logging.WARNING)), record_dir)
    _run_jobs(runs, sync_type, account_ids, since, (first_day, last_day), now, every_report)
    return SyncReport(lines=_account_lines(engine, runs.run_ids, account_ids), run_errors=runs.errors,
                      run_ids=runs.run_ids)


@dataclass
class _Runs:
    """The runs of one sync, executed one after the other on one instance; what each ended with."""

    instance: object
    tags: dict
    console_level: str
    record_dir: str | None
    run_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def execute(self, job_name: str, ops: dict | None = None, **kwargs) -> None:
        import dagster as dg

        from ig_analytics.defs.launch import execute_linked_run
        from ig_analytics.defs.run_output import stderr_to_log

        resources = {"graph_api": {"config": {"record_dir": self.record_dir}}} if self.record_dir else None
        run_config = dg.RunConfig(ops=ops, loggers={"console": {"config": {"log_level": self.console_level}}},
                                  resources=resources)
        stopping.check()
        with stderr_to_log():
            outcome = execute_linked_run(self.instance, job_name, run_config=run_config.to_config_dict(), **kwargs)
        stopping.check()  # stopped meanwhile: the run ended at its ingestion step (no retry); start no further job
        self.run_ids.append(outcome.run_id)
        if not outcome.success:
            reason = (outcome.failures[0] if outcome.failures else "").strip().splitlines() or ["no error recorded"]
            where = f" at {reason[0]}" if reason[0].startswith("step ") else f": {reason[0]}"
            self.errors.append(f"{job_name} run {outcome.run_id} failed{where} (the run's page in the Dagster UI, "
                               "`ig-analytics ui`, has the whole error)")


def _run_jobs(runs: _Runs, sync_type: str, account_ids: list[str], since: date | None, days: tuple[date, date],
              now: datetime, every_report: bool) -> None:
    """The jobs of a sync of ``sync_type``, in the order that lets each read what the one before wrote."""
    from ig_analytics.defs.audience_assets import AudienceConfig, audience_demographics
    from ig_analytics.defs.competitor_assets import CompetitorConfig, competitor_snapshots
    from ig_analytics.defs.follower_rates import hour_key
    from ig_analytics.defs.ingestion_assets import (
        AccountSyncConfig, MediaSyncConfig, account_insights_daily, media_and_snapshots,
    )

    first_day, last_day = days
    tags, yesterday = runs.tags, (now.date() - timedelta(days=1)).isoformat()
    if sync_type in ("full", "media"):
        # --since reaching further back than the default window widens it (posts older than 30 days get one
        # snapshot now); it never narrows it.
        window_days = max(MEDIA_WINDOW_DAYS, (now.date() - since).days + 1) if since else MEDIA_WINDOW_DAYS
        runs.execute("media_sync_job", partition_key=hour_key(now), tags=tags,  # the hour in progress
                     ops={media_and_snapshots.op.name: MediaSyncConfig(
                         ig_user_ids=account_ids, refresh_all=True, window_days=window_days)})
    if sync_type in ("full", "account"):
        runs.execute("account_insights_job", tags={**tags, **_day_range(first_day.isoformat(), last_day.isoformat())},
                     ops={account_insights_daily.op.name: AccountSyncConfig(ig_user_ids=account_ids)})
        # the new follower history reaches the posts' rates by followers (defs/follower_rates.py), before reports
        runs.execute("follower_rates_job", partition_key=hour_key(now), tags=tags)
    if sync_type == "full":
        # Meta serves only the current audience picture and competitors' current public counts: both are the
        # snapshot of the last finished day (whatever --until says), taken before the reports that show them.
        runs.execute("audience_demographics_job", partition_key=yesterday, tags=tags,
                     ops={audience_demographics.op.name: AudienceConfig(ig_user_ids=account_ids)})
        runs.execute("competitors_job", partition_key=yesterday, tags=tags,
                     ops={competitor_snapshots.op.name: CompetitorConfig(ig_user_ids=account_ids)})
        if every_report:
            runs.execute("reports_job", tags={**tags, **_day_range(first_day.isoformat(), last_day.isoformat())})
            weeks = full_weeks(first_day, last_day)
            if weeks:
                runs.execute("weekly_reports_job", tags={**tags, **_day_range(weeks[0], weeks[-1])})
        else:
            runs.execute("reports_job", partition_key=last_day.isoformat(), tags=tags)
    # The accounts table observed and the hourly checks (tokens, freshness, column schemas) evaluated now, so the
    # UI shows them from the first sync on instead of "Not evaluated" until hh:40.
    runs.execute("data_quality_job", tags=tags)


def _day_range(first: str, last: str) -> dict:
    """The tags of one run over a range of daily (or weekly) partitions."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def _record_dir(record_dir: str) -> str:
    from ig_analytics.graph_api.recording import prepare_directory

    try:
        return str(prepare_directory(record_dir))
    except ValueError as exc:
        raise UsageError(f"--record {printable(record_dir, 200)}: {exc}")


def _terminal_quiet_once_stopped() -> None:
    """After SIGTERM/SIGINT the terminal gets one line, the command's (the run's failure records go to the log
    file only)."""
    for owner in (logging.getLogger("ig_analytics"), logging.getLogger()):
        for handler in owner.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.addFilter(lambda record: stopping.requested() is None)


def reap_abandoned_cli_runs(instance, engine=None) -> list[str]:
    """Fail the in-process runs of a `sync` that was killed, free their pool slots, and close their
    ``instagram.sync_runs`` rows (else they would say `running` for good).

    The daemon's run monitoring only watches runs it launched; an in-process run whose process died stays
    STARTED and keeps its `graph_api` pool slot, so the next sync would wait forever.
    """
    from dagster import DagsterRunStatus, RunsFilter

    from ig_analytics.local.embedded_db import process_alive

    reaped = []
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={TRIGGER_TAG: "cli"}
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
    if engine is not None and reaped:
        close_abandoned_outcomes(engine, reaped)
    return reaped


def close_abandoned_outcomes(engine, run_ids: list[str]) -> int:
    """Mark the still-`running` account outcomes of dead runs as failed; returns how many were closed."""
    return sync_runs.close_abandoned(
        engine, run_ids, "abandoned: the sync process ended (killed or crashed) before this account finished; "
                         "nothing half-written was kept. Run `ig-analytics sync` again.")


def _account_lines(engine, run_ids: list[str], account_ids: list[str]) -> list[AccountLine]:
    with engine.connect() as conn:
        accounts = conn.execute(
            sa.text("SELECT ig_user_id, username, status, status_reason FROM instagram.accounts ORDER BY ig_user_id")
        ).all()
        rows = sync_runs.outcomes_of_runs(conn, run_ids)
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
