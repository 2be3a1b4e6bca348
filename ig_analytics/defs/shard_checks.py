"""``every_shard_captured``: an hour of ``media_insights_snapshots`` (a day of ``account_insights_daily``) shows
green in the UI only when every shard captured it (docs/architecture.md, "Shards"; docs/operations.md).

With ``IG_ANALYTICS_SHARDS=N`` a tick is N runs, one per shard. Each evaluates this check for its partition(s)
right after its own capture: for every account expected in the partition, is there a successful (or partial)
sync of that type covering the partition in ``instagram.sync_runs``, by any run? The accounts without one are
grouped by shard (the capture's own hash, accounts/shards.py):

- a shard with a run of the same job that covers the partition and has not ended its capture (queued, or running
  without a materialization of the partition yet: Dagster's run storage and event log) is "not captured yet": the
  check fails with WARN severity;
- any other shard (its run ended without them, or never ran) fails the check with ERROR, naming the shard and its
  accounts with their last error.

Each run evaluates right after its capture (which writes its sync_runs rows, then materializes), so the last run
of a tick to evaluate sees every other shard's capture ended: its status is final and true. Of two runs evaluating
at the same moment at least one sees the other's materialization, so one final evaluation always exists. Dagster's
UI shows, per partition, the evaluation of the newest *created* run (its execution record is made when the run is
created, the tick's runs in shard order), so a final evaluation is also recorded as a runless one (Dagster's
``report_runless_asset_event``, as an external check would) when a run created later exists: it is then the
newest, and the partition shows the truth. Re-executing a failed shard's run (Dagster keeps its tags, the shard's
among them) captures its accounts, and its evaluation, the newest, passes.

Expected: the accounts ``active`` now and registered before the partition began (a tick's runs could not know
a later one); ``needs_reauth`` and ``disabled`` ones are not (``accounts_tokens_valid`` reports those) and are
listed in the metadata. A run without a shard tag (``ig-analytics sync``, a UI backfill) is the only shard: the
check is "every expected account captured"; with ``sync --account`` only the accounts it asked for.
"""

# No `from __future__ import annotations` here: Dagster reads the check function's context annotation.
import warnings
from datetime import datetime
from typing import Mapping

import dagster as dg
import sqlalchemy as sa

from ig_analytics.accounts import repository as accounts_repo
from ig_analytics.accounts.shards import SHARD_TAG, shard_from_tags, shard_of, shard_tag
from ig_analytics.defs.check_ranges import latest_materializations
from ig_analytics.defs.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG,
)
from ig_analytics.defs.ingestion_assets import requested_accounts
from ig_analytics.defs.partitions import daily_partitions, hourly_partitions
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics.storage import sync_runs

CHECK_NAME = "every_shard_captured"
DESCRIPTION = ("ERROR: an account expected in the partition (active, registered before it began) was not captured "
               "by its shard's run, whose capture ended (the shard and accounts are named); WARN: a shard's run is "
               "still queued or capturing. The last shard run to evaluate gives the partition's true status.")
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
CAPTURED = ("success", "partial")
RUNS_LIMIT = 1000  # runs of the job read per look-up: the queue's, however long a backlog
ASSETS = {"media": "media_insights_snapshots", "account": "account_insights_daily"}


def _covers(tags: Mapping[str, str], partition_key: str) -> bool:
    """Whether a run (its tags: one partition, or a range) is for ``partition_key``."""
    if tags.get(PARTITION_NAME_TAG) == partition_key:
        return True
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return bool(first and last and first <= partition_key <= last)


def _capture_pending(instance: dg.DagsterInstance, run_id: str, asset_key: dg.AssetKey, partition_key: str) -> bool:
    """Whether a run that has not ended has yet to capture the partition: no materialization of it yet (the
    capture step materializes at its end; the run's analytics may go on long after)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                                           limit=RUNS_LIMIT).records
    return not any(r.event_log_entry.dagster_event.asset_key == asset_key
                   and r.event_log_entry.dagster_event.partition == partition_key for r in records)


def unfinished_shards(instance: dg.DagsterInstance, run: dg.DagsterRun, shards: int, partition_key: str,
                      asset_key: dg.AssetKey) -> set[int]:
    """The shards (of ``shards``) with another run of this job for the partition whose capture has not ended
    (queued, or running before its capture step's end)."""
    if shards <= 1:
        return set()  # the evaluating run is the only shard, and its capture is over
    runs = instance.get_runs(dg.RunsFilter(
        job_name=run.job_name, statuses=UNFINISHED,
        tags={SHARD_TAG: [shard_tag(i, shards) for i in range(shards)]}), limit=RUNS_LIMIT)
    found = set()
    for other in runs:
        shard = shard_from_tags(other.tags)
        if (other.run_id != run.run_id and shard is not None and shard[0] not in found
                and _covers(other.tags, partition_key)
                and _capture_pending(instance, other.run_id, asset_key, partition_key)):
            found.add(shard[0])
    return found


def newer_runs(instance: dg.DagsterInstance, run: dg.DagsterRun, shards: int, partition_key: str) -> bool:
    """Whether another shard run of this job for the partition was created after ``run`` (the UI shows its
    evaluation, not this run's)."""
    record = instance.get_run_record_by_id(run.run_id)
    if record is None:
        return False
    runs = instance.get_runs(dg.RunsFilter(
        job_name=run.job_name, created_after=record.create_timestamp,
        tags={SHARD_TAG: [shard_tag(i, shards) for i in range(shards)]}), limit=RUNS_LIMIT)
    return any(other.run_id != run.run_id and _covers(other.tags, partition_key) for other in runs)


def missing_by_shard(expected: list[str], outcomes: Mapping, shards: int) -> dict[int, dict[str, str]]:
    """shard -> {account: why it is not captured} for the expected accounts without a successful sync."""
    missing: dict[int, dict[str, str]] = {}
    for account in expected:
        outcome = outcomes.get(account)
        if outcome is not None and outcome.status in CAPTURED:
            continue
        why = "no sync of this partition" if outcome is None else (
            f"{outcome.status}: {' '.join((outcome.error or '').split())[:160]}")
        missing.setdefault(shard_of(account, shards), {})[account] = why
    return missing


def verdict(missing: dict[int, dict[str, str]], shards: int, unfinished: set[int], expected: int
            ) -> tuple[bool, dg.AssetCheckSeverity, str]:
    """Passed, severity and the sentence: ERROR for shards that ended without their accounts, WARN for shards
    whose run has not ended."""
    if not missing:
        return True, dg.AssetCheckSeverity.ERROR, f"Every shard captured the partition ({expected} account(s))."
    label = (lambda i: f"shard {shard_tag(i, shards)}") if shards > 1 else (lambda i: "the run")
    ended = sorted(i for i in missing if i not in unfinished)
    parts = [f"{label(i)}: {len(missing[i])} account(s) not captured ({', '.join(sorted(missing[i]))})"
             for i in ended]
    parts += [f"{label(i)} not captured yet (its run is still queued or capturing)"
              for i in sorted(missing) if i in unfinished]
    severity = dg.AssetCheckSeverity.ERROR if ended else dg.AssetCheckSeverity.WARN
    return False, severity, "; ".join(parts) + "."


def evaluate(database: AnalyticsDatabase, context, sync_type: str, partitions_def, partition_key: str,
             shards: int, target=None) -> tuple[dg.AssetCheckEvaluation, bool]:
    """The check's evaluation of one partition in the run of ``context``, and whether it is final (no other
    shard's capture of the partition has yet to end) and must be recorded again to be the one the UI shows."""
    start: datetime = partitions_def.time_window_for_partition_key(partition_key).start
    engine = database.engine()
    statuses = accounts_repo.statuses_before(engine, start)
    asked = set(requested_accounts(context.run.run_config))
    expected = [a for a, s in statuses.items() if s == "active" and (not asked or a in asked)]
    with engine.connect() as conn:
        outcomes = sync_runs.partition_outcomes(conn, sync_type, partition_key, expected, start)
    missing = missing_by_shard(expected, outcomes, shards)
    asset_key = dg.AssetKey(ASSETS[sync_type])
    unfinished = unfinished_shards(context.instance, context.run, shards, partition_key, asset_key)
    passed, severity, description = verdict(missing, shards, unfinished, len(expected))
    metadata = {
        "shards": shards,
        "accounts_expected": len(expected),
        "accounts_captured": sum(1 for a in expected if a in outcomes and outcomes[a].status in CAPTURED),
        "not_captured": dg.MetadataValue.json({shard_tag(i, shards): {"capture_ended": i not in unfinished,
                                                                       "accounts": missing[i]} for i in missing}),
        "not_expected": dg.MetadataValue.json({a: s for a, s in statuses.items() if s != "active"}),
        "evaluated_by_run": context.run.run_id,
    }
    evaluation = dg.AssetCheckEvaluation(
        asset_key=asset_key, check_name=CHECK_NAME, passed=passed, severity=severity,
        description=description, metadata=metadata, partition=partition_key, target_materialization_data=target)
    record_again = shards > 1 and not unfinished and newer_runs(context.instance, context.run, shards, partition_key)
    return evaluation, record_again


def shard_capture_check(name: str, asset: str, sync_type: str, partitions_def) -> dg.AssetChecksDefinition:
    """The check of ``asset``, whose captures are the ``sync_type`` rows of instagram.sync_runs."""
    with warnings.catch_warnings():  # partitioned check specs are a 1.13 preview: the warning is known
        warnings.simplefilter("ignore", dg.PreviewWarning)
        spec = dg.AssetCheckSpec(CHECK_NAME, asset=asset, description=DESCRIPTION, partitions_def=partitions_def)

    @dg.multi_asset_check(name=name, specs=[spec], description=f"{CHECK_NAME}: {DESCRIPTION}")
    def _check(context: dg.AssetCheckExecutionContext, database: AnalyticsDatabase):
        shard = shard_from_tags(context.run.tags)
        shards = shard[1] if shard is not None else 1
        keys = list(context.partition_keys)
        # a range run (the daily job's three days): one evaluation per partition, each linked to its data
        targets = latest_materializations(context.instance, spec.asset_key, keys) if len(keys) > 1 else {}
        for key in keys:
            evaluation, record_again = evaluate(database, context, sync_type, partitions_def, key, shards,
                                               targets.get(key))
            if len(keys) == 1:  # one partition: Dagster records the result for it
                yield dg.AssetCheckResult(
                    asset_key=spec.asset_key, check_name=CHECK_NAME, passed=evaluation.passed,
                    severity=evaluation.severity, description=evaluation.description, metadata=evaluation.metadata)
            else:
                yield evaluation
            if record_again:  # final (no capture pending): it must be the newest evaluation
                record_runless(context, evaluation)
        if len(keys) > 1:
            yield dg.Output(None, output_name=spec.get_python_identifier())

    return _check


def record_runless(context, evaluation: dg.AssetCheckEvaluation) -> None:
    """Record a final evaluation as the partition's newest. Two shard runs ending at the same moment both see every
    capture done and both record it; Dagster inserts the first runless row of a partition without ON CONFLICT, so
    the slower one fails on the unique index (2 of 4 runs of a 200-account tick, benchmarks/tick.py). Their
    verdicts are the same (both final), so the slower one keeps the other's row."""
    try:
        context.instance.report_runless_asset_event(evaluation)
    except sa.exc.IntegrityError:
        context.log.info(f"{CHECK_NAME} {evaluation.partition}: another shard run recorded the final evaluation "
                         "at the same moment; it stands")


shard_checks = [
    shard_capture_check("snapshots_shard_check", ASSETS["media"], "media", hourly_partitions),
    shard_capture_check("account_insights_shard_check", ASSETS["account"], "account", daily_partitions),
]
