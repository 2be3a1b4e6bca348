"""Report assets over a partition range (a backfill, the demo): one run writes every period's reports, notifies
only for the newest period, and links the newest period's HTML files as file:// URLs in the metadata."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ig_analytics.defs import analytics_assets
from ig_analytics_tests.analytics_data import add_account, add_account_days
from ig_analytics_tests.ingestion_harness import RESOURCES

ACCOUNT = "17841400000000077"


def _materialize(asset, first: str, last: str, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], resources=RESOURCES, instance=instance,
                          tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})


def test_range_runs_write_every_period_and_notify_the_newest(engine, ig_home):
    with engine.begin() as conn:
        add_account(conn, ACCOUNT, followers_total=1000)
        add_account_days(conn, ACCOUNT, [{"date": date(2026, 10, 1) + timedelta(days=i), "reach": 100 + i}
                                         for i in range(40)])
    with dg.instance_for_test() as instance:
        daily = _materialize(analytics_assets.performance_reports, "2026-10-20", "2026-10-24", instance)
        weekly = _materialize(analytics_assets.weekly_performance_reports, "2026-10-05", "2026-10-19", instance)
        assert daily.success and weekly.success
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT kind, period_start, period_end, html_path FROM instagram.performance_reports"
                " ORDER BY kind, period_end")).all()
            notified = conn.execute(sa.text(
                "SELECT split_part(dedupe_key, ':', 5) FROM instagram.notifications WHERE kind = 'report'"
                " ORDER BY 1")).scalars().all()  # report:<account>:<kind>:<start>:<end>
        rolling = [(r.period_start, r.period_end) for r in rows if r.kind == "rolling_7d"]
        assert rolling == [(date(2026, 10, d - 6), date(2026, 10, d)) for d in range(20, 25)]
        weeks = [(r.period_start, r.period_end) for r in rows if r.kind == "weekly"]
        assert weeks == [(date(2026, 10, 5), date(2026, 10, 11)), (date(2026, 10, 12), date(2026, 10, 18)),
                         (date(2026, 10, 19), date(2026, 10, 25))]
        assert notified == ["2026-10-24", "2026-10-25"]  # the newest period of each run only
        event = instance.get_latest_materialization_event(dg.AssetKey("performance_reports"))
        metadata = event.asset_materialization.metadata
        newest = next(r.html_path for r in rows if r.kind == "rolling_7d" and r.period_end == date(2026, 10, 24))
        assert metadata[f"report_{ACCOUNT}"] == dg.MetadataValue.url(Path(newest).resolve().as_uri())
        assert metadata["reports"].value == 5 and metadata["periods"].value == 5
