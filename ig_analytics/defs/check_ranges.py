"""What a check evaluation covers (its partition window, now, the accounts of the run), and the per-partition
evaluation of a partition-range run (a single-run backfill), so the UI shows every checked partition on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, Iterator, Sequence

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics import clock
from ig_analytics.accounts.shards import shard_from_tags
from ig_analytics.defs.account_scope import resolve
from ig_analytics.defs.dagster_internals import AssetCheckEvaluationTargetMaterializationData
from ig_analytics.defs.ingestion_assets import requested_accounts
from ig_analytics.quality.result import CheckResult


@dataclass(frozen=True)
class Scope:
    """What a check evaluation covers: the partition window (None when unpartitioned), now, the accounts the run
    was asked for (empty: every active account), the run's shard (None: not a shard run)."""

    start: datetime | None
    end: datetime | None
    now: datetime
    accounts: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None

    def run_accounts(self, conn: Connection) -> list[str] | None:
        """The accounts whose rows the run wrote, as the analytics scope them (defs/account_scope.py): those it was
        asked for, else its shard's among every registered account; None for a run of every account."""
        ids = lambda: conn.execute(sa.text("SELECT ig_user_id FROM instagram.accounts")).scalars()  # noqa: E731
        return resolve(self.shard, self.accounts, ids).ids

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


Evaluate = Callable[[Connection, Scope], CheckResult]


def scope_for(context: dg.AssetCheckExecutionContext, partitions_def) -> Scope:
    now = clock.now()
    accounts, shard = requested_accounts(context.run.run_config), shard_from_tags(context.run.tags)
    if partitions_def is None:
        return Scope(None, None, now, accounts, shard)
    key_range = context.partition_key_range
    return Scope(partitions_def.time_window_for_partition_key(key_range.start).start,
                 partitions_def.time_window_for_partition_key(key_range.end).end, now, accounts, shard)


def partition_scope(scope: Scope, partitions_def, partition_key: str) -> Scope:
    window = partitions_def.time_window_for_partition_key(partition_key)
    return Scope(window.start, window.end, scope.now, scope.accounts, scope.shard)


def latest_materializations(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: Sequence[str]):
    """Newest materialization of each partition (one query), to link every partition's evaluation to its data."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(partition_keys)),
        limit=4 * len(partition_keys)).records
    latest: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    for record in records:  # newest first
        latest.setdefault(record.partition_key, AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp))
    return latest


def evaluate_per_partition(conn: Connection, evaluate: Evaluate, scope: Scope, partitions_def,
                           partition_keys: Sequence[str]) -> Iterator[tuple[str, CheckResult]]:
    """One result per partition of a range run, so each partition shows its own status in the UI (a range run
    would otherwise record one evaluation without a partition and leave every partition "Skipped").

    Every windowed rule is "no offending row in the window", so a range that passes passes for each of its
    partitions: evaluate the range once, and only when it fails evaluate each partition to find which failed.
    """
    whole = evaluate(conn, scope)
    for key in partition_keys:
        if whole.passed:
            yield key, whole
        else:
            yield key, evaluate(conn, partition_scope(scope, partitions_def, key))
