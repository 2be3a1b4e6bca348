"""``instagram.sync_runs``, one row per Dagster run, account and sync type (what each account's sync did): the
table's one owner. Every read and write of it is a named function here: ingestion records its outcomes with
:func:`upsert`; the asset checks, ``ig-analytics status``, ``ig-analytics sync`` and retention read or prune it
through the others. Plain SQL, no Dagster."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

COLUMNS = (
    "dagster_run_id", "ig_user_id", "sync_type", "partition_key", "started_at", "finished_at", "status",
    "api_calls", "rows_written", "throttle_wait_seconds", "items_skipped", "error", "error_code",
    "error_subcode", "fbtrace_id", "details",
)
_KEY = COLUMNS[:3]


def upsert(engine: Engine, row: Mapping[str, Any]) -> None:
    """Insert or update one outcome (every column of :data:`COLUMNS`; ``details`` a dict): one row per run,
    account and sync type, so a step retry updates its row."""
    values = {**row, "details": json.dumps(row["details"], default=str)}
    placeholders = ", ".join(f"CAST(:{c} AS jsonb)" if c == "details" else f":{c}" for c in COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in _KEY)
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"INSERT INTO instagram.sync_runs ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}"), values)


def succeeded_in_run(engine: Engine, run_id: str, sync_type: str) -> set[str]:
    """Accounts an earlier attempt of this run already synced: a step retry skips them."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ig_user_id FROM instagram.sync_runs WHERE dagster_run_id = :run AND sync_type = :t"
            " AND status IN ('success', 'partial')"), {"run": run_id, "t": sync_type})
        return {row[0] for row in rows}


def account_runs(conn: Connection, sync_type: str, ig_user_ids: Sequence[str],
                 since: datetime | None = None) -> list[Row]:
    """The syncs of these accounts (since ``since`` when given), newest first: ig_user_id, partition_key,
    status, error, started_at. The checks use them to explain a missing row."""
    params: dict[str, Any] = {"t": sync_type, "ids": list(ig_user_ids)}
    where = "sync_type = :t AND ig_user_id = ANY(:ids)"
    if since is not None:
        where += " AND started_at >= :since"
        params["since"] = since
    return conn.execute(sa.text(
        f"SELECT ig_user_id, partition_key, status, error, started_at FROM instagram.sync_runs WHERE {where}"
        " ORDER BY started_at DESC"), params).all()


# A sync's partition_key is one partition or a range "first...last" (a daily run of three days); keys of one
# partitions definition sort as text in time order.
_COVERS = ("(partition_key = :p OR (strpos(partition_key, '...') > 0 AND split_part(partition_key, '...', 1) <= :p"
           " AND split_part(partition_key, '...', 2) >= :p))")


def partition_outcomes(conn: Connection, sync_type: str, partition_key: str, ig_user_ids: Sequence[str],
                       since: datetime) -> dict[str, Row]:
    """Per account, the best outcome of its syncs of ``sync_type`` covering ``partition_key`` (started since
    ``since``, the partition's start: none can be earlier): a success or partial one if any, else the newest.
    Each row: ig_user_id, status, error, dagster_run_id. The ``every_shard_captured`` check reads it."""
    rows = conn.execute(sa.text(
        "SELECT DISTINCT ON (ig_user_id) ig_user_id, status, error, dagster_run_id FROM instagram.sync_runs"
        f" WHERE ig_user_id = ANY(:ids) AND sync_type = :t AND started_at >= :since AND {_COVERS}"
        " ORDER BY ig_user_id, (status IN ('success', 'partial')) DESC, started_at DESC"),
        {"ids": list(ig_user_ids), "t": sync_type, "since": since, "p": partition_key}).all()
    return {row.ig_user_id: row for row in rows}


def last_successes(conn: Connection) -> dict[tuple[str, str], datetime]:
    """(ig_user_id, sync_type) -> when its newest successful (or partial) sync finished."""
    rows = conn.execute(sa.text(
        "SELECT ig_user_id, sync_type, max(finished_at) FROM instagram.sync_runs"
        " WHERE status IN ('success', 'partial') GROUP BY 1, 2"))
    return {(r[0], r[1]): r[2] for r in rows}


def recent_failures(conn: Connection, since: datetime) -> list[Row]:
    """Failed syncs started since ``since``, newest first: ig_user_id, sync_type, finished_at, error."""
    return conn.execute(sa.text(
        "SELECT ig_user_id, sync_type, finished_at, error FROM instagram.sync_runs"
        " WHERE status = 'failed' AND started_at > :since ORDER BY started_at DESC"), {"since": since}).all()


def outcomes_of_runs(conn: Connection, run_ids: Sequence[str]) -> list[Row]:
    """Every account outcome of these Dagster runs: ig_user_id, sync_type, status, rows_written, api_calls,
    items_skipped, error."""
    return conn.execute(sa.text(
        "SELECT ig_user_id, sync_type, status, rows_written, api_calls, items_skipped, error"
        " FROM instagram.sync_runs WHERE dagster_run_id = ANY(:runs)"), {"runs": list(run_ids)}).all()


def close_abandoned(engine: Engine, run_ids: Sequence[str], error: str) -> int:
    """Mark the still-`running` outcomes of dead runs as failed with ``error``; returns how many were closed."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "UPDATE instagram.sync_runs SET status = 'failed', finished_at = now(), error = :error"
            " WHERE dagster_run_id = ANY(:runs) AND status = 'running'"),
            {"runs": list(run_ids), "error": error}).rowcount


def prune(engine: Engine, before: datetime, success_before: datetime | None = None) -> int:
    """Delete the outcomes of syncs started before ``before``, and the successful (or partial) ones started before
    ``success_before`` except each account's and sync type's newest (``last_successes``) (retention); failed and
    unfinished ones explain gaps in the data and stay until ``before``. Returns how many."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "WITH newest AS (SELECT ig_user_id, sync_type, max(started_at) AS started_at FROM instagram.sync_runs"
            " WHERE status IN ('success', 'partial') GROUP BY 1, 2)"
            " DELETE FROM instagram.sync_runs s WHERE s.started_at < :before OR ("
            " s.status IN ('success', 'partial') AND s.started_at < CAST(:success_before AS timestamptz)"
            " AND NOT EXISTS ("
            "  SELECT 1 FROM newest n WHERE n.ig_user_id = s.ig_user_id AND n.sync_type = s.sync_type"
            "  AND n.started_at = s.started_at))"),
            {"before": before, "success_before": success_before}).rowcount
