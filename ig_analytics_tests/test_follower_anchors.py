"""Follower totals anchored at Meta's day end (Pacific midnight): the sandbox's clock is moved across a winter day
end (08:00 UTC) and a summer one (07:00 UTC); the ingestion code reads the profile a minute after each, over real
HTTP into a real PostgreSQL; every stored ``followers_total`` is compared with the sandbox's own true end-of-day
totals. Days and instants are written out here, not computed with the product's day functions."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.graph_api import GraphApiClient
from ig_analytics.ingestion.account_insights import sync_account_insights
from ig_analytics.ingestion.follower_anchor import record_follower_anchor
from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics_tests.analytics_data import add_account

NYC, TOKYO = "17841400000000002", "17841400000000003"  # the demo's: nobody unfollows NYC, Tokyo loses some daily
MINUTE = timedelta(minutes=1)

# (the day D whose end is read, the instant it ends in UTC, the instant the next day ends)
WINTER = (date(2026, 12, 19), datetime(2026, 12, 20, 8, tzinfo=timezone.utc),
          datetime(2026, 12, 21, 8, tzinfo=timezone.utc))
SUMMER = (date(2026, 7, 15), datetime(2026, 7, 16, 7, tzinfo=timezone.utc),
          datetime(2026, 7, 17, 7, tzinfo=timezone.utc))


def _totals(engine, ig_user_id):
    with engine.connect() as conn:
        return {r.date: (r.followers_total, r.followers_total_source) for r in conn.execute(sa.text(
            "SELECT date, followers_total, followers_total_source FROM instagram.account_insights_daily"
            " WHERE ig_user_id = :i AND followers_total IS NOT NULL"), {"i": ig_user_id})}


@pytest.mark.parametrize("season", [WINTER, SUMMER], ids=["winter", "summer"])
def test_totals_equal_the_sandbox_truth_on_every_anchored_day(engine, season):
    day, end, next_end = season
    first_sync = end - timedelta(hours=6)  # the afternoon of day D, Pacific time: the first sync, no reading yet
    world = SandboxWorld.demo(now=first_sync)
    with engine.begin() as conn:
        for a in world.accounts:
            add_account(conn, a.ig_user_id, tz=a.timezone, username=a.username)
    with SandboxServer(world, port=0) as server:
        client = GraphApiClient(base_url=server.base_url, now=world.clock.now, backoff_base_s=0.01)
        try:
            def sync(first: date, last: date) -> None:
                for a in world.accounts:
                    sync_account_insights(engine, client.account(a.ig_user_id, a.token), a.ig_user_id, first, last,
                                          client.version, world.clock.now())

            def read_profiles() -> None:
                for a in world.accounts:
                    record_follower_anchor(engine, client.account(a.ig_user_id, a.token), a.ig_user_id,
                                           world.clock.now())

            sync(day - timedelta(days=44), day)
            world.clock.set(end + MINUTE)  # the follower_anchors schedule: 00:01 Pacific
            read_profiles()
            world.clock.set(next_end + MINUTE)
            read_profiles()
            world.clock.set(next_end + timedelta(hours=2, minutes=5))  # the next daily sync re-fetches 3 days
            sync(day - timedelta(days=2), day + timedelta(days=1))
        finally:
            client.close()
    for ig_user_id in (NYC, TOKYO):
        stored = _totals(engine, ig_user_id)
        truth = {d: world.account_metric(ig_user_id, "followers_total", d) for d in stored}
        # the first sync's 30 days of follows reach back to the end of D-31; both read days observed
        assert sorted(stored) == [day - timedelta(days=i) for i in range(31, -2, -1)], ig_user_id
        assert {d: total for d, (total, _) in stored.items()} == truth, ig_user_id
        assert {d for d, (_, source) in stored.items() if source == "observed"} == {day, day + timedelta(days=1)}


def test_the_oldest_served_follower_count_day_is_asked_and_stored(engine):
    # 03:00 UTC on Dec 20 is still Dec 19 in Pacific time: the API serves follower_count for Nov 19..Dec 18, and a
    # client counting 30 days back from the UTC date (Dec 20) would never ask for Nov 19
    now = datetime(2026, 12, 20, 3, tzinfo=timezone.utc)
    oldest = date(2026, 11, 19)
    world = SandboxWorld.demo(now=now)
    acct = world.account(TOKYO)
    with engine.begin() as conn:
        add_account(conn, TOKYO, tz=acct.timezone, username=acct.username)
    with SandboxServer(world, port=0) as server:
        client = GraphApiClient(base_url=server.base_url, now=world.clock.now, backoff_base_s=0.01)
        try:
            sync_account_insights(engine, client.account(TOKYO, acct.token), TOKYO, date(2026, 11, 1),
                                  date(2026, 12, 19), client.version, now)
        finally:
            client.close()
    with engine.connect() as conn:
        follows = dict(conn.execute(sa.text(
            "SELECT date, follower_count FROM instagram.account_insights_daily"
            " WHERE ig_user_id = :i AND follower_count IS NOT NULL"), {"i": TOKYO}).all())
    assert sorted(follows) == [oldest + timedelta(days=i) for i in range(30)]
    assert follows[oldest] == world.account_metric(TOKYO, "follower_count", oldest)
    # so the totals reach the end of Nov 18: 31 of them, the end of the day before a post of Nov 19
    assert min(_totals(engine, TOKYO)) == oldest - timedelta(days=1)
    assert len(_totals(engine, TOKYO)) == 31


def test_the_anchor_schedule_fires_a_minute_after_pacific_midnight_all_year():
    from dagster._utils.schedules import cron_string_iterator

    from ig_analytics.definitions import defs

    schedule = defs.get_schedule_def("daily_follower_anchors")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for season, ends in (("winter", WINTER), ("summer", SUMMER)):
        ticks = cron_string_iterator(ends[1].timestamp() - 3600, schedule.cron_schedule, schedule.execution_timezone)
        assert next(ticks) == ends[1] + MINUTE, season  # 08:01 UTC in winter, 07:01 UTC in summer


def test_the_anchor_asset_reads_every_account_and_records_the_run(engine, ig_home, monkeypatch):
    from ig_analytics.defs.follower_anchor_assets import follower_anchors
    from ig_analytics.defs.ingestion_assets import ACCOUNTS
    from ig_analytics_tests.ingestion_harness import RESOURCES, register

    world = SandboxWorld.demo()  # the sandbox on the wall clock: the asset reads the profile "now"
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        register(engine, world)
        result = dg.materialize([ACCOUNTS, follower_anchors], selection=[follower_anchors], resources=RESOURCES)
        requests = [r for r in server.request_log if r.path.endswith(tuple(a.ig_user_id for a in world.accounts))]
    assert result.success
    assert len(requests) == 3  # one profile read per account
    with engine.connect() as conn:
        snapshots = conn.execute(sa.text("SELECT ig_user_id, followers_total FROM instagram.account_profile_snapshots"
                                         " ORDER BY 1")).all()
        runs = conn.execute(sa.text("SELECT ig_user_id, status FROM instagram.sync_runs WHERE sync_type = 'followers'"
                                    " ORDER BY 1")).all()
    assert [s.ig_user_id for s in snapshots] == [r.ig_user_id for r in runs] == [a.ig_user_id for a in world.accounts]
    assert {r.status for r in runs} == {"success"}
    assert all(s.followers_total > 0 for s in snapshots)


def test_the_sandbox_ends_winter_days_at_0800_utc_and_the_client_dates_them_as_meta_does():
    world = SandboxWorld.demo(now=datetime(2019, 12, 22, 12, tzinfo=timezone.utc))
    acct = world.account(NYC)
    with SandboxServer(world, port=0) as server:
        client = GraphApiClient(base_url=server.base_url, now=world.clock.now, backoff_base_s=0.01)
        try:
            api = client.account(NYC, acct.token)
            raw = api.get(f"{NYC}/insights", {"metric": "reach", "period": "day", "since": "1576713600",  # Dec 19
                                              "until": "1576800000"})  # Dec 20, 00:00 UTC
            days = api.account_insights(date(2019, 12, 19), date(2019, 12, 19))
        finally:
            client.close()
    assert [v["end_time"] for v in raw["data"][0]["values"]] == ["2019-12-20T08:00:00+0000"]  # facts sheet, sec. 9
    assert [(d.date, d.values["reach"]) for d in days] == [(date(2019, 12, 19),
                                                            world.account_metric(NYC, "reach", date(2019, 12, 19)))]
