"""A changed follower history reaches the posts' follower-based rates through the asset graph.

``media_engagement`` is the one writer of instagram.media_engagement. Its rate by followers divides by the
follower total at the end of the day before publication, which the account-insights sync and the day-end anchor
read rebuild (analytics/followers.py). Every ``media_engagement`` run restates the posts whose stored total the
history has since changed (engagement.read_followers_changed), so the hourly media job alone makes every rate
right within the hour, in any job order. This sensor shortens that hour to a minute: after each run that
materialized ``account_insights_daily`` or ``follower_anchors`` it starts ``follower_rates_job`` (``media_engagement``
alone) for the hour in progress, with that run's shard, so the 03:00 reports read current rates even when the 02:00
insights runs end after the 02:10 media run. ``ig-analytics sync`` runs the job itself (docs/architecture.md,
"One writer per table")."""

from __future__ import annotations

import json

import dagster as dg

from ig_analytics import clock
from ig_analytics.accounts.shards import SHARD_TAG
from ig_analytics.constants import TRIGGER_TAG
from ig_analytics.install_marker import HOURLY_FORMAT
from ig_analytics.defs.automation import SENSOR_STATUS
from ig_analytics.defs.partitions import hourly_partitions

WATCHED = ("account_insights_daily", "follower_anchors")
_BATCH = 200

follower_rates_job = dg.define_asset_job(
    "follower_rates_job",
    selection=dg.AssetSelection.assets("media_engagement"),
    partitions_def=hourly_partitions,
    description=("media_engagement for the hour in progress after a follower history changed: restates the "
                 "follower-based rates of the posts whose follower total at publication moved."),
)


def hour_key(now) -> str:
    """The hourly partition of the hour in progress (hourly partitions include it: end_offset=1)."""
    return now.strftime(HOURLY_FORMAT)


def new_materializing_runs(instance: dg.DagsterInstance, cursor: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """The runs that materialized a watched asset after the cursor (run ids in event order, once each), and the
    cursor past them. A watched asset without a cursor starts at its newest event: history is not replayed (the
    hourly media job restates what a new sensor missed)."""
    cursor, runs = dict(cursor), {}
    for name in WATCHED:
        key = dg.AssetKey(name)
        if name not in cursor:
            newest = instance.fetch_materializations(key, limit=1).records
            cursor[name] = newest[0].storage_id if newest else 0
            continue
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor[name]), limit=_BATCH, ascending=True,
        ).records
        for record in records:
            runs.setdefault(record.run_id, None)
            cursor[name] = record.storage_id
    return list(runs), cursor


@dg.sensor(
    name="follower_rates",
    job=follower_rates_job,
    minimum_interval_seconds=30,
    default_status=SENSOR_STATUS,
    description=("After a run materializes account_insights_daily or follower_anchors, runs media_engagement for "
                 "the hour in progress (same shard) so the posts' rates by followers follow the new history."),
)
def follower_rates(context: dg.SensorEvaluationContext):
    runs, cursor = new_materializing_runs(context.instance, json.loads(context.cursor) if context.cursor else {})
    for run_id in runs:
        run = context.instance.get_run_by_id(run_id)
        if run is None or run.tags.get(TRIGGER_TAG) == "cli":
            continue
        shard = {SHARD_TAG: run.tags[SHARD_TAG]} if SHARD_TAG in run.tags else {}
        yield dg.RunRequest(run_key=f"follower-rates-{run_id}", partition_key=hour_key(clock.now()),
                            tags={**shard, "ig_analytics/after_run": run_id})
    context.update_cursor(json.dumps(cursor))
