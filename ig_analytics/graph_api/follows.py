"""Follows and unfollows per day, measured: ``follows_and_unfollows`` asked with ``metric_type=total_value`` and
``breakdown=follow_type`` splits into ``FOLLOWER`` (follows) and ``NON_FOLLOWER`` (unfollows) (graph-api-facts.md,
section 8).

A total_value answer is one number for the whole since..until, so each day is its own call; the calls go out in
batches of 50 (90 days: 2 batch requests on graph.facebook.com; one GET per day on graph.instagram.com, which has
no batch endpoint). A day the API does not answer (not reported yet, an account under 100 followers, a version
that rejects the breakdown, an item still failing after its retry) is left out: the caller infers it instead.
Token and permission errors are raised, as in every sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

from ig_analytics.graph_api.catalogue import TOTAL_VALUE
from ig_analytics.graph_api.demographics import get_many
from ig_analytics.graph_api.errors import GraphApiError, InvalidRequestError, TransientApiError
from ig_analytics.graph_api.models import AccountDay
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.graph_api.windows import AccountCall

METRIC = "follows_and_unfollows"
BREAKDOWN = "follow_type"
FOLLOWS, UNFOLLOWS = "FOLLOWER", "NON_FOLLOWER"


@dataclass(frozen=True)
class FollowDay:
    follows: int
    unfollows: int


def parse(payload: Any) -> FollowDay | None:
    """The day's follows and unfollows, or None when the answer has no split (a type left out counts 0). Only
    ``total_value.breakdowns`` is read: the real reply has no ``total_value.value`` beside it."""
    for entry in payload.get("data") or [] if isinstance(payload, dict) else []:
        if not isinstance(entry, dict) or entry.get("name") != METRIC:
            continue
        parts: dict[str, int] = {}
        blocks = (entry.get("total_value") or {}).get("breakdowns") or []
        for block in blocks:
            keys = block.get("dimension_keys") or []
            pos = keys.index(BREAKDOWN) if BREAKDOWN in keys else -1
            for result in block.get("results") or []:
                dims = result.get("dimension_values") or []
                if dims and isinstance(result.get("value"), (int, float)):
                    parts[str(dims[pos])] = int(result["value"])
        if blocks:
            return FollowDay(parts.get(FOLLOWS, 0), parts.get(UNFOLLOWS, 0))
    return None


def reported_days(days: Sequence[AccountDay]) -> list[date]:
    """The days worth asking for a split: those the API reported anything for (days not over yet or not reported
    cost no call). Not "days whose follows_and_unfollows total came back": the real reply by follow_type has only
    ``breakdowns`` and no total (graph-api-facts.md, section 9), so a split must not wait for a total."""
    return [d.date for d in days if any(v is not None for v in d.values.values())]


def fetch_follow_types(api: InsightsApi, days: Sequence[date]) -> dict[date, FollowDay]:
    """Measured follows and unfollows of each of ``days`` the API answers for."""
    calls = []
    for day in days:
        params = AccountCall((METRIC,), "day", TOTAL_VALUE, (day,)).params()
        calls.append((f"{api.ig_user_id}/insights", {**params, "breakdown": BREAKDOWN}))
    out: dict[date, FollowDay] = {}
    for day, result in zip(days, get_many(api, calls)):
        if isinstance(result, (InvalidRequestError, TransientApiError)):
            continue  # rejected, or still failing: this day's unfollows are inferred
        if isinstance(result, GraphApiError):
            raise result
        measured = parse(result)
        if measured is not None:
            out[day] = measured
    return out
