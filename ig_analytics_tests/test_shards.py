"""IG_ANALYTICS_SHARDS: each ingestion tick asks for one run per shard, and the runs' accounts partition the
accounts exactly (every account synced by exactly one run), checked from the rows the runs wrote."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs import ingestion_assets
from ig_analytics.defs.jobs import daily_account_insights, daily_media_refresh, hourly_media_snapshots
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.settings import Settings, SettingsError
from ig_analytics.accounts.shards import SHARD_TAG, shard_from_tags
from ig_analytics_tests.ingestion_harness import RESOURCES, SANDBOX_NOW, register

TICK = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def _requests(schedule, at=TICK):
    from ig_analytics.definitions import defs

    context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def())
    return schedule.evaluate_tick(context).run_requests


@pytest.fixture()
def sandbox(monkeypatch):
    world = SandboxWorld.generate(12, posts_per_account=5, now=SANDBOX_NOW)
    server = SandboxServer(world, port=0)
    server.start()
    monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
    try:
        yield world
    finally:
        server.stop()


def test_three_shards_three_runs_whose_accounts_partition_the_accounts(engine, ig_home, sandbox, monkeypatch):
    world = sandbox
    register(engine, world)
    monkeypatch.setenv("IG_ANALYTICS_SHARDS", "3")
    requests = _requests(daily_account_insights)
    assert len(requests) == 3
    assert sorted(r.tags[SHARD_TAG] for r in requests) == ["0/3", "1/3", "2/3"]
    assert len({r.run_key for r in requests}) == 3  # a failed shard is its own run: it retries alone
    assert requests == _requests(daily_account_insights)  # stable: the same tick asks for the same runs

    run_accounts = []
    for request in requests:
        result = dg.materialize(
            [ingestion_assets.ACCOUNTS, ingestion_assets.account_insights_daily],
            selection=[ingestion_assets.account_insights_daily], resources=RESOURCES, tags=request.tags,
            raise_on_error=False,
        )
        assert result.success
        with engine.connect() as conn:
            run_accounts.append(set(conn.execute(sa.text(
                "SELECT DISTINCT ig_user_id FROM instagram.sync_runs WHERE dagster_run_id = :run"),
                {"run": result.run_id}).scalars()))
    everyone = {a.ig_user_id for a in world.accounts}
    assert set().union(*run_accounts) == everyone
    assert sum(len(accounts) for accounts in run_accounts) == len(everyone)  # no account in two runs
    with engine.connect() as conn:
        synced = dict(conn.execute(sa.text(
            "SELECT ig_user_id, count(DISTINCT date) FROM instagram.account_insights_daily GROUP BY 1")).all())
    assert synced.keys() == everyone


def test_hourly_ticks_carry_the_shard_and_one_shard_is_the_old_single_run(monkeypatch):
    monkeypatch.delenv("IG_ANALYTICS_SHARDS", raising=False)
    (single,) = _requests(hourly_media_snapshots, datetime(2026, 11, 20, 12, 5, tzinfo=timezone.utc))
    assert single.run_key == "media-2026-11-20-12:00" and SHARD_TAG not in single.tags
    assert shard_from_tags(single.tags) is None

    monkeypatch.setenv("IG_ANALYTICS_SHARDS", "4")
    hourly = _requests(hourly_media_snapshots, datetime(2026, 11, 20, 12, 5, tzinfo=timezone.utc))
    refresh = _requests(daily_media_refresh, datetime(2026, 11, 20, 2, 10, tzinfo=timezone.utc))
    assert [shard_from_tags(r.tags) for r in hourly] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert all(r.partition_key == "2026-11-20-12:00" for r in hourly)
    assert [shard_from_tags(r.tags) for r in refresh] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert all(r.run_config["ops"]["media_and_snapshots"]["config"]["refresh_all"] for r in refresh)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1001", "1.5"])
def test_unusable_shard_setting_names_the_variable(value):
    with pytest.raises(SettingsError, match="IG_ANALYTICS_SHARDS"):
        Settings.from_env({"IG_ANALYTICS_SHARDS": value})


def test_malformed_shard_tag_says_what_to_do():
    with pytest.raises(ValueError, match="remove the tag"):
        shard_from_tags({SHARD_TAG: "3/3"})


def test_media_run_totals_are_the_rows_every_account_wrote(engine, ig_home, sandbox):
    """The run's totals are summed from each account's own outcome after the worker threads are done (no
    shared counter): they equal the rows in the tables, counted independently."""
    from ig_analytics_tests.ingestion_harness import hour_key, materialize_media

    register(engine, sandbox)
    result = materialize_media(hour_key(SANDBOX_NOW), max_concurrent_accounts=4)
    assert result.success
    meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    with engine.connect() as conn:
        media = conn.execute(sa.text("SELECT count(*) FROM instagram.media")).scalar_one()
        snapshots = conn.execute(sa.text("SELECT count(*) FROM instagram.media_insights_snapshots")).scalar_one()
    assert media > 0 and snapshots > 0
    assert meta["media"]["rows_written"].value == media
    assert meta["media_insights_snapshots"]["rows_written"].value == snapshots
    assert meta["media_insights_snapshots"]["posts_due"].value == snapshots  # the first capture: every post is due


def test_a_sharded_tick_creates_the_graph_api_pool_before_its_runs_race_to(monkeypatch):
    """Four shard runs starting together on a new instance raced to create the pool's row; all but one failed on a
    unique violation (benchmarks/tick.py). The tick creates it first, with dagster.yaml's default limit."""
    from ig_analytics.definitions import defs

    monkeypatch.setenv("IG_ANALYTICS_SHARDS", "4")
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 4}}}) as instance:
        assert "graph_api" not in instance.event_log_storage.get_concurrency_keys()
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=TICK,
                                            repository_def=defs.get_repository_def())
        assert len(hourly_media_snapshots.evaluate_tick(context).run_requests) == 4
        assert instance.event_log_storage.get_concurrency_info("graph_api").slot_count == 4
