"""Which metrics each API version serves (account and media), with titles. Mirrors graph-api-facts.md s.1-3."""

from __future__ import annotations

import re
from datetime import date

OLDEST_VERSION = 18
NEWEST_VERSION = 25  # newer versions are served like this one
_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)$")
# facts sheet s.1: the day each version's removals were enforced on all versions
ENFORCED_ON_ALL_VERSIONS = {21: date(2025, 1, 8), 22: date(2025, 4, 21)}


def effective_version(version: int, today: date) -> int:
    """The version whose metric set is served once removals are enforced on every version (opt-in)."""
    enforced = [v for v, d in ENFORCED_ON_ALL_VERSIONS.items() if today >= d]
    return max([version, *enforced])

# ---------------------------------------------------------------- account insights (period=day)
# name -> (first version, last version or None, time_series allowed, total_value allowed)
_ACCOUNT: dict[str, tuple[int, int | None, bool, bool]] = {
    "impressions": (18, 21, True, True),
    "reach": (18, None, True, True),
    "follower_count": (18, None, True, False),
    "profile_views": (18, 20, True, True),
    "website_clicks": (18, 20, True, True),
    "email_contacts": (18, 20, True, True),
    "phone_call_clicks": (18, 20, True, True),
    "text_message_clicks": (18, 20, True, True),
    "get_directions_clicks": (18, 20, True, True),
    "views": (22, None, False, True),
    "accounts_engaged": (18, None, False, True),
    "total_interactions": (18, None, False, True),
    "likes": (18, None, False, True),
    "comments": (18, None, False, True),
    "saves": (18, None, False, True),
    "shares": (18, None, False, True),
    "replies": (18, None, False, True),
    "reposts": (18, None, False, True),
    "follows_and_unfollows": (18, None, False, True),
    "profile_links_taps": (18, None, False, True),
}
# unique-audience metrics: a multi-day total is less than the sum of the days
UNIQUE_ACCOUNT_METRICS = frozenset({"reach", "accounts_engaged"})
# hours after a day's end before its value is served (late data): fast metrics 2 h, the others 24 h
_FAST = frozenset({"reach", "impressions", "views", "follower_count"})
FAST_LAG_HOURS = 2
SLOW_LAG_HOURS = 24

BREAKDOWNS = {
    "media_product_type": ("POST", "REEL", "STORY"),
    "follow_type": ("FOLLOWER", "NON_FOLLOWER"),
}
_BREAKDOWN_METRICS = {
    "media_product_type": frozenset(
        {"reach", "views", "total_interactions", "likes", "comments", "saves", "shares", "replies", "reposts"}
    ),
    "follow_type": frozenset({"reach", "views", "accounts_engaged", "follows_and_unfollows"}),
}

TITLES = {
    "impressions": "Impressions",
    "reach": "Accounts reached",
    "follower_count": "Follower Count",
    "profile_views": "Profile Views",
    "website_clicks": "Website Clicks",
    "email_contacts": "Email Contacts",
    "phone_call_clicks": "Phone Call Clicks",
    "text_message_clicks": "Text Message Clicks",
    "get_directions_clicks": "Get Directions Clicks",
    "views": "Views",
    "accounts_engaged": "Accounts engaged",
    "total_interactions": "Content interactions",
    "likes": "Likes",
    "comments": "Comments",
    "saves": "Saves",
    "saved": "Saved",
    "shares": "Shares",
    "replies": "Replies",
    "reposts": "Reposts",
    "follows_and_unfollows": "Follows and unfollows",
    "profile_links_taps": "Profile links taps",
    "video_views": "Video Views",
    "plays": "Plays",
    "follows": "Follows",
    "profile_visits": "Profile visits",
    "navigation": "Navigation",
    "ig_reels_avg_watch_time": "Average watch time",
    "ig_reels_video_view_total_time": "Watch time",
    "clips_replays_count": "Replays",
    "ig_reels_aggregated_all_plays_count": "Plays",
    "reels_skip_rate": "Skip rate",
    "crossposted_views": "Crossposted views",
}


def description(name: str) -> str:
    return f"The number of {TITLES.get(name, name).lower()} (sandbox)."


def parse_version(text: str) -> int | None:
    """'v21.0' -> 21; None when not a servable version (older than v18, or not vN.0)."""
    m = _VERSION_RE.match(text)
    if not m or m.group(2) != "0":
        return None
    major = int(m.group(1))
    return major if major >= OLDEST_VERSION else None


def is_version_segment(text: str) -> bool:
    return bool(re.match(r"^v\d+(\.\d+)?$", text))


def _in(version: int, first: int, last: int | None) -> bool:
    v = min(version, NEWEST_VERSION)
    return v >= first and (last is None or v <= last)


def account_metrics(version: int) -> dict[str, tuple[bool, bool]]:
    """name -> (time_series ok, total_value ok) for this version."""
    return {n: (ts, tv) for n, (a, b, ts, tv) in _ACCOUNT.items() if _in(version, a, b)}


def account_removed_in(name: str, version: int) -> int | None:
    """The version that removed a known account metric, when it is removed at ``version``."""
    spec = _ACCOUNT.get(name)
    if spec and spec[1] is not None and min(version, NEWEST_VERSION) > spec[1]:
        return spec[1] + 1
    return None


def account_lag_hours(name: str) -> int:
    return FAST_LAG_HOURS if name in _FAST else SLOW_LAG_HOURS


def breakdown_ok(breakdown: str, metric: str) -> bool:
    return metric in _BREAKDOWN_METRICS.get(breakdown, ())


# ---------------------------------------------------------------- media insights (lifetime)
RETIRED_MEDIA = frozenset(
    {
        "engagement",
        "carousel_album_engagement",
        "carousel_album_impressions",
        "carousel_album_reach",
        "carousel_album_saved",
        "carousel_album_video_views",
        "exits",
        "taps_forward",
        "taps_back",
    }
)
_COMMON = ["reach", "likes", "comments", "saved", "shares", "total_interactions"]
_REELS_EXTRA = ["ig_reels_avg_watch_time", "ig_reels_video_view_total_time", "reels_skip_rate", "crossposted_views"]


def media_metrics(version: int, product_type: str, media_type: str) -> list[str]:
    """Metrics the table promises for a post of this kind (per-post quirks are applied elsewhere)."""
    v = min(version, NEWEST_VERSION)
    if product_type == "STORY":
        first = ["impressions"] if v < 22 else ["views"]
        return first + ["reach", "replies", "shares", "total_interactions", "follows", "profile_visits", "navigation",
                        "reposts"]
    if product_type == "REELS":
        if v < 22:
            return ["plays"] + _COMMON + _REELS_EXTRA + ["clips_replays_count", "ig_reels_aggregated_all_plays_count",
                                                         "reposts"]
        return ["views"] + _COMMON + _REELS_EXTRA + ["reposts"]
    out = (["impressions"] if v < 22 else ["views"]) + _COMMON + ["follows", "profile_visits", "reposts"]
    if media_type == "VIDEO" and v < 21:
        out.append("video_views")
    return out


ALL_MEDIA_METRICS = frozenset(
    m
    for v in range(OLDEST_VERSION, NEWEST_VERSION + 1)
    for pt, mt in (("FEED", "IMAGE"), ("FEED", "VIDEO"), ("REELS", "VIDEO"), ("STORY", "IMAGE"))
    for m in media_metrics(v, pt, mt)
)
