"""The public contract (shared/docs/product.md, beside the checkout), checked on the product as a new user gets it: no
DATABASE_URL, a fresh IG_ANALYTICS_HOME, the embedded PostgreSQL, the `ig-analytics` command as a subprocess,
the sandbox Graph API over HTTP. The contract itself is data (contract_spec.py): one test case per table,
column, flag, report field and setting; items still being built are strict xfails (contract_spec.PENDING).

Expected values come from the sandbox (its raw API answers and its request log), never from our own code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
import requests
import sqlalchemy as sa

from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests import contract_spec as spec
from ig_analytics_tests.new_user import NewUser

pytestmark = pytest.mark.slow

BAD = "17841400000000099"  # registered with a token the API rejects


ITEMS: set[str] = set()  # every contract item that has a test case


def case(item: str):
    """A parametrized case named after its contract item; a strict xfail while the item is pending."""
    ITEMS.add(item)
    marks = [pytest.mark.xfail(strict=True, reason=spec.PENDING[item])] if item in spec.PENDING else []
    return pytest.param(item, marks=marks, id=item)


GRAIN_TABLES = [t for t, (kind, _, _) in spec.TABLES.items() if kind == "table" and t != "sync_runs"]
HOURLY_GRAIN = {"captured_at", "as_of"}  # grain columns that take the hour of the run
# Tables of what the real-time sandbox keeps adding between the two syncs (new comments, dated when written, not
# when they show): a second sync rightly stores them. Stored-once-each is test_comments.py's, on a frozen clock.
LIVE_TABLES = {"media_comments"}


@dataclass
class Install:
    user: NewUser
    world: SandboxWorld
    sandbox: SandboxServer
    since: object
    until: object
    results: dict = field(default_factory=dict)
    first_sync_log: list = field(default_factory=list)
    after_sync: list = field(default_factory=list)  # (UTC hour, {table: rows}) after each of the two syncs

    def count_rows(self) -> None:
        counts = {}
        for table in GRAIN_TABLES:
            if self.rows("SELECT to_regclass(:t) IS NOT NULL", t=f"instagram.{table}")[0][0]:
                counts[table] = self.rows(f"SELECT count(*) FROM instagram.{table}")[0][0]
        self.after_sync.append((datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0), counts))

    @property
    def engine(self):
        return self.user.engine

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]


@pytest.fixture(scope="module")
def install():
    """A new user's first day: db start, three accounts, two identical syncs, a failing account, disable,
    report, status. Tests only read what this left behind."""
    world = SandboxWorld.demo()  # real time: the CLI reads the wall clock
    today = datetime.now(timezone.utc).date()
    with pytest.MonkeyPatch.context() as mp, SandboxServer(world, port=0) as sandbox:
        user = NewUser(mp, "contract", IG_GRAPH_API_URL=sandbox.base_url)
        try:
            # two days back: yesterday's values are final only after 07:00 UTC (08:00 in winter)
            got = Install(user, world, sandbox, today - timedelta(days=6), today - timedelta(days=2))
            r = got.results
            r["db start"] = user.ok("db", "start")
            for a in world.accounts:
                r[f"add {a.ig_user_id}"] = user.ok("accounts", "add", "--ig-user-id", a.ig_user_id, "--token", "-",
                                                   "--timezone", a.timezone, input=a.token + "\n")
            # one competitor that exists and one that does not: the sync captures the first, records the second
            r["competitors add"] = user.ok("competitors", "add", "--account", world.accounts[0].ig_user_id,
                                           "harbor_bakehouse", "nobody_by_this_name")
            sync = ("sync", "--since", got.since.isoformat(), "--until", got.until.isoformat())
            sandbox.reset_log()
            r["sync"] = user.run(*sync)
            got.first_sync_log = list(sandbox.request_log)
            got.count_rows()
            r["sync again"] = user.run(*sync)
            got.count_rows()
            r["add bad"] = user.ok("accounts", "add", "--ig-user-id", BAD, "--token", "-", "--no-verify",
                                   input="EAArejected0token\n")
            bad = ("sync", "--account", BAD, "--type", "account", "--since", got.since.isoformat(),
                   "--until", got.until.isoformat())
            r["sync bad"] = user.run(*bad, IG_ANALYTICS_LOG_FORMAT="json")
            r["sync bad quietly"] = user.run(*bad, IG_ANALYTICS_LOG_FORMAT="json", IG_ANALYTICS_LOG_LEVEL="ERROR")
            r["disable"] = user.run("accounts", "disable", BAD)
            r["list"] = user.run("accounts", "list")
            r["status"] = user.run("status")
            r["report"] = user.run("report", "--account", world.accounts[0].ig_user_id, "--days", "5")
            yield got
        finally:
            user.destroy()


def _columns(install: Install, table: str) -> dict[str, str]:
    return dict(install.rows("SELECT column_name, data_type FROM information_schema.columns"
                             " WHERE table_schema = 'instagram' AND table_name = :t", t=table))


def _primary_key(install: Install, table: str) -> set[str]:
    return {r[0] for r in install.rows(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indisprimary AND i.indrelid = CAST(:t AS regclass)", t=f"instagram.{table}")}


# ---------------------------------------------------------------------------------------------- tables
@pytest.mark.parametrize("item", [case(f"table {t}") for t in spec.TABLES])
def test_table_exists(install, item):
    table = item.split(" ", 1)[1]
    kind = {"BASE TABLE": "table", "VIEW": "view"}
    found = install.rows("SELECT table_type FROM information_schema.tables WHERE table_schema = 'instagram'"
                         " AND table_name = :t", t=table)
    assert found, f"instagram.{table} is missing"
    assert kind[found[0][0]] == spec.TABLES[table][0]


@pytest.mark.parametrize("item", [case(f"{t}.{c}") for t, (_, _, cols) in spec.TABLES.items() for c in cols])
def test_column_exists_with_its_type(install, item):
    table, column = item.split(".")
    columns = _columns(install, table)
    assert column in columns, f"instagram.{table}.{column} is missing (has: {sorted(columns)})"
    wanted = spec.TABLES[table][2][column]
    if wanted is not spec.ANY:
        assert columns[column] in ((wanted,) if isinstance(wanted, str) else wanted), (
            f"instagram.{table}.{column} is {columns[column]}, the contract says {wanted}")


@pytest.mark.parametrize("item", [case(f"primary key {t}") for t, (kind, _, _) in spec.TABLES.items() if kind == "table"])
def test_primary_key_covers_the_grain(install, item):
    table = item.rsplit(" ", 1)[1]
    grain = set(spec.TABLES[table][1])
    key = _primary_key(install, table)
    assert key, f"instagram.{table} has no primary key"
    assert grain <= key, f"instagram.{table}: primary key {sorted(key)} does not cover one row per {sorted(grain)}"


def test_every_table_of_the_schema_has_a_primary_key(install):
    tables = [r[0] for r in install.rows("SELECT table_name FROM information_schema.tables"
                                         " WHERE table_schema = 'instagram' AND table_type = 'BASE TABLE'")]
    assert len(tables) >= 10
    assert [t for t in tables if not _primary_key(install, t)] == []


def test_every_timestamp_is_timestamptz(install):
    """The convention covers every column of the schema, documented or not."""
    naive = install.rows("SELECT table_name, column_name FROM information_schema.columns"
                         " WHERE table_schema = 'instagram' AND data_type = 'timestamp without time zone'")
    assert naive == [("posts", "published_local")]  # the contract's one wall-clock time: the account's local clock


@pytest.mark.parametrize("table", GRAIN_TABLES)
def test_a_second_identical_sync_adds_no_row(install, table):
    """The primary key rules out duplicate keys; what can go wrong is a second run adding rows under new keys
    (a new capture time, a new evaluation). Within one hour nothing may be added; across an hour boundary only
    the tables whose grain holds the hour may grow."""
    (first_hour, first), (second_hour, second) = install.after_sync
    if table in LIVE_TABLES:
        pytest.skip(f"instagram.{table} follows the live sandbox, which adds rows between the two syncs")
    if table not in second:
        pytest.skip(f"instagram.{table} does not exist yet (its own case says so)")
    if first_hour != second_hour and set(spec.TABLES[table][1]) & HOURLY_GRAIN:
        pytest.skip("the two syncs ran in different hours: a new hour's capture is a new row by design")
    assert second[table] == first[table], (table, first[table], second[table])


@pytest.mark.parametrize("item", [case(f"enum {t}.{c}") for t, c in spec.ENUMS])
def test_documented_values_only(install, item):
    table, column = item.split(" ", 1)[1].split(".")
    assert column in _columns(install, table), f"instagram.{table}.{column} is missing"
    seen = {r[0] for r in install.rows(f'SELECT DISTINCT "{column}" FROM instagram.{table}')}
    assert seen, f"no rows in instagram.{table} to check"
    assert seen <= spec.ENUMS[(table, column)], seen - spec.ENUMS[(table, column)]


# ---------------------------------------------------------------------------------------------- commands
FLAG_CASES = [case(cmd) for cmd, flags in spec.COMMANDS.items() if not flags] + [
    case(f"{cmd} {flag}") for cmd, flags in spec.COMMANDS.items() for flag in flags]


@pytest.mark.parametrize("item", FLAG_CASES)
def test_command_and_flag_exist(install, item):
    words = item.split()
    command = [w for w in words if not w.startswith("--")]
    flag = next((w for w in words if w.startswith("--")), None)
    result = install.user.run(*command, "--help")
    assert result.returncode == 0, f"`ig-analytics {' '.join(command)} --help` exited {result.returncode}: {result.stderr}"
    if flag:
        assert flag in result.stdout, f"`ig-analytics {' '.join(command)}` has no {flag}:\n{result.stdout}"


USAGE_ERRORS = [
    ("sync", "--type", "weekly"),
    ("sync", "--since", "2026-13-01"),
    ("sync", "--since", "2026-02-01", "--until", "2026-01-01"),
    ("sync", "--until", "2999-01-01"),
    ("report",),
    ("report", "--account", "1", "--days", "0"),
    ("accounts", "add", "--token", "x"),
    ("accounts", "frobnicate"),
    ("no-such-command",),
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_2_with_one_line(install, args):
    result = install.user.run(*args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_sync_exits_0_with_one_line_per_account(install):
    for name in ("sync", "sync again"):
        result = install.results[name]
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 3, result.stdout
        for a in install.world.accounts:
            assert sum(a.ig_user_id in line and line.startswith("OK") for line in lines) == 1, (a.ig_user_id, lines)


def test_sync_exits_1_when_an_account_fails_and_says_why(install):
    result = install.results["sync bad"]
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if BAD in line]
    assert line.startswith("FAIL") and "accounts add" in line  # the reason, and what to do


def test_accounts_disable_keeps_the_history(install):
    assert install.results["disable"].returncode == 0, install.results["disable"].stderr
    assert install.rows("SELECT status FROM instagram.accounts WHERE ig_user_id = :i", i=BAD) == [("disabled",)]
    assert install.rows("SELECT count(*) > 0 FROM instagram.sync_runs WHERE ig_user_id = :i", i=BAD) == [(True,)]
    [line] = [line for line in install.results["list"].stdout.splitlines() if BAD in line]
    assert "disabled" in line


def test_no_command_prints_a_token(install):
    printed = "\n".join(r.stdout + r.stderr for r in install.results.values())
    for a in install.world.accounts:
        assert a.token not in printed
    assert "EAArejected0token" not in printed


def test_report_and_status_run(install):
    report, status = install.results["report"], install.results["status"]
    assert report.returncode == 0 and status.returncode == 0, report.stderr + status.stderr
    html = report.stdout.strip().splitlines()[-1].split("HTML report: ", 1)[1]
    assert html.startswith(str(install.user.home)) and open(html).read().lstrip().lower().startswith("<!doctype html")
    for a in install.world.accounts:
        assert a.ig_user_id in status.stdout


@pytest.mark.parametrize("item", [case(f"report.{f}") for f in spec.REPORT_FIELDS])
def test_report_json_fields(install, item):
    path = item.split(".", 1)[1].split(".")
    reports = install.rows("SELECT ig_user_id, report FROM instagram.performance_reports")
    assert {r[0] for r in reports} >= {a.ig_user_id for a in install.world.accounts}
    for ig_user_id, report in reports:
        node = report
        for key in path:
            assert isinstance(node, dict) and key in node, f"report of {ig_user_id} lacks {'.'.join(path)}"
            node = node[key]


# ---------------------------------------------------------------------------------------------- data rules
def _raw_daily(install: Install, account, metric: str):
    since = datetime.combine(install.since, datetime.min.time(), timezone.utc)
    until = datetime.combine(install.until + timedelta(days=1), datetime.min.time(), timezone.utc)
    return requests.get(f"{install.sandbox.base_url}/v25.0/{account.ig_user_id}/insights", timeout=30, params={
        "metric": metric, "period": "day", "since": int(since.timestamp()), "until": int(until.timestamp()),
        "access_token": account.token})


def test_date_is_the_day_the_value_covers(install):
    """end_time 2017-05-05T07:00:00+0000 -> date 2017-05-04, checked against the API's own answer."""
    for account in install.world.accounts:
        values = _raw_daily(install, account, "reach").json()["data"][0]["values"]
        expected = {datetime.strptime(v["end_time"], "%Y-%m-%dT%H:%M:%S%z").date() - timedelta(days=1): v["value"]
                    for v in values}
        assert sorted(expected) == [install.since + timedelta(days=i) for i in range(5)]
        stored = dict(install.rows("SELECT date, reach FROM instagram.account_insights_daily WHERE ig_user_id = :i",
                                   i=account.ig_user_id))
        assert stored == expected


@pytest.mark.parametrize("table, column", [("account_insights_daily", "impressions"),
                                           ("account_insights_daily", "profile_views"),
                                           ("media_insights_snapshots", "impressions")])
def test_a_value_the_api_did_not_report_is_null_not_0(install, table, column):
    if table == "account_insights_daily":  # the API's own answer: the metric is not served on this version
        reply = _raw_daily(install, install.world.accounts[0], column)
        assert reply.status_code == 400 and "no longer supported" in reply.json()["error"]["message"]
    counts = install.rows(f"SELECT count(*), count({column}) FROM instagram.{table}")
    assert counts[0][0] > 0 and counts[0][1] == 0, counts


def test_counts_are_the_apis_numbers(install):
    """follower_count (new followers that day) as the API reports it, including its zeros."""
    account = install.world.accounts[0]
    values = _raw_daily(install, account, "follower_count").json()["data"][0]["values"]
    expected = {datetime.strptime(v["end_time"], "%Y-%m-%dT%H:%M:%S%z").date() - timedelta(days=1): v["value"]
                for v in values}
    stored = dict(install.rows("SELECT date, follower_count FROM instagram.account_insights_daily"
                               " WHERE ig_user_id = :i", i=account.ig_user_id))
    assert stored == expected


# ---------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("item", [case("setting DATABASE_URL")])
def test_setting_database_url_unset_means_the_embedded_server_in_the_home(install, item):
    status = install.user.run("db", "status")
    assert status.returncode == 0 and "running" in status.stdout
    assert str(install.user.cluster_root) in status.stdout
    refused = install.user.run("db", "start", DATABASE_URL="postgresql://nobody@127.0.0.1:9/none")
    assert refused.returncode == 1 and "DATABASE_URL" in refused.stderr


@pytest.mark.parametrize("item", [case("setting IG_ANALYTICS_HOME")])
def test_setting_ig_analytics_home_holds_the_local_state(install, item):
    home = install.user.home
    assert (home / "token.key").is_file() and (home / "dagster").is_dir() and (home / "reports").is_dir()


@pytest.mark.parametrize("item", [case("setting IG_GRAPH_API_URL"), case("setting IG_GRAPH_API_VERSION")])
def test_setting_graph_api_url_and_default_version(install, item):
    from ig_analytics.graph_api import catalogue

    log = install.first_sync_log
    assert {r.ig_user_id for r in log} >= {a.ig_user_id for a in install.world.accounts}
    assert {r.version for r in log if not r.batch_item} == {catalogue.NEWEST_VERSION}


@pytest.mark.parametrize("item", [case("password authentication")])
def test_embedded_server_wants_a_password(install, item):
    port = int(install.engine.url.port)
    with pytest.raises(psycopg2.OperationalError, match="password"):  # not a refused or timed-out connection
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="ig_analytics", connect_timeout=10).close()


@pytest.mark.parametrize("item", [case("db url --read-only")])
def test_read_only_url_reads_but_cannot_write(install, item):
    url = install.user.ok("db", "url", "--read-only").stdout.strip()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM instagram.accounts")).scalar() == 4
            with pytest.raises(sa.exc.DBAPIError):  # refused: no privilege, or a read-only transaction
                conn.execute(sa.text("DELETE FROM instagram.accounts"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("item", [case("setting IG_ANALYTICS_LOG_FORMAT")])
def test_setting_log_format_json_makes_every_stderr_line_json(install, item):
    result = install.results["sync bad"]  # ran with IG_ANALYTICS_LOG_FORMAT=json
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "a failed sync logs why on stderr"
    for line in lines:
        json.loads(line)


@pytest.mark.parametrize("item", [case("setting IG_ANALYTICS_LOG_LEVEL")])
def test_setting_log_level_filters_stderr(install, item):
    """The same failing sync logs warnings at the default level (INFO) and nothing below ERROR at ERROR."""
    def levels(result):
        return {json.loads(line)["level"].upper() for line in result.stderr.splitlines() if line.strip()}

    loud, quiet = install.results["sync bad"], install.results["sync bad quietly"]
    assert loud.returncode == quiet.returncode == 1
    assert "WARNING" in levels(loud), loud.stderr
    assert levels(quiet) <= {"ERROR", "CRITICAL"}, quiet.stderr


@pytest.mark.parametrize("item", [case("setting IG_ANALYTICS_SHARDS")])
def test_setting_shards_gives_each_shard_its_own_run(install, item):
    """Every ingestion schedule tick asks for one run per shard, each with its own tags."""
    import dagster as dg

    from ig_analytics.definitions import defs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IG_ANALYTICS_SHARDS", "3")
        for name in ("daily_account_insights", "hourly_media_snapshots", "daily_media_refresh"):
            schedule = defs.resolve_schedule_def(name)
            with dg.build_schedule_context(scheduled_execution_time=datetime.now(timezone.utc),
                                           repository_def=defs.get_repository_def()) as context:
                requests_ = schedule.evaluate_tick(context).run_requests
            assert len(requests_) == 3, (name, requests_)
            assert len({tuple(sorted(r.tags.items())) for r in requests_}) == 3, name


@pytest.mark.parametrize("item", [case("setting IG_APP_ID")])
def test_setting_app_id_reads_token_expiry_and_scopes(install, item):
    account = install.world.accounts[1]
    install.user.ok("accounts", "add", "--ig-user-id", account.ig_user_id, "--token", "-", input=account.token + "\n",
                    IG_APP_ID="1234567890", IG_APP_SECRET="sandbox-app-secret")
    # what the sandbox's debug_token answered for this token, read independently of the product
    from ig_analytics.sandbox.tokens import registry

    said = registry(install.world).debug(account.token, datetime.now(timezone.utc))
    stored = install.rows("SELECT token_expires_at, token_scopes FROM instagram.accounts WHERE ig_user_id = :i",
                          i=account.ig_user_id)
    assert [(int(expires.timestamp()), sorted(scopes)) for expires, scopes in stored] == [
        (said["expires_at"], sorted(said["scopes"]))]


@pytest.mark.parametrize("item", [case("sandbox facebook_user_token line")])
def test_sandbox_prints_its_accounts_then_a_facebook_user_token(install, item):
    from ig_analytics_tests.new_user import CLI
    from ig_analytics_tests.procs import child, wait_until

    with child([CLI, "sandbox", "--port", "0"]) as proc:
        wait_until(lambda: "serving" in proc.stderr, 60, "the sandbox to start")  # stdout is flushed before
        _, printed = proc.stop()
    lines = [json.loads(line) for line in printed]
    assert [set(x) for x in lines[:3]] == [{"ig_user_id", "username", "token"}] * 3
    assert [set(x) for x in lines[3:]] == [{"facebook_user_token"}]


def test_every_pending_item_names_a_real_case():
    """A PENDING entry that names no case would silently never turn red."""
    assert set(spec.PENDING) - ITEMS == set()


def test_every_setting_of_the_contract_has_a_case():
    """Each setting is exercised on the product as a new user gets it: here, or (named in SETTINGS_TESTED_IN) by a
    test elsewhere that needs its own receiver or key; the README's settings table lists it."""
    import importlib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for setting in spec.SETTINGS:
        assert f"`{setting}`" in readme, f"{setting} is missing from the README's settings table"
        if f"setting {setting}" in ITEMS:
            continue
        assert setting in spec.SETTINGS_TESTED_IN, f"setting {setting} has no test case"
        module, _, name = spec.SETTINGS_TESTED_IN[setting].partition("::")
        assert callable(getattr(importlib.import_module(module), name, None)), spec.SETTINGS_TESTED_IN[setting]
