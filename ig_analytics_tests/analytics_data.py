"""Helpers for the analytics tests: insert accounts, posts and snapshots with COPY (db.bulk_upsert)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from ig_analytics.storage import db

UTC = timezone.utc
SNAPSHOT_COLUMNS = (
    "media_id", "captured_at", "fetched_at", "ig_user_id", "reach", "views", "impressions", "likes", "comments",
    "saved", "shares", "total_interactions", "api_version",
)


def ts(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def add_account(conn, ig_user_id: str, *, tz: str = "UTC", followers_total=None, username=None, status="active"):
    db.bulk_upsert(
        conn, "accounts", ["ig_user_id", "username", "timezone", "followers_total", "status"],
        [(ig_user_id, username or f"user{ig_user_id}", tz, followers_total, status)], ["ig_user_id"],
    )


def add_media(conn, rows):
    """rows: dicts with media_id, ig_user_id, published_at and optional media_type, media_product_type,
    caption, permalink."""
    now = datetime.now(UTC)
    db.bulk_upsert(
        conn, "media",
        ["media_id", "ig_user_id", "media_type", "media_product_type", "caption", "permalink", "published_at",
         "first_seen_at", "updated_at"],
        [(r["media_id"], r["ig_user_id"], r.get("media_type", "IMAGE"), r.get("media_product_type", "FEED"),
          r.get("caption", f"caption {r['media_id']}"), r.get("permalink", f"https://example.test/p/{r['media_id']}"),
          r["published_at"], now, now) for r in rows],
        ["media_id"],
    )


def add_snapshots(conn, rows):
    """rows: dicts with media_id, ig_user_id, captured_at and any metric; fetched_at defaults to captured_at."""
    db.bulk_upsert(
        conn, "media_insights_snapshots", SNAPSHOT_COLUMNS,
        [(r["media_id"], r["captured_at"], r.get("fetched_at", r["captured_at"]), r["ig_user_id"], r.get("reach"),
          r.get("views"), r.get("impressions"), r.get("likes"), r.get("comments"), r.get("saved"), r.get("shares"),
          r.get("total_interactions"), r.get("api_version", "v25.0")) for r in rows],
        ["media_id", "captured_at"],
    )


def add_profile_snapshots(conn, ig_user_id, points):
    """points: (captured_at, followers_total)."""
    db.bulk_upsert(
        conn, "account_profile_snapshots", ["ig_user_id", "captured_at", "followers_total"],
        [(ig_user_id, at, n) for at, n in points], ["ig_user_id", "captured_at"],
    )


def add_account_days(conn, ig_user_id, rows):
    """rows: dicts with date and any of reach, views, impressions, follower_count, followers_total,
    profile_views."""
    cols = ["reach", "views", "impressions", "follower_count", "followers_total", "profile_views"]
    db.bulk_upsert(
        conn, "account_insights_daily", ["ig_user_id", "date", *cols, "api_version", "synced_at"],
        [(ig_user_id, r["date"], *[r.get(c) for c in cols], "v25.0", datetime.now(UTC)) for r in rows],
        ["ig_user_id", "date"],
    )


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def save_tables(conn, tables) -> None:
    """A copy of each ``instagram.<table>`` (``instagram._saved_<table>``, gone with the test's schema), so that a
    test can run a compaction again on the same rows (``restore_tables``)."""
    for table in tables:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS instagram._saved_{table}"))
        conn.execute(sa.text(f"CREATE TABLE instagram._saved_{table} AS SELECT * FROM instagram.{table}"))


def restore_tables(conn, tables) -> None:
    """Each of ``tables`` back to its ``save_tables`` copy."""
    for table in reversed(tables):
        conn.execute(sa.text(f"DELETE FROM instagram.{table}"))
    for table in tables:
        conn.execute(sa.text(f"INSERT INTO instagram.{table} SELECT * FROM instagram._saved_{table}"))
