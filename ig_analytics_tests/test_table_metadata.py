"""One source of truth for the tables (ig_analytics/storage/tables.py): it matches the migrated database column
for column, the data dictionary is generated from it, and every table asset carries it; the install marker
fixes where the partitions start, identically in every process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics import install_marker
from ig_analytics.storage import tables
from ig_analytics.cli.sync_command import full_weeks

TABLE_ASSETS = {"accounts": "accounts", "account_insights_daily": "account_insights_daily", "media": "media",
                "media_insights_snapshots": "media_insights_snapshots",
                "audience_demographics": "audience_demographics", "media_engagement": "media_engagement",
                "trending_posts": "trending_posts", "account_engagement_daily": "account_engagement_daily",
                "best_posting_times": "best_posting_times", "performance_reports": "performance_reports",
                "weekly_performance_reports": "performance_reports"}


def _db_columns(engine) -> dict[str, dict[str, str]]:
    names = {"timestamp with time zone": "timestamptz"}
    out: dict[str, dict[str, str]] = {}
    with engine.connect() as conn:
        for table, column, data_type, udt in conn.execute(sa.text(
                "SELECT c.table_name, c.column_name, c.data_type, c.udt_name FROM information_schema.columns c"
                " JOIN information_schema.tables t USING (table_schema, table_name)"
                " WHERE c.table_schema = 'instagram' AND t.table_type IN ('BASE TABLE', 'VIEW')")):
            out.setdefault(table, {})[column] = udt.lstrip("_") + "[]" if data_type == "ARRAY" else names.get(
                data_type, data_type)
    return out


def _db_keys(engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT tc.table_name, k.column_name FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)"
            " WHERE tc.table_schema = 'instagram' AND tc.constraint_type = 'PRIMARY KEY'")).all()
    keys: dict[str, set[str]] = {}
    for table, column in rows:
        keys.setdefault(table, set()).add(column)
    return keys


def test_declared_tables_are_the_migrated_ones_column_for_column(engine):
    actual, keys = _db_columns(engine), _db_keys(engine)
    for name, table in tables.TABLES.items():
        assert {c.name: c.type for c in table.columns} == actual[name], name
        assert {c.name for c in table.columns if c.key} == keys.get(name, set()), name
        assert all(c.description.strip() for c in table.columns) and table.description.strip(), name
        assert table.kind in ("table", "view"), name
    assert set(actual) == set(tables.TABLES)  # every table and view of the schema is declared


def test_every_table_view_and_column_carries_its_declared_description(engine):
    """What psql's \\d+, DBeaver or Metabase show, read back from PostgreSQL's catalogue."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.relname, c.relkind, a.attname, obj_description(c.oid, 'pg_class'), col_description(c.oid, a.attnum)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = 'instagram' AND c.relkind IN ('r', 'v')")).all()
    seen = {}
    for relation, kind, column, relation_text, column_text in rows:
        table = tables.TABLES[relation]
        assert kind == {"table": "r", "view": "v"}[table.kind], relation
        assert relation_text == f"{table.description} ({table.grain})", relation
        assert column_text == next(c.description for c in table.columns if c.name == column), (relation, column)
        seen.setdefault(relation, set()).add(column)
    assert seen == {name: {c.name for c in t.columns} for name, t in tables.TABLES.items()}


def test_descriptions_are_written_once_and_follow_the_declaration(engine, monkeypatch):
    from ig_analytics.storage import comments, db

    with engine.begin() as conn:
        assert comments.comment_statements(conn) == []  # the migration applied them all
    changed = tables.Table("media", tables.TABLES["media"].grain, tables.TABLES["media"].columns, "Posts (renamed)")
    monkeypatch.setitem(tables.TABLES, "media", changed)
    db.migrate(engine)  # no new migration: the changed description is applied all the same
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT obj_description('instagram.media'::regclass, 'pg_class')")).scalar() == (
            f"Posts (renamed) ({changed.grain})")


def test_the_data_dictionary_lists_exactly_the_declared_columns():
    text = tables.DATA_DICTIONARY.read_text()
    assert tables.render_dictionary(text) == text, "run: python -m ig_analytics.storage.tables --write"
    blocks = re.findall(r"<!-- columns: (\w+) -->\n(.*?)<!-- /columns -->", text, re.S)
    assert sorted(name for name, _ in blocks) == sorted(tables.TABLES)
    for name, block in blocks:  # read back independently of the renderer: name and type of every row
        rows = [line.strip("|").split("|") for line in block.strip().splitlines()[2:]]
        documented = [(cells[0].strip(), cells[1].strip().removesuffix(" PK")) for cells in rows]
        assert documented == [(c.name, c.type) for c in tables.TABLES[name].columns], name


def test_every_table_asset_carries_owner_table_name_schema_and_freshness():
    from ig_analytics.definitions import defs

    specs = {spec.key.to_user_string(): spec for assets_def in defs.assets for spec in assets_def.specs}
    assert set(TABLE_ASSETS) <= set(specs)
    for key, table in TABLE_ASSETS.items():
        spec = specs[key]
        assert spec.owners == ["team:social-analytics"], key
        assert spec.metadata["dagster/table_name"] == f"instagram.{table}", key
        schema = spec.metadata["dagster/column_schema"]
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (c.name, c.type, c.description) for c in tables.TABLES[table].columns], key
        assert spec.description and "the story" not in spec.description, key
        assert (spec.freshness_policy is None) == (key == "accounts"), key


def test_outcome_table_stays_one_markdown_row_per_account():
    from ig_analytics.defs.account_runs import outcomes_markdown
    from ig_analytics.ingestion.outcome import AccountOutcome

    outcome = AccountOutcome("1784", "account", "2026-11-20", datetime.now(timezone.utc))
    outcome.status, outcome.error = "failed", "Graph API said | no\nsecond line"
    rows = outcomes_markdown([outcome]).splitlines()
    assert len(rows) == 3 and rows[2].count(" | ") == 4 and "\\| no second line" in rows[2]


# ---- install marker ---------------------------------------------------------------------------------------


def test_marker_is_written_once_and_fixes_the_starts(tmp_path):
    first = install_marker.ensure_marker(tmp_path, datetime(2026, 11, 30, 15, 42, tzinfo=timezone.utc))
    later = install_marker.ensure_marker(tmp_path, datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc), 10)
    assert first == later == {"installed_at": "2026-11-30T15:42:00+00:00", "daily_start": "2026-09-01",
                              "hourly_start": "2026-11-30-15:00"}
    assert [p.name for p in tmp_path.iterdir()] == ["install.json"]
    starts = install_marker.current_starts({"IG_ANALYTICS_HOME": str(tmp_path)})
    assert (starts.daily, starts.hourly, starts.weekly, starts.snapshots) == (
        "2026-09-01", "2026-11-30-15:00", "2026-09-07", "2026-11-29")
    overridden = install_marker.current_starts({"IG_ANALYTICS_HOME": str(tmp_path),
                                                "IG_ANALYTICS_DAILY_START": "2025-01-01"})
    assert (overridden.daily, overridden.hourly) == ("2025-01-01", "2026-11-30-15:00")
    assert install_marker.current_starts({}).daily == install_marker.FALLBACK_DAILY_START


def test_a_broken_marker_is_an_error_that_says_what_to_do(tmp_path):
    install_marker.marker_path(tmp_path).write_text("{not json")
    with pytest.raises(RuntimeError, match="restore it from a backup"):
        install_marker.current_starts({"IG_ANALYTICS_HOME": str(tmp_path)})


def test_every_process_of_a_home_builds_the_same_partitions(tmp_path):
    install_marker.ensure_marker(tmp_path, datetime(2026, 11, 2, 9, 5, tzinfo=timezone.utc), 30)
    probe = ("import json; from ig_analytics.defs import partitions as p;"
             "print(json.dumps([p.daily_partitions.get_first_partition_key(), p.hourly_partitions.get_first_partition_key(),"
             " p.weekly_partitions.get_first_partition_key()]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IG_ANALYTICS_")}
    env["IG_ANALYTICS_HOME"] = str(tmp_path)
    answers = [json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                         check=True, timeout=120).stdout) for _ in range(2)]
    assert answers[0] == answers[1] == ["2026-10-03", "2026-11-02-09:00", "2026-10-05"]


def test_full_weeks_are_the_mondays_of_complete_weeks():
    assert full_weeks(date(2026, 10, 31), date(2026, 11, 29)) == ["2026-11-02", "2026-11-09", "2026-11-16",
                                                                  "2026-11-23"]
    assert full_weeks(date(2026, 11, 24), date(2026, 11, 29)) == []


def test_weekly_partition_keys_are_mondays():
    from ig_analytics.defs.partitions import weekly_partitions

    assert date.fromisoformat(weekly_partitions.get_first_partition_key()).weekday() == 0
    assert isinstance(weekly_partitions, dg.WeeklyPartitionsDefinition)


def test_every_check_says_what_it_checks():
    from ig_analytics.definitions import defs

    specs = [spec for assets_def in defs.assets for spec in getattr(assets_def, "check_specs", [])]
    specs += [spec for checks_def in defs.asset_checks for spec in checks_def.check_specs]
    assert len(specs) > 20
    assert [str(s.key) for s in specs if not (s.description or "").strip()] == []
