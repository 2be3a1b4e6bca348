"""`ig-analytics export`: a declared table or view as CSV, streamed by COPY, filtered by account and days; the
same input rules as the other commands (exit 2 with one line); never the encrypted token."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from ig_analytics.cli import export_command as ex
from ig_analytics_tests.analytics_data import add_account, add_account_days, add_media, ts
from ig_analytics_tests.new_user import run_cli

pytestmark = pytest.mark.slow  # the CLI as a subprocess


@pytest.fixture()
def data(engine, ig_home):
    with engine.begin() as conn:
        add_account(conn, "101", username="alpha")
        add_account(conn, "202", username="beta")
        add_media(conn, [{"media_id": "m1", "ig_user_id": "101", "published_at": ts(2026, 11, 1, 23, 30),
                          "caption": 'quote " comma , newline\nend'},
                         {"media_id": "m2", "ig_user_id": "101", "published_at": ts(2026, 11, 2, 0, 30)},
                         {"media_id": "m3", "ig_user_id": "202", "published_at": ts(2026, 11, 3, 12)}])
        add_account_days(conn, "101", [{"date": date(2026, 11, d), "reach": d * 10} for d in (1, 2, 3)])
    return engine


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_table_is_exported_whole_with_a_header_and_csv_quoting(data):
    got = run_cli(["export", "media", "--format", "csv"])
    assert got.returncode == 0, got.stderr
    rows = _csv(got.stdout)
    assert [r["media_id"] for r in rows] == ["m1", "m2", "m3"]  # ordered by the primary key
    assert rows[0]["caption"] == 'quote " comma , newline\nend'  # read back by a CSV reader, not by us
    assert rows[0]["published_at"] == "2026-11-01 23:30:00+00"  # UTC, whatever the server's zone


def test_account_and_days_filter_on_the_relations_time_column(data):
    got = run_cli(["export", "media", "--account", "101", "--since", "2026-11-02", "--until", "2026-11-02",
                   "--format", "csv"])
    assert got.returncode == 0, got.stderr
    assert [r["media_id"] for r in _csv(got.stdout)] == ["m2"]  # 00:30 UTC on the 2nd; m1 is the 1st, m3 beta's
    days = _csv(run_cli(["export", "account_insights_daily", "--until", "2026-11-02", "--format", "csv"]).stdout)
    assert [(r["date"], r["reach"]) for r in days] == [("2026-11-01", "10"), ("2026-11-02", "20")]


def test_the_encrypted_token_is_never_exported(data):
    got = run_cli(["export", "accounts", "--format", "csv"])
    assert got.returncode == 0, got.stderr
    header = got.stdout.splitlines()[0].split(",")
    assert "token_ciphertext" not in header and "ig_user_id" in header


def test_an_output_file_is_complete_or_absent(data, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "media.csv"
    assert run_cli(["export", "media", "--format", "csv", "--output", str(target)]).returncode == 0
    assert [r["media_id"] for r in _csv(target.read_text())] == ["m1", "m2", "m3"]
    assert [p.name for p in folder.iterdir()] == ["media.csv"]  # no temporary file left behind
    failed = run_cli(["export", "media", "--format", "csv", "--output", str(folder / "no" / "such.csv")])
    assert failed.returncode == 2 and "does not exist" in failed.stderr


@pytest.mark.parametrize("args, says", [
    (["export", "pg_authid", "--format", "csv"], "no table or view instagram.pg_authid"),
    (["export", "media; DROP TABLE x", "--format", "csv"], "no table or view"),
    (["export", "media"], "--format"),
    (["export", "media", "--format", "xlsx"], "xlsx"),
    (["export", "media", "--format", "csv", "--account", "12ab"], "--account"),
    (["export", "media", "--format", "csv", "--account", "999"], "999 is not registered"),
    (["export", "media", "--format", "csv", "--since", "yesterday"], "--since must be a date"),
    (["export", "media", "--format", "csv", "--since", "2026-11-03", "--until", "2026-11-01"], "is after"),
    (["export", "schema_migrations", "--format", "csv", "--account", "101"], "no ig_user_id column"),
])
def test_usage_mistakes_exit_2_with_one_line(data, args, says):
    got = run_cli(args)
    lines = [line for line in got.stderr.splitlines() if line.strip()]
    assert got.returncode == 2 and len(lines) == 1 and says in lines[0], (got.returncode, got.stderr)
    assert got.stdout == ""


def test_every_declared_relation_has_a_query_and_only_declared_ones():
    for name in ex.TABLES:
        query = ex.build_query(name, None, None, None)
        assert query.sql.startswith("SELECT ") and f'instagram."{name}"' in query.sql
    with pytest.raises(ex.ExportUsageError):
        ex.build_query("../../etc", None, None, None)
