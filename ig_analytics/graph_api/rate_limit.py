"""Rate-limit headers, pacing and backoff (pure functions; the client injects sleep/monotonic/random).

- ``parse_usage(headers)`` reads ``X-Business-Use-Case-Usage`` and ``X-App-Usage`` (percentages of the limit;
  ``estimated_time_to_regain_access`` in minutes). graph.instagram.com spells ``X-App-Usage``'s percentages
  ``call_volume``/``cpu_time`` (graph-api-facts.md, section 9): both spellings are read.
- ``slowdown_delay_s(pct)``: how long to wait before the next call when usage nears 100 %.
- ``transient_backoff_s``: capped exponential backoff with full jitter (temporary errors).
- ``throttle_backoff_s``: exponential backoff with "equal" jitter (at least half the step) for a throttle code
  without a time-to-regain estimate: calling on while throttled lengthens the block, so never ~0.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "Usage",
    "parse_usage",
    "parse_buc_usage",
    "parse_app_usage",
    "slowdown_delay_s",
    "transient_backoff_s",
    "throttle_backoff_s",
    "SLOWDOWN_THRESHOLD_PCT",
    "app_usage_pct",
]

SLOWDOWN_THRESHOLD_PCT = 80.0
SLOWDOWN_MIN_DELAY_S = 1.0
SLOWDOWN_MAX_DELAY_S = 30.0

_PCT_KEYS = ("call_count", "total_cputime", "total_time")
_APP_PCT_KEYS = _PCT_KEYS + ("call_volume", "cpu_time")  # graph.facebook.com's names, then graph.instagram.com's


@dataclass(frozen=True)
class Usage:
    """What the usage headers of one response say."""

    max_pct: float = 0.0  # highest percentage over both headers and every entry
    regain_minutes: float = 0.0  # highest estimated_time_to_regain_access (minutes)
    buc: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    app: Mapping[str, Any] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        return bool(self.buc or self.app)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _load(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return None


def parse_buc_usage(raw: str | None) -> dict[str, list[dict[str, Any]]]:
    """``X-Business-Use-Case-Usage``: {"<id>": [{"type", "call_count", ..., "estimated_time_to_regain_access"}]}."""
    data = _load(raw)
    if not isinstance(data, dict):
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for key, entries in data.items():
        if isinstance(entries, dict):
            entries = [entries]
        if isinstance(entries, list):
            out[str(key)] = [e for e in entries if isinstance(e, dict)]
    return out


def parse_app_usage(raw: str | None) -> dict[str, Any]:
    """``X-App-Usage``: {"call_count": 28, "total_time": 25, "total_cputime": 25} (graph.facebook.com) or
    {"call_volume": 95, "cpu_time": 12} (graph.instagram.com)."""
    data = _load(raw)
    return data if isinstance(data, dict) else {}


def app_usage_pct(app: Mapping[str, Any]) -> float:
    """The highest percentage of an ``X-App-Usage`` value, in either spelling (0 when absent or unreadable)."""
    return max((_number(app.get(k)) for k in _APP_PCT_KEYS), default=0.0)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:  # plain dicts (batch item headers) are case-sensitive
        lname = name.lower()
        for key, val in headers.items():
            if key.lower() == lname:
                return val
    return value


def parse_usage(headers: Mapping[str, str] | None) -> Usage:
    buc = parse_buc_usage(_header(headers, "X-Business-Use-Case-Usage"))
    app = parse_app_usage(_header(headers, "X-App-Usage"))
    max_pct = 0.0
    regain = 0.0
    for entries in buc.values():
        for entry in entries:
            max_pct = max([max_pct] + [_number(entry.get(k)) for k in _PCT_KEYS])
            regain = max(regain, _number(entry.get("estimated_time_to_regain_access")))
    if app:
        max_pct = max(max_pct, app_usage_pct(app))
    return Usage(max_pct=max_pct, regain_minutes=regain, buc=buc, app=app)


def slowdown_delay_s(pct: float, threshold: float = SLOWDOWN_THRESHOLD_PCT,
                     min_delay_s: float = SLOWDOWN_MIN_DELAY_S, max_delay_s: float = SLOWDOWN_MAX_DELAY_S) -> float:
    """0 below ``threshold``; from ``min_delay_s`` at the threshold rising linearly to ``max_delay_s`` at 100 %."""
    if pct < threshold:
        return 0.0
    fraction = min(1.0, (pct - threshold) / max(1e-9, 100.0 - threshold))
    return min_delay_s + (max_delay_s - min_delay_s) * fraction


def transient_backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**(attempt-1))). ``attempt`` = failed attempts so far (>= 1)."""
    rng = rng or random
    step = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    return rng.uniform(0.0, step)


def throttle_backoff_s(streak: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Equal jitter: step/2 + uniform(0, step/2), step = min(cap, base * 2**(streak-1))."""
    rng = rng or random
    step = min(cap_s, base_s * (2 ** max(0, streak - 1)))
    return step / 2.0 + rng.uniform(0.0, step / 2.0)
