"""Date arithmetic of account insights: windows, call plans, end_time -> date (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from ig_analytics.constants import META_DAY_TIMEZONE
from ig_analytics.graph_api.catalogue import TIME_SERIES, AccountMetric

__all__ = [
    "MAX_WINDOW_DAYS",
    "BATCH_SIZE",
    "AccountCall",
    "day_start_ts",
    "end_time_to_date",
    "parse_graph_time",
    "split_windows",
    "plan_account_calls",
    "metric_available",
    "meta_today",
]

MAX_WINDOW_DAYS = 29  # the API allows 30 days since..until; 29 is safe whatever "until" is stretched to
BATCH_SIZE = 50  # Graph API batch limit


@dataclass(frozen=True)
class AccountCall:
    """One ``GET /{ig-user-id}/insights`` call: metrics of one (period, metric_type) over ``days``."""

    metrics: tuple[str, ...]
    period: str
    metric_type: str
    days: tuple[date, ...]  # consecutive, oldest first

    @property
    def since(self) -> int:
        return day_start_ts(self.days[0])

    @property
    def until(self) -> int:
        return day_start_ts(self.days[-1] + timedelta(days=1))

    def params(self) -> dict[str, str]:
        return {
            "metric": ",".join(self.metrics),
            "period": self.period,
            "metric_type": self.metric_type,
            "since": str(self.since),
            "until": str(self.until),
        }


def meta_today(now: datetime) -> date:
    """The API's day in progress at ``now``: its Pacific-time date. The follower_count window ("the last 30 days
    excluding today") counts back from it, not from the UTC date, which runs a day ahead until 07:00 / 08:00 UTC."""
    return now.astimezone(ZoneInfo(META_DAY_TIMEZONE)).date()


def day_start_ts(day: date) -> int:
    """Unix seconds of 00:00 UTC of ``day``."""
    return int(datetime.combine(day, time(0, 0), tzinfo=timezone.utc).timestamp())


def _parse_in_own_offset(value: str) -> datetime:
    """'2023-06-12T19:20:02+0000' (or ISO 8601 with 'Z' / '+00:00'), keeping the offset it was written in."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def parse_graph_time(value: str) -> datetime:
    """A Graph API timestamp -> aware datetime in UTC."""
    parsed = _parse_in_own_offset(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def end_time_to_date(end_time: str) -> date:
    """The day a daily value covers: the date part of (end_time - 1 day), in end_time's own offset.

    '2017-05-05T07:00:00+0000' -> 2017-05-04, and the winter '2019-12-20T08:00:00+0000' -> 2019-12-19 (project
    convention, graph-api-facts.md sections 2 and 9).
    """
    return (_parse_in_own_offset(end_time) - timedelta(days=1)).date()


def split_windows(days: Sequence[date], size: int = MAX_WINDOW_DAYS) -> list[tuple[date, ...]]:
    """Consecutive ``days`` (oldest first) in windows of at most ``size`` days, the newest window full."""
    days = list(days)
    windows: list[tuple[date, ...]] = []
    end = len(days)
    while end > 0:
        start = max(0, end - size)
        windows.append(tuple(days[start:end]))
        end = start
    windows.reverse()
    return windows


def metric_available(metric: AccountMetric, day: date, today: date) -> bool:
    """Whether the API serves ``metric`` for ``day`` (follower_count: only the last 30 days excluding today)."""
    if day > today:
        return False
    if metric.max_days_back is None:
        return True
    return today - timedelta(days=metric.max_days_back) <= day <= today - timedelta(days=1)


def _runs(days: Sequence[date], key) -> Iterable[tuple[object, list[date]]]:
    """Maximal runs of consecutive days with equal ``key(day)``."""
    current_key: object = object()
    run: list[date] = []
    for day in days:
        k = key(day)
        if run and (k != current_key or day != run[-1] + timedelta(days=1)):
            yield current_key, run
            run = []
        current_key = k
        run.append(day)
    if run:
        yield current_key, run


def plan_account_calls(metrics: Sequence[AccountMetric], since: date, until: date, today: date) -> list[AccountCall]:
    """The fewest insights calls covering every available (metric, day) of ``since..until`` (inclusive).

    time_series metrics: one call per window of <= 29 days and per (period); a day range where a metric is
    not served (follower_count older than 30 days) is a separate run of windows without it.
    total_value metrics: one call per day (a total_value answer is one number for the whole since..until).
    Days after ``today`` are not asked.
    """
    if until < since:
        return []
    days = [since + timedelta(days=i) for i in range((min(until, today) - since).days + 1)]
    groups: dict[tuple[str, str], list[AccountMetric]] = {}
    for metric in metrics:
        groups.setdefault((metric.period, metric.metric_type), []).append(metric)
    calls: list[AccountCall] = []
    for (period, metric_type), group in groups.items():
        def eligible(day: date, group=group) -> tuple[str, ...]:
            return tuple(m.name for m in group if metric_available(m, day, today))

        for names, run in _runs(days, eligible):
            if not names:
                continue
            if metric_type == TIME_SERIES:
                windows = split_windows(run)
            else:
                windows = [(day,) for day in run]
            calls.extend(AccountCall(tuple(names), period, metric_type, window) for window in windows)
    return calls
