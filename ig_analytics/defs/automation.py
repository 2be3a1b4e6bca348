"""How the schedules load in the daemon: running, unless ``IG_ANALYTICS_SCHEDULES=off`` (a staging copy that must
not call Meta by itself, or tests of the UI that must not see a tick land during the test). Read once at import,
like the partitions, so every process of a deployment builds the same definitions. Sensors that launch runs
(follower_rates) follow the schedules; the alert sensors always run:
they only read and notify."""

from __future__ import annotations

import os

import dagster as dg

from ig_analytics.settings import parse_schedules

SCHEDULE_STATUS = (dg.DefaultScheduleStatus.RUNNING if parse_schedules(os.environ.get("IG_ANALYTICS_SCHEDULES"))
                   else dg.DefaultScheduleStatus.STOPPED)
# Sensors that launch runs (follower_rates) follow the schedules: off together, on together.
SENSOR_STATUS = (dg.DefaultSensorStatus.RUNNING if SCHEDULE_STATUS == dg.DefaultScheduleStatus.RUNNING
                 else dg.DefaultSensorStatus.STOPPED)
