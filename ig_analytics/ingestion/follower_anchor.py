"""The follower total at Meta's day end: one profile read per account just after Pacific midnight.

The API gives ``followers_count`` only as of now, so a total read any other time leaves part of a day's change
to estimate. Read within minutes after the day ended (the ``daily_follower_anchors`` schedule, 00:01
America/Los_Angeles), it is that day's ``observed`` total, and every derived total hangs from the nearest such
anchor (analytics/followers.py, docs/analytics.md section 0). One ``GET /{ig-user-id}?fields=...`` per account:
each account has its own token, which a batch request could only carry in its item URLs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from ig_analytics.analytics.followers import refresh_follower_history
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.ingestion.account_insights import write_profile_snapshot


def record_follower_anchor(engine: Engine, api: InsightsApi, ig_user_id: str, now: datetime) -> int:
    """Read the profile, store it as a snapshot at ``now`` and rebuild the account's follower history from it
    (the day that ended at the last Pacific midnight becomes ``observed`` when ``now`` is close enough after it;
    the snapshot is kept, so a day whose row the account insights sync writes later is anchored then).
    Returns the follower-history rows changed."""
    profile = api.profile()
    with engine.begin() as conn:
        write_profile_snapshot(conn, ig_user_id, profile, now)
        changed = refresh_follower_history(conn, [ig_user_id])  # the rates follow: the follower_rates sensor
    return changed

