"""Runs the CLI executes in process belong to the code location, as a UI-launched run does: the UI lists them under
their job, shows their partitions and re-executes them without a version warning."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa
from dagster._core.remote_representation.code_location import InProcessCodeLocation
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ig_analytics.defs import launch
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import SANDBOX_NOW, register
from ig_analytics_tests.ops_data import postgres_instance


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


def _stored(dagster_pg_url: str, run_id: str):
    """What the run left in Dagster's tables: events by type, asset and partition; check rows by check, partition
    and status, each pointing at a stored evaluation event of the run (and its materialization when planned)."""
    eng = sa.create_engine(dagster_pg_url)
    try:
        with eng.connect() as conn:
            events = Counter(tuple(r) for r in conn.execute(sa.text(
                "SELECT dagster_event_type, asset_key, partition FROM event_logs WHERE run_id = :r"), {"r": run_id}))
            checks = sorted((tuple(r) for r in conn.execute(sa.text(
                "SELECT c.check_name, c.partition, c.execution_status, e.dagster_event_type,"
                " c.materialization_event_storage_id IS NOT NULL FROM asset_check_executions c"
                " LEFT JOIN event_logs e ON e.id = c.evaluation_event_storage_id AND e.run_id = c.run_id"
                " WHERE c.run_id = :r"), {"r": run_id})), key=repr)
            last_run = conn.execute(sa.text("SELECT last_run_id FROM asset_keys WHERE asset_key = :k"),
                                    {"k": '["account_insights_daily"]'}).scalar()
    finally:
        eng.dispose()
    return events, checks, last_run


def test_a_prepared_instance_stores_what_a_plain_one_stores(engine, ig_home, monkeypatch, dagster_pg_url):
    """prepare_instance writes events in batches (defs/event_batches.py) and memoizes Dagster's schema probes: the
    same range run stores the same events and the same per-partition check rows (the UI's check status of every
    day) as on a plain instance."""
    world = SandboxWorld.demo(now=SANDBOX_NOW)
    last = SANDBOX_NOW.date() - timedelta(days=3)
    first = last - timedelta(days=4)
    tags = {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        stored = []
        for prepared in (False, True):
            with postgres_instance(dagster_pg_url) as instance:
                if prepared:
                    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", launch.EVENT_BATCH_SIZE)  # restored afterwards
                    launch.prepare_instance(instance)
                else:
                    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
                outcome = launch.execute_linked_run(instance, "account_insights_job", tags=tags)
                assert outcome.success, outcome.failures
                stored.append(_stored(dagster_pg_url, outcome.run_id) + (outcome.run_id,))
    (plain_events, plain_checks, _, _), (events, checks, last_run, run_id) = stored
    assert events == plain_events
    assert checks == plain_checks
    days = [(first + timedelta(days=i)).isoformat() for i in range(5)]
    per_partition = {(name, day) for name, day, status, event_type, has_target in checks
                     if day is not None and status == "SUCCEEDED" and event_type == "ASSET_CHECK_EVALUATION" and has_target}
    assert per_partition == {(name, day) for day in days for name in (
        "account_insights_valid", "account_insights_reach_within_views", "account_insights_complete",
        "every_shard_captured")}
    evaluated = [c for c in checks if c[3] == "ASSET_CHECK_EVALUATION"]  # each row points at its own event
    assert sum(n for (kind, _, _), n in events.items() if kind == "ASSET_CHECK_EVALUATION") == len(evaluated)
    assert last_run == run_id  # asset_keys bookkeeping follows the newest run


def test_a_step_error_is_told_without_dagsters_wrappers_or_module_paths():
    from dagster._utils.error import SerializableErrorInfo

    from ig_analytics.defs.step_errors import step_error_text

    def info(message, cls_name, cause=None):
        return SerializableErrorInfo(message=message, stack=[], cls_name=cls_name, cause=cause)

    cause = info("NotADirectoryError: [Errno 20] Not a directory: '/h/reports/1'\n", "NotADirectoryError")
    wrapped = info('dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op '
                   '"performance_reports":\n', "DagsterExecutionStepExecutionError", cause)
    assert step_error_text(wrapped) == "[Errno 20] Not a directory: '/h/reports/1'"
    failure = info("dagster._core.definitions.events.Failure: Partition 2026-12-01 has not started yet.\n", "Failure")
    assert step_error_text(failure) == "Partition 2026-12-01 has not started yet."
    plain = info("something broke: badly\n", "RuntimeError")  # no class prefix: kept whole
    assert step_error_text(plain) == "something broke: badly"


def test_a_run_writes_its_events_on_pooled_connections(engine, ig_home, pg_url, dagster_pg_url):
    """dagster-postgres opens a new connection per event (NullPool) unless told otherwise; a run launched by the
    daemon or the UI is told when it sets up its database resource: its events then reuse open connections
    (issue 27: 2,600 new connections an hour at 1,000 accounts, ~4 ms of server CPU each)."""
    from sqlalchemy.pool import NullPool

    from ig_analytics.defs.resources import AnalyticsDatabase

    with postgres_instance(dagster_pg_url) as instance:
        assert isinstance(instance.event_log_storage._engine.pool, NullPool)  # Dagster's default, as deployed
        AnalyticsDatabase(database_url=pg_url).setup_for_execution(dg.build_init_resource_context(instance=instance))
        pooled = instance.event_log_storage._engine
        assert not isinstance(pooled.pool, NullPool)
        assert isinstance(instance.get_runs(limit=1), list)  # it answers; a second set-up keeps the same engine
        AnalyticsDatabase(database_url=pg_url).setup_for_execution(dg.build_init_resource_context(instance=instance))
        assert instance.event_log_storage._engine is pooled
