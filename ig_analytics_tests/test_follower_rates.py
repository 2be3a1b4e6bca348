"""One writer of instagram.media_engagement: a changed follower history reaches the posts' rates by followers
through the ``media_engagement`` asset (its restatement of older posts) and the ``follower_rates`` sensor that
runs it after an account-insights or anchor run; no ingestion code writes the table."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics import clock
from ig_analytics.accounts.shards import SHARD_TAG
from ig_analytics.constants import TRIGGER_TAG
from ig_analytics.defs import analytics_assets
from ig_analytics.defs.follower_rates import follower_rates
from ig_analytics.defs.resources import AnalyticsDatabase
from ig_analytics_tests.analytics_data import add_account, add_account_days, add_media, add_snapshots

OLD_HOUR = datetime(2026, 11, 11, 10, tzinfo=timezone.utc)
HOUR = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
# Published 04:00 Pacific on Nov 10: its follower total is the one at the end of Nov 9 (Meta's days are Pacific).
OLD_POST = {"media_id": "P_OLD", "ig_user_id": "A", "published_at": datetime(2026, 11, 10, 12, tzinfo=timezone.utc)}
NEW_POST = {"media_id": "P_NEW", "ig_user_id": "A", "published_at": datetime(2026, 11, 19, 12, tzinfo=timezone.utc)}


def _materialize(hour: datetime) -> dict:
    result = dg.materialize([analytics_assets.media_engagement], partition_key=hour.strftime("%Y-%m-%d-%H:00"),
                            resources=analytics_assets.analytics_resources(AnalyticsDatabase()))
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _row(engine, media_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT followers_at_publish, engagement_rate_followers, computed_at FROM instagram.media_engagement"
            " WHERE media_id = :m"), {"m": media_id}).one()


def test_a_changed_follower_history_is_restated_by_the_next_run_and_only_once(engine, ig_home):
    with engine.begin() as conn:
        add_account(conn, "A")
        add_media(conn, [OLD_POST, NEW_POST])
        add_snapshots(conn, [
            {"media_id": "P_OLD", "ig_user_id": "A", "captured_at": OLD_HOUR, "likes": 10, "reach": 100},
            {"media_id": "P_NEW", "ig_user_id": "A", "captured_at": HOUR, "likes": 30, "reach": 300},
        ])
        add_account_days(conn, "A", [{"date": date(2026, 11, 9), "followers_total": 1000},
                                     {"date": date(2026, 11, 18), "followers_total": 1500}])
    with clock.frozen(OLD_HOUR):
        first = _materialize(OLD_HOUR)
    assert first["followers_restated_posts"] == 0
    assert _row(engine, "P_OLD")[:2] == (1000, pytest.approx(10 / 1000 * 100))

    # the account's insights sync rebuilds the history (a new anchor moved the derived totals)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE instagram.account_insights_daily SET followers_total = 500"
                             " WHERE ig_user_id = 'A' AND date = '2026-11-09'"))
    with clock.frozen(HOUR):
        second = _materialize(HOUR)  # a later hour: P_OLD's newest snapshot is not in it
    assert second["posts"] == 1 and second["followers_restated_posts"] == 1 and second["rows_restated"] == 1
    followers, rate, restated_at = _row(engine, "P_OLD")
    assert (followers, rate) == (500, pytest.approx(10 / 500 * 100))
    assert restated_at == HOUR
    assert _row(engine, "P_NEW")[:2] == (1500, pytest.approx(30 / 1500 * 100))

    with clock.frozen(HOUR.replace(minute=30)):
        third = _materialize(HOUR)  # nothing changed since: nothing restated, nothing rewritten
    assert third["followers_restated_posts"] == 0 and "rows_restated" not in third
    assert _row(engine, "P_OLD")[2] == HOUR


@dg.asset(key="account_insights_daily")
def _insights_stand_in() -> None:
    """Stands in for the account-insights asset: the sensor only reads which run materialized the key."""


def _run(instance, tags: dict) -> str:
    result = dg.materialize([_insights_stand_in], instance=instance, tags=tags)
    assert result.success
    return result.run_id


def _evaluate(instance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    requests = list(follower_rates(context))
    return requests, context.cursor


def test_the_sensor_runs_media_engagement_after_each_insights_run_with_its_shard():
    with dg.instance_for_test() as instance, clock.frozen(HOUR.replace(minute=4)):
        _run(instance, {})  # before the sensor's first evaluation: history is not replayed
        requests, cursor = _evaluate(instance, None)
        assert requests == []
        shard_run = _run(instance, {SHARD_TAG: "1/4"})
        _run(instance, {TRIGGER_TAG: "cli"})  # `ig-analytics sync` runs follower_rates_job itself
        requests, cursor = _evaluate(instance, cursor)
        assert [(r.run_key, r.partition_key, r.tags.get(SHARD_TAG)) for r in requests] == [
            (f"follower-rates-{shard_run}", "2026-11-20-10:00", "1/4")]
        assert _evaluate(instance, cursor)[0] == []  # each run once
        assert set(json.loads(cursor)) == {"account_insights_daily", "follower_anchors"}
