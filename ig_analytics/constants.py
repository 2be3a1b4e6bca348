"""Numbers defined once for every layer: the capture cadence (docs/architecture.md, "Capture cadence") and the
largest number of account shards.

A post is captured every hour while younger than ``YOUNG_POST_HOURS``, then once a day until it is
``MEDIA_WINDOW_DAYS`` old (the media sync's window); a daily capture is due when the newest snapshot is at least
``DAILY_CAPTURE_INTERVAL_HOURS`` old (23, so that a post captured at this hour yesterday is due again now).
"""

from __future__ import annotations

YOUNG_POST_HOURS = 48
MEDIA_WINDOW_DAYS = 30
DAILY_CAPTURE_INTERVAL_HOURS = 23

# IG_ANALYTICS_SHARDS is at most this (accounts/shards.py; settings validate it)
MAX_SHARDS = 1000

# Meta's insights days are Pacific-time dates: a day ends at Pacific midnight, 07:00 UTC in summer and 08:00 UTC
# in winter (graph-api-facts.md, section 9). The account insights' dates, the follower_count window and the
# follower history all count days in this zone.
META_DAY_TIMEZONE = "America/Los_Angeles"

# The run tag that says what started a run: "cli" for `ig-analytics sync`, which runs its jobs in order itself
# (the follower_rates sensor leaves its runs alone).
TRIGGER_TAG = "ig_analytics/trigger"
