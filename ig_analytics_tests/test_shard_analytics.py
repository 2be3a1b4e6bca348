"""Issue 27: with IG_ANALYTICS_SHARDS each shard run computes the derived rows of its own accounts only (the tick's
analytics cover every account once, whatever the shard count), and ``every_shard_captured`` tells, per partition,
whether every shard captured it. Real PostgreSQL, the sandbox Graph API over HTTP, real Dagster runs."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.accounts.shards import SHARD_TAG, shard_of
from ig_analytics.defs import analytics_assets, conversation_assets, ingestion_assets, shard_checks
from ig_analytics.sandbox import Faults, SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import RESOURCES, SANDBOX_NOW, hour_key, register

HOUR = hour_key(SANDBOX_NOW)
ANALYTICS = [analytics_assets.media_engagement, analytics_assets.trending_posts,
             analytics_assets.account_engagement_daily, analytics_assets.best_posting_times,
             conversation_assets.media_hashtags, conversation_assets.hashtag_performance,
             conversation_assets.conversation_tables]
DERIVED = ["media_engagement", "trending_posts", "trending_evaluations", "account_engagement_daily",
           "best_posting_times", "media_hashtags", "hashtag_performance", "conversation_daily", "conversation_posts"]


@pytest.fixture()
def world(engine, ig_home, monkeypatch):
    world = SandboxWorld.generate(12, posts_per_account=40, now=SANDBOX_NOW)
    server = SandboxServer(world, port=0)
    server.start()
    monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
    register(engine, world)
    with engine.begin() as conn:  # the sandbox lives on 2026-11-20: the accounts were added before its hours
        conn.execute(sa.text("UPDATE instagram.accounts SET created_at = '2026-11-01T00:00:00Z'"))
    try:
        yield world
    finally:
        server.stop()


def _capture(engine) -> None:
    assets = [ingestion_assets.ACCOUNTS, ingestion_assets.media_and_snapshots, conversation_assets.media_comments]
    with clock.frozen(SANDBOX_NOW):
        result = dg.materialize(assets, selection=assets[1:], resources=RESOURCES, partition_key=HOUR,
                                run_config={"ops": {"media_and_snapshots": {"config": {"refresh_all": True}}}})
    assert result.success


def _analytics(at, tags=None) -> dg.ExecuteInProcessResult:
    with clock.frozen(at):
        result = dg.materialize(ANALYTICS, resources=RESOURCES, partition_key=HOUR, tags=tags or {})
    assert result.success
    return result


def _derived(engine, keep_computed_at: bool = False) -> dict[str, pd.DataFrame]:
    out = {}
    with engine.connect() as conn:
        for table in DERIVED:
            frame = pd.read_sql(sa.text(f"SELECT * FROM instagram.{table}"), conn)
            if not keep_computed_at:
                frame = frame.drop(columns=[c for c in ("computed_at",) if c in frame.columns])
            order = frame.astype(str).sort_values(list(frame.columns)).index  # values kept: floats compared as such
            out[table] = frame.loc[order].reset_index(drop=True)
    return out


def _computed_at(engine, table: str) -> dict[str, set]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT DISTINCT ig_user_id, computed_at FROM instagram.{table}")).all()
    found: dict[str, set] = {}
    for account, at in rows:
        found.setdefault(account, set()).add(at)
    return found


def test_two_shard_runs_compute_the_rows_of_one_run_each_account_once(engine, world):
    _capture(engine)
    _analytics(SANDBOX_NOW)  # no shard tag: every account, the reference
    reference = _derived(engine)
    assert all(len(reference[t]) for t in ("media_engagement", "account_engagement_daily", "best_posting_times",
                                             "media_hashtags", "trending_evaluations", "conversation_posts"))
    with engine.begin() as conn:
        for table in DERIVED:
            conn.execute(sa.text(f"DELETE FROM instagram.{table}"))
    times = [SANDBOX_NOW + timedelta(minutes=1 + i) for i in range(2)]
    in_scope = 0
    for i, at in enumerate(times):
        result = _analytics(at, {SHARD_TAG: f"{i}/2"})
        meta = result.asset_materializations_for_node("best_posting_times")[0].metadata
        assert meta["account_scope"].value == f"shard {i}/2"
        in_scope += meta["accounts_in_scope"].value
    assert in_scope == len(world.accounts)
    sharded = _derived(engine)
    for table in DERIVED:
        # a mean over fewer accounts' rows may differ in the last bit: equal to 1e-9
        pd.testing.assert_frame_equal(sharded[table], reference[table], obj=table, check_exact=False, rtol=1e-9)
    # each account's rows were computed by its own shard's run only (the old code: every run, all accounts)
    for table in ("trending_evaluations", "account_engagement_daily", "best_posting_times", "conversation_posts"):
        for account, stamps in _computed_at(engine, table).items():
            assert stamps == {times[shard_of(account, 2)]}, (table, account, stamps)


def test_a_shard_run_keeps_the_other_shards_rows(engine, world):
    _capture(engine)
    _analytics(SANDBOX_NOW)
    before = _derived(engine, keep_computed_at=True)
    later = SANDBOX_NOW + timedelta(minutes=5)
    result = _analytics(later, {SHARD_TAG: "0/2"})
    after = _derived(engine, keep_computed_at=True)
    for table in DERIVED:
        others = [frame[frame["ig_user_id"].map(lambda a: shard_of(a, 2) == 1)]
                  for frame in (before[table], after[table])]
        assert len(others[0]) > 0 or table in ("trending_posts", "hashtag_performance"), table
        pd.testing.assert_frame_equal(others[1].reset_index(drop=True), others[0].reset_index(drop=True), obj=table)
    # the shard-0 run recomputed its own accounts' rows; their values unchanged, none was rewritten (computed_at:
    # when the values last changed)
    meta = result.asset_materializations_for_node("best_posting_times")[0].metadata
    best = after["best_posting_times"]
    assert meta["rows_in_output"].value == len(best[best["ig_user_id"].map(lambda a: shard_of(a, 2) == 0)]) > 0
    assert (meta["rows_written"].value, meta["rows_deleted"].value) == (0, 0)
    assert pd.Timestamp(later) not in set(best["computed_at"].map(pd.Timestamp))


def test_a_run_asked_for_one_account_computes_that_accounts_rows_only(engine, world):
    """``ig-analytics sync --account X``: the analytics of its media run compute X's rows (as its capture synced X
    only), not every registered account's; the checks judge the same account (``check_ranges.Scope``)."""
    _capture(engine)
    _analytics(SANDBOX_NOW)
    reference = _derived(engine)
    with engine.begin() as conn:
        for table in DERIVED:
            conn.execute(sa.text(f"DELETE FROM instagram.{table}"))
    asked = world.accounts[3].ig_user_id
    assets = [ingestion_assets.ACCOUNTS, ingestion_assets.media_and_snapshots, conversation_assets.media_comments]
    config = {"ops": {"media_and_snapshots": {"config": {"refresh_all": True, "ig_user_ids": [asked]}}}}
    with clock.frozen(SANDBOX_NOW):
        result = dg.materialize(assets + ANALYTICS, selection=assets[1:] + ANALYTICS, resources=RESOURCES,
                                partition_key=HOUR, run_config=config)
    assert result.success
    meta = result.asset_materializations_for_node("best_posting_times")[0].metadata
    assert (meta["account_scope"].value, meta["accounts_in_scope"].value) == ("accounts requested", 1)
    derived = _derived(engine)
    for table in DERIVED:
        expected = reference[table][reference[table]["ig_user_id"] == asked].reset_index(drop=True)
        assert set(derived[table]["ig_user_id"]) <= {asked}, table  # the old code: every account's rows
        pd.testing.assert_frame_equal(derived[table], expected, obj=table, check_exact=False, rtol=1e-9,
                                      check_dtype=False)  # the reference's NULLs of other accounts make floats
    assert len(derived["best_posting_times"]) and len(derived["trending_evaluations"]) == 1


def test_the_verdict_names_ended_shards_as_errors_and_running_ones_as_warnings():
    missing = {1: {"17841400000000002": "failed: HTTP 500"}, 2: {"17841400000000003": "no sync of this partition"}}
    passed, severity, text = shard_checks.verdict(missing, 3, {2}, 12)
    assert not passed and severity == dg.AssetCheckSeverity.ERROR
    assert "shard 1/3: 1 account(s) not captured (17841400000000002)" in text
    assert "shard 2/3 not captured yet" in text
    passed, severity, text = shard_checks.verdict({2: missing[2]}, 3, {2}, 12)
    assert not passed and severity == dg.AssetCheckSeverity.WARN
    assert shard_checks.verdict({}, 3, set(), 12)[0]
    assert "the run: 1 account(s) not captured" in shard_checks.verdict({0: missing[1]}, 1, set(), 12)[2]


CHECK = dg.AssetCheckKey(dg.AssetKey("media_insights_snapshots"), shard_checks.CHECK_NAME)


def _latest_evaluation(instance):
    """The check's newest evaluation of the hour, and the partition status Dagster's UI shows from it."""
    [record] = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=1)
    [info] = instance.event_log_storage.get_asset_check_partition_info([CHECK], partition_keys=[HOUR])
    return record.event.dagster_event.event_specific_data, info.latest_execution_status.value


def _evaluation_of(instance, run_id):
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    [evaluation] = [r.event_log_entry.dagster_event.event_specific_data for r in records
                    if r.event_log_entry.dagster_event.event_specific_data.check_name == shard_checks.CHECK_NAME]
    return evaluation


@pytest.mark.slow
def test_three_shards_one_failing_api_names_the_shard_and_its_rerun_turns_the_hour_green(
        engine, world, dagster_pg_url, monkeypatch):
    from ig_analytics.defs import launch
    from ig_analytics.defs.dagster_internals import ReconstructableRepository
    from ig_analytics.defs.jobs import hourly_media_snapshots
    from ig_analytics.ingestion import circuit_breaker
    from ig_analytics_tests.ops_data import postgres_instance

    monkeypatch.setenv("IG_ANALYTICS_SHARDS", "3")
    shard = {a.ig_user_id: shard_of(a.ig_user_id, 3) for a in world.accounts}
    failing = sorted(a for a, s in shard.items() if s == 1)
    assert failing and len(failing) < len(shard)
    for account in failing:  # the API answers these accounts only 500s (and 503s)
        world.account(account).faults = Faults(transient_error_rate=1.0)
    from ig_analytics.definitions import defs

    tick = dg.build_schedule_context(scheduled_execution_time=SANDBOX_NOW.replace(minute=5),
                                     repository_def=defs.get_repository_def())
    requests = hourly_media_snapshots.evaluate_tick(tick).run_requests
    assert [r.tags[SHARD_TAG] for r in requests] == ["0/3", "1/3", "2/3"]
    times = {i: SANDBOX_NOW + timedelta(minutes=i) for i in range(3)}
    with postgres_instance(dagster_pg_url) as instance:
        # the tick's three runs wait in the queue together, as the daemon would submit them
        runs = [launch.create_linked_run(instance, "media_sync_job", tags=r.tags, partition_key=r.partition_key)
                for r in requests]
        for i in (0, 2, 1):  # the failing shard ends last
            with clock.frozen(times[i]):
                assert launch.execute_created_run(instance, *runs[i]).success
        first = _evaluation_of(instance, runs[0][1].run_id)  # shards 1 and 2 were still queued
        assert not first.passed and first.severity == dg.AssetCheckSeverity.WARN
        assert "shard 1/3 not captured yet" in first.description and "shard 2/3 not captured yet" in first.description
        final, status = _latest_evaluation(instance)  # what the UI shows on the hour
        assert status == "FAILED" and not final.passed and final.severity == dg.AssetCheckSeverity.ERROR
        assert f"shard 1/3: {len(failing)} account(s) not captured ({', '.join(failing)})" in final.description
        assert "0/3" not in final.description and "2/3" not in final.description
        assert set(final.metadata["not_captured"].value["1/3"]["accounts"]) == set(failing)

        with engine.connect() as conn:
            captured = set(conn.execute(sa.text(
                "SELECT DISTINCT ig_user_id FROM instagram.media_insights_snapshots WHERE captured_at = :hour"),
                {"hour": SANDBOX_NOW.replace(minute=0)}).scalars())
            evaluated = dict(conn.execute(sa.text(
                "SELECT ig_user_id, computed_at FROM instagram.trending_evaluations WHERE as_of = :hour"),
                {"hour": SANDBOX_NOW.replace(minute=0)}).all())
        assert captured == {a for a, s in shard.items() if s != 1}
        # the analytics ran once per account: each account's evaluation is its own shard run's (the old code: the
        # last run's for every account)
        assert evaluated == {a: times[s] for a, s in shard.items()}

        for account in failing:  # the API is healthy again; the failed shard's run is re-executed as from the UI
            world.account(account).faults = None
        circuit_breaker._found_dead.clear()  # a new run is a new process with the run launcher: no memory of it
        parent = instance.get_run_by_id(runs[1][1].run_id)
        recon_job = ReconstructableRepository.for_module(launch.DEFINITIONS_MODULE, "defs").get_reconstructable_job(
            "media_sync_job")
        with clock.frozen(SANDBOX_NOW + timedelta(minutes=20)):
            rerun = dg.execute_job(recon_job, instance, tags={k: v for k, v in parent.tags.items()
                                                              if not k.startswith("dagster/run_")},
                                   reexecution_options=dg.ReexecutionOptions(parent_run_id=parent.run_id))
        assert rerun.success
        final, status = _latest_evaluation(instance)
        assert status == "SUCCEEDED" and final.passed, final.description
        with engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(DISTINCT ig_user_id) FROM instagram.media_insights_snapshots WHERE captured_at = :hour"),
                {"hour": SANDBOX_NOW.replace(minute=0)}).scalar_one() == len(shard)


def test_a_daily_range_run_evaluates_every_day_and_names_the_shard_that_never_ran(engine, world):
    from datetime import date

    from ig_analytics.defs.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    days = {ASSET_PARTITION_RANGE_START_TAG: "2026-11-17", ASSET_PARTITION_RANGE_END_TAG: "2026-11-19"}
    assets = [ingestion_assets.ACCOUNTS, ingestion_assets.account_insights_daily, shard_checks.shard_checks[1]]
    instance = dg.DagsterInstance.ephemeral()

    def shard_run(index: int):
        with clock.frozen(SANDBOX_NOW):
            result = dg.materialize(assets, selection=assets[1:], resources=RESOURCES, instance=instance,
                                    tags={**days, SHARD_TAG: f"{index}/2"})
        assert result.success
        evaluations = {e.partition: e for e in result.get_asset_check_evaluations()
                       if e.check_name == shard_checks.CHECK_NAME}
        assert sorted(evaluations) == [(date(2026, 11, 17) + timedelta(days=i)).isoformat() for i in range(3)]
        return evaluations

    alone = shard_run(0)  # shard 1 has no run: its accounts were not captured, and nothing will capture them
    others = sorted(a.ig_user_id for a in world.accounts if shard_of(a.ig_user_id, 2) == 1)
    for evaluation in alone.values():
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert f"shard 1/2: {len(others)} account(s) not captured ({', '.join(others)})" in evaluation.description
    assert all(e.passed for e in shard_run(1).values())  # the second shard's run sees both captured
