"""Run a job of the code location in this process, as a run that belongs to the code location.

`JobDefinition.execute_in_process` records runs without a repository origin: the UI cannot list them under their
job, leaves them out of the timeline and warns on "Re-execute" that the job "may be a different version". The
CLI's `sync` (and so the demo) instead creates the run with the same origins a run launched from the UI has (code
location ``ig_analytics``, repository ``__repository__``) and executes it here, with the jobs' in-process
executor: no code server, no run worker process, the same speed.
"""

from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import dagster as dg

from ig_analytics.defs import event_batches
from ig_analytics.defs.dagster_internals import (
    PARTITION_NAME_TAG,
    InProcessCodeLocationOrigin,
    LoadableTargetOrigin,
    ReconstructableRepository,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
    execute_run,
)
from ig_analytics.defs.step_errors import step_error_text

DEFINITIONS_MODULE = "ig_analytics.definitions"
LOCATION_NAME = "ig_analytics"  # workspace.yaml
REPOSITORY_NAME = "__repository__"  # the name Dagster gives a module's Definitions


# Dagster stores the asset materializations of a partition range (and the planned-materialization events) in
# batches of up to this many events when the variable is set: one INSERT instead of one per partition. Opt-in in
# Dagster 1.13 (read at each event), set by prepare_instance for the runs of this process.
EVENT_BATCH_SIZE = "1000"


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    success: bool
    failures: list[str]


def prepare_instance(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """Make ``instance`` cheap to run many events through, for the runs this process executes one after another.

    * one pooled connection per storage instead of a new one per event (the webserver's setting; dagster-postgres
      uses NullPool by default: ~1.5 ms to connect, per event);
    * materializations of a partition range written as one batch (``DAGSTER_EVENT_BATCH_SIZE``);
    * check evaluations and planned events inserted in batches (defs/event_batches.py);
    * Dagster's schema probes answered once: the event log storage asks PostgreSQL whether a table or column
      exists for every asset and check event (``has_table``, ``_has_asset_key_col_on_connection``; 2 of every 5
      statements of a sync), and the answer cannot change while this process runs.
    """
    pool_connections(instance)
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    events = instance.event_log_storage
    event_batches.batch_events(events)
    _memoize(events, "has_table", lambda table: table)
    _memoize(events, "_has_asset_key_col_on_connection", lambda conn, column: column)
    runs = instance.run_storage
    for name in ("has_run_stats_index_cols", "has_bulk_actions_selector_cols", "has_backfill_id_column",
                 "has_bulk_action_job_name_column"):
        _memoize(runs, name, lambda: ())
    return instance


def pool_connections(instance: dg.DagsterInstance | None) -> None:
    """Hold the instance's PostgreSQL connections open in this process (the webserver's setting) instead of one new
    connection per event; once per process. A run worker writes an event per step transition and per log record
    of the product (``python_logs`` in dagster.yaml: several per account), and each new connection costs the
    server a process, the password exchange and cold caches (~4 ms of CPU): 2,600 connections in an hour of
    1,000 accounts with 4 shards (issue 27, BENCHMARKS.md 3d). Called by :func:`prepare_instance` and when a run
    sets up its database resource (a run launched by the daemon or the UI)."""
    from dagster_postgres import PostgresEventLogStorage

    if instance is None or instance in _POOLED or not isinstance(instance.event_log_storage, PostgresEventLogStorage):
        return  # done already (a second call would leave the first pool open), or not PostgreSQL (tests' in-memory)
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    _POOLED.add(instance)


_POOLED: "weakref.WeakSet[dg.DagsterInstance]" = weakref.WeakSet()


def _memoize(storage: Any, name: str, key: Callable[..., Any]) -> None:
    """Replace the bound method ``name`` of this one storage object by a memo of its answers."""
    method = getattr(storage, name, None)
    if method is None or getattr(method, "_ig_memo", False):
        return
    answers: dict[Any, Any] = {}

    def memo(*args):
        k = key(*args)
        if k not in answers:
            answers[k] = method(*args)
        return answers[k]

    memo._ig_memo = True  # type: ignore[attr-defined]
    setattr(storage, name, memo)


def _origins(job_name: str):
    recon_repo = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs")
    recon_job = recon_repo.get_reconstructable_job(job_name)
    location = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE),
        location_name=LOCATION_NAME,
    )
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)
    return recon_job, remote


def create_linked_run(instance: dg.DagsterInstance, job_name: str, *, run_config: Mapping[str, Any] | None = None,
                      tags: Mapping[str, str] | None = None, partition_key: str | None = None):
    """Create (not start) a run of ``job_name`` of the ``ig_analytics`` code location, as a schedule tick's run
    waits in the queue: returns (reconstructable job, run) for :func:`execute_created_run`."""
    recon_job, remote_origin = _origins(job_name)
    run_tags = dict(tags or {})
    if partition_key is not None:
        run_tags[PARTITION_NAME_TAG] = partition_key
    run = instance.create_run_for_job(
        job_def=recon_job.get_definition(),
        run_config=dict(run_config or {}),
        tags=run_tags,
        remote_job_origin=remote_origin,
        job_code_origin=recon_job.get_python_origin(),
    )
    return recon_job, run


def execute_created_run(instance: dg.DagsterInstance, recon_job, run) -> RunOutcome:
    """Execute a run made by :func:`create_linked_run` in this process."""
    try:
        result = execute_run(recon_job, run, instance, raise_on_error=False)
    finally:
        event_batches.flush(instance.event_log_storage)
    if result.success:
        return RunOutcome(run.run_id, True, [])
    # what failed and why first (the step's own error, not Dagster's "Execution of step X failed"), then the run's
    failures = [f"step {e.step_key}: {step_error_text(e.event_specific_data.error)}"
                for e in result.all_events if e.is_step_failure and e.event_specific_data.error]
    failures += [e.message for e in result.all_events if e.is_failure and e.message]
    return RunOutcome(run.run_id, False, failures)


def execute_linked_run(instance: dg.DagsterInstance, job_name: str, *, run_config: Mapping[str, Any] | None = None,
                       tags: Mapping[str, str] | None = None, partition_key: str | None = None) -> RunOutcome:
    """Execute ``job_name`` now, in this process, as a run of the ``ig_analytics`` code location.

    A partition range is given with the ``dagster/asset_partition_range_start``/``_end`` tags, a single partition
    with ``partition_key``.
    """
    recon_job, run = create_linked_run(instance, job_name, run_config=run_config, tags=tags,
                                       partition_key=partition_key)
    return execute_created_run(instance, recon_job, run)
