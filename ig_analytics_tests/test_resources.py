"""The resources read the settings once, when a run sets them up (and migrate then), and a database URL given to
them never shows in the UI: only the name of the variable that holds it."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from ig_analytics.defs.resources import AnalyticsDatabase, GraphApi
from ig_analytics.storage import db

MIGRATIONS = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "ig_analytics" / "storage" / "migrations")
                    .glob("*.sql"))


def _ui_values(resource: dg.ConfigurableResource) -> dict:
    """The configured values the UI's resource page shows (Dagster serializes the resource's config defaults)."""
    return json.loads(resource.get_resource_definition().config_schema.default_value_as_json_str)


def test_a_database_url_given_as_env_var_shows_only_its_name(pg_url, monkeypatch):
    from ig_analytics.definitions import defs

    monkeypatch.setenv("IG_TEST_ANALYTICS_URL", pg_url)
    shown = _ui_values(AnalyticsDatabase(database_url=dg.EnvVar("IG_TEST_ANALYTICS_URL")))
    assert shown["database_url"] == {"env": "IG_TEST_ANALYTICS_URL"}
    for resource in (*defs.resources.values(), AnalyticsDatabase(database_url=dg.EnvVar("IG_TEST_ANALYTICS_URL"))):
        text = json.dumps(_ui_values(resource))
        assert pg_url not in text and "postgresql" not in text, text


def test_setup_migrates_once_and_the_run_keeps_its_settings(pg_url, ig_home, monkeypatch):
    engine = db.get_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS instagram CASCADE"))
    monkeypatch.setenv("IG_TEST_ANALYTICS_URL", pg_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/unused")  # the field wins over it
    resource = AnalyticsDatabase(database_url=dg.EnvVar("IG_TEST_ANALYTICS_URL"))
    with dg.build_resources({"database": resource}) as resources:
        with engine.connect() as conn:  # migrated by the set-up, before any call of the resource
            applied = conn.execute(sa.text("SELECT name FROM instagram.schema_migrations ORDER BY version")).scalars()
            assert list(applied) == MIGRATIONS
        monkeypatch.setenv("IG_TEST_ANALYTICS_URL", "postgresql://nobody@127.0.0.1:9/changed")
        database = resources.database
        assert database.engine().url.render_as_string(hide_password=False) == db.normalize_url(pg_url)
        assert database.settings().database_url == pg_url  # read once, at set-up
        with database.engine().connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM instagram.accounts")).scalar_one() == 0


def test_graph_api_fields_override_the_environment_and_are_read_at_setup(ig_home, monkeypatch):
    monkeypatch.setenv("IG_GRAPH_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("IG_GRAPH_API_VERSION", "v24.0")
    with dg.build_resources({"graph_api": GraphApi(api_version="v25.0"), "database": AnalyticsDatabase()}) as resources:
        monkeypatch.setenv("IG_GRAPH_API_URL", "http://127.0.0.1:10")
        client = resources.graph_api.client(resources.database)
    assert client.version == "v25.0"
    assert client.base_url.startswith("http://127.0.0.1:9")


def test_the_app_budget_is_shared_through_the_runs_database_not_database_url(pg_url, ig_home, monkeypatch):
    """A ``database_url`` set on the database resource holds the app-wide Graph API budget too: the runs of a
    deployment share it there, whatever DATABASE_URL says in one process."""
    monkeypatch.setenv("IG_TEST_ANALYTICS_URL", pg_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/unused")
    database = AnalyticsDatabase(database_url=dg.EnvVar("IG_TEST_ANALYTICS_URL"))
    with dg.build_resources({"graph_api": GraphApi(), "database": database}) as resources:
        client = resources.graph_api.client(resources.database)
    budget_url = client.app_budget._engine.url.render_as_string(hide_password=False)
    assert budget_url == db.normalize_url(pg_url)


def test_a_database_url_set_on_the_database_resource_reaches_the_io_manager_and_the_inputs(
        pg_server, pg_url, engine, ig_home, monkeypatch):
    """definitions.py binds one `database` resource by key: the IO-managed assets read their inputs from, and write
    their rows to, the database a run's config names, not DATABASE_URL."""
    from datetime import datetime, timedelta, timezone

    from ig_analytics.defs import analytics_assets
    from ig_analytics.definitions import defs
    from ig_analytics_tests.analytics_data import add_account, add_media

    admin = sa.create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS ig_other_analytics WITH (FORCE)"))
        conn.execute(sa.text("CREATE DATABASE ig_other_analytics"))
    other_url = pg_server.url("ig_other_analytics")
    other = db.get_engine(other_url)
    db.migrate(other)
    now = datetime.now(timezone.utc)
    with other.begin() as conn:  # a post with engagement, only in the other database
        add_account(conn, "777")
        add_media(conn, [{"media_id": "p1", "ig_user_id": "777", "published_at": now - timedelta(hours=3)}])
        conn.execute(sa.text("INSERT INTO instagram.media_engagement (media_id, ig_user_id, captured_at, engagement,"
                             " reach, published_at, computed_at) VALUES ('p1', '777', :c, 12, 100, :p, :c)"),
                     {"c": now - timedelta(hours=1), "p": now - timedelta(hours=3)})
    monkeypatch.setenv("IG_TEST_OTHER_URL", other_url)
    result = dg.materialize([analytics_assets.account_engagement_daily], resources=defs.resources,
                            run_config={"resources": {"database": {"config": {
                                "database_url": {"env": "IG_TEST_OTHER_URL"}}}}})
    assert result.success
    with other.connect() as conn:
        assert conn.execute(sa.text("SELECT ig_user_id, engagement FROM instagram.account_engagement_daily")).all() == [
            ("777", 12)]
    with engine.connect() as conn:  # DATABASE_URL's database: untouched
        assert conn.execute(sa.text("SELECT count(*) FROM instagram.account_engagement_daily")).scalar() == 0
    other.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS ig_other_analytics WITH (FORCE)"))
    admin.dispose()
