"""The Dagster layer: partitions, resources, assets, checks, jobs, schedules, sensors."""

import warnings

# BackfillPolicy is marked beta in Dagster 1.13; the notice is for us (pinned), not for every log reader.
warnings.filterwarnings("ignore", message=".*is currently in beta.*")
