"""Audience demographics of one account: ``follower_demographics`` and ``engaged_audience_demographics`` by
``age``, ``gender``, ``country`` and ``city`` (graph-api-facts.md, section 8).

Each metric x breakdown is its own call; on graph.facebook.com they go out as one batch request, on
graph.instagram.com (batch is documented for graph.facebook.com only) one by one. Meta returns only the current
lifetime picture, only the top 45 values, and ``{"data": []}`` for accounts under 100 followers (or engagements):
that is recorded as ``not_available``, not as a failure; a breakdown or timeframe this API version rejects is
``rejected`` with the API's reason. Token and permission errors are raised (the account fails, as in every sync).

``online_followers`` (older API versions only, see the catalogue): per day of the last 30 an hourly map of the
followers online; one plain GET for the last 29 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ig_analytics.graph_api.client import AccountApi
from ig_analytics.graph_api.errors import GraphApiError, InvalidRequestError, TransientApiError
from ig_analytics.graph_api.windows import parse_graph_time

METRICS = ("follower_demographics", "engaged_audience_demographics")
BREAKDOWNS = ("age", "gender", "country", "city")
ENGAGED_TIMEFRAME = "this_month"  # last 30 days; required for the engaged audience (this_week = last 7)
NOT_AVAILABLE = "Meta returns no demographics for accounts under 100 followers (or 100 engaged accounts)"


@dataclass
class Demographic:
    metric: str
    breakdown: str
    timeframe: str | None  # what was asked (None: no timeframe, the follower picture)
    status: str  # ok | not_available | rejected
    values: dict[str, int] = field(default_factory=dict)
    reason: str | None = None


def _call(ig_user_id: str, metric: str, breakdown: str) -> tuple[str, dict[str, str], str | None]:
    timeframe = ENGAGED_TIMEFRAME if metric == "engaged_audience_demographics" else None
    params = {"metric": metric, "period": "lifetime", "metric_type": "total_value", "breakdown": breakdown}
    if timeframe:
        params["timeframe"] = timeframe
    return f"{ig_user_id}/insights", params, timeframe


def parse(metric: str, breakdown: str, timeframe: str | None, payload: Any) -> Demographic:
    data = payload.get("data") if isinstance(payload, dict) else None
    entry = next((e for e in data or [] if isinstance(e, dict) and e.get("name") == metric), None)
    if entry is None:
        return Demographic(metric, breakdown, timeframe, "not_available", reason=NOT_AVAILABLE)
    values: dict[str, int] = {}
    for block in (entry.get("total_value") or {}).get("breakdowns") or []:
        keys = block.get("dimension_keys") or []
        pos = keys.index(breakdown) if breakdown in keys else -1  # keys may start with "timeframe"
        for result in block.get("results") or []:
            dims = result.get("dimension_values") or []
            value = result.get("value")
            if dims and isinstance(value, (int, float)):
                values[str(dims[pos])] = int(value)
    if not values:
        return Demographic(metric, breakdown, timeframe, "not_available", reason=NOT_AVAILABLE)
    return Demographic(metric, breakdown, timeframe, "ok", values)


def fetch_demographics(api: AccountApi) -> list[Demographic]:
    """Every metric x breakdown of the account, as of now."""
    calls = [(m, b, *_call(api.ig_user_id, m, b)) for m in METRICS for b in BREAKDOWNS]
    urls = [f"{path}?{urlencode(params, safe=',')}" for _, _, path, params, _ in calls]
    results = api._fetch_many(urls, is_retry=False)  # a batch, or plain GETs on graph.instagram.com
    for i, result in enumerate(results):  # an item that could not complete gets one more call of its own
        if isinstance(result, TransientApiError):
            _, _, path, params, _ = calls[i]
            try:
                results[i] = api._send("GET", path, params=params, endpoint=f"/{path}", first_is_retry=True)
            except InvalidRequestError as exc:
                results[i] = exc
    out = []
    for (metric, breakdown, _, _, timeframe), result in zip(calls, results):
        if isinstance(result, InvalidRequestError):
            out.append(Demographic(metric, breakdown, timeframe, "rejected", reason=str(result)))
        elif isinstance(result, GraphApiError):
            raise result
        else:
            out.append(parse(metric, breakdown, timeframe, result))
    return out


ONLINE_FOLLOWERS = "online_followers"
ONLINE_WINDOW_DAYS = 29  # since..until may span at most 30 days


@dataclass
class OnlineFollowers:
    status: str  # ok | not_available | rejected | not_offered (this API version has no such metric)
    hours: dict[datetime, int] = field(default_factory=dict)  # the hour's start (UTC) -> followers online
    reason: str | None = None


def fetch_online_followers(api: AccountApi, now: datetime) -> OnlineFollowers:
    """The followers online in each hour of the last 29 finished days, where the API version offers it."""
    version = api._client.version
    if not api._client.catalogue.has_online_followers:
        return OnlineFollowers("not_offered", reason=f"Graph API {version} does not offer online_followers")
    until = int(now.timestamp())
    params = {"metric": ONLINE_FOLLOWERS, "period": "lifetime", "since": str(until - ONLINE_WINDOW_DAYS * 86400),
              "until": str(until)}
    path = f"{api.ig_user_id}/insights"
    try:
        payload = api._send("GET", path, params=params, endpoint=f"/{path} ({ONLINE_FOLLOWERS})",
                            validate=lambda p: isinstance(p, dict) and isinstance(p.get("data"), list))
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
        return OnlineFollowers("not_available", reason="Meta returns no online followers for accounts under 100 "
                                                       "followers")
    return OnlineFollowers("ok", hours)
