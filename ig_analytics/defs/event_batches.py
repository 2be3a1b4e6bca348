"""Fewer statements per Dagster event, for the runs a process executes itself (``ig-analytics sync``).

dagster-postgres stores every event on its own: an INSERT, a NOTIFY, and for asset and check events their
bookkeeping rows, each statement autocommitted. A one-account sync of 90 days stores ~650 events, most of them
per-partition check evaluations (3 checks x 90 days) and the planned materializations of the run's start.
:func:`batch_events` makes one event-log storage object write them in batches:

* consecutive check evaluations of a run are held until the run's next other event (or :func:`flush`), then
  inserted by one statement, and their ``asset_check_executions`` rows (the UI's status of every partition)
  updated by one statement, as Dagster updates each (the row its planned event created);
* Dagster's own event batches (``DAGSTER_EVENT_BATCH_SIZE``: the planned materializations and checks of a run,
  a range's materializations) are inserted by one statement too, and the planned checks' rows (one per planned
  partition) by one more; dagster-postgres batches only materializations alone, and stores the others one by
  one.

The rows are the ones dagster-postgres writes, in the same order, except two things its own batch path skips
as well: the NOTIFY per event (kept there only for webservers older than 1.x: "LISTEN/NOTIFY no longer used for
pg event watch"), and the ``asset_keys`` row of an asset, written once per event type and batch (by the last
event, which is the value the row ends with anyway).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from dagster import DagsterEventType, DagsterInvariantViolationError, EventLogEntry, serialize_value
from psycopg2.extras import execute_values

from ig_analytics.defs.dagster_internals import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)

MAX_HELD = 1000  # check evaluations held at most (a range run of 1,000 partitions: one statement per check)
_OURS = frozenset({
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
})
_DAGSTERS = ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION})


class _Batcher:
    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.held: list[EventLogEntry] = []
        # Steps log from their worker threads too: events are held, flushed and stored one thread at a time, in order.
        self.lock = threading.RLock()
        self.store_one = storage.store_event
        self.store_many = storage.store_event_batch

    def store_event(self, event: EventLogEntry) -> None:
        with self.lock:
            if event.run_id and event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                self.held.append(event)
                if len(self.held) >= MAX_HELD:
                    self.flush()
                return
            self.flush()
            self.store_one(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        with self.lock:
            self.flush()
            types = {event.dagster_event_type for event in events}
            if types in _DAGSTERS or not types <= _OURS:
                self.store_many(events)
            else:
                self.write(events)

    def flush(self) -> None:
        with self.lock:
            if self.held:
                events, self.held = self.held, []
                self.write(events)

    def write(self, events: Sequence[EventLogEntry]) -> None:
        storage = self.storage
        with storage._connect() as conn:  # noqa: SLF001 - the connection dagster-postgres' store_event uses
            result = conn.execute(storage.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id))
            ids = [int(row[0]) for row in result.fetchall()]  # in VALUES order, as Dagster's own batch relies on
        assets = [(e, i) for e, i in zip(events, ids)
                  if e.dagster_event_type in ASSET_EVENTS and e.get_dagster_event().asset_key]
        if assets:
            last: dict[tuple, tuple[EventLogEntry, int]] = {}
            for event, event_id in assets:
                last[(event.get_dagster_event().asset_key, event.dagster_event_type)] = (event, event_id)
            with storage.index_transaction() as conn:
                storage._store_asset_event_tags(conn, [e for e, _ in assets], [i for _, i in assets])  # noqa: SLF001
                for event, event_id in sorted(last.values(), key=lambda pair: pair[1]):
                    storage._store_asset_event(conn, event, event_id)  # noqa: SLF001
        checks = [(e, i) for e, i in zip(events, ids) if e.dagster_event_type in ASSET_CHECK_EVENTS]
        done = _update_partition_evaluations(storage, checks) | _insert_planned_checks(storage, checks)
        for event, event_id in checks:
            if event_id not in done:  # planned checks, unpartitioned evaluations, an evaluation without a plan
                storage.store_asset_check_event(event, event_id)


# The UPDATE of Dagster's _update_asset_check_evaluation (the row its planned event created, found by asset, check,
# run and partition), for many evaluations at once.
_UPDATE_EVALUATIONS = """
UPDATE asset_check_executions AS t SET execution_status = v.status, evaluation_event = v.event,
    evaluation_event_timestamp = v.ts, evaluation_event_storage_id = v.event_id,
    materialization_event_storage_id = v.materialization_id, partition = v.partition
FROM (VALUES %s) AS v (asset_key, check_name, run_id, partition, status, event, ts, event_id, materialization_id)
WHERE t.asset_key = v.asset_key AND t.check_name = v.check_name AND t.run_id = v.run_id AND t.partition = v.partition
RETURNING v.event_id"""
_VALUES = "(%s, %s, %s, %s, %s, %s, CAST(%s AS timestamp), CAST(%s AS bigint), CAST(%s AS bigint))"


def _update_partition_evaluations(storage: Any, checks: Sequence[tuple[EventLogEntry, int]]) -> set[int]:
    """Write the partitioned check evaluations of a run in one statement; returns the event ids written."""
    rows = []
    for event, event_id in checks:
        if event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION or not event.run_id:
            continue
        evaluation = event.get_dagster_event().event_specific_data
        if evaluation.partition is None:
            continue
        status = AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed else AssetCheckExecutionRecordStatus.FAILED
        target = evaluation.target_materialization_data
        rows.append((evaluation.asset_key.to_string(), evaluation.check_name, event.run_id, evaluation.partition,
                     status.value, serialize_value(event), storage._event_insert_timestamp(event),  # noqa: SLF001
                     event_id, target.storage_id if target else None))
    if not rows:
        return set()
    with storage.index_transaction() as conn:
        with conn.connection.dbapi_connection.cursor() as cur:
            written = execute_values(cur, _UPDATE_EVALUATIONS, rows, template=_VALUES, page_size=len(rows), fetch=True)
    ids = [int(row[0]) for row in written]
    if len(ids) != len(set(ids)):  # as Dagster: more than one planned row for an evaluation
        raise DagsterInvariantViolationError("Updated more than one row for an asset check evaluation: duplicate "
                                             "AssetCheckPlanned events")
    return set(ids)


def _insert_planned_checks(storage: Any, checks: Sequence[tuple[EventLogEntry, int]]) -> set[int]:
    """The rows of Dagster's _store_asset_check_evaluation_planned (one per planned partition), for every planned
    check at once, each event serialized once (Dagster serializes it again for every partition of a range)."""
    rows, ids = [], set()
    for event, event_id in checks:
        if event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            continue
        planned = event.get_dagster_event().event_specific_data
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = dict(asset_key=planned.asset_key.to_string(), check_name=planned.check_name, run_id=event.run_id,
                      execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                      evaluation_event=serialize_value(event),
                      evaluation_event_timestamp=storage._event_insert_timestamp(event),  # noqa: SLF001
                      evaluation_event_storage_id=event_id)
        rows.extend({**common, "partition": key} for key in keys)
        ids.add(event_id)
    if rows:
        with storage.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), rows)
    return ids


def batch_events(storage: Any) -> None:
    """Make this event-log storage object (dagster-postgres) write check evaluations and Dagster's event batches
    as batches. Idempotent; other storages (SQLite in tests) are left as they are."""
    if getattr(storage, "_ig_batcher", None) is not None or not hasattr(storage, "prepare_insert_event_batch"):
        return
    if type(storage).__module__.split(".")[0] != "dagster_postgres":
        return
    batcher = _Batcher(storage)
    storage.store_event = batcher.store_event
    storage.store_event_batch = batcher.store_event_batch
    storage._ig_batcher = batcher  # noqa: SLF001


def flush(storage: Any) -> None:
    """Write the check evaluations still held (the end of a run: its last event flushes them already)."""
    batcher = getattr(storage, "_ig_batcher", None)
    if batcher is not None:
        batcher.flush()
