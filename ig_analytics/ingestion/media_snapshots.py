"""The media catalogue and lifetime-insight snapshots of one account for one capture slot (an hour).

Capture cadence (see docs/architecture.md): a post is captured every hour while it is young (first 48 h), then
once a day until it is 30 days old; stories while they are live. Which posts are due is derived from the
snapshots already stored, so a missed hour or an outage heals itself on the next run. A snapshot row is keyed by
(media_id, captured_at = slot start): re-running a slot replaces its rows, never duplicates them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.constants import DAILY_CAPTURE_INTERVAL_HOURS, MEDIA_WINDOW_DAYS, YOUNG_POST_HOURS
from ig_analytics.graph_api.models import Media
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.storage.db import bulk_upsert

SNAPSHOT_METRIC_COLUMNS = (
    "reach", "views", "impressions", "likes", "comments", "saved", "shares", "total_interactions", "video_views",
    "plays", "follows", "profile_visits", "replies", "reposts", "avg_watch_time_ms", "total_watch_time_ms",
)
_SNAPSHOT_COLUMNS = (
    "media_id", "captured_at", "fetched_at", "ig_user_id", *SNAPSHOT_METRIC_COLUMNS, "other_metrics", "api_version",
)
_MEDIA_COLUMNS = (
    "media_id", "ig_user_id", "media_type", "media_product_type", "caption", "permalink", "published_at",
    "like_count", "comments_count", "first_seen_at", "updated_at",
)
# Errors after which a post's insights will never be available (posted before the business conversion).
PERMANENTLY_UNAVAILABLE_SUBCODES = {2108006}


@dataclass(frozen=True)
class CapturePolicy:
    window_days: int = MEDIA_WINDOW_DAYS  # posts older than this are no longer captured
    young_hours: int = YOUNG_POST_HOURS  # hourly captures while younger than this
    daily_interval_hours: int = DAILY_CAPTURE_INTERVAL_HOURS  # afterwards, captured when the newest snapshot is at least this old


@dataclass
class MediaSyncResult:
    media_rows: int = 0
    snapshot_rows: int = 0
    due: int = 0
    skipped: int = 0
    not_captured: int = 0  # due, but neither captured nor permanently unavailable (transient trouble)

    @property
    def rows_written(self) -> int:
        return self.media_rows + self.snapshot_rows


def due_for_capture(
    media: Sequence[Media], last_capture: dict[str, datetime], unavailable: set[str], slot_start: datetime,
    slot_end: datetime, policy: CapturePolicy, refresh_all: bool,
) -> list[Media]:
    due = []
    for item in media:
        if item.media_id in unavailable or item.published_at >= slot_end:
            continue
        age = slot_end - item.published_at
        if age > timedelta(days=policy.window_days):
            continue
        previous = last_capture.get(item.media_id)
        if (
            refresh_all
            or age <= timedelta(hours=policy.young_hours)
            or previous is None
            or slot_start - previous >= timedelta(hours=policy.daily_interval_hours)
        ):
            due.append(item)
    return due


def _snapshot_row(item: Media, values: dict, slot_start: datetime, fetched_at: datetime, api_version: str) -> tuple:
    metrics = {name: values.get(name) for name in SNAPSHOT_METRIC_COLUMNS}
    # Likes and comments are also object fields read in the same capture: use them when insights lack them.
    if metrics["likes"] is None:
        metrics["likes"] = item.like_count
    if metrics["comments"] is None:
        metrics["comments"] = item.comments_count
    other = {k: v for k, v in values.items() if k not in metrics}
    return (
        item.media_id, slot_start, fetched_at, item.ig_user_id, *metrics.values(),
        json.dumps(other) if other else None, api_version,
    )


def _media_row(item: Media, now: datetime) -> tuple:
    return (
        item.media_id, item.ig_user_id, item.media_type, item.media_product_type, item.caption, item.permalink,
        item.published_at, item.like_count, item.comments_count, now, now,
    )


def _capture_state(engine: Engine, ig_user_id: str, slot_start: datetime, since: datetime,
                   api_version: str) -> tuple[dict, set, dict]:
    """Per post of the account: its newest capture, whether its insights can never be read, and the metrics it
    rejected under this API version."""
    with engine.connect() as conn:
        last = conn.execute(
            sa.text(
                "SELECT media_id, max(captured_at) FROM instagram.media_insights_snapshots"
                " WHERE ig_user_id = :id AND captured_at < :slot AND captured_at >= :since GROUP BY media_id"
            ),
            {"id": ig_user_id, "slot": slot_start, "since": since},
        ).all()
        remembered = conn.execute(  # one read of what earlier captures learnt about the account's posts
            sa.text(
                "SELECT media_id, insights_unavailable_reason IS NOT NULL,"
                " CASE WHEN rejected_metrics_api_version = :v THEN rejected_metrics END"
                " FROM instagram.media WHERE ig_user_id = :id"
                " AND (insights_unavailable_reason IS NOT NULL OR rejected_metrics IS NOT NULL)"
            ),
            {"id": ig_user_id, "v": api_version},
        ).all()
    unavailable = {media_id for media_id, never, _ in remembered if never}
    rejected = {media_id: set(metrics) for media_id, _, metrics in remembered if metrics}
    return {row[0]: row[1] for row in last}, unavailable, rejected


def sync_media(
    engine: Engine, api: InsightsApi, ig_user_id: str, slot_start: datetime, slot_end: datetime, api_version: str,
    now: datetime, policy: CapturePolicy, refresh_all: bool = False, capture_snapshots: bool = True,
) -> MediaSyncResult:
    """Refresh the account's recent posts and capture the snapshots due in this slot, in one transaction."""
    result = MediaSyncResult()
    window_start = slot_end - timedelta(days=policy.window_days)
    media = [m for m in api.list_media(published_since=window_start, include_stories=True) if m.published_at < slot_end]
    values_by_id: dict[str, dict] = {}
    permanently_unavailable: list[tuple[str, str]] = []
    newly_rejected: dict[str, set[str]] = {}
    if capture_snapshots:
        last_capture, unavailable, known_rejections = _capture_state(engine, ig_user_id, slot_start, window_start,
                                                                     api_version)
        due = due_for_capture(media, last_capture, unavailable, slot_start, slot_end, policy, refresh_all)
        result.due = len(due)
        skipped_before, dropped_before = len(api.stats.skipped), len(api.stats.dropped_metrics)
        if due:
            values_by_id = api.media_insights(due, known_rejections)
        for media_id, metric in api.stats.dropped_metrics[dropped_before:]:
            if media_id is not None:
                newly_rejected.setdefault(media_id, set()).add(metric)
        for item in api.stats.skipped[skipped_before:]:
            result.skipped += 1
            if item.subcode in PERMANENTLY_UNAVAILABLE_SUBCODES:
                permanently_unavailable.append((item.media_id, item.reason))
        skipped_ids = {item.media_id for item in api.stats.skipped[skipped_before:]}
        result.not_captured = sum(
            1 for item in due if item.media_id not in values_by_id and item.media_id not in skipped_ids
        )
    by_id = {item.media_id: item for item in media}
    with engine.begin() as conn:
        result.media_rows = bulk_upsert(
            conn, "media", _MEDIA_COLUMNS, (_media_row(item, now) for item in media),
        )  # merge rule (storage/merge_rules.py): a field missing this time keeps its last known value
        result.snapshot_rows = bulk_upsert(
            conn, "media_insights_snapshots", _SNAPSHOT_COLUMNS,
            (_snapshot_row(by_id[mid], values, slot_start, now, api_version) for mid, values in values_by_id.items() if mid in by_id),
        )  # merge rule: a metric missing this time (e.g. another API version) keeps the slot's measured value
        _mark_unavailable(conn, permanently_unavailable)
        _remember_rejections(conn, newly_rejected, api_version)
    return result


def _remember_rejections(conn, rejected: dict[str, set[str]], api_version: str) -> None:
    """Add the metrics each post rejected in this capture to those it rejected before under the same version
    (another version's list is replaced: it may serve what the old one did not)."""
    if not rejected:
        return
    conn.execute(
        sa.text(
            "UPDATE instagram.media m SET rejected_metrics = ARRAY(SELECT DISTINCT x FROM unnest("
            "  CASE WHEN m.rejected_metrics_api_version = :v THEN m.rejected_metrics ELSE '{}' END"
            "  || CAST(:metrics AS text[])) AS x ORDER BY x),"
            " rejected_metrics_api_version = :v WHERE m.media_id = :id"
        ),
        [{"id": media_id, "metrics": sorted(metrics), "v": api_version} for media_id, metrics in rejected.items()],
    )


def _mark_unavailable(conn, items: Iterable[tuple[str, str]]) -> None:
    for media_id, reason in items:  # rare (pre-conversion posts), so one statement each is fine
        conn.execute(
            sa.text("UPDATE instagram.media SET insights_unavailable_reason = :r WHERE media_id = :id"),
            {"id": media_id, "r": reason},
        )
