"""Values returned by the Graph API client (plain dataclasses, no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Media", "AccountDay", "Profile", "CallStats", "SkippedItem", "TokenInfo", "RefreshedToken", "DiscoveredPage"]

Number = int | float


@dataclass(frozen=True)
class Profile:
    ig_user_id: str
    username: str | None
    followers_count: int | None
    follows_count: int | None
    media_count: int | None


@dataclass(frozen=True)
class AccountDay:
    """Account insights of one day. ``values``: every account metric of the catalogue version; None = not
    reported (never 0)."""

    date: date
    values: dict[str, Number | None]


@dataclass(frozen=True)
class Media:
    media_id: str
    ig_user_id: str
    media_type: str | None
    media_product_type: str | None
    caption: str | None
    permalink: str | None
    published_at: datetime  # aware, UTC
    like_count: int | None = None
    comments_count: int | None = None


@dataclass(frozen=True)
class SkippedItem:
    """A post whose insights were not fetched, and why (code/subcode of the API, reason in words)."""

    media_id: str
    code: int | None
    subcode: int | None
    reason: str
    refused: bool = False  # the API refused this item (e.g. code 10 on one post): re-asked once a day, not hourly


@dataclass
class CallStats:
    """Per-account counters. ``calls`` = HTTP requests sent (a batch POST counts 1; retries included);
    ``retries`` = HTTP requests sent again after a failure; ``throttle_wait_s`` = seconds slept because of rate
    limits (pacing + throttle pauses); ``dropped_metrics`` = (media_id or None for account metrics, API metric
    name) that the API rejected; ``batch_items`` = Graph calls packed in batch requests (each counts against the
    rate limit); ``incomplete`` = why a list stopped before its end (a repeated cursor, a page cap)."""

    calls: int = 0
    retries: int = 0
    throttle_wait_s: float = 0.0
    skipped: list[SkippedItem] = field(default_factory=list)
    dropped_metrics: list[tuple[str | None, str]] = field(default_factory=list)
    batch_items: int = 0
    incomplete: list[str] = field(default_factory=list)  # lists cut short (paging.py): one line each


@dataclass(frozen=True)
class TokenInfo:
    """What ``debug_token`` says about a token. ``expires_at`` None = never expires; ``error`` = why invalid."""

    is_valid: bool
    expires_at: datetime | None
    data_access_expires_at: datetime | None
    issued_at: datetime | None
    scopes: tuple[str, ...]
    type: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RefreshedToken:
    """A refreshed Instagram-Login token (the repr hides it)."""

    token: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class DiscoveredPage:
    """A Facebook Page of ``/me/accounts``: its linked IG professional account (None when it has none) and the
    Page token, which works for that account (the repr hides it)."""

    page_id: str
    name: str | None
    ig_user_id: str | None
    username: str | None
    token: str | None = field(repr=False, default=None)
