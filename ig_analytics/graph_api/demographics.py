"""Audience demographics of one account: ``follower_demographics`` and ``engaged_audience_demographics`` by
``age`` x ``gender`` (one crossed breakdown), ``country`` and ``city`` (graph-api-facts.md, section 8).

Each metric x breakdown is its own call; on graph.facebook.com they go out as one batch request, on
graph.instagram.com (batch is documented for graph.facebook.com only) one by one. Meta returns only the current
lifetime picture, only the top 45 values, and ``{"data": []}`` for accounts under 100 followers (or engagements),
and at times for a large account too: that is recorded as ``not_available`` with the reason that fits the account's
follower count, not as a failure; a breakdown or timeframe this API version rejects is
``rejected`` with the API's reason. Token and permission errors are raised (the account fails, as in every sync).

Age and gender: one ``breakdown=age,gender`` call per metric (7 x 3 cells, under the top-45 cut, so nothing is
cut off) instead of separate ``age`` and ``gender`` calls: 6 calls per account instead of 8. The ``age`` and
``gender`` pictures are its margins (sums over the other dimension), so they agree with the crossed table to the
unit. Only where the crossed breakdown is rejected are ``age`` and ``gender`` asked separately.

``online_followers`` (older API versions only, see the catalogue): per day of the last 30 an hourly map of the
followers online; one plain GET for the last 29 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ig_analytics.graph_api.client import AccountApi
from ig_analytics.graph_api.errors import GraphApiError, InvalidRequestError, ThrottledError, TransientApiError
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.graph_api.windows import BATCH_SIZE, parse_graph_time

METRICS = ("follower_demographics", "engaged_audience_demographics")
AGE_GENDER = "age,gender"  # the crossed breakdown; its keys are "<age>|<gender>", e.g. "18-24|F"
KEY_SEPARATOR = "|"
ASKED = (AGE_GENDER, "country", "city")  # the calls made per metric
SINGLE = ("age", "gender")  # asked only where AGE_GENDER is rejected; else its margins
BREAKDOWNS = ("age", "gender", "country", "city", AGE_GENDER)  # what is stored
ENGAGED_TIMEFRAME = "this_month"  # last 30 days; required for the engaged audience (this_week = last 7)
MIN_FOLLOWERS = 100  # Meta's threshold for demographics and online followers


def empty_reason(what: str, followers: int | None) -> str:
    """Why Meta answered ``{"data": []}`` for ``what`` (e.g. "follower demographics"): "under 100 followers" only
    when that is true; a large account can get nothing too (no engaged audience in the timeframe, or not computed
    yet: graph-api-facts.md, section 9)."""
    if followers is not None and followers < MIN_FOLLOWERS:
        return f"Meta returns no {what} for accounts under {MIN_FOLLOWERS} followers (this one has {followers})"
    having = f"the account has {followers} followers" if followers is not None else "the follower count is unknown"
    return (f"Meta returned no {what} although {having}: not computed yet, or too few engaged accounts in the "
            "timeframe; asked again at the next fetch")


@dataclass
class Demographic:
    metric: str
    breakdown: str
    timeframe: str | None  # what was asked (None: no timeframe, the follower picture)
    status: str  # ok | not_available | rejected
    values: dict[str, int] = field(default_factory=dict)
    reason: str | None = None


def get_many(api: InsightsApi, calls: list[tuple[str, dict[str, str]]]) -> list[Any]:
    """GET every (path, params) of the account: batches of 50 on graph.facebook.com, one by one on
    graph.instagram.com; an item the API could not complete or throttled gets one more call of its own (which waits
    out a throttle). Per call its JSON, or the GraphApiError it failed with (a throttle the account cannot wait out
    is raised)."""
    urls = [f"{path}?{urlencode(params, safe=',')}" for path, params in calls]
    results: list[Any] = []
    for start in range(0, len(urls), BATCH_SIZE):
        results.extend(api.fetch_many(urls[start:start + BATCH_SIZE]))
    for i, result in enumerate(results):
        if isinstance(result, (TransientApiError, ThrottledError)):
            path, params = calls[i]
            try:
                results[i] = api.get(path, params, first_is_retry=True)
            except (InvalidRequestError, TransientApiError) as exc:  # the caller decides what a failed item means
                results[i] = exc
    return results


def _timeframe(metric: str) -> str | None:
    return ENGAGED_TIMEFRAME if metric == "engaged_audience_demographics" else None


def _call(ig_user_id: str, metric: str, breakdown: str) -> tuple[str, dict[str, str]]:
    params = {"metric": metric, "period": "lifetime", "metric_type": "total_value", "breakdown": breakdown}
    if _timeframe(metric):
        params["timeframe"] = _timeframe(metric)
    return f"{ig_user_id}/insights", params


def parse(metric: str, breakdown: str, timeframe: str | None, payload: Any,
          followers: int | None = None) -> Demographic:
    """One picture; ``followers`` (the profile's count, when known) words the reason of an empty answer."""
    data = payload.get("data") if isinstance(payload, dict) else None
    entry = next((e for e in data or [] if isinstance(e, dict) and e.get("name") == metric), None)
    not_available = Demographic(metric, breakdown, timeframe, "not_available",
                                reason=empty_reason(metric.replace("_", " "), followers))
    if entry is None:
        return not_available
    dims = breakdown.split(",")
    values: dict[str, int] = {}
    for block in (entry.get("total_value") or {}).get("breakdowns") or []:
        keys = block.get("dimension_keys") or []
        # the keys may start with "timeframe"; the crossed one is stored age first whatever order Meta answers in
        pos = [keys.index(d) if d in keys else i - len(dims) for i, d in enumerate(dims)]
        for result in block.get("results") or []:
            got = result.get("dimension_values") or []
            value = result.get("value")
            if len(got) >= len(dims) and isinstance(value, (int, float)):
                values[KEY_SEPARATOR.join(str(got[p]) for p in pos)] = int(value)
    if not values:
        return not_available
    return Demographic(metric, breakdown, timeframe, "ok", values)


def margins(crossed: Demographic) -> list[Demographic]:
    """The ``age`` and ``gender`` pictures of a crossed one: each key's sum over the other dimension."""
    out = []
    for pos, breakdown in enumerate(SINGLE):
        values: dict[str, int] = {}
        for key, value in crossed.values.items():
            part = key.split(KEY_SEPARATOR)[pos]
            values[part] = values.get(part, 0) + value
        out.append(Demographic(crossed.metric, breakdown, crossed.timeframe, crossed.status, values, crossed.reason))
    return out


def _pictures(api: InsightsApi, asked: list[tuple[str, str]], followers: int | None) -> list[Demographic]:
    results = get_many(api, [_call(api.ig_user_id, m, b) for m, b in asked])
    out = []
    for (metric, breakdown), result in zip(asked, results):
        if isinstance(result, InvalidRequestError):
            out.append(Demographic(metric, breakdown, _timeframe(metric), "rejected", reason=str(result)))
        elif isinstance(result, GraphApiError):
            raise result
        else:
            out.append(parse(metric, breakdown, _timeframe(metric), result, followers))
    return out


def fetch_demographics(api: InsightsApi, followers: int | None = None) -> list[Demographic]:
    """Every metric x stored breakdown of the account, as of now (see the module's note on age and gender).
    ``followers``: the account's follower count, for the reason of an empty answer."""
    out: list[Demographic] = []
    fallback: list[tuple[str, str]] = []
    for picture in _pictures(api, [(m, b) for m in METRICS for b in ASKED], followers):
        out.append(picture)
        if picture.breakdown != AGE_GENDER:
            continue
        if picture.status == "rejected":
            fallback.extend((picture.metric, b) for b in SINGLE)
        else:
            out.extend(margins(picture))
    if fallback:  # this API version refuses the crossed breakdown: age and gender one by one
        out.extend(_pictures(api, fallback, followers))
    return out


ONLINE_FOLLOWERS = "online_followers"
ONLINE_WINDOW_DAYS = 29  # since..until may span at most 30 days


@dataclass
class OnlineFollowers:
    status: str  # ok | not_available | rejected | not_offered (this API version has no such metric)
    hours: dict[datetime, int] = field(default_factory=dict)  # the hour's start (UTC) -> followers online
    reason: str | None = None


def fetch_online_followers(api: AccountApi, now: datetime, followers: int | None = None) -> OnlineFollowers:
    """The followers online in each hour of the last 29 finished days, where the API version offers it."""
    version = api.version
    if not api.catalogue.has_online_followers:
        return OnlineFollowers("not_offered", reason=f"Graph API {version} does not offer online_followers")
    until = int(now.timestamp())
    params = {"metric": ONLINE_FOLLOWERS, "period": "lifetime", "since": str(until - ONLINE_WINDOW_DAYS * 86400),
              "until": str(until)}
    path = f"{api.ig_user_id}/insights"
    try:
        payload = api.get(path, params, endpoint=f"/{path} ({ONLINE_FOLLOWERS})")
    except InvalidRequestError as exc:
        return OnlineFollowers("rejected", reason=str(exc))
    hours: dict[datetime, int] = {}
    for entry in payload["data"]:
        if not isinstance(entry, dict) or entry.get("name") != ONLINE_FOLLOWERS:
            continue
        for point in entry.get("values") or []:
            by_hour = point.get("value") if isinstance(point, dict) else None
            if not isinstance(by_hour, dict) or not point.get("end_time"):
                continue
            start = parse_graph_time(str(point["end_time"])) - timedelta(days=1)  # hour h counts from here
            for hour, value in by_hour.items():
                if str(hour).isdigit() and 0 <= int(hour) < 24 and isinstance(value, (int, float)):
                    hours[start + timedelta(hours=int(hour))] = int(value)
    if not hours:
        return OnlineFollowers("not_available", reason=empty_reason("online followers", followers))
    return OnlineFollowers("ok", hours)
