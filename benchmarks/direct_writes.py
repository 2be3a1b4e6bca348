"""The derived rows the IO-managed assets compute, written without Dagster in the caller's transaction: the
benchmarks' no-Dagster baseline (``orchestration``, ``analytics``, ``growth``) and the tests below Dagster. No
product path calls these: in the product each table has one writer, its asset, through ``postgres_io``
(docs/architecture.md, "One writer per table"). Same read and compute functions as the assets."""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ig_analytics.analytics._common import as_utc, id_list
from ig_analytics.analytics.best_times import BestTimesParams, best_times_rows, read_rated_posts
from ig_analytics.analytics.engagement import (
    MEDIA_ENGAGEMENT_CHANGES, MEDIA_ENGAGEMENT_COLUMNS, daily_engagement_rows, media_engagement_rows,
    read_latest_snapshots, read_posts_by_day,
)
from ig_analytics.storage import db
from ig_analytics.storage.frames import copy_frame, frame_rows


def refresh_media_engagement(
    conn: Connection,
    *,
    ig_user_ids: Iterable[str] | None = None,
    media_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Upsert instagram.media_engagement for every post (or the given accounts / posts) that has at least one
    snapshot, from its newest snapshot and the follower history. With ``now``, the newest snapshot captured at or
    before ``now`` is used and ``computed_at = now``. A row whose values did not change is left as it is (its
    computed_at too). Returns rows offered. (The hourly asset computes the same rows and leaves the writing to
    the IO manager; this path serves the account sync's push of new follower totals.)"""
    latest = read_latest_snapshots(conn, ig_user_ids=ig_user_ids, media_ids=media_ids, now=now)
    if latest.empty:
        return 0
    out = media_engagement_rows(latest, as_utc(now))
    # every post is recomputed (a follower total or a snapshot may have changed); unchanged rows are not rewritten
    return db.bulk_upsert(
        conn, "media_engagement", MEDIA_ENGAGEMENT_COLUMNS, frame_rows(out, MEDIA_ENGAGEMENT_COLUMNS), ["media_id"],
        only_if_changed=MEDIA_ENGAGEMENT_CHANGES,
    )


def refresh_account_engagement_daily(
    conn: Connection,
    *,
    day_from: date,
    day_to: date,
    ig_user_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Replace instagram.account_engagement_daily for ``day_from..day_to`` (inclusive; days of publication in
    each account's time zone) with :func:`daily_engagement_rows`. A day without posts has no row. Run
    :func:`refresh_media_engagement` first."""
    posts = read_posts_by_day(conn, day_from=day_from, day_to=day_to, ig_user_ids=ig_user_ids)
    out = daily_engagement_rows(posts, as_utc(now))
    users = id_list(ig_user_ids)
    where = "date BETWEEN :day_from AND :day_to" + (" AND ig_user_id = ANY(:users)" if users is not None else "")
    conn.execute(sa.text(f"DELETE FROM instagram.account_engagement_daily WHERE {where}"),
                 {"day_from": day_from, "day_to": day_to, "users": users})
    return copy_frame(conn, "account_engagement_daily", out)


def refresh_best_posting_times(
    conn: Connection,
    *,
    ig_user_ids: Iterable[str] | None = None,
    params: BestTimesParams = BestTimesParams(),
    now: datetime | None = None,
) -> int:
    """Replace the best_posting_times rows of the given accounts (all accounts when None) with
    :func:`best_times_rows` over :func:`read_rated_posts`. Reads media_engagement: run refresh_media_engagement
    first. Returns rows written."""
    at = as_utc(now)
    out = best_times_rows(read_rated_posts(conn, now=at, params=params, ig_user_ids=ig_user_ids), at, params)
    users = id_list(ig_user_ids)
    where = "ig_user_id = ANY(:users)" if users is not None else "true"
    conn.execute(sa.text(f"DELETE FROM instagram.best_posting_times WHERE {where}"), {"users": users})
    return copy_frame(conn, "best_posting_times", out)
