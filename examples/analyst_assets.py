"""An analyst's own asset, in the analyst's own module: per account and hour, how the posts whose newest snapshot
was captured in that hour did (posts, engagement, reach, engagement rate by reach), from a partition of
``media_engagement`` read through the PostgreSQL IO manager, written to the analyst's own table
``instagram.analyst_hourly_engagement``.

Load it into the ``ig_analytics`` code location (the UI, the daemon, ``ig-analytics sync``) with

    export PYTHONPATH=/path/to/the/folder/holding/examples    # here: the repository root
    export IG_ANALYTICS_USER_MODULES=examples.analyst_assets   # comma-separated module names

It then shows in the lineage downstream of ``media_engagement``; materialize a partition in the UI, or add it to
a job. Its table is created by the IO manager from the columns declared below on its first write (the product's
migrations only create product tables); change a column later by dropping or altering the table yourself.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from ig_analytics.defs.partitions import hourly_partitions
from ig_analytics.defs.postgres_io import IO_MANAGER_KEY, user_table
from ig_analytics.storage.tables import Column

TABLE = user_table(
    "analyst_hourly_engagement",
    [
        Column("ig_user_id", "text", "the account", key=True),
        Column("hour_start", "timestamptz", "the capture hour (UTC) of the posts' newest snapshot", key=True),
        Column("posts", "bigint", "posts whose newest snapshot was captured in that hour"),
        Column("engagement", "bigint", "their summed engagement, over the posts with engagement and reach > 0"),
        Column("reach", "bigint", "their summed reach, over the same posts"),
        Column("engagement_rate_reach", "double precision", "engagement / reach x 100 of those sums"),
    ],
    mode="replace",  # a re-run of an hour replaces that hour's rows
    slice_column="hour_start",
)


@dg.asset(
    # only the columns it names are read, and only the rows of the partition's hour(s)
    ins={"media_engagement": dg.AssetIn(metadata={"columns": ["ig_user_id", "captured_at", "engagement", "reach"]})},
    partitions_def=hourly_partitions,  # the same hours as media_engagement: partition H reads partition H
    backfill_policy=dg.BackfillPolicy.single_run(),  # a range of hours is one run, one read, one write
    io_manager_key=IO_MANAGER_KEY,
    group_name="analyst",
    kinds={"pandas", "postgres"},
    metadata=TABLE,
    description="Per account and capture hour: posts, engagement, reach and engagement rate (an analyst's example).",
)
def analyst_hourly_engagement(media_engagement: pd.DataFrame) -> pd.DataFrame:
    frame = media_engagement.assign(hour_start=media_engagement["captured_at"].dt.floor("h"))
    measured = frame["engagement"].notna() & (frame["reach"] > 0)
    frame["m_engagement"] = frame["engagement"].where(measured)
    frame["m_reach"] = frame["reach"].where(measured)
    out = frame.groupby(["ig_user_id", "hour_start"]).agg(
        posts=("ig_user_id", "size"),
        engagement=("m_engagement", lambda s: s.sum(min_count=1)),
        reach=("m_reach", lambda s: s.sum(min_count=1)),
    ).reset_index()
    out["engagement_rate_reach"] = out["engagement"].astype("float64") * 100.0 / out["reach"].astype("float64")
    return out
