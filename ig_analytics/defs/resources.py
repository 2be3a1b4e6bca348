"""Dagster resources: the analytics database and the Graph API client.

Their fields default to the product's settings (README.md, "Settings"), read once when a run (or a sensor tick) sets the
resource up (``setup_for_execution``), not on every call. A field that would hold a secret is given as
``dg.EnvVar("NAME")`` or left unset: the UI then shows a variable's name, never a database URL or a token, and no
secret is ever in run config. The app secret (IG_APP_SECRET) and the token key are read from the environment only.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field, PrivateAttr
from sqlalchemy.engine import Engine

from ig_analytics.graph_api import GraphApiClient
from ig_analytics.graph_api.app_budget import AppBudget
from ig_analytics.graph_api.recording import Recorder
from ig_analytics.settings import Settings
from ig_analytics.storage import db
from ig_analytics.accounts.token_vault import TokenVault


def _settings(**overrides: str | None) -> Settings:
    """The settings of this process's environment, with the variables a resource field sets replaced."""
    env = dict(os.environ)
    env.update({name: value for name, value in overrides.items() if value})
    return Settings.from_env(env)


class AnalyticsDatabase(dg.ConfigurableResource):
    """The PostgreSQL holding the ``instagram`` schema: DATABASE_URL, else the embedded server."""

    database_url: str | None = Field(
        default=None,
        description="Unset: DATABASE_URL, else the embedded server under IG_ANALYTICS_HOME. Give it as "
                    "dg.EnvVar('NAME') so that the UI shows the variable's name, not the URL and its password.")
    migrate: bool = Field(default=True, description="Apply pending schema migrations when a run sets this up.")

    _settings: Settings | None = PrivateAttr(default=None)
    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from ig_analytics.defs.launch import pool_connections

        pool_connections(context.instance)  # the run's own events: pooled connections, not one per event
        self._connect()

    def _connect(self) -> None:
        """Once per run process (and outside Dagster, on first use): read the settings, build the engine, check
        the server answers, migrate."""
        settings = _settings(DATABASE_URL=self.database_url)
        engine = db.get_engine(db.analytics_url(settings))
        db.check_connection(engine)
        if self.migrate:
            db.migrate(engine)
        self._settings, self._engine = settings, engine

    def settings(self) -> Settings:
        if self._settings is None:
            self._connect()
        return self._settings

    def engine(self) -> Engine:
        if self._engine is None:
            self._connect()
        return self._engine

    def vault(self) -> TokenVault:
        return TokenVault.from_settings(self.settings())

    def notifier(self):
        from ig_analytics.alerts.notify import Notifier

        return Notifier(self.engine(), self.settings().notify_webhook_url)


class GraphApi(dg.ConfigurableResource):
    """The Meta Graph API: IG_GRAPH_API_URL and IG_GRAPH_API_VERSION unless set here; IG_APP_SECRET."""

    base_url: str | None = Field(default=None, description="Unset: IG_GRAPH_API_URL, else Meta's host.")
    api_version: str | None = Field(default=None, description="Unset: IG_GRAPH_API_VERSION, else the newest known.")
    max_attempts: int = 5
    backoff_base_s: float = 1.0
    max_throttle_wait_s: float = 300.0
    read_timeout_s: float = 30.0
    record_dir: str | None = Field(
        default=None, description="`sync --record DIR`: every request and reply of the run written to DIR, "
                                  "secrets removed (graph_api/recording.py). Unset: nothing is recorded.")

    _settings: Settings | None = PrivateAttr(default=None)
    _client: GraphApiClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._settings = self._read_settings()

    def _read_settings(self) -> Settings:
        return _settings(IG_GRAPH_API_URL=self.base_url, IG_GRAPH_API_VERSION=self.api_version)

    def client(self, database: AnalyticsDatabase) -> GraphApiClient:
        """The client of this run. ``database`` is the run's analytics database: the app-wide usage (X-App-Usage)
        is shared through it by every run of the deployment, so concurrent shard runs slow down together before
        the app's budget runs out (docs/deploy.md). It is the resource's engine, not DATABASE_URL: a
        ``database_url`` set on the resource must hold the budget too."""
        if self._client is None:
            settings = self._settings or self._read_settings()
            app_budget = AppBudget(database.engine())
            self._client = GraphApiClient.from_settings(
                settings,
                app_budget=app_budget,
                timeout=(5.0, self.read_timeout_s),
                max_attempts=self.max_attempts,
                backoff_base_s=self.backoff_base_s,
                max_throttle_wait_s=self.max_throttle_wait_s,
                recorder=Recorder(self.record_dir) if self.record_dir else None,
            )
        return self._client
