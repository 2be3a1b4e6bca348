"""The app-wide Graph API budget, shared by every run of one deployment through PostgreSQL.

``X-App-Usage`` is one figure for the whole Meta app (all accounts, all runs), but a run sees it only on its own
responses: a run that has just started, or whose accounts are slow, does not know that the other shards drove the
app to 95 %. ``AppBudget`` keeps the freshest observation in ``instagram.api_budget`` (migration 0007): each
client writes the newest value it saw and reads the newest anyone saw, in ONE round trip at most once per
``sync_interval_s`` per process (not per call), and every call is paced by that figure with the same curve as the
per-account usage (``rate_limit.slowdown_delay_s``: nothing below 80 %, then 1 s rising to 30 s at 100 %).

A database error never fails a sync: the budget falls back to what this process saw itself, and says so once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics import clock
from ig_analytics.graph_api.rate_limit import app_usage_pct, slowdown_delay_s

__all__ = ["AppBudget", "app_usage_pct"]

LOGGER = logging.getLogger("ig_analytics.graph_api.app_budget")

# One statement: the upsert (only when there is a newer observation) and the row as it was before it; the caller
# keeps whichever is newer. Older observations never overwrite newer ones (clocks of a deployment agree closely).
_SYNC = sa.text(
    """
    WITH written AS (
        INSERT INTO instagram.api_budget AS b (scope, usage_pct, observed_at, observed_by)
        SELECT :scope, :pct, :at, :who WHERE CAST(:write AS boolean)
        ON CONFLICT (scope) DO UPDATE
            SET usage_pct = EXCLUDED.usage_pct, observed_at = EXCLUDED.observed_at, observed_by = EXCLUDED.observed_by
            WHERE b.observed_at <= EXCLUDED.observed_at
        RETURNING usage_pct, observed_at
    )
    SELECT usage_pct, observed_at FROM written
    UNION ALL
    SELECT usage_pct, observed_at FROM instagram.api_budget WHERE scope = :scope
    """
)


class AppBudget:
    """Thread-safe; one per process (the GraphApiClient holds it), shared by all its account handles."""

    def __init__(
        self,
        engine: Engine,
        *,
        scope: str = "app",
        sync_interval_s: float = 1.0,
        stale_after_s: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: clock.now(),
    ) -> None:
        self._engine = engine
        self.scope = scope
        self.sync_interval_s = float(sync_interval_s)
        self.stale_after_s = float(stale_after_s)
        self._monotonic = monotonic
        self._now = now
        self._who = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._seen: tuple[float, datetime] | None = None  # this process's newest observation not yet written
        self._shared: tuple[float, datetime] | None = None  # the newest observation of the deployment
        self._next_sync = 0.0
        self._warned = False
        self.round_trips = 0  # database round trips so far (the cost of sharing)

    def observe(self, app_usage: Mapping[str, Any]) -> None:
        """Record an ``X-App-Usage`` value from a response (written at the next sync)."""
        if not app_usage:
            return
        seen = (app_usage_pct(app_usage), self._now())
        with self._lock:
            self._seen = seen
            if self._shared is None or self._shared[1] <= seen[1]:
                self._shared = seen

    def usage_pct(self) -> float:
        """The app's usage as the deployment knows it now (synchronised at most once per interval)."""
        with self._lock:
            if self._monotonic() >= self._next_sync:
                self._sync()
                self._next_sync = self._monotonic() + self.sync_interval_s
            if self._shared is None:
                return 0.0
            pct, at = self._shared
            if (self._now() - at).total_seconds() > self.stale_after_s:
                return 0.0  # nobody has called for a while: the rolling window has moved on
            return pct

    def flush(self) -> None:
        """Write this process's newest observation now (at the end of a batch, so the next run starts from it)."""
        with self._lock:
            self._sync()
            self._next_sync = self._monotonic() + self.sync_interval_s

    def delay_s(self) -> float:
        """How long the next call should wait for the app-wide budget (0 below 80 %)."""
        return slowdown_delay_s(self.usage_pct())

    def _sync(self) -> None:
        seen = self._seen
        params = {"scope": self.scope, "write": seen is not None, "pct": seen[0] if seen else 0.0,
                  "at": seen[1] if seen else self._now(), "who": self._who}
        try:
            with self._engine.begin() as conn:
                rows = conn.execute(_SYNC, params).all()
            self.round_trips += 1
        except sa.exc.SQLAlchemyError as exc:
            if not self._warned:
                self._warned = True
                LOGGER.warning(
                    "The shared Graph API budget (table instagram.api_budget) could not be read or written "
                    "(%s); this run paces itself by the usage headers it sees alone. Check that the analytics "
                    "database is reachable and migrated (ig-analytics db status).", type(exc).__name__,
                    # to the log file only: when the database is down, the run's own error says so on the terminal
                    extra={"log_only": True})
            return
        self._seen = None
        for pct, at in rows:
            if self._shared is None or self._shared[1] < at:
                self._shared = (float(pct), at)
