"""What the Dagster UI shows after a first `ig-analytics sync` (a subprocess, the sandbox over HTTP, a real
PostgreSQL), read through the UI's GraphQL API and in headless Chromium as a person sees it:

- every run belongs to the code location (``repositoryOrigin``) and is listed under its job;
- every table asset has an owner and a column schema whose columns are the table's (information_schema);
- the partitioned checks of the 7-day range run are evaluated per partition (no "Skipped"), the accounts table is
  observed and its token check evaluated;
- partitions start at the install: the hourly assets' first partition is the install hour, the daily ones reach
  back the first sync's 90 days, so the fill bars read as coverage.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.install_marker import read_marker
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import register
from ig_analytics_tests.procs import graphql, running_ui, wait_until

pytestmark = pytest.mark.slow

SYNC_DAYS = 7
DATABASE = "ig_ui_truth"
TABLE_ASSETS = {"accounts", "account_insights_daily", "media", "media_insights_snapshots", "audience_demographics",
                "media_engagement", "trending_posts", "account_engagement_daily", "best_posting_times",
                "performance_reports", "weekly_performance_reports"}


@pytest.fixture(scope="module")
def synced_ui(pg_server, tmp_path_factory):
    """One home: a 7-day sync of the demo accounts through the CLI, then `ig-analytics ui` on it."""
    from ig_analytics.storage import db

    # A database of its own: Dagster's runs of other tests must not show in this UI.
    admin = sa.create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    pg_url = pg_server.url(DATABASE)
    home = tmp_path_factory.mktemp("ui_truth") / "home"
    engine = db.get_engine(pg_url)
    db.migrate(engine)
    world = SandboxWorld.demo()  # real time: the CLI and the UI read the wall clock
    with SandboxServer(world, port=0) as server, pytest.MonkeyPatch.context() as mp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "IG_ANALYTICS_"))}
        env.update(IG_ANALYTICS_HOME=str(home), DATABASE_URL=pg_url, IG_GRAPH_API_URL=server.base_url)
        mp.setenv("IG_ANALYTICS_HOME", str(home))  # the token key the CLI will read
        mp.delenv("IG_TOKEN_KEY", raising=False)
        register(engine, world)
        today = datetime.now(timezone.utc).date()
        since = today - timedelta(days=SYNC_DAYS)
        sync = subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", "sync", "--since", since.isoformat()],
                              env=env, capture_output=True, text=True, timeout=900)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        with running_ui(env, home) as (url, _proc):
            yield {"url": url.removesuffix("/graphql"), "engine": engine, "home": home, "since": since,
                   "today": today, "world": world}
    engine.dispose()
    admin = sa.create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the module's database goes with it
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    admin.dispose()


def test_every_run_belongs_to_its_job_with_its_partitions(synced_ui):
    url = synced_ui["url"] + "/graphql"
    runs = graphql(url, """{ runsOrError(limit: 50) { ... on Runs { results {
        runId jobName status repositoryOrigin { repositoryLocationName repositoryName } tags { key value } } } } }""")
    runs = runs["runsOrError"]["results"]
    jobs = {r["jobName"] for r in runs}
    assert {"media_sync_job", "account_insights_job", "reports_job", "data_quality_job"} <= jobs, jobs
    for run in runs:
        assert run["status"] == "SUCCESS", run
        assert run["repositoryOrigin"] == {"repositoryLocationName": "ig_analytics",
                                           "repositoryName": "__repository__"}, run
    account_run = next(r for r in runs if r["jobName"] == "account_insights_job")
    tags = {t["key"]: t["value"] for t in account_run["tags"]}
    yesterday = synced_ui["today"] - timedelta(days=1)
    assert tags["dagster/asset_partition_range_start"] == synced_ui["since"].isoformat()
    assert tags["dagster/asset_partition_range_end"] == yesterday.isoformat()
    # the job's own Runs tab: the runs listed for the job in its repository
    listed = graphql(url, """query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { runId } } } }""",
                  f={"pipelineName": "account_insights_job",
                     "tags": [{"key": ".dagster/repository", "value": "__repository__@ig_analytics"}]})
    assert [r["runId"] for r in listed["runsOrError"]["results"]] == [account_run["runId"]]


def _asset_nodes(url: str) -> dict[str, dict]:
    nodes = graphql(url, """{ assetNodes {
        assetKey { path } description
        owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
        internalFreshnessPolicy { __typename }
        partitionStats { numMaterialized numPartitions }
        partitionKeysByDimension { partitionKeys }
        metadataEntries { label ... on TextMetadataEntry { text }
          ... on TableSchemaMetadataEntry { schema { columns { name type description } } } } } }""")["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def _pg_type(data_type: str, udt: str) -> str:
    return {"timestamp with time zone": "timestamptz", "ARRAY": udt.lstrip("_") + "[]"}.get(data_type, data_type)


def test_every_table_asset_has_owner_description_and_the_tables_columns(synced_ui):
    nodes = _asset_nodes(synced_ui["url"] + "/graphql")
    assert TABLE_ASSETS <= set(nodes)
    with synced_ui["engine"].connect() as conn:
        actual = {}
        for table, column, data_type, udt in conn.execute(sa.text(
                "SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns"
                " WHERE table_schema = 'instagram'")):
            actual.setdefault(table, {})[column] = _pg_type(data_type, udt)
    for key in TABLE_ASSETS:
        node = nodes[key]
        assert node["owners"] == [{"team": "social-analytics"}], key
        assert node["description"] and "the story's" not in node["description"], key
        entries = {e["label"]: e for e in node["metadataEntries"]}
        table = entries["dagster/table_name"]["text"]
        assert table.startswith("instagram."), key
        columns = entries["dagster/column_schema"]["schema"]["columns"]
        assert {c["name"]: c["type"] for c in columns} == actual[table.split(".", 1)[1]], key
        assert all(c["description"] for c in columns), key
        if key != "accounts":  # observed, not on a schedule
            assert node["internalFreshnessPolicy"] is not None, key


def test_partitions_start_at_the_install_so_fill_bars_read_as_coverage(synced_ui):
    nodes = _asset_nodes(synced_ui["url"] + "/graphql")
    marker = read_marker(synced_ui["home"])
    installed = datetime.fromisoformat(marker["installed_at"])
    # hourly: from the hour the install began (the first hour anything can be captured) to the hour in progress
    hours = nodes["media_insights_snapshots"]["partitionKeysByDimension"][0]["partitionKeys"]
    assert hours[0] == installed.strftime("%Y-%m-%d-%H:00")
    stats = nodes["media_insights_snapshots"]["partitionStats"]
    assert stats["numPartitions"] == len(hours) <= 3 and stats["numMaterialized"] == 1
    # daily: the 90 days the first default sync reaches, ending yesterday; this sync filled its 7
    today = synced_ui["today"]
    days = nodes["account_insights_daily"]["partitionKeysByDimension"][0]["partitionKeys"]
    assert days[0] == (installed.date() - timedelta(days=90)).isoformat() and days[-1] == (today - timedelta(days=1)).isoformat()
    assert nodes["account_insights_daily"]["partitionStats"] == {"numMaterialized": SYNC_DAYS,
                                                                 "numPartitions": len(days)}
    # the audience picture exists only from the install on: yesterday's, taken by the sync
    assert nodes["audience_demographics"]["partitionStats"] == {"numMaterialized": 1, "numPartitions": 1}
    assert nodes["audience_demographics"]["partitionKeysByDimension"][0]["partitionKeys"] == [days[-1]]


def test_range_run_checks_are_evaluated_per_partition_and_accounts_observed(synced_ui):
    url = synced_ui["url"] + "/graphql"
    checks = graphql(url, """{ assetNodeOrError(assetKey: {path: ["account_insights_daily"]}) { ... on AssetNode {
        assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses {
          ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } } }""")
    checks = {c["name"]: c for c in checks["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    first, last = synced_ui["since"].isoformat(), (synced_ui["today"] - timedelta(days=1)).isoformat()
    for name in ("account_insights_valid", "account_insights_reach_within_views", "account_insights_complete"):
        ranges = checks[name]["partitionStatuses"]["ranges"]
        assert ranges == [{"startKey": first, "endKey": last, "status": "SUCCEEDED"}], (name, ranges)
    observed = graphql(url, """{ assetOrError(assetKey: {path: ["accounts"]}) { ... on Asset {
        assetObservations(limit: 1) { metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""")
    entries = observed["assetOrError"]["assetObservations"][0]["metadataEntries"]
    assert {e["label"]: e.get("intValue") for e in entries}["accounts"] == len(synced_ui["world"].accounts)
    token_check = graphql(url, """{ assetCheckExecutions(assetKey: {path: ["accounts"]}, checkName: "accounts_tokens_valid",
        limit: 1) { status } }""")["assetCheckExecutions"]
    # the demo's tokens are valid, long-lived and hold every permission: the check passes
    assert token_check and token_check[0]["status"] == "SUCCEEDED", token_check


# ---- what a person sees ----------------------------------------------------------------------------------


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("chromium is not installed: the UI is not rendered (CI installs it; apt-get install chromium)")
    return path


def _page_text(chromium: str, url: str, profile, wait_for: str, screenshot=None) -> str:
    """The page's text once the app has loaded its data (``wait_for`` appears), polled with a deadline."""
    last = {"text": ""}

    def render():
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--window-size=2560,1600"]
        dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)))
        last["text"] = text
        if wait_for not in text:
            return None
        if screenshot is not None:
            subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
        return text

    try:
        return wait_until(render, 180, f"{url} to show {wait_for!r}", interval_s=3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the page read: {last['text'][:2000]}") from None


def test_browser_lineage_checks_and_runs_pages(synced_ui, tmp_path):
    chromium = _chromium()
    base = synced_ui["url"]
    shots = os.environ.get("IG_ANALYTICS_SCREENSHOTS")  # a folder to keep the screenshots in (issue notes)

    def page(path: str, wait_for: str, name: str) -> str:
        text = _page_text(chromium, base + path, tmp_path / name, wait_for,
                          os.path.join(shots, f"{name}.png") if shots else None)
        return text

    lineage = page("/locations/ig_analytics/asset-groups/ingestion/lineage", "account_insights_daily", "lineage")
    for key in ("accounts", "media_insights_snapshots", "audience_demographics"):
        assert key in lineage
    assert "Skipped" not in lineage
    checks = page("/assets/account_insights_daily?view=checks", "account_insights_valid", "checks")
    assert "account_insights_complete" in checks and "Skipped" not in checks, checks[:3000]
    runs = page("/runs", "account_insights_job", "runs")
    for job in ("media_sync_job", "reports_job", "data_quality_job"):
        assert job in runs
    job_runs = page("/locations/ig_analytics/jobs/account_insights_job/runs", "account_insights_job", "job_runs")
    assert "No runs found" not in job_runs and "Success" in job_runs, job_runs[:3000]
