"""Settings read from the environment: the public contract of docs/product.md.

Every part of the product (CLI, Dagster definitions, tests) reads configuration through
``Settings.from_env()`` so that one variable means one thing everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None  # None: use the embedded PostgreSQL under ``home``
    graph_api_url: str
    graph_api_version: str | None  # None: newest version the metric catalogue knows
    app_secret: str | None
    token_key: str | None
    notify_webhook_url: str | None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home = Path(env.get("IG_ANALYTICS_HOME") or "./.ig_analytics").expanduser().resolve()
        return cls(
            home=home,
            database_url=_blank_to_none(env.get("DATABASE_URL")),
            graph_api_url=(_blank_to_none(env.get("IG_GRAPH_API_URL")) or DEFAULT_GRAPH_API_URL).rstrip("/"),
            graph_api_version=_blank_to_none(env.get("IG_GRAPH_API_VERSION")),
            app_secret=_blank_to_none(env.get("IG_APP_SECRET")),
            token_key=_blank_to_none(env.get("IG_TOKEN_KEY")),
            notify_webhook_url=_blank_to_none(env.get("IG_NOTIFY_WEBHOOK_URL")),
        )

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
