"""Runs the CLI executes in process belong to the code location, as a UI-launched run does: the UI lists them under
their job, shows their partitions and re-executes them without a version warning."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import sqlalchemy as sa
from dagster._core.remote_representation.code_location import InProcessCodeLocation
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ig_analytics.defs import launch
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW, register


def _code_location_job(job_name: str, instance):
    origin = launch._origins(job_name)[1].repository_origin.code_location_origin
    location = InProcessCodeLocation(origin, instance)
    return location.get_repository(launch.REPOSITORY_NAME).get_full_job(job_name)


def test_a_cli_run_is_a_run_of_its_job_in_the_code_location(engine, ig_home, monkeypatch):
    world = SandboxWorld.demo(now=SANDBOX_NOW)
    server = SandboxServer(world, port=0)
    server.start()
    try:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        last = SANDBOX_NOW.date() - timedelta(days=3)
        first = last - timedelta(days=4)
        with dg.instance_for_test() as instance:
            outcome = launch.execute_linked_run(
                instance, "account_insights_job",
                tags={ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()})
            assert outcome.success, outcome.failures
            run = instance.get_run_by_id(outcome.run_id)
            assert run.job_name == "account_insights_job"
            origin = run.remote_job_origin
            assert origin is not None
            assert (origin.location_name, origin.repository_origin.repository_name) == ("ig_analytics", "__repository__")
            # the filter of the job's Runs tab in the UI finds it
            listed = instance.get_runs(dg.RunsFilter(job_name="account_insights_job",
                                                     tags={".dagster/repository": "__repository__@ig_analytics"}))
            assert [r.run_id for r in listed] == [outcome.run_id]
            assert (run.tags[ASSET_PARTITION_RANGE_START_TAG], run.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
                first.isoformat(), last.isoformat())
            # the same job snapshot as the code location serves: re-execution sees the same version
            assert run.job_snapshot_id == _code_location_job("account_insights_job", instance).identifying_job_snapshot_id
            # and it did the work: every account has every day of the range
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT count(*) FROM instagram.account_insights_daily "
                                            "WHERE date BETWEEN :a AND :b"), {"a": first, "b": last}).scalar_one()
            assert rows == len(world.accounts) * 5
    finally:
        server.stop()
