"""``online_followers`` in the sandbox: ``/{ig-user-id}/insights?metric=online_followers&period=lifetime
&since=..&until=..`` (graph-api-facts.md, section 8).

What the older API versions do, reproduced: one value per finished day whose ``end_time`` lies in
``(since, until]``, the value an hourly map ``{"0": n, ..., "23": n}`` (hour h = the h-th hour of the day that ends
at ``end_time``); only the last 30 days; ``{"data": []}`` under 100 followers. The metric is absent from the v25
table: v25 rejects it as an unknown metric (``LAST_VERSION``). Followers are most online in the account's own
evening, a little around its noon, hardly at night.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from ig_analytics.sandbox import catalog, errors, rng
from ig_analytics.sandbox.account import day_end, day_of
from ig_analytics.sandbox.protocol import fmt_time, parse_time

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.account import SandboxAccount
    from ig_analytics.sandbox.protocol import Ctx

METRIC = "online_followers"
LAST_VERSION = 24  # served by v18..v24; absent from the v25 metric table
MIN_FOLLOWERS = 100
DAYS = 30


def _share(local_hour: int) -> float:
    """Part of the followers online in a local hour: evening peak at 20:00, a smaller one at 12:00."""
    def near(peak: int) -> int:  # hours from the peak, around the clock
        return min(abs(local_hour - peak), 24 - abs(local_hour - peak))

    evening = math.exp(-near(20) ** 2 / 8.0)
    noon = math.exp(-near(12) ** 2 / 6.0)
    return 0.03 + 0.22 * evening + 0.10 * noon


def truth(acct: "SandboxAccount", day: date) -> dict[str, int]:
    """The hourly map the API gives for ``day`` (hour keys "0".."23" from the day's start, 24 h before end_time)."""
    start = day_end(day) - timedelta(days=1)
    followers = acct.followers_end_of(day)
    out = {}
    for h in range(24):
        local = (start + timedelta(hours=h)).astimezone(acct.tz).hour
        noise = rng.uniform(0.9, 1.1, acct.world.seed, acct.index, METRIC, day.toordinal(), h)
        out[str(h)] = int(followers * _share(local) * noise)
    return out


def insights(acct: "SandboxAccount", ctx: "Ctx") -> dict:
    p = ctx.req.params
    if ctx.version > LAST_VERSION:
        raise errors.invalid_metric(0, METRIC, sorted(catalog.account_metrics(ctx.version)))
    if [m.strip() for m in (p.get("metric") or "").split(",") if m.strip()] != [METRIC]:
        raise errors.param(f"(#100) {METRIC} must be requested on its own (period=lifetime)")
    if p.get("period") != "lifetime":
        raise errors.param(f"(#100) Incompatible period '{p.get('period')}' for {METRIC}; use period=lifetime")
    now_s = int(ctx.now.timestamp())
    until = parse_time(p.get("until"), "until") or now_s
    since = parse_time(p.get("since"), "since") or until - 2 * 86400
    if since > until:
        raise errors.param("(#100) The since parameter must be earlier than the until parameter")
    if until - since > DAYS * 86400:
        raise errors.param(f"(#100) There cannot be more than 30 days ({DAYS * 86400} s) between since and until")
    if acct.followers_at(ctx.now) < MIN_FOLLOWERS or acct.spec.demographics_withheld:
        return {"data": []}
    today = day_of(ctx.now)
    days = [today - timedelta(days=i) for i in range(DAYS, 0, -1)]
    values = [{"value": truth(acct, d), "end_time": fmt_time(day_end(d))} for d in days
              if since < day_end(d).timestamp() <= until and day_end(d) <= ctx.now]
    return {"data": [{
        "name": METRIC, "period": "lifetime", "values": values, "title": "Online followers",
        "description": "Total number of this profile's followers that were online during the specified range",
        "id": f"{acct.ig_user_id}/insights/{METRIC}/lifetime",
    }]}


def visible_days(now: datetime) -> list[date]:
    """The days the API serves at ``now`` (the last 30 finished days)."""
    today = day_of(now)
    return [today - timedelta(days=i) for i in range(DAYS, 0, -1)]
