"""Helpers for the operations tests (checks, alerts, retention): small, readable inserts with plain SQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

UTC = timezone.utc


def now_utc() -> datetime:
    return datetime.now(UTC)


def hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def insert(conn, table: str, **values) -> None:
    cols = list(values)
    params = {c: json.dumps(v) if isinstance(v, dict) else v for c, v in values.items()}
    placeholders = ", ".join(f"CAST(:{c} AS jsonb)" if isinstance(values[c], dict) else f":{c}" for c in cols)
    conn.execute(sa.text(f"INSERT INTO instagram.{table} ({', '.join(cols)}) VALUES ({placeholders})"), params)


def add_account(conn, ig_user_id: str, *, status: str = "active", token: bytes | None = b"ciphertext",
                expires_in: timedelta | None = timedelta(days=50)) -> None:
    insert(conn, "accounts", ig_user_id=ig_user_id, username=f"user{ig_user_id}", status=status,
           token_ciphertext=token, token_expires_at=(now_utc() + expires_in) if expires_in is not None else None)


def add_day(conn, ig_user_id: str, day: date, **metrics) -> None:
    values = {"reach": 100, "views": 300, "follower_count": 3, "followers_total": 1000, **metrics}
    insert(conn, "account_insights_daily", ig_user_id=ig_user_id, date=day, api_version="v25.0",
           synced_at=now_utc(), **values)


def add_media(conn, media_id: str, ig_user_id: str, published_at: datetime, **extra) -> None:
    insert(conn, "media", media_id=media_id, ig_user_id=ig_user_id, media_type="IMAGE", media_product_type="FEED",
           published_at=published_at, first_seen_at=now_utc(), updated_at=now_utc(), **extra)


def add_snapshot(conn, media_id: str, ig_user_id: str, captured_at: datetime, **metrics) -> None:
    values = {"reach": 50, "views": 80, "likes": 10, "comments": 2, "saved": 1, "shares": 1, "total_interactions": 14,
              **metrics}
    insert(conn, "media_insights_snapshots", media_id=media_id, ig_user_id=ig_user_id, captured_at=captured_at,
           fetched_at=metrics.pop("fetched_at", None) or captured_at + timedelta(minutes=5), api_version="v25.0",
           **{k: v for k, v in values.items() if k != "fetched_at"})


def add_sync_run(conn, run_id: str, ig_user_id: str, sync_type: str, partition_key: str, status: str,
                 error: str | None = None, started_at: datetime | None = None) -> None:
    started = started_at or now_utc()
    insert(conn, "sync_runs", dagster_run_id=run_id, ig_user_id=ig_user_id, sync_type=sync_type,
           partition_key=partition_key, started_at=started, finished_at=started, status=status, error=error)


def postgres_instance(dagster_pg_url: str):
    """A Dagster instance on the test PostgreSQL (the production storage; SQLite's run-sharded event log cannot
    answer the cross-run queries the check-alert sensor makes). Use as a context manager."""
    import dagster as dg

    return dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": dagster_pg_url}}})
