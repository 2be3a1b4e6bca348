"""The media catalogue and lifetime-insight snapshots of one account for one capture slot (an hour).

Capture cadence (see docs/architecture.md): a post is captured every hour while it is young (first 48 h), then
once a day until it is 30 days old; stories while they are live. Which posts are due is derived from the
snapshots already stored, so a missed hour or an outage heals itself on the next run. A snapshot row is keyed by
(media_id, captured_at = slot start): re-running a slot replaces its rows, never duplicates them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.constants import DAILY_CAPTURE_INTERVAL_HOURS, MEDIA_WINDOW_DAYS, YOUNG_POST_HOURS
from ig_analytics.graph_api.models import Media
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.ingestion.stored_text import storable
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
# A post refused by the API, and a metric a post rejected, are asked again after this long (not every hour).
RECHECK_AFTER = timedelta(days=1)


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
        item.media_id, item.ig_user_id, storable(item.media_type), storable(item.media_product_type),
        storable(item.caption), storable(item.permalink), item.published_at, item.like_count, item.comments_count,
        now, now,
    )


def _capture_state(engine: Engine, ig_user_id: str, slot_start: datetime, since: datetime,
                   api_version: str) -> tuple[dict, set, dict]:
    """Per post of the account: its newest capture, whether its insights are not to be asked now (never
    available, or refused less than a day ago), and the metrics it rejected under this API version less than a
    day ago (older rejections are asked again: Meta may serve a refused metric again)."""
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
                "SELECT media_id, insights_unavailable_reason IS NOT NULL OR insights_refused_at > :recheck,"
                " CASE WHEN rejected_metrics_api_version = :v AND rejected_metrics_at > :recheck"
                " THEN rejected_metrics END"
                " FROM instagram.media WHERE ig_user_id = :id AND (insights_unavailable_reason IS NOT NULL"
                " OR insights_refused_at IS NOT NULL OR rejected_metrics IS NOT NULL)"
            ),
            {"id": ig_user_id, "v": api_version, "recheck": slot_start - RECHECK_AFTER},
        ).all()
    not_now = {media_id for media_id, skip, _ in remembered if skip}
    rejected = {media_id: set(metrics) for media_id, _, metrics in remembered if metrics}
    return {row[0]: row[1] for row in last}, not_now, rejected


@dataclass
class _Learnt:
    """What a capture learnt about the account's posts, kept on instagram.media for the next captures."""

    unavailable: list[tuple[str, str]] = field(default_factory=list)  # (media_id, reason): never asked again
    refused: list[tuple[str, int | None, str]] = field(default_factory=list)  # (media_id, code, reason): a day
    rejected: dict[str, set[str]] = field(default_factory=dict)  # media_id -> metrics refused this capture
    asked_all: set[str] = field(default_factory=set)  # captured asking every metric (old rejections re-asked)
    captured: set[str] = field(default_factory=set)


def sync_media(
    engine: Engine, api: InsightsApi, ig_user_id: str, slot_start: datetime, slot_end: datetime, api_version: str,
    now: datetime, policy: CapturePolicy, refresh_all: bool = False, capture_snapshots: bool = True,
) -> MediaSyncResult:
    """Refresh the account's recent posts and capture the snapshots due in this slot, in one transaction."""
    result = MediaSyncResult()
    window_start = slot_end - timedelta(days=policy.window_days)
    media = [m for m in api.list_media(published_since=window_start, include_stories=True) if m.published_at < slot_end]
    values_by_id: dict[str, dict] = {}
    learnt = _Learnt()
    if capture_snapshots:
        last_capture, not_now, known_rejections = _capture_state(engine, ig_user_id, slot_start, window_start,
                                                                 api_version)
        due = due_for_capture(media, last_capture, not_now, slot_start, slot_end, policy, refresh_all)
        result.due = len(due)
        skipped_before, dropped_before = len(api.stats.skipped), len(api.stats.dropped_metrics)
        if due:
            values_by_id = api.media_insights(due, known_rejections)
        for media_id, metric in api.stats.dropped_metrics[dropped_before:]:
            if media_id is not None:
                learnt.rejected.setdefault(media_id, set()).add(metric)
        skipped = api.stats.skipped[skipped_before:]
        result.skipped = len(skipped)
        learnt.unavailable = [(i.media_id, i.reason) for i in skipped if i.subcode in PERMANENTLY_UNAVAILABLE_SUBCODES]
        learnt.refused = [(i.media_id, i.code, i.reason) for i in skipped if i.refused]
        learnt.captured = set(values_by_id)
        learnt.asked_all = learnt.captured - set(known_rejections)
        skipped_ids = {item.media_id for item in skipped}
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
        _remember(conn, learnt, api_version, slot_start)
    return result


def _remember(conn, learnt: _Learnt, api_version: str, slot_start: datetime) -> None:
    _mark_unavailable(conn, learnt.unavailable)
    _mark_refused(conn, learnt.refused, learnt.captured, slot_start)
    _remember_rejections(conn, learnt.rejected, learnt.asked_all, api_version, slot_start)


def _remember_rejections(conn, rejected: dict[str, set[str]], asked_all: set[str], api_version: str,
                         slot_start: datetime) -> None:
    """The metrics each post rejected in this capture. A post asked every metric (its old rejections were a day
    old, or under another version) gets this capture's list, dated now; a post asked without its remembered ones
    adds what it newly rejected to them. A post that served every metric it was asked forgets its rejections."""
    served_all = sorted(asked_all - set(rejected))
    if served_all:
        conn.execute(
            sa.text("UPDATE instagram.media SET rejected_metrics = NULL, rejected_metrics_api_version = NULL,"
                    " rejected_metrics_at = NULL WHERE media_id = ANY(:ids) AND rejected_metrics IS NOT NULL"),
            {"ids": served_all},
        )
    if not rejected:
        return
    conn.execute(
        sa.text(
            "UPDATE instagram.media m SET rejected_metrics = ARRAY(SELECT DISTINCT x FROM unnest("
            "  CASE WHEN m.rejected_metrics_api_version = :v AND NOT :fresh THEN m.rejected_metrics ELSE '{}' END"
            "  || CAST(:metrics AS text[])) AS x ORDER BY x),"
            " rejected_metrics_at = CASE WHEN :fresh OR m.rejected_metrics_api_version IS DISTINCT FROM :v"
            "  OR m.rejected_metrics_at IS NULL THEN :at ELSE m.rejected_metrics_at END,"
            " rejected_metrics_api_version = :v WHERE m.media_id = :id"
        ),
        [{"id": media_id, "metrics": sorted(metrics), "v": api_version, "fresh": media_id in asked_all,
          "at": slot_start} for media_id, metrics in rejected.items()],
    )


def _mark_refused(conn, refused: list[tuple[str, int | None, str]], captured: set[str], slot_start: datetime) -> None:
    """A post the API refused (errors.error_scope: this post's only) keeps the code, the API's words and the capture
    slot; a post captured again forgets an old refusal."""
    if refused:
        conn.execute(
            sa.text("UPDATE instagram.media SET insights_refused_code = :code, insights_refused_reason = :reason,"
                    " insights_refused_at = :at WHERE media_id = :id"),
            [{"id": media_id, "code": code, "reason": storable(reason), "at": slot_start}
             for media_id, code, reason in refused],
        )
    if captured:
        conn.execute(
            sa.text("UPDATE instagram.media SET insights_refused_code = NULL, insights_refused_reason = NULL,"
                    " insights_refused_at = NULL WHERE media_id = ANY(:ids) AND insights_refused_at IS NOT NULL"),
            {"ids": sorted(captured)},
        )


def _mark_unavailable(conn, items: Iterable[tuple[str, str]]) -> None:
    for media_id, reason in items:  # rare (pre-conversion posts), so one statement each is fine
        conn.execute(
            sa.text("UPDATE instagram.media SET insights_unavailable_reason = :r WHERE media_id = :id"),
            {"id": media_id, "r": reason},
        )
