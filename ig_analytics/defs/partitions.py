"""Partitions, all in UTC. Start dates are settings so an installation can keep its partition count small
(Dagster copes well below ~100,000 partitions per asset; accounts are looped inside a run, never partitions)."""

from __future__ import annotations

import os

import dagster as dg

# Meta serves account insights back about two years.
DAILY_START = os.environ.get("IG_ANALYTICS_DAILY_START", "2025-01-01")
# Snapshots cannot be taken in the past (lifetime values are "as of now"), so hourly history starts late.
HOURLY_START = os.environ.get("IG_ANALYTICS_HOURLY_START", "2026-11-01-00:00")

daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone="UTC")
# end_offset=1: the hour in progress is a partition, so a capture is labelled with the hour it happens in.
hourly_partitions = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC", end_offset=1)
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=DAILY_START, timezone="UTC", day_offset=1)  # Mondays
