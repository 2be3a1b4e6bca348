"""Partitions, all in UTC. Where they start comes from the install marker (ig_analytics/install_marker.py,
docs/architecture.md "Partitions"), so the fill bars of the UI read as coverage: hourly from the install's first
hour, daily from the first sync's history, weekly from the first full week in it, daily snapshots of the current
audience from the day before the install. ``IG_ANALYTICS_DAILY_START`` /
``IG_ANALYTICS_HOURLY_START`` override them (Dagster copes well below ~100,000 partitions per asset; accounts are
looped inside a run, never partitions).

Every process of a deployment must build the same definitions: they are computed once, at import, from the
marker, which is written once and never changes."""

from __future__ import annotations

import dagster as dg

from ig_analytics.install_marker import current_starts

STARTS = current_starts()
DAILY_START = STARTS.daily
HOURLY_START = STARTS.hourly
WEEKLY_START = STARTS.weekly
SNAPSHOT_START = STARTS.snapshots

daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone="UTC")
# end_offset=1: the hour in progress is a partition, so a capture is labelled with the hour it happens in.
hourly_partitions = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC", end_offset=1)
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=WEEKLY_START, timezone="UTC", day_offset=1)  # Mondays
# Daily pictures of "now" (audience demographics): none can be taken for a day before the install.
snapshot_daily_partitions = dg.DailyPartitionsDefinition(start_date=SNAPSHOT_START, timezone="UTC")
