"""End to end through the UI's GraphQL API: `ig-analytics ui` (webserver + daemon) on a real PostgreSQL and the
sandbox; list the asset graph, launch a 90-day partition backfill, wait for it, check the tables and the check
results; then evaluate a schedule tick and launch its run."""

from __future__ import annotations

import functools
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import register
from ig_analytics_tests.procs import graphql, running_ui, wait_until

pytestmark = pytest.mark.slow

LOCATION = {"repositoryLocationName": "ig_analytics", "repositoryName": "__repository__"}


def _wait(predicate, timeout_s: float, what: str, describe=lambda: ""):
    try:
        return wait_until(predicate, timeout_s, what, interval_s=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc} {describe()}") from None


@pytest.fixture()
def ui(engine, ig_home, pg_url, monkeypatch):
    world = SandboxWorld.demo()  # real time: the daemon's runs read the wall clock
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        register(engine, world)
        env = dict(os.environ, IG_ANALYTICS_HOME=str(ig_home), DATABASE_URL=pg_url)
        with running_ui(env, ig_home) as (url, _proc):  # the UI stops its webserver and daemon itself
            yield functools.partial(graphql, url), world


def test_backfill_and_schedule_through_graphql(engine, ui):
    gql, world = ui
    nodes = gql("{ assetNodes { assetKey { path } } }")["assetNodes"]
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert {"account_insights_daily", "media_insights_snapshots", "trending_posts", "performance_reports"} <= keys

    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    partitions = [(yesterday - timedelta(days=i)).isoformat() for i in range(89, -1, -1)]
    launched = gql(
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        params={"assetSelection": [{"path": ["account_insights_daily"]}], "partitionNames": partitions,
                "title": "e2e 90-day backfill"},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def backfill_done():
        status = gql("""query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                          ... on PartitionBackfill { status } } }""", id=backfill_id)["partitionBackfillOrError"]["status"]
        assert status not in ("FAILED", "CANCELED"), status
        return status == "COMPLETED_SUCCESS" or status == "COMPLETED"

    _wait(backfill_done, 240, "the backfill")
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.text(
            "SELECT ig_user_id, count(*) FROM instagram.account_insights_daily GROUP BY 1")).all())
        # every run that synced anything: the daemon's schedules are off (running_ui), so no tick lands meanwhile
        runs = conn.execute(sa.text("SELECT count(DISTINCT dagster_run_id) FROM instagram.sync_runs")).scalar()
    assert counts == {a.ig_user_id: 90 for a in world.accounts}
    assert runs == 1  # single-run backfill policy: 90 partitions, one run

    checks = gql(
        """{ assetNodes(assetKeys: [{path: ["account_insights_daily"]}]) { assetChecksOrError {
             ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } }"""
    )["assetNodes"][0]["assetChecksOrError"]["checks"]
    by_name = {c["name"]: (c["executionForLatestMaterialization"] or {}).get("status") for c in checks}
    assert by_name["accounts_synced"] == "SUCCEEDED"

    # A schedule tick: evaluate it like the UI's "test schedule", then launch the run it asks for.
    tick = gql(
        """mutation($selector: ScheduleSelector!, $ts: Float) { scheduleDryRun(selectorData: $selector, timestamp: $ts) {
             ... on DryRunInstigationTick { evaluationResult { runRequests { runKey runConfigYaml
               tags { key value } } error { message } } } } }""",
        # the dry run evaluates the first tick after ts: from the top of this hour, that is this hour's hh:05 tick,
        # whose partition (the hour in progress) exists, as it does for a real tick. ts=now - 1 h asked for the
        # previous hour between hh:00 and hh:05, before the install's first partition (CI failed at 12:0x).
        selector={**LOCATION, "scheduleName": "hourly_media_snapshots"}, ts=time.time() // 3600 * 3600,
    )["scheduleDryRun"]["evaluationResult"]
    assert tick["error"] is None and len(tick["runRequests"]) == 1
    request = tick["runRequests"][0]
    run = gql(
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
             __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
        params={"selector": {**LOCATION, "jobName": "media_sync_job"},
                "executionMetadata": {"tags": request["tags"]}},
    )["launchRun"]
    assert run["__typename"] == "LaunchRunSuccess", run
    run_id = run["run"]["runId"]

    def run_done():
        status = gql("""query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }""", id=run_id)[
            "runOrError"]["status"]
        assert status not in ("FAILURE", "CANCELED"), status
        return status == "SUCCESS"

    def describe():
        return gql("""query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value }
                      eventConnection { events { __typename ... on MessageEvent { message } } } } } }""", id=run_id)

    _wait(run_done, 180, "the scheduled run", describe)
    with engine.connect() as conn:
        snapshots = conn.execute(sa.text(
            "SELECT count(*) FROM instagram.media_insights_snapshots s JOIN instagram.sync_runs r"
            " ON r.dagster_run_id = :run AND r.ig_user_id = s.ig_user_id"), {"run": run_id}).scalar()
    assert snapshots > 0
