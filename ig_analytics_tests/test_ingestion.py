"""The ingestion assets against the sandbox Graph API (over HTTP) and a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.ingestion.account_insights import ACCOUNT_METRIC_COLUMNS
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics_tests.ingestion_harness import (
    SANDBOX_NOW,
    hour_key,
    materialize_account_insights,
    materialize_media,
    register,
    served,
)

EXPIRED = "17841400000000009"


@pytest.fixture()
def sandbox(engine, ig_home, monkeypatch):
    world = SandboxWorld.demo(now=SANDBOX_NOW)
    for server in served(engine, monkeypatch, world):
        yield world, server


def _table(engine, sql: str, **params):
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql), params)]


def test_account_insights_match_the_sandbox_under_the_date_convention(engine, ig_home, monkeypatch):
    # The sandbox clock frozen at the wall clock: the client picks follower_count's 30-day window on the wall
    # clock, so both agree on which days have it (a clock frozen in the past would leave that check empty).
    now = datetime.now(timezone.utc)
    world = SandboxWorld.demo(now=now)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        last = now.date() - timedelta(days=3)  # old enough that every metric has arrived
        first = last - timedelta(days=39)  # two API windows
        result = materialize_account_insights(first, last)
    assert result.success
    rows = _table(engine, "SELECT ig_user_id, date, reach, views, follower_count, accounts_engaged, unfollows "
                          "FROM instagram.account_insights_daily ORDER BY 1, 2")
    assert len(rows) == 3 * 40
    with_follows = 0
    for ig_user_id, day, reach, views, follower_count, engaged, unfollows in rows:
        assert reach == world.account_metric(ig_user_id, "reach", day)
        assert views == world.account_metric(ig_user_id, "views", day)
        assert engaged == world.account_metric(ig_user_id, "accounts_engaged", day)
        # follower_count: new followers, served only for the last 30 days (excluding today)
        if day >= now.date() - timedelta(days=29):
            assert follower_count == world.account_metric(ig_user_id, "follower_count", day), (ig_user_id, day)
            assert unfollows == world.account(ig_user_id).unfollows(day)  # follows_and_unfollows - follows
            with_follows += 1
        elif day < now.date() - timedelta(days=31):
            assert follower_count is None  # not asked, not 0
    assert with_follows == 3 * 27
    # impressions was retired in v22: the default (newest) version stores NULL, never 0
    assert _table(engine, "SELECT count(*) FROM instagram.account_insights_daily WHERE impressions IS NOT NULL") == [(0,)]
    # the sync wrote one outcome per account
    statuses = _table(engine, "SELECT status, count(*) FROM instagram.sync_runs GROUP BY 1")
    assert statuses == [("success", 3)]


def test_rematerializing_a_partition_leaves_identical_tables(engine, sandbox):
    day = SANDBOX_NOW.date() - timedelta(days=4)
    assert materialize_account_insights(day, day).success
    key = hour_key(SANDBOX_NOW)
    assert materialize_media(key).success
    columns = {"account_insights_daily": "ig_user_id, date, " + ", ".join(ACCOUNT_METRIC_COLUMNS),
               "media": "media_id, ig_user_id, media_type, caption, published_at",
               "media_insights_snapshots": "media_id, captured_at, reach, views, likes, saved, shares"}
    before = {t: _table(engine, f"SELECT {c} FROM instagram.{t} ORDER BY 1, 2") for t, c in columns.items()}
    assert materialize_account_insights(day, day).success
    assert materialize_media(key).success
    after = {t: _table(engine, f"SELECT {c} FROM instagram.{t} ORDER BY 1, 2") for t, c in columns.items()}
    assert before == after
    assert all(before[t] for t in before)


def test_expired_token_costs_only_that_account(engine, ig_home, monkeypatch):
    world = SandboxWorld(
        [AccountSpec("17841400000000001", "one", followers=900), AccountSpec("17841400000000002", "two", followers=5000),
         AccountSpec(EXPIRED, "expired", followers=700, expired_token=True)],
        seed=3, now=SANDBOX_NOW,
    )
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        day = SANDBOX_NOW.date() - timedelta(days=5)
        result = materialize_account_insights(day - timedelta(days=6), day)
    assert result.success  # the run completes: the others' data is written and the failure is a failed check
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "accounts_synced")
    assert not check.passed
    assert EXPIRED in check.metadata["failed_accounts"].data
    counts = dict(_table(engine, "SELECT ig_user_id, count(*) FROM instagram.account_insights_daily GROUP BY 1"))
    assert counts == {"17841400000000001": 7, "17841400000000002": 7}
    status, reason = _table(engine, "SELECT status, status_reason FROM instagram.accounts WHERE ig_user_id = :i", i=EXPIRED)[0]
    assert status == "needs_reauth"
    assert "accounts add" in reason and "190" in reason
    error = _table(engine, "SELECT status, error_code FROM instagram.sync_runs WHERE ig_user_id = :i", i=EXPIRED)
    assert error == [("failed", 190)]
    for token in (a.token for a in world.accounts):
        assert token not in reason


def test_media_snapshots_grow_over_successive_hours(engine, sandbox):
    world, _ = sandbox
    for hour in range(3):
        world.clock.set(SANDBOX_NOW + timedelta(hours=hour))
        assert materialize_media(hour_key(SANDBOX_NOW + timedelta(hours=hour))).success
    young = _table(
        engine,
        "SELECT s.media_id, array_agg(s.views ORDER BY s.captured_at), array_agg(s.captured_at ORDER BY s.captured_at)"
        " FROM instagram.media_insights_snapshots s JOIN instagram.media m USING (media_id)"
        " WHERE m.published_at > :since AND m.media_product_type <> 'STORY' GROUP BY 1",
        since=SANDBOX_NOW - timedelta(hours=40),
    )
    assert young, "the demo accounts have posts younger than 48 h"
    grew = 0
    for media_id, views, captured in young:
        assert len(views) == 3  # hourly while young
        assert views == sorted(views)
        assert views[-1] == world.media_metric(media_id, "views", SANDBOX_NOW + timedelta(hours=2))
        grew += views[-1] > views[0]
    assert grew >= len(young) // 2
    # older posts were captured once (daily cadence), not every hour
    old = _table(
        engine,
        "SELECT max(n) FROM (SELECT count(*) AS n FROM instagram.media_insights_snapshots s JOIN instagram.media m"
        " USING (media_id) WHERE m.published_at < :before GROUP BY media_id) x",
        before=SANDBOX_NOW - timedelta(days=3),
    )
    assert old == [(1,)]


def test_pre_conversion_posts_are_skipped_once_and_remembered(engine, ig_home, monkeypatch):
    world = SandboxWorld(
        [AccountSpec("17841400000000001", "young_shop", followers=900, posts=12, posts_per_day=1.5,
                     pre_conversion_posts=3)],
        seed=5, now=SANDBOX_NOW,
    )
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        first = materialize_media(hour_key(SANDBOX_NOW), refresh_all=True)
        assert first.success
        world.clock.advance(timedelta(days=1))
        second = materialize_media(hour_key(SANDBOX_NOW + timedelta(days=1)), refresh_all=True)
        assert second.success
    unavailable = _table(engine, "SELECT media_id, insights_unavailable_reason FROM instagram.media"
                                 " WHERE insights_unavailable_reason IS NOT NULL")
    assert len(unavailable) == 3
    assert all("2108006" in reason or "business" in reason.lower() for _, reason in unavailable)
    outcome = _table(engine, "SELECT status, items_skipped FROM instagram.sync_runs ORDER BY started_at")
    assert outcome[0] == ("success", 3)  # skipped items do not fail the account
    assert outcome[1] == ("success", 0)  # and are not asked for again



def test_a_partition_that_has_not_started_is_refused_before_any_call(engine, sandbox):
    """A run launched for a partition of the future (GraphQL's launchRun with a partition tag; the UI and the
    schedules never ask for one) would store a capture made now under a time still to come: every ingestion
    asset refuses it with a message that says so, and nothing is written or spent."""
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from ig_analytics.defs import launch

    _world, server = sandbox
    now = datetime.now(timezone.utc)
    tomorrow = now.date() + timedelta(days=1)
    launches = {
        "media_sync_job": {"partition_key": hour_key(now + timedelta(hours=2))},
        "account_insights_job": {"tags": {ASSET_PARTITION_RANGE_START_TAG: (now.date() - timedelta(days=2)).isoformat(),
                                          ASSET_PARTITION_RANGE_END_TAG: tomorrow.isoformat()}},
        "audience_demographics_job": {"partition_key": tomorrow.isoformat()},
    }
    with dg.instance_for_test() as instance:
        for job_name, how in launches.items():
            outcome = launch.execute_linked_run(instance, job_name, **how)
            assert not outcome.success, job_name
            errors = [e.dagster_event.event_specific_data.error.message for e in instance.all_logs(outcome.run_id)
                      if e.dagster_event and e.dagster_event.is_step_failure]
            assert any("has not started yet" in message for message in errors), (job_name, errors)
    assert not server.request_log
    counts = _table(engine, "SELECT (SELECT count(*) FROM instagram.media), "
                            "(SELECT count(*) FROM instagram.media_insights_snapshots), "
                            "(SELECT count(*) FROM instagram.account_insights_daily), "
                            "(SELECT count(*) FROM instagram.audience_demographics)")
    assert counts == [(0, 0, 0, 0)]


def test_a_metric_a_post_rejected_is_not_asked_again_under_the_same_version(engine, ig_home, monkeypatch):
    """Some posts reject a metric at every capture (code 100 naming it; ~5 % of images reject `shares`). The
    first capture learns it; the next ones ask without it: no failed item, no re-ask, the same values stored."""
    world = SandboxWorld([AccountSpec("17841400000000001", "photo_shop", followers=4000, posts=40, posts_per_day=2.0)],
                         seed=7, now=SANDBOX_NOW)
    account = world.accounts[0]
    window_start = SANDBOX_NOW - timedelta(days=29)
    rejecting = {m.media_id: set(m.rejects) for m in account.history
                 if m.rejects and not m.pre_conversion and m.published_at >= window_start}
    assert rejecting  # the world has such posts (the sandbox guarantees one image among 8)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        assert materialize_media(hour_key(SANDBOX_NOW), refresh_all=True).success
        first_errors = [r for r in server.request_log if r.batch_item and r.status >= 400]
        server.reset_log()
        world.clock.advance(timedelta(hours=1))
        assert materialize_media(hour_key(SANDBOX_NOW + timedelta(hours=1)), refresh_all=True).success
        second = list(server.request_log)
    learnt = dict(_table(engine, "SELECT media_id, rejected_metrics FROM instagram.media"
                                 " WHERE rejected_metrics IS NOT NULL"))
    assert {k: set(v) for k, v in learnt.items()} == rejecting
    assert len(first_errors) == len(rejecting)  # learnt from one failed item each
    assert not [r for r in second if r.status >= 400]  # then never asked again
    asked = {r.path.split("/")[1]: r.params.get("metric", "") for r in second if r.path.endswith("/insights")}
    for media_id, metrics in rejecting.items():
        assert media_id in asked and not metrics & set(asked[media_id].split(",")), (media_id, asked.get(media_id))
    # the values stored are the same as with a re-ask: the rejected metric NULL, the others measured
    captured = _table(engine, "SELECT media_id, captured_at, shares, reach FROM instagram.media_insights_snapshots"
                              " WHERE media_id = ANY(:ids) ORDER BY 1, 2", ids=list(rejecting))
    assert len(captured) == 2 * len(rejecting)
    assert all(reach is not None for *_, reach in captured)
    assert all(shares is None for media_id, _, shares, _ in captured if "shares" in rejecting[media_id])
