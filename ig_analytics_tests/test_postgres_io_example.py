"""The analyst's extension point: examples/analyst_assets.py, named in IG_ANALYTICS_USER_MODULES, joins the
ig_analytics code location downstream of media_engagement, reads a partition of it through the PostgreSQL IO
manager and writes its own table; its numbers equal an independent SQL computation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ig_analytics.defs.user_modules import UserModuleError, user_assets
from ig_analytics_tests.analytics_data import add_account, add_media, add_snapshots

ROOT = Path(__file__).resolve().parents[1]
HOUR = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)  # a fixed partition: no wall clock read


@pytest.fixture()
def with_example(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("IG_ANALYTICS_USER_MODULES", "examples.analyst_assets")
    from ig_analytics.definitions import build_definitions

    return build_definitions()


def _seed(engine):
    with engine.begin() as conn:
        for user in ("A", "B"):
            add_account(conn, user)
        posts = [("a1", "A", 10, 200), ("a2", "A", None, 100), ("a3", "A", 7, 0), ("b1", "B", 30, 600),
                 ("b2", "B", 5, 50)]
        add_media(conn, [{"media_id": m, "ig_user_id": u, "published_at": HOUR - timedelta(days=2)} for m, u, _, _ in posts])
        add_snapshots(conn, [{"media_id": m, "ig_user_id": u, "captured_at": HOUR, "likes": likes, "reach": reach}
                             for m, u, likes, reach in posts])
        # captured in the hour before, newest snapshot there: not in this hour's partition
        add_media(conn, [{"media_id": "old", "ig_user_id": "A", "published_at": HOUR - timedelta(days=3)}])
        add_snapshots(conn, [{"media_id": "old", "ig_user_id": "A", "captured_at": HOUR - timedelta(hours=1),
                              "likes": 99, "reach": 100}])


def test_the_example_is_in_the_lineage_downstream_of_media_engagement(with_example):
    graph = with_example.get_repository_def().asset_graph
    key = dg.AssetKey("analyst_hourly_engagement")
    assert dg.AssetKey("media_engagement") in graph.get(key).parent_keys
    assert graph.get(key).assets_def.get_io_manager_key_for_asset_key(key) == "postgres_io"


def test_a_partition_of_the_example_equals_an_independent_computation(with_example, engine, ig_home):
    _seed(engine)
    defs = with_example
    from examples.analyst_assets import analyst_hourly_engagement

    from ig_analytics.defs.analytics_assets import media_engagement

    with dg.instance_for_test() as instance:  # the code location's own resources: postgres_io among them
        result = dg.materialize([media_engagement, analyst_hourly_engagement], resources=dict(defs.resources),
                                instance=instance,
                                partition_key=HOUR.strftime("%Y-%m-%d-%H:00"))
    assert result.success
    with engine.connect() as conn:
        got = conn.execute(sa.text(
            "SELECT ig_user_id, hour_start, posts, engagement, reach, engagement_rate_reach"
            " FROM instagram.analyst_hourly_engagement ORDER BY 1")).all()
        expected = conn.execute(sa.text(
            "SELECT ig_user_id, date_trunc('hour', captured_at), count(*),"
            " sum(engagement) FILTER (WHERE engagement IS NOT NULL AND reach > 0),"
            " sum(reach) FILTER (WHERE engagement IS NOT NULL AND reach > 0)"
            " FROM instagram.media_engagement WHERE captured_at >= :h AND captured_at < :h + interval '1 hour'"
            " GROUP BY 1, 2 ORDER BY 1"), {"h": HOUR}).all()
    assert [tuple(r[:5]) for r in got] == [tuple(r) for r in expected]
    # and by hand: A has a1 (10 of 200), a2 (no engagement), a3 (reach 0); B has b1 and b2
    assert [tuple(r[:5]) for r in got] == [("A", HOUR, 3, 10, 200), ("B", HOUR, 2, 35, 650)]
    assert got[0].engagement_rate_reach == pytest.approx(5.0) and got[1].engagement_rate_reach == pytest.approx(3500 / 650)


def test_a_module_that_cannot_be_imported_is_named():
    with pytest.raises(UserModuleError, match="IG_ANALYTICS_USER_MODULES: cannot import 'no_such_module_xyz'"):
        user_assets("no_such_module_xyz")
    assert user_assets("") == []
