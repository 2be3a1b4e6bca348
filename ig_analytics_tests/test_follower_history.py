"""The follower history (analytics/followers.py) against the sandbox's true per-day follower totals: the
ingestion code over real HTTP into a real PostgreSQL, at a chosen sandbox instant."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ig_analytics.analytics.followers import daily_unfollows, insights_day, reconstruct, refresh_follower_history
from benchmarks.direct_writes import refresh_media_engagement
from ig_analytics.analytics.reports import build_report
from ig_analytics.graph_api import GraphApiClient
from ig_analytics.graph_api.follows import fetch_follow_types
from ig_analytics.ingestion.account_insights import sync_account_insights
from ig_analytics.ingestion.follower_anchor import record_follower_anchor
from ig_analytics.ingestion.media_snapshots import CapturePolicy, sync_media
from ig_analytics.sandbox import AccountSpec, SandboxServer, SandboxWorld
from ig_analytics_tests.analytics_data import add_account, add_account_days, add_profile_snapshots

# 2 h 05 min after the insights day of Nov 19 ended (Pacific midnight, 08:00 UTC in winter): its follows are
# reported (2 h late), its follows_and_unfollows not yet (24 h late) - the usual state of a sync. The profile was
# read at 08:01 UTC, a minute after that day ended (the follower_anchors schedule).
T = datetime(2026, 11, 20, 10, 5, tzinfo=timezone.utc)
ANCHOR = datetime(2026, 11, 20, 8, 1, tzinfo=timezone.utc)
STEADY = "17841400000000001"  # nobody unfollows: every total is exact
CHURN = "17841400000000002"  # unfollows every day (follows_and_unfollows FOLLOWER / NON_FOLLOWER)


@pytest.fixture()
def synced(engine):
    world = SandboxWorld(
        [AccountSpec(STEADY, "steady", followers=1_200, timezone="UTC", posts=40, posts_per_day=1.0),
         AccountSpec(CHURN, "churn", followers=40_000, timezone="Asia/Tokyo", posts=40, posts_per_day=1.0,
                     unfollow_rate=0.4)],
        seed=4, now=T,
    )
    with engine.begin() as conn:
        for a in world.accounts:
            add_account(conn, a.ig_user_id, tz=a.timezone, username=a.username)
    with SandboxServer(world, port=0) as server:
        client = GraphApiClient(base_url=server.base_url, now=world.clock.now, backoff_base_s=0.01)
        try:
            world.clock.set(ANCHOR)
            for a in world.accounts:
                record_follower_anchor(engine, client.account(a.ig_user_id, a.token), a.ig_user_id, ANCHOR)
            world.clock.set(T)
            for a in world.accounts:
                api = client.account(a.ig_user_id, a.token)
                sync_media(engine, api, a.ig_user_id, T.replace(minute=0), T, client.version, T, CapturePolicy(),
                           refresh_all=True)
                sync_account_insights(engine, api, a.ig_user_id, T.date() - timedelta(days=45),
                                      T.date() - timedelta(days=1), client.version, T)
            with engine.begin() as conn:  # the rows the media_engagement asset computes (test_follower_rates.py)
                refresh_media_engagement(conn, now=T)
        finally:
            client.close()
    return world


def _history(engine, ig_user_id):
    with engine.connect() as conn:
        return {r.date: r for r in conn.execute(sa.text(
            "SELECT date, followers_total, followers_total_source, follower_count, unfollows, unfollows_source,"
            " measured_follows, measured_unfollows, follows_and_unfollows"
            " FROM instagram.account_insights_daily WHERE ig_user_id = :i AND followers_total IS NOT NULL"),
            {"i": ig_user_id})}


def test_reconstructed_totals_equal_the_sandbox_truth(engine, synced):
    world = synced
    steady = _history(engine, STEADY)
    yesterday = insights_day(T) - timedelta(days=1)
    # the API covers 30 days of follows: the totals of the 31 days up to yesterday are known
    assert sorted(steady) == [yesterday - timedelta(days=i) for i in range(30, -1, -1)]
    for d, row in steady.items():  # yesterday read at its end, every earlier day exactly its reported changes back
        assert row.followers_total == world.account(STEADY).followers_end_of(d), d
        assert row.followers_total_source == ("observed" if d == yesterday else "derived")
    churn = _history(engine, CHURN)
    acct = world.account(CHURN)
    assert len(churn) == 31
    # unfollows measured (breakdown=follow_type) wherever follows_and_unfollows is reported, and every day's
    # change exactly the true net change (follows - unfollows) where both are reported: the whole history is off by
    # at most one constant, the estimate of the changes not reported yet (yesterday's unfollows, today's hours)
    for d, row in churn.items():
        if d < yesterday:
            assert (row.measured_follows, row.measured_unfollows) == (
                world.account_metric(CHURN, "follower_count", d), acct.unfollows(d)), d
            assert (row.unfollows, row.unfollows_source) == (acct.unfollows(d), "measured"), d
        else:  # yesterday's follows_and_unfollows is not reported yet (24 h late): nothing measured or inferred
            assert (row.follows_and_unfollows, row.measured_unfollows, row.unfollows_source) == (None, None, None)
    offsets = {row.followers_total - acct.followers_end_of(d) for d, row in churn.items() if d < yesterday}
    assert len(offsets) == 1
    assert abs(offsets.pop()) <= 2 * acct.growth_per_day * (1 + world.account(CHURN).spec.unfollow_rate)


def test_followers_at_publish_and_growth_equal_the_truth(engine, synced):
    world = synced
    acct = world.account(STEADY)
    with engine.connect() as conn:
        posts = conn.execute(sa.text(
            "SELECT m.published_at, e.followers_at_publish, e.engagement, e.engagement_rate_followers"
            " FROM instagram.media m JOIN instagram.media_engagement e USING (media_id)"
            " WHERE m.ig_user_id = :i AND m.published_at > :since"), {"i": STEADY, "since": T - timedelta(days=29)}).all()
        assert len(posts) >= 20
        for published_at, followers, engagement, rate in posts:
            truth = acct.followers_end_of(insights_day(published_at) - timedelta(days=1))
            assert followers == truth, published_at
            assert rate == pytest.approx(engagement / truth * 100)
        # the 7 days ending the day before yesterday: both ends rest on fully reported days
        end = insights_day(T) - timedelta(days=2)
        for ig_user_id in (STEADY, CHURN):
            a = world.account(ig_user_id)
            am = build_report(conn, ig_user_id, end - timedelta(days=6), end)["account_metrics"]
            assert am["follower_growth"] == a.followers_end_of(end) - a.followers_end_of(end - timedelta(days=7))
            days = [end - timedelta(days=i) for i in range(7)]
            assert am["new_followers"] == sum(world.account_metric(ig_user_id, "follower_count", d) for d in days)
            assert am["unfollows"] == sum(a.unfollows(d) for d in days)


def test_unfollows_older_than_the_30_days_of_follows_are_measured_too(engine, synced):
    world = synced
    acct = world.account(CHURN)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT date, follower_count, measured_follows, unfollows, unfollows_source"
            " FROM instagram.account_insights_daily WHERE ig_user_id = :i AND date < :d ORDER BY date"),
            {"i": CHURN, "d": insights_day(T) - timedelta(days=31)}).all()
    assert len(rows) >= 10  # 45 days synced: the oldest have no follower_count, so no inference was possible
    for row in rows:
        assert row.follower_count is None and row.measured_follows == world.account_metric(CHURN, "follower_count",
                                                                                           row.date)
        assert (row.unfollows, row.unfollows_source) == (acct.unfollows(row.date), "measured")


def test_90_days_of_follow_types_cost_2_batch_requests_and_equal_the_truth():
    world = SandboxWorld([AccountSpec(CHURN, "churn", followers=40_000, posts=5, unfollow_rate=0.4)], seed=4, now=T)
    acct = world.account(CHURN)
    days = [insights_day(T) - timedelta(days=i) for i in range(91, 1, -1)]  # 90 fully reported days
    with SandboxServer(world, port=0) as server:
        client = GraphApiClient(base_url=server.base_url, now=lambda: T, backoff_base_s=0.01)
        try:
            server.reset_log()
            got = fetch_follow_types(client.account(CHURN, acct.token), days)
            requests = [r for r in server.request_log if not r.batch_item]
            items = [r for r in server.request_log if r.batch_item]
        finally:
            client.close()
    assert [r.path for r in requests] == ["/", "/"] and len(items) == 90
    assert all(r.params["breakdown"] == "follow_type" and r.params["metric_type"] == "total_value" for r in items)
    assert {d: (v.follows, v.unfollows) for d, v in got.items()} == {
        d: (world.account_metric(CHURN, "follower_count", d), acct.unfollows(d)) for d in days}


def test_a_version_rejecting_follow_type_falls_back_to_the_inference(engine, monkeypatch):
    from ig_analytics.sandbox import catalog

    monkeypatch.setitem(catalog._BREAKDOWN_METRICS, "follow_type", frozenset({"reach"}))  # rejects the split
    world = SandboxWorld([AccountSpec(CHURN, "churn", followers=40_000, posts=5, unfollow_rate=0.4)], seed=4, now=T)
    acct = world.account(CHURN)
    with engine.begin() as conn:
        add_account(conn, CHURN, username="churn")
    with SandboxServer(world, port=0) as server:
        client = GraphApiClient(base_url=server.base_url, now=lambda: T, backoff_base_s=0.01)
        try:
            sync_account_insights(engine, client.account(CHURN, acct.token), CHURN, T.date() - timedelta(days=10),
                                  T.date() - timedelta(days=3), client.version, T)
        finally:
            client.close()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT date, measured_unfollows, unfollows, unfollows_source"
                                    " FROM instagram.account_insights_daily ORDER BY date")).all()
    assert len(rows) == 8
    assert [(r.measured_unfollows, r.unfollows, r.unfollows_source) for r in rows] == [
        (None, acct.unfollows(r.date), "inferred") for r in rows]


def test_a_day_without_the_split_falls_back_to_the_inference():
    d0 = date(2026, 3, 1)
    days = {d0: (5, 7, 3), d0 + timedelta(days=1): (5, 7, None), d0 + timedelta(days=2): (5, None, None)}
    assert daily_unfollows(days) == {d0: (3, "measured"), d0 + timedelta(days=1): (2, "inferred"),
                                     d0 + timedelta(days=2): (None, None)}
    assert daily_unfollows({d0: (5, None, None)}) == {d0: (0, "assumed_zero")}  # a version without the metric


def test_observed_totals_win_and_derived_ones_hang_from_the_nearest(engine):
    d0 = date(2026, 3, 10)
    days = {d0 + timedelta(days=i): (10, None) for i in range(7)}  # +10 a day, no unfollow data (old version)
    # readings 5 min after days d0+1 and d0+5 ended (Pacific midnight, 07:00 UTC in March: observed; they
    # disagree with the +10 a day by 5), and a part-day reading 5 h into the day after d0+6 that agrees with neither
    snapshots = [(datetime(2026, 3, 12, 7, 5, tzinfo=timezone.utc), 500),
                 (datetime(2026, 3, 16, 7, 5, tzinfo=timezone.utc), 545),
                 (datetime(2026, 3, 17, 12, 0, tzinfo=timezone.utc), 2000)]
    out = reconstruct(days, snapshots)
    assert out[d0 + timedelta(days=1)] == (500, "observed")
    assert out[d0 + timedelta(days=5)] == (545, "observed")
    assert out[d0] == (490, "derived")  # one day back from d0+1
    assert out[d0 + timedelta(days=2)] == (510, "derived")  # one day on from d0+1, not three back from d0+5
    assert out[d0 + timedelta(days=4)] == (535, "derived")  # one day back from d0+5
    assert out[d0 + timedelta(days=6)] == (555, "derived")  # on from d0+5: the part-day reading is not needed
    # without an observed day, everything hangs from the part-day reading (5/24 of today's +10 already happened)
    assert reconstruct(days, snapshots[2:])[d0 + timedelta(days=6)] == (1998, "derived")
    with engine.begin() as conn:
        add_account(conn, "O")
        add_account_days(conn, "O", [{"date": d, "follower_count": 10} for d in days])
        add_profile_snapshots(conn, "O", snapshots[2:])
        refresh_follower_history(conn, ["O"])
        # the readings at the day ends arrive: derived values move to them, observed ones are never overwritten
        add_profile_snapshots(conn, "O", snapshots[:2])
        refresh_follower_history(conn, ["O"])
        add_profile_snapshots(conn, "O", [(datetime(2026, 3, 18, 12, 0, tzinfo=timezone.utc), 3000)])
        refresh_follower_history(conn, ["O"])
        rows = dict(conn.execute(sa.text(
            "SELECT date, (followers_total, followers_total_source, unfollows, unfollows_source)::text"
            " FROM instagram.account_insights_daily")).all())
    assert rows[d0 + timedelta(days=1)] == "(500,observed,0,assumed_zero)"
    assert rows[d0 + timedelta(days=2)] == "(510,derived,0,assumed_zero)"
    assert rows[d0 + timedelta(days=6)] == "(555,derived,0,assumed_zero)"


def test_no_history_is_invented_across_a_gap():
    d0 = date(2026, 3, 1)
    days = {d0 + timedelta(days=i): (5, 7) for i in range(10)}  # 2 unfollows a day: net +3
    days[d0 + timedelta(days=4)] = (None, None)  # an old gap in the follows
    out = reconstruct(days, [(datetime(2026, 3, 11, 7, 0, tzinfo=timezone.utc), 1000)])
    assert out[d0 + timedelta(days=9)] == (1000, "observed")  # read right when day 9 ended
    assert out[d0 + timedelta(days=4)] == (985, "derived")
    assert d0 + timedelta(days=3) not in out  # the change of day 4 is unknown: nothing before it
    assert reconstruct(days, []) == {}
