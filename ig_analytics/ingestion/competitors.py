"""One account's daily competitor capture: business discovery of each competitor it watches, and of its own
username (its own public numbers, read the same way, so the benchmarks compare like with like).

Writes ``competitor_profiles_daily`` (labelled with the capture's day), ``competitor_media`` and a
``competitor_media_snapshots`` row per post read, and each competitor's outcome in ``competitors``: a
competitor that fails is recorded with its reason and costs nothing to the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from ig_analytics.graph_api import business_discovery as bd
from ig_analytics.storage import competitors as repo
from ig_analytics.storage.db import bulk_upsert

MEDIA_DAYS_ENV = "IG_ANALYTICS_COMPETITOR_MEDIA_DAYS"
DEFAULT_MEDIA_DAYS = 30  # older posts are read (paged) back to this age


@dataclass
class CaptureResult:
    ig_user_id: str
    captured: list[str] = field(default_factory=list)  # competitors read
    failed: dict[str, str] = field(default_factory=dict)  # competitor -> status: reason (incl. deferred)
    self_captured: bool = False
    self_reason: str | None = None  # why the account's own public numbers were not read
    rows_written: int = 0
    api_calls: int = 0


def media_days() -> int:
    try:
        return max(1, int(os.environ.get(MEDIA_DAYS_ENV, DEFAULT_MEDIA_DAYS)))
    except ValueError:
        return DEFAULT_MEDIA_DAYS


def refusal(login_kind: str) -> str | None:
    """Why an account cannot have competitors, or None."""
    if login_kind == "instagram":
        return ("business discovery is served only to Facebook-Login accounts (graph.facebook.com); connect the "
                "account through its Facebook Page (ig-analytics accounts discover) to compare it with competitors")
    return None


def capture_account(engine: Engine, api: Any, username: str | None, day: date, now: datetime,
                    login_kind: str = "facebook") -> CaptureResult:
    """Capture the account's competitors (and itself) at ``now`` (the API's clock), labelled ``day``."""
    result = CaptureResult(api.ig_user_id)
    with engine.connect() as conn:
        watched = repo.watched(conn, api.ig_user_id)
        used = repo.attempts_since(conn, api.ig_user_id, now - timedelta(hours=1))
    refused = refusal(login_kind)
    if refused:
        result.self_reason = refused
        result.failed = {name: f"unavailable: {refused}" for name in watched}
        return result
    own = _own_username(username, watched, result)
    calls_before = api.stats.calls
    found = bd.discover(api, watched + ([own] if own else []), now - timedelta(days=media_days()),
                        budget=bd.PLATFORM_CALLS_PER_HOUR - used)
    result.api_calls = api.stats.calls - calls_before
    with engine.begin() as conn:
        result.rows_written = _write(conn, api.ig_user_id, day, now, found, own)
        repo.record_outcomes(conn, api.ig_user_id, now, [
            (name, None if d.status == "deferred" else d.status, d.reason,
             d.profile.competitor_ig_user_id if d.profile else None)
            for name, d in found.items() if name != own])
    for name, d in found.items():
        if name == own:
            result.self_captured, result.self_reason = d.status == "active", d.reason
        elif d.status == "active":
            result.captured.append(name)
        else:
            result.failed[name] = f"{d.status}: {d.reason}"
    return result


def _own_username(username: str | None, watched: list[str], result: CaptureResult) -> str | None:
    try:
        own = bd.normalize_username(username or "")
    except bd.InvalidUsername:
        result.self_reason = "the account's username is unknown: its own public numbers are not read"
        return None
    return None if own in watched else own


def _write(conn: Any, ig_user_id: str, day: date, now: datetime, found: dict[str, bd.Discovery],
           own: str | None) -> int:
    profiles, media, snapshots = [], {}, {}
    slot = now.replace(minute=0, second=0, microsecond=0)  # a second capture within the hour replaces the first
    for name, d in found.items():
        p = d.profile
        if d.status != "active" or p is None:
            continue
        profiles.append((ig_user_id, name, day, name == own, p.competitor_ig_user_id, p.name, p.followers_count,
                         p.follows_count, p.media_count, now))
        for m in p.media:
            media[m.media_id] = (m.media_id, name, p.competitor_ig_user_id, m.media_product_type, m.media_type,
                                 m.published_at, m.permalink, now, now)
            snapshots[m.media_id] = (m.media_id, slot, m.like_count, m.comments_count)
    written = bulk_upsert(conn, "competitor_profiles_daily", [
        "ig_user_id", "username", "date", "is_self", "competitor_ig_user_id", "name", "followers_count",
        "follows_count", "media_count", "fetched_at"], profiles, key_columns=["ig_user_id", "username", "date"],
        keep_existing_when_null=["competitor_ig_user_id", "name", "followers_count", "follows_count",
                                 "media_count"])
    media_cols = ["media_id", "username", "competitor_ig_user_id", "media_product_type", "media_type",
                  "published_at", "permalink", "first_seen_at", "updated_at"]
    written += bulk_upsert(conn, "competitor_media", media_cols, list(media.values()), key_columns=["media_id"],
                           update_columns=[c for c in media_cols if c != "first_seen_at"],
                           keep_existing_when_null=media_cols[1:7])
    written += bulk_upsert(conn, "competitor_media_snapshots", ["media_id", "captured_at", "like_count",
                                                                 "comments_count"],
                           list(snapshots.values()), key_columns=["media_id", "captured_at"],
                           keep_existing_when_null=["like_count", "comments_count"])
    return written
