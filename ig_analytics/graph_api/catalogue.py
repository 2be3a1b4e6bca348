"""The metric catalogue: which insights metrics each Graph API version serves, as data.

Meta removes metrics at almost every major version (graph-api-facts.md, section 1). Nothing else in the client
names a metric: it reads this catalogue. To follow a new Meta changelog entry, edit the tables below:

- ``ACCOUNT_METRICS_V18`` / ``MEDIA_METRICS_V18``: the metric sets of the oldest supported version (v18.0);
- ``CHANGES``: what each later version adds or removes (and what Meta added to every version at once);
- ``RETIREMENTS``: the facts-sheet retirements table (announced, from version, enforced on all versions).

The per-version tables are derived from these at import time (``CATALOGUE``), and the client additionally
drops, at run time, any metric the live API rejects (code 100), so a retirement enforced on old versions
costs one retried call, never a failed sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Mapping

__all__ = [
    "VERSIONS",
    "NEWEST_VERSION",
    "OLDEST_VERSION",
    "AccountMetric",
    "MetricCatalogue",
    "CATALOGUE",
    "CHANGES",
    "RETIREMENTS",
    "MEDIA_METRIC_ALIASES",
    "ACCOUNT_INSIGHT_KEYS",
    "MEDIA_INSIGHT_KEYS",
    "resolve_version",
    "normalize_media_metric",
    "media_kind",
]

VERSIONS: tuple[str, ...] = ("v18.0", "v19.0", "v20.0", "v21.0", "v22.0", "v23.0", "v24.0", "v25.0")
OLDEST_VERSION = VERSIONS[0]
NEWEST_VERSION = VERSIONS[-1]

TIME_SERIES = "time_series"
TOTAL_VALUE = "total_value"


@dataclass(frozen=True)
class AccountMetric:
    """How an account metric is asked for: ``GET /{ig-user-id}/insights?metric=NAME&period=..&metric_type=..``.

    ``max_days_back``: the API serves only days in ``[today - max_days_back, today - 1]`` (follower_count: 30,
    excluding today); older days are not asked and come back as None.
    """

    name: str
    period: str = "day"
    metric_type: str = TIME_SERIES
    max_days_back: int | None = None


# ---------------------------------------------------------------------------------------------------------
# v18.0: the version the story was written against.
# ---------------------------------------------------------------------------------------------------------
ACCOUNT_METRICS_V18: tuple[AccountMetric, ...] = (
    AccountMetric("reach", "day", TIME_SERIES),
    AccountMetric("impressions", "day", TIME_SERIES),
    AccountMetric("follower_count", "day", TIME_SERIES, max_days_back=30),
    AccountMetric("profile_views", "day", TIME_SERIES),
    AccountMetric("website_clicks", "day", TIME_SERIES),
    AccountMetric("accounts_engaged", "day", TOTAL_VALUE),
    AccountMetric("total_interactions", "day", TOTAL_VALUE),
    AccountMetric("likes", "day", TOTAL_VALUE),
    AccountMetric("comments", "day", TOTAL_VALUE),
    AccountMetric("saves", "day", TOTAL_VALUE),
    AccountMetric("shares", "day", TOTAL_VALUE),
    AccountMetric("replies", "day", TOTAL_VALUE),
    AccountMetric("follows_and_unfollows", "day", TOTAL_VALUE),
    AccountMetric("profile_links_taps", "day", TOTAL_VALUE),
)

# Media metrics by (media_product_type, media_type). "*" = any media_type of that product type.
# v18 already lacks engagement, carousel_album_*, exits, taps_forward/back (removed in v18).
_FEED_V18 = ("impressions", "reach", "likes", "comments", "saved", "shares", "total_interactions", "follows",
             "profile_visits")
MEDIA_METRICS_V18: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("FEED", "IMAGE"): _FEED_V18,
    ("FEED", "VIDEO"): _FEED_V18 + ("video_views",),
    ("FEED", "CAROUSEL_ALBUM"): _FEED_V18,
    ("REELS", "*"): ("plays", "reach", "likes", "comments", "saved", "shares", "total_interactions",
                     "ig_reels_avg_watch_time", "ig_reels_video_view_total_time", "clips_replays_count",
                     "ig_reels_aggregated_all_plays_count"),
    ("STORY", "*"): ("impressions", "reach", "shares", "total_interactions", "follows", "profile_visits",
                     "replies", "navigation"),
}


@dataclass(frozen=True)
class Change:
    """One changelog entry. ``version``: first version with the change; None = applied to every version."""

    version: str | None
    note: str
    account_removed: tuple[str, ...] = ()
    account_added: tuple[AccountMetric, ...] = ()
    # media: {(product_type, media_type) or ("*","*") for all: metrics}
    media_removed: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    media_added: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


_ALL = ("*", "*")

CHANGES: tuple[Change, ...] = (
    Change(
        version="v21.0",
        note="2024-10: media video_views removed; account time-series profile_views, website_clicks removed",
        account_removed=("profile_views", "website_clicks"),
        media_removed={_ALL: ("video_views",)},
    ),
    Change(
        version="v22.0",
        note="2025-01: impressions removed (account and media), replaced by views; reels plays, "
             "clips_replays_count, ig_reels_aggregated_all_plays_count removed",
        account_removed=("impressions",),
        account_added=(AccountMetric("views", "day", TOTAL_VALUE),),
        media_removed={_ALL: ("impressions",),
                       ("REELS", "*"): ("plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count")},
        media_added={("FEED", "*"): ("views",), ("REELS", "*"): ("views",), ("STORY", "*"): ("views",)},
    ),
    Change(
        version=None,
        note="2025-12 (all versions): reposts added (account and media); reels_skip_rate, crossposted_views "
             "added (reels)",
        account_added=(AccountMetric("reposts", "day", TOTAL_VALUE),),
        media_added={("FEED", "*"): ("reposts",), ("STORY", "*"): ("reposts",),
                     ("REELS", "*"): ("reposts", "reels_skip_rate",
                                                                   "crossposted_views")},
    ),
)


@dataclass(frozen=True)
class Retirement:
    announced: str
    from_version: str
    enforced_on_all_versions: date | None
    account: tuple[str, ...]
    media: tuple[str, ...]
    replacement: str


# The facts sheet's retirements table (section 1).
RETIREMENTS: tuple[Retirement, ...] = (
    Retirement("2023-09", "v18.0", date(2023, 12, 11),
               account=("audience_city", "audience_country", "audience_gender_age", "audience_locale"),
               media=("engagement", "carousel_album_engagement", "carousel_album_impressions",
                      "carousel_album_reach", "carousel_album_saved", "carousel_album_video_views", "exits",
                      "taps_forward", "taps_back"),
               replacement="total_interactions (media); follower_demographics (account)"),
    Retirement("2024-10", "v21.0", date(2025, 1, 8),
               account=("profile_views", "website_clicks", "email_contacts", "phone_call_clicks",
                        "text_message_clicks", "get_directions_clicks"),
               media=("video_views",),
               replacement="views"),
    Retirement("2025-01", "v22.0", date(2025, 4, 21),
               account=("impressions",),
               media=("impressions", "plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count"),
               replacement="views"),
)

# online_followers (lifetime; per day of the last 30 an hourly map of followers online) is not a daily value, so it
# is not in the account tables above: served by the older versions, absent from the v25 table (facts, section 8).
ONLINE_FOLLOWERS_LAST_VERSION = "v24.0"

# Media metric names as stored (the API name when not listed).
MEDIA_METRIC_ALIASES: Mapping[str, str] = MappingProxyType({
    "ig_reels_avg_watch_time": "avg_watch_time_ms",
    "ig_reels_video_view_total_time": "total_watch_time_ms",
})

_MEDIA_PRODUCT_TYPES = ("FEED", "REELS", "STORY")
_MEDIA_TYPES = ("IMAGE", "VIDEO", "CAROUSEL_ALBUM")
_MEDIA_TYPES_OF = {"FEED": _MEDIA_TYPES, "REELS": ("VIDEO",), "STORY": ("IMAGE", "VIDEO")}


def _vnum(version: str) -> float:
    return float(version[1:])


def _key_matches(pattern: tuple[str, str], key: tuple[str, str]) -> bool:
    return all(p == "*" or p == k for p, k in zip(pattern, key))


def _build() -> dict[str, "MetricCatalogue"]:
    out: dict[str, MetricCatalogue] = {}
    account: dict[str, AccountMetric] = {m.name: m for m in ACCOUNT_METRICS_V18}
    media: dict[tuple[str, str], list[str]] = {}
    for product in _MEDIA_PRODUCT_TYPES:
        for mtype in _MEDIA_TYPES_OF[product]:
            base = MEDIA_METRICS_V18.get((product, mtype)) or MEDIA_METRICS_V18.get((product, "*")) or ()
            media[(product, mtype)] = list(base)

    def apply(change: Change) -> None:
        for name in change.account_removed:
            account.pop(name, None)
        for metric in change.account_added:
            account[metric.name] = metric
        for pattern, names in change.media_removed.items():
            for key, metrics in media.items():
                if _key_matches(pattern, key):
                    metrics[:] = [m for m in metrics if m not in names]
        for pattern, names in change.media_added.items():
            for key, metrics in media.items():
                if _key_matches(pattern, key):
                    metrics.extend(n for n in names if n not in metrics)

    everywhere = [c for c in CHANGES if c.version is None]
    for version in VERSIONS:
        for change in CHANGES:
            if change.version == version:
                apply(change)
        # changes Meta made to every version are applied on top of each version's own set
        saved_account, saved_media = dict(account), {k: list(v) for k, v in media.items()}
        for change in everywhere:
            apply(change)
        out[version] = MetricCatalogue(
            version=version,
            account_metrics=tuple(account.values()),
            media_metrics=MappingProxyType({k: tuple(v) for k, v in media.items()}),
        )
        account.clear()
        account.update(saved_account)
        media.clear()
        media.update(saved_media)
    return out


@dataclass(frozen=True)
class MetricCatalogue:
    """The metric set of one API version."""

    version: str
    account_metrics: tuple[AccountMetric, ...]
    media_metrics: Mapping[tuple[str, str], tuple[str, ...]]  # (product_type, media_type) -> API metric names

    @classmethod
    def for_version(cls, version: str | None) -> "MetricCatalogue":
        return CATALOGUE[resolve_version(version)]

    @property
    def account_metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.account_metrics)

    def account_metric(self, name: str) -> AccountMetric | None:
        for metric in self.account_metrics:
            if metric.name == name:
                return metric
        return None

    @property
    def has_online_followers(self) -> bool:
        return _vnum(self.version) <= _vnum(ONLINE_FOLLOWERS_LAST_VERSION)

    def media_metrics_for(self, media_product_type: str | None, media_type: str | None) -> tuple[str, ...]:
        """API metric names to ask for a post of this type (carousel children and unknown types: FEED rules)."""
        return self.media_metrics[media_kind(media_product_type, media_type)]

    def retired_as_of(self, day: date) -> frozenset[str]:
        """Metrics that Meta no longer serves on this version on ``day`` (retirements enforced everywhere)."""
        names: set[str] = set()
        for r in RETIREMENTS:
            if _vnum(self.version) >= _vnum(r.from_version) or (
                    r.enforced_on_all_versions is not None and day >= r.enforced_on_all_versions):
                names.update(r.account)
                names.update(r.media)
        return frozenset(names)


def media_kind(media_product_type: str | None, media_type: str | None) -> tuple[str, str]:
    """The catalogue key of a post. AD and unknown product types follow FEED; stories/reels ignore media_type."""
    product = (media_product_type or "FEED").upper()
    if product not in _MEDIA_PRODUCT_TYPES:
        product = "FEED"
    mtype = (media_type or "IMAGE").upper()
    if mtype not in _MEDIA_TYPES:
        mtype = "IMAGE"
    if mtype not in _MEDIA_TYPES_OF[product]:
        mtype = "VIDEO" if product == "REELS" or mtype == "VIDEO" else "IMAGE"
    return product, mtype


_VERSION_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?$")


def resolve_version(version: str | None) -> str:
    """The catalogue version to use for an API version.

    None -> the newest known ("v25.0"); a known version -> itself ("25", "v25" and "v25.0" are the same);
    a newer unknown version -> the newest known metric set. Older than v18.0 or not a version -> ValueError.
    """
    if version is None or not str(version).strip():
        return NEWEST_VERSION
    match = _VERSION_RE.match(str(version).strip().lower())
    if not match:
        raise ValueError(f"Not a Graph API version: {version!r} (expected e.g. 'v25.0')")
    normalized = f"v{int(match.group(1))}.{int(match.group(2) or 0)}"
    if normalized in CATALOGUE:
        return normalized
    number = _vnum(normalized)
    if number > _vnum(NEWEST_VERSION):
        return NEWEST_VERSION
    if number < _vnum(OLDEST_VERSION):
        raise ValueError(f"Graph API version {normalized} is older than the oldest version the metric catalogue "
                         f"knows ({OLDEST_VERSION}); Meta has retired it. Use {NEWEST_VERSION}.")
    # a minor version between two known ones: the newest known version not above it
    return max((v for v in VERSIONS if _vnum(v) <= number), key=_vnum)


def normalize_version(version: str | None) -> str:
    """'25' / 'v25' / 'v25.0' -> 'v25.0' (the version put in URLs); None -> NEWEST_VERSION."""
    if version is None or not str(version).strip():
        return NEWEST_VERSION
    match = _VERSION_RE.match(str(version).strip().lower())
    if not match:
        raise ValueError(f"Not a Graph API version: {version!r} (expected e.g. 'v25.0')")
    return f"v{int(match.group(1))}.{int(match.group(2) or 0)}"


def normalize_media_metric(api_name: str) -> str:
    return MEDIA_METRIC_ALIASES.get(api_name, api_name)


CATALOGUE: Mapping[str, MetricCatalogue] = MappingProxyType(_build())

# Every key an AccountDay / media_insights value dict can carry, over all versions (for storage schemas).
ACCOUNT_INSIGHT_KEYS: tuple[str, ...] = tuple(dict.fromkeys(
    m.name for v in VERSIONS for m in CATALOGUE[v].account_metrics))
MEDIA_INSIGHT_KEYS: tuple[str, ...] = tuple(dict.fromkeys(
    normalize_media_metric(m) for v in VERSIONS for ms in CATALOGUE[v].media_metrics.values() for m in ms))
