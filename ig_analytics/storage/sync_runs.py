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

from ig_analytics.storage.account_batches import BATCH_ACCOUNTS, each_batch

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


# An hourly media partition's key ("2026-12-07-13:00"): the key of one hour, not a range.
_HOUR_KEY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}:00$"
_MERGE_HOURLY = f"""
WITH candidates AS (
    SELECT s.*, left(s.partition_key, 10) AS day, CAST(substr(s.partition_key, 12, 2) AS int) AS hour
    FROM instagram.sync_runs s
    WHERE s.ig_user_id = ANY(:ids) AND s.started_at < :before AND s.sync_type = 'media' AND s.status = 'success'
      AND s.error IS NULL
      AND s.partition_key ~ :hour_key AND NOT EXISTS (
          SELECT 1 FROM jsonb_each(CASE WHEN jsonb_typeof(s.details) = 'object' THEN s.details ELSE '{{}}' END) d
          WHERE jsonb_typeof(d.value) NOT IN ('number', 'array'))
), islands AS (  -- consecutive hours of one account and UTC day (several syncs of one hour share it)
    SELECT c.*, c.hour - dense_rank() OVER (PARTITION BY c.ig_user_id, c.day ORDER BY c.hour) AS island
    FROM candidates c
), merged AS (
    SELECT ig_user_id, day, island FROM islands GROUP BY 1, 2, 3 HAVING count(*) > 1
), gone AS (
    DELETE FROM instagram.sync_runs s USING islands i JOIN merged m USING (ig_user_id, day, island)
    WHERE s.dagster_run_id = i.dagster_run_id AND s.ig_user_id = i.ig_user_id AND s.sync_type = 'media'
    RETURNING s.*, i.day, i.island
), items AS (  -- each merged row's details: their keys' values
    SELECT g.ig_user_id, g.day, g.island, d.key, d.value
    FROM gone g, jsonb_each(CASE WHEN jsonb_typeof(g.details) = 'object' THEN g.details ELSE '{{}}' END) d
), sums AS (  -- a key's numbers summed, its lists' distinct items united (the items skipped hour after hour)
    SELECT t.ig_user_id, t.day, t.island, jsonb_object_agg(t.key, t.value) AS counts FROM (
        SELECT ig_user_id, day, island, key, to_jsonb(sum(CAST(value AS text)::numeric)) AS value FROM items
        WHERE jsonb_typeof(value) = 'number' GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT i.ig_user_id, i.day, i.island, i.key, jsonb_agg(DISTINCT e.value) FROM items i,
               jsonb_array_elements(i.value) e WHERE jsonb_typeof(i.value) = 'array' GROUP BY 1, 2, 3, 4) t
    GROUP BY 1, 2, 3
), written AS (
    INSERT INTO instagram.sync_runs ({", ".join(COLUMNS)})
    SELECT a.dagster_run_id, a.ig_user_id, 'media', a.partition_key, a.started_at, a.finished_at, 'success',
           a.api_calls, a.rows_written, a.throttle_wait_seconds, a.items_skipped, NULL, NULL, NULL, NULL,
           jsonb_build_object('merged_syncs', a.syncs) || COALESCE(x.counts, '{{}}')
    FROM (SELECT g.ig_user_id, g.day, g.island, count(*) AS syncs,
                 (array_agg(g.dagster_run_id ORDER BY g.started_at DESC, g.dagster_run_id))[1] AS dagster_run_id,
                 CASE WHEN min(g.partition_key) = max(g.partition_key) THEN min(g.partition_key)
                      ELSE min(g.partition_key) || '...' || max(g.partition_key) END AS partition_key,
                 max(g.started_at) AS started_at, max(g.finished_at) AS finished_at, sum(g.api_calls) AS api_calls,
                 sum(g.rows_written) AS rows_written, sum(g.throttle_wait_seconds) AS throttle_wait_seconds,
                 sum(g.items_skipped) AS items_skipped
          FROM gone g GROUP BY g.ig_user_id, g.day, g.island) a
    LEFT JOIN sums x USING (ig_user_id, day, island)
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written)
"""


def merge_hourly_successes(engine: Engine, before: datetime,
                           batch_accounts: int = BATCH_ACCOUNTS) -> tuple[int, int]:
    """Merge the successful hourly media syncs started before ``before`` (retention's ``sync_runs_detail_days``):
    an account's syncs of consecutive hours of one UTC day become one row whose ``partition_key`` is the range
    ``first...last`` (what :func:`partition_outcomes` reads as covering each of those hours: the
    ``every_shard_captured`` check of a re-executed shard gives the same answer), started and finished when the
    last of them did (no earlier than any hour it covers), the run id of the newest, the counts summed (``details``:
    a key's numbers summed, its lists' distinct items united (the items skipped, the dropped metrics), and
    ``merged_syncs``). Left as they are: partial, failed and unfinished syncs, those with an error, ranges, other
    sync types (one a day).
    ``batch_accounts`` accounts per transaction, each committed (``storage/account_batches``: the first merge after
    an upgrade has ~23 days of every account to merge); an account's rows are merged in one. Returns (rows merged,
    rows written for them)."""
    batches = each_batch(engine, ("sync_runs",), lambda conn, ids: merge_accounts_hourly_successes(conn, before, ids),
                         batch_accounts)
    return sum(merged for merged, _ in batches), sum(written for _, written in batches)


def merge_accounts_hourly_successes(conn: Connection, before: datetime, ig_user_ids: Sequence[str]) -> tuple[int, int]:
    """:func:`merge_hourly_successes` of these accounts, in the caller's transaction."""
    gone, new = conn.execute(sa.text(_MERGE_HOURLY),
                             {"before": before, "hour_key": _HOUR_KEY, "ids": list(ig_user_ids)}).one()
    return int(gone), int(new)
