"""Graph API payloads into values: numbers, account and media insights, media items, the profile, and the metrics
that a code-100 error message names. Pure functions (no HTTP, no state)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Sequence

from ig_analytics.graph_api.catalogue import TOTAL_VALUE, normalize_media_metric
from ig_analytics.graph_api.models import Media, Profile
from ig_analytics.graph_api.windows import AccountCall, end_time_to_date, parse_graph_time

_ONE_OF_RE = re.compile(r"must\s+be\s+one\s+of\s+the\s+following\s+values\s*:?\s*([A-Za-z0-9_,\s]+)", re.IGNORECASE)
_THE_X_METRIC_RE = re.compile(r"\bthe\s+([A-Za-z0-9_]+)\s+metric\b", re.IGNORECASE)
_METRICS_PAREN_RE = re.compile(r"\bmetrics?\s*\(([A-Za-z0-9_,\s]+)\)", re.IGNORECASE)
# "(#100) (follower_count) metric only supports querying data for the last 30 days excluding the current day"
_WINDOW_REFUSAL_RE = re.compile(r"\(([A-Za-z0-9_]+)\)\s+metric\s+only\s+supports\s+querying\s+data\s+for\s+the\s+last",
                                re.IGNORECASE)


# -- numbers ------------------------------------------------------------------------------------------------
def number(value: Any) -> int | float | None:
    """An int where the value is whole, else a float; None for anything that is not a number (bools too)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        try:
            as_float = float(value)
        except ValueError:
            return None
        return int(as_float) if as_float.is_integer() else as_float
    return None


_GRAPH_ID_RE = re.compile(r"[0-9A-Za-z_]{1,64}")  # Graph ids are digits (some "<id>_<id>"): one safe path segment


def graph_id(value: Any) -> str | None:
    """An id as text (the API sends some as JSON numbers, graph-api-facts.md section 9), or None when it is not a
    Graph id: ids become URL paths and batch ``relative_url``s, so no ``/``, ``?``, ``&``, ``.`` or space passes."""
    if isinstance(value, bool):
        return None
    text = str(value) if isinstance(value, (int, str)) else ""
    return text if _GRAPH_ID_RE.fullmatch(text) else None


def int_or_none(value: Any) -> int | None:
    parsed = number(value)
    return int(parsed) if parsed is not None else None


# -- metrics named in an error --------------------------------------------------------------------------------
def metrics_named_in(message: str | None, asked: Sequence[str]) -> list[str]:
    """The asked metrics a code-100 message rejects ([] when it names none of them).

    Understands, in this order: "... the X metric ..." (e.g. "does not support the X metric for this media
    product type", "Starting from version v22.0 and above, the X metric is no longer supported"); "metric[2] must
    be one of the following values: a, b, c" (rejects asked metrics not in the list); "The following metrics (x, y)
    ..."; and, last, a message naming some (not all) of the asked metrics as whole words.
    """
    if not message:
        return []
    asked = list(asked)
    named = [m for m in dict.fromkeys(_THE_X_METRIC_RE.findall(message)) if m in asked]
    if named:
        return named
    one_of = _ONE_OF_RE.search(message)
    if one_of:
        allowed = {w.strip() for w in one_of.group(1).split(",") if w.strip()}
        allowed = {w.split()[0] for w in allowed if w.split()}
        rejected = [m for m in asked if m not in allowed]
        if rejected and len(rejected) < len(asked):
            return rejected
    paren = _METRICS_PAREN_RE.search(message)
    if paren:
        listed = {w.strip() for w in paren.group(1).split(",")}
        named = [m for m in asked if m in listed]
        if named:
            return named
    mentioned = [m for m in asked if re.search(rf"(?<![A-Za-z0-9_]){re.escape(m)}(?![A-Za-z0-9_])", message)]
    if mentioned and (len(mentioned) < len(asked) or len(asked) == 1):
        return mentioned
    return []


def window_refused_metrics(message: str | None, asked: Sequence[str]) -> list[str]:
    """The asked metrics a code-100 message refuses for this request's days only (follower_count outside its
    30 days, graph-api-facts.md section 9): not a metric to drop for other windows."""
    return [m for m in _WINDOW_REFUSAL_RE.findall(message or "") if m in asked]


# -- payloads into values ----------------------------------------------------------------------------------------
def profile_from(payload: dict[str, Any], ig_user_id: str) -> Profile:
    return Profile(
        ig_user_id=str(payload.get("id") or ig_user_id),
        username=payload.get("username"),
        followers_count=int_or_none(payload.get("followers_count")),
        follows_count=int_or_none(payload.get("follows_count")),
        media_count=int_or_none(payload.get("media_count")),
    )


def store_account_values(call: AccountCall, payload: Any, values: dict[date, dict[str, Any]]) -> None:
    """One account-insights answer into ``values`` (day -> metric -> value); only the call's days are kept."""
    wanted = set(call.days)
    for entry in payload.get("data") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name = entry["name"]
        total = entry.get("total_value")
        if call.metric_type == TOTAL_VALUE and isinstance(total, dict) and len(call.days) == 1:
            put_value(values, call.days[0], name, total_of(total))
            continue
        for point in entry.get("values") or []:
            if not isinstance(point, dict):
                continue
            if point.get("end_time"):
                try:
                    day = end_time_to_date(str(point["end_time"]))
                except ValueError:
                    continue
            elif len(call.days) == 1:
                day = call.days[0]
            else:
                continue
            if day in wanted:
                put_value(values, day, name, point.get("value"))


def total_of(total_value: dict[str, Any]) -> Any:
    """``total_value.value``, else the sum of its first breakdown's results (a reply by breakdown may carry only
    ``breakdowns``, graph-api-facts.md section 9), else None."""
    if total_value.get("value") is not None:
        return total_value["value"]
    blocks = total_value.get("breakdowns")
    results = blocks[0].get("results") if isinstance(blocks, list) and blocks and isinstance(blocks[0], dict) else None
    values = [number(r.get("value")) for r in results or [] if isinstance(r, dict)]
    return sum(v for v in values if v is not None) if values else None


def put_value(values: dict[date, dict[str, Any]], day: date, name: str, raw: Any) -> None:
    """A measured number never gives way to a missing one (the same day may come from two windows)."""
    if day not in values:
        return
    parsed = number(raw)
    if parsed is not None or values[day].get(name) is None:
        values[day][name] = parsed


def store_media_values(payload: Any, out: dict[str, Any]) -> None:
    """One post's lifetime insights into ``out`` (normalized metric -> value)."""
    for entry in payload.get("data") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name = normalize_media_metric(entry["name"])
        raw = None
        total = entry.get("total_value")
        if isinstance(total, dict):
            raw = total.get("value")
        else:
            points = entry.get("values") or []
            if points and isinstance(points[0], dict):
                raw = points[-1].get("value")
        out[name] = number(raw)


def parse_media(item: Any, ig_user_id: str, default_product: str | None) -> Media | None:
    """One item of a media or stories page; None when it lacks an id or a readable timestamp."""
    if not isinstance(item, dict) or graph_id(item.get("id")) is None or not item.get("timestamp"):
        return None
    try:
        published = parse_graph_time(str(item["timestamp"]))
    except ValueError:
        return None
    return Media(
        media_id=str(item["id"]),
        ig_user_id=ig_user_id,
        media_type=item.get("media_type"),
        media_product_type=item.get("media_product_type") or default_product,
        caption=item.get("caption"),
        permalink=item.get("permalink"),
        published_at=published,
        like_count=int_or_none(item.get("like_count")),
        comments_count=int_or_none(item.get("comments_count")),
    )


def is_list_page(payload: Any) -> bool:
    """The shape of every list and insights answer: an object with a ``data`` array."""
    return isinstance(payload, dict) and isinstance(payload.get("data"), list)
