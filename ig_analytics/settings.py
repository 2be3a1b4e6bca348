"""Settings read from the environment: the public contract of README.md, "Settings".

Every part of the product (CLI, Dagster definitions, tests) reads configuration through
``Settings.from_env()`` so that one variable means one thing everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ig_analytics.constants import MAX_SHARDS

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com"


class SettingsError(ValueError):
    """A setting has an unusable value; the message names the variable. The CLI exits 2 on it."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None  # None: use the embedded PostgreSQL under ``home``
    graph_api_url: str
    graph_api_version: str | None  # None: newest version the metric catalogue knows
    app_secret: str | None
    token_key: str | None
    notify_webhook_url: str | None
    shards: int = 1  # IG_ANALYTICS_SHARDS: accounts split into this many runs per ingestion tick (accounts/shards.py)
    app_id: str | None = None  # IG_APP_ID: with app_secret, tokens are inspected with debug_token
    comment_text_days: int = 90  # IG_ANALYTICS_COMMENT_TEXT_DAYS: comment text and usernames blanked after this
    schedules_on: bool = True  # IG_ANALYTICS_SCHEDULES: off = the daemon loads every schedule stopped

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home = Path(env.get("IG_ANALYTICS_HOME") or "./.ig_analytics").expanduser().resolve()
        if home.exists() and not home.is_dir():
            raise SettingsError(f"IG_ANALYTICS_HOME={home} is a file, not a folder: point it at a folder "
                                "(it is created when missing), or unset it to use ./.ig_analytics")
        _partition_starts(env)
        return cls(
            home=home,
            database_url=_database_url(env.get("DATABASE_URL")),
            graph_api_url=_http_url("IG_GRAPH_API_URL", env.get("IG_GRAPH_API_URL") or DEFAULT_GRAPH_API_URL).rstrip("/"),
            graph_api_version=_api_version(env.get("IG_GRAPH_API_VERSION")),
            app_secret=_blank_to_none(env.get("IG_APP_SECRET")),
            token_key=_blank_to_none(env.get("IG_TOKEN_KEY")),
            notify_webhook_url=_http_url("IG_NOTIFY_WEBHOOK_URL", env.get("IG_NOTIFY_WEBHOOK_URL")),
            shards=parse_shards(env.get("IG_ANALYTICS_SHARDS")),
            schedules_on=parse_schedules(env.get("IG_ANALYTICS_SCHEDULES")),
            app_id=_blank_to_none(env.get("IG_APP_ID")),
            comment_text_days=_comment_text_days(env.get("IG_ANALYTICS_COMMENT_TEXT_DAYS")),
        )

    def ensure_home(self) -> Path:
        """Create IG_ANALYTICS_HOME when missing; one that cannot be created or written is a SettingsError."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            writable = os.access(self.home, os.W_OK | os.X_OK)
            reason = "it is not writable"
        except OSError as exc:
            writable, reason = False, exc.strerror or type(exc).__name__
        if not writable:
            raise SettingsError(f"IG_ANALYTICS_HOME={self.home} cannot be used ({reason}): point it at a folder you "
                                "can write (it is created when missing), or unset it to use ./.ig_analytics")
        return self.home

    @property
    def uses_embedded_db(self) -> bool:
        return self.database_url is None

    @property
    def dagster_home(self) -> Path:
        explicit = os.environ.get("DAGSTER_HOME")
        return Path(explicit).resolve() if explicit else self.home / "dagster"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _database_url(value: str | None) -> str | None:
    """DATABASE_URL, checked now: a value SQLAlchemy cannot parse fails later with no variable name."""
    value = _blank_to_none(value)
    if value is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(value).get_backend_name()
    except (ArgumentError, ValueError):
        backend = None
    if backend != "postgresql":
        raise SettingsError(
            "DATABASE_URL is not a PostgreSQL URL: use postgresql://USER:PASSWORD@HOST:5432/DATABASE, "
            "or unset it to use the embedded server"
        )
    return value


def parse_schedules(value: str | None) -> bool:
    """IG_ANALYTICS_SCHEDULES: `on` (default) or `off` (schedules load stopped: a staging copy, or tests of the UI
    that must not see a tick land; each can still be started in the UI)."""
    value = (_blank_to_none(value) or "on").strip().lower()
    if value not in ("on", "off"):
        raise SettingsError(f"IG_ANALYTICS_SCHEDULES must be on or off, not '{value[:20]}'")
    return value == "on"


def parse_shards(value: str | None) -> int:
    """IG_ANALYTICS_SHARDS: a whole number from 1 to 1000 (unset or blank: 1)."""
    value = _blank_to_none(value)
    if value is None:
        return 1
    try:
        shards = int(value)
    except ValueError:
        shards = 0
    if not 1 <= shards <= MAX_SHARDS:
        raise SettingsError(f"IG_ANALYTICS_SHARDS must be a whole number from 1 to {MAX_SHARDS} (the accounts are "
                            f"split into that many runs per sync), not '{value[:20]}'; unset it for one run")
    return shards


def _comment_text_days(value: str | None) -> int:
    """IG_ANALYTICS_COMMENT_TEXT_DAYS: whole days from 1 to 3650 (unset or blank: 90)."""
    value = _blank_to_none(value)
    if value is None:
        return 90
    try:
        days = int(value)
    except ValueError:
        days = 0
    if not 1 <= days <= 3650:
        raise SettingsError(f"IG_ANALYTICS_COMMENT_TEXT_DAYS must be a whole number of days from 1 to 3650 (comment "
                            f"text and commenters' usernames are blanked after it), not '{value[:20]}'; unset it for 90")
    return days


def _http_url(name: str, value: str | None) -> str | None:
    """An http(s) URL with a host, or a SettingsError naming the variable."""
    value = _blank_to_none(value)
    if value is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise SettingsError(f"{name} must be an http(s) URL like https://host[:port], not '{value[:60]}'")
    return value


def _api_version(value: str | None) -> str | None:
    """IG_GRAPH_API_VERSION: a version the metric catalogue can serve (a known one, or a newer one, which gets the
    newest known metric set), or a SettingsError listing the versions it knows."""
    value = _blank_to_none(value)
    if value is None:
        return None
    from ig_analytics.graph_api.catalogue import VERSIONS, resolve_version

    try:
        resolve_version(value)
    except ValueError:
        raise SettingsError(f"IG_GRAPH_API_VERSION must be a Graph API version the metric catalogue knows "
                            f"({', '.join(VERSIONS)}) or a newer one, not '{value[:20]}'; unset it for "
                            f"{VERSIONS[-1]}") from None
    return value


def _partition_starts(env) -> None:
    """IG_ANALYTICS_DAILY_START (YYYY-MM-DD) and IG_ANALYTICS_HOURLY_START (YYYY-MM-DD-HH:00), read by
    install_marker: a wrong value is a setting error now, not a ValueError when the definitions load."""
    from datetime import date, datetime

    from ig_analytics.install_marker import HOURLY_FORMAT

    for name, parse, example in (("IG_ANALYTICS_DAILY_START", date.fromisoformat, "2025-01-31"),
                                 ("IG_ANALYTICS_HOURLY_START", lambda v: datetime.strptime(v, HOURLY_FORMAT),
                                  "2026-11-01-00:00")):
        value = env.get(name)
        if not value:
            continue
        try:
            parse(value)
        except ValueError:
            raise SettingsError(f"{name} must be a date like {example}, not '{value[:30]}'") from None
