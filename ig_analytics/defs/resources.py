"""Dagster resources: the analytics database and the Graph API client. Both read the product's settings from the
environment at run time (docs/product.md), so no secret ever sits in run config or the UI."""

from __future__ import annotations

import threading
from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from ig_analytics.graph_api import GraphApiClient
from ig_analytics.graph_api.app_budget import AppBudget
from ig_analytics.settings import Settings
from ig_analytics.storage import db
from ig_analytics.accounts.token_vault import TokenVault

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class AnalyticsDatabase(dg.ConfigurableResource):
    """The PostgreSQL holding the ``instagram`` schema: DATABASE_URL, else the embedded server."""

    def settings(self) -> Settings:
        return Settings.from_env()

    def engine(self) -> Engine:
        url = db.analytics_url(self.settings())
        engine = db.get_engine(url)
        with _migrate_lock:
            if url not in _migrated:
                db.check_connection(engine)
                db.migrate(engine)
                _migrated.add(url)
        return engine

    def vault(self) -> TokenVault:
        return TokenVault.from_settings(self.settings())

    def notifier(self):
        from ig_analytics.notify import Notifier

        return Notifier(self.engine(), self.settings().notify_webhook_url)


class GraphApi(dg.ConfigurableResource):
    """The Meta Graph API (IG_GRAPH_API_URL / IG_GRAPH_API_VERSION / IG_APP_SECRET)."""

    max_attempts: int = 5
    backoff_base_s: float = 1.0
    max_throttle_wait_s: float = 300.0
    read_timeout_s: float = 30.0

    _client: GraphApiClient | None = PrivateAttr(default=None)

    def client(self) -> GraphApiClient:
        if self._client is None:
            settings = Settings.from_env()
            # The app-wide usage (X-App-Usage) is shared through the database by every run of the deployment,
            # so concurrent shard runs slow down together before the app's budget runs out (docs/deploy.md).
            app_budget = AppBudget(db.get_engine(db.analytics_url(settings)))
            self._client = GraphApiClient(
                base_url=settings.graph_api_url,
                version=settings.graph_api_version,
                app_secret=settings.app_secret,
                timeout=(5.0, self.read_timeout_s),
                max_attempts=self.max_attempts,
                backoff_base_s=self.backoff_base_s,
                max_throttle_wait_s=self.max_throttle_wait_s,
                app_budget=app_budget,
            )
        return self._client
