"""The product's one clock (ig_analytics/clock.py): a sync run at five past midnight UTC, with the product's clock
and the sandbox's set there instead of waiting for the wall clock, labels its capture with the new day's first
hour, stores the snapshots under it and finishes like any other sync."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.cli.sync_command import run_sync
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import register

pytestmark = pytest.mark.slow

MIDNIGHT = datetime(2026, 11, 20, 0, 5, tzinfo=timezone.utc)  # a partition of the fallback starts (2026-11-01 on)


def test_frozen_and_restored():
    with clock.frozen(MIDNIGHT):
        assert clock.now() == MIDNIGHT
    assert abs((clock.now() - datetime.now(timezone.utc)).total_seconds()) < 60
    with pytest.raises(ValueError):
        clock.frozen(datetime(2026, 1, 1))


def test_migrations_are_stamped_by_the_products_clock_where_the_install_marker_starts_partitions(engine):
    """PostgreSQL keeps its own time; the first migration's time becomes the install marker (cli/runtime.py), so
    it is the product's, like the partitions the webserver lists from it."""
    from ig_analytics.storage import db

    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA instagram CASCADE"))
    with clock.frozen(MIDNIGHT):
        db.migrate(engine)
    with engine.connect() as conn:
        stamps = set(conn.execute(sa.text("SELECT applied_at FROM instagram.schema_migrations")).scalars())
    assert stamps == {MIDNIGHT}


def test_a_sync_at_five_past_midnight_labels_the_new_days_first_hour(engine, ig_home, monkeypatch):
    world = SandboxWorld.demo(now=MIDNIGHT)  # the sandbox's clock too
    for name in ("DAGSTER_HOME", "IG_ANALYTICS_DAGSTER_PG_URL"):  # run_sync sets them: monkeypatch undoes it
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        account = world.accounts[0].ig_user_id
        with clock.frozen(MIDNIGHT):
            report = run_sync([account], "full", None, None)
    assert report.exit_code == 0, [line.render() for line in report.lines] + report.run_errors
    with engine.connect() as conn:
        runs = dict(conn.execute(sa.text("SELECT sync_type, partition_key FROM instagram.sync_runs"
                                         " WHERE sync_type IN ('media', 'demographics')")).all())
        captured = conn.execute(sa.text("SELECT DISTINCT captured_at FROM instagram.media_insights_snapshots")).scalars()
        captured = list(captured)
    assert runs["media"] == "2026-11-20-00:00"  # the hour in progress on the product's clock, not the wall's
    assert runs["demographics"] == "2026-11-19"  # the day that just ended
    assert captured == [datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)]
