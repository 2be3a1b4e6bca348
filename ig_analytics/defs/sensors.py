"""Alerts: failed runs and failed ERROR-severity asset checks, posted through ig_analytics.alerts.notify.Notifier (recorded
in instagram.notifications, sent to IG_NOTIFY_WEBHOOK_URL when set). Both sensors are on by default.

One failing run produces exactly one alert:
- a run that FAILS (a step error, or a blocking check with ERROR severity) is announced by ``run_failure_alert``
  under the dedupe key ``run_failed:<run_id>``; its text lists the failed steps and the failed ERROR checks;
- a run that SUCCEEDS with failed non-blocking ERROR checks is announced by ``asset_check_failure_alert`` under
  ``checks_failed:<run_id>``, listing the checks that have just started failing;
- the check sensor ignores evaluations of failed or canceled runs (the run alert covers them) and waits for a run
  to finish before looking at its evaluations, so the two sensors never announce the same run.
A check that keeps failing is announced once, when it starts failing: the sensor's cursor remembers the checks
currently failing and forgets one when it passes again. WARN failures are only shown in the UI.
Texts go through ``redact`` (no token ever reaches the webhook or the table).
"""

import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster import DagsterEventType, DagsterRunStatus, EventRecordsFilter

from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.defs.step_errors import step_error_text
from ig_analytics.redaction import redact

RUN_FAILED_KIND = "run_failed"
CHECKS_FAILED_KIND = "checks_failed"
_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
_BATCH = 500
_MAX_ERROR_CHARS = 500


def _check_label(asset_key: dg.AssetKey, check_name: str, partition: str | None = None) -> str:
    label = f"{asset_key.to_user_string()}:{check_name}"
    return f"{label} [{partition}]" if partition else label


def _failed_error_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    out = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            out.append(_check_label(evaluation.asset_key, evaluation.check_name, evaluation.partition))
    return out


def run_failure_text(run: dg.DagsterRun, message: str | None, step_errors: list[tuple[str, str]],
                     failed_checks: list[str]) -> str:
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags['dagster/asset_partition_range_start']}...{run.tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in run.tags else None)
    lines = [f":rotating_light: Dagster run {run.run_id[:8]} of {run.job_name}"
             + (f" ({partition})" if partition else "") + " failed."]
    if message:
        lines.append(redact(message)[:_MAX_ERROR_CHARS])
    for step, error in step_errors[:5]:
        lines.append(f"- step {step}: {redact(error)[:_MAX_ERROR_CHARS]}")
    if failed_checks:
        lines.append("Failed checks: " + ", ".join(failed_checks[:10]))
    lines.append(f"Run id {run.run_id}; see the run in the Dagster UI and docs/operations.md.")
    return "\n".join(lines)


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Posts one alert per failed run (dedupe key run_failed:<run_id>).",
)
def run_failure_alert(context: dg.RunFailureSensorContext, database: AnalyticsDatabase):
    run = context.dagster_run
    step_errors = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        step_errors.append((event.step_key or "?", step_error_text(error) if error else "failed"))
    failed_checks = _failed_error_checks(context.instance, run.run_id)
    text = run_failure_text(run, context.failure_event.message if context.failure_event else None, step_errors,
                            failed_checks)
    status = database.notifier().notify(
        RUN_FAILED_KIND, f"{RUN_FAILED_KIND}:{run.run_id}", text,
        payload={"run_id": run.run_id, "job_name": run.job_name, "failed_steps": [s for s, _ in step_errors],
                 "failed_checks": failed_checks},
    )
    context.log.info(f"run {run.run_id} failure alert: {status}")


# ---- asset check failures --------------------------------------------------------------------------------


@dataclass
class CheckAlertCursor:
    after: int | None = None  # storage id of the last evaluation looked at
    failing: dict[str, str] = field(default_factory=dict)  # check -> run id where it started failing

    @classmethod
    def parse(cls, raw: str | None) -> "CheckAlertCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(after=data.get("after"), failing=dict(data.get("failing") or {}))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "failing": self.failing}, sort_keys=True)


def _latest_check_storage_id(instance: dg.DagsterInstance) -> int:
    records = instance.event_log_storage.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=1, ascending=False)
    return records[0].storage_id if records else 0


def evaluate_check_alerts(instance: dg.DagsterInstance, cursor: CheckAlertCursor, notifier,
                          log=None) -> CheckAlertCursor:
    """Process check evaluations after the cursor; alert once per finished, successful run for the ERROR
    checks that started failing in it. Returns the new cursor."""
    if cursor.after is None:  # first tick: start now, do not replay history
        return CheckAlertCursor(after=_latest_check_storage_id(instance), failing=cursor.failing)
    records = instance.event_log_storage.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=cursor.after),
        limit=_BATCH, ascending=True)
    if len(records) == _BATCH:  # the newest run may continue in the next batch: leave it for then
        last_run = records[-1].run_id
        trimmed = [r for r in records if r.run_id != last_run]
        records = trimmed or records
    failing = dict(cursor.failing)
    after = cursor.after
    runs: dict[str, Any] = {}
    new_failures: dict[str, list[str]] = {}
    for record in records:
        run_id = record.run_id
        if run_id and run_id not in runs:
            runs[run_id] = instance.get_run_by_id(run_id)
        run = runs.get(run_id)
        if run is not None and run.status not in _FINISHED:
            break  # wait for the run to end: its outcome decides which sensor speaks
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        key = _check_label(evaluation.asset_key, evaluation.check_name)
        after = record.storage_id
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            failing.pop(key, None)
            continue
        if run is not None and run.status == DagsterRunStatus.CANCELED:
            continue  # nobody asked for this result: the next run decides
        if key in failing:
            continue  # already failing: announced when it started
        failing[key] = run_id or "-"
        if run is None or run.status == DagsterRunStatus.SUCCESS:
            new_failures.setdefault(run_id or "-", []).append(
                f"{_check_label(evaluation.asset_key, evaluation.check_name, evaluation.partition)}"
                + (f": {redact(evaluation.description)[:200]}" if evaluation.description else ""))
    for run_id, checks in new_failures.items():
        run = runs.get(run_id)
        job = run.job_name if run is not None else "reported externally"
        text = "\n".join(
            [f":warning: {len(checks)} data-quality check(s) started failing (ERROR) in run {run_id} of {job}:"]
            + [f"- {c}" for c in checks[:15]]
            + ["See the asset checks in the Dagster UI; docs/operations.md says what to do for each."])
        status = notifier.notify(CHECKS_FAILED_KIND, f"{CHECKS_FAILED_KIND}:{run_id}", text,
                                 payload={"run_id": run_id, "job_name": job, "checks": checks})
        if log is not None:
            log.info(f"check failure alert for run {run_id}: {status}")
    return CheckAlertCursor(after=after, failing=failing)


@dg.sensor(
    name="asset_check_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Posts one alert per successful run in which ERROR-severity checks started failing.",
)
def asset_check_failure_alert(context: dg.SensorEvaluationContext, database: AnalyticsDatabase):
    cursor = CheckAlertCursor.parse(context.cursor)
    new = evaluate_check_alerts(context.instance, cursor, database.notifier(), context.log)
    if new.dump() != (context.cursor or ""):
        context.update_cursor(new.dump())
    return dg.SkipReason("alerts (if any) were posted by the sensor itself")


alert_sensors = [run_failure_alert, asset_check_failure_alert]
