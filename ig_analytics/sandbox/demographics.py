"""Audience demographics in the sandbox: ``/{ig-user-id}/insights?metric=follower_demographics|
engaged_audience_demographics&period=lifetime&metric_type=total_value&breakdown=age|gender|country|city|age,gender``.

What the live API does, reproduced: one breakdown per call (``age,gender`` is one crossed breakdown: each result's
``dimension_values`` follow the order asked, e.g. ``["18-24", "F"]``); only the top 45 values; only viewers with known
demographics, so the values sum below the base (followers, or accounts engaged over the timeframe); an account
under 100 followers (or engagements) gets ``{"data": []}``, not an error; ``engaged_audience_demographics`` needs
``timeframe`` (``this_week`` / ``this_month``; before v20 also ``last_14_days``, ``last_30_days``,
``last_90_days``, ``prev_month``); before v20 it rejects the ``city`` breakdown. The picture is the current one:
it changes a little every sandbox day (``truth`` is what the API answers at a given time). Age and gender come
from one joint picture of age x gender cells: the ``age`` and ``gender`` answers are its margins (each rounded down
on its own, as the API rounds each answer), the ``age,gender`` answer its cells. ``online_followers``
(older versions only) is served by ``online_followers.py``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ig_analytics.sandbox import errors, online_followers, rng
from ig_analytics.sandbox.account import day_of
from ig_analytics.sandbox.world import window_total

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.account import SandboxAccount
    from ig_analytics.sandbox.protocol import Ctx

METRICS = ("follower_demographics", "engaged_audience_demographics")
MIN_BASE = 100
TOP_N = 45
NEW_TIMEFRAMES = ("this_week", "this_month")
OLD_TIMEFRAMES = NEW_TIMEFRAMES + ("last_14_days", "last_30_days", "last_90_days", "prev_month")
_TIMEFRAME_DAYS = {"this_week": 7, "this_month": 30, "last_14_days": 14, "last_30_days": 30, "last_90_days": 90,
                   "prev_month": 30}
_COUNTRIES = ("US BR IN GB DE FR IT ES MX CA JP KR ID TR AR CO PL NL AU RU UA PH TH VN MY SA AE EG NG ZA KE CL PE "
              "PT BE SE NO DK FI AT CH IE GR CZ RO HU IL NZ SG HK TW PK BD MA DZ VE EC GT CU DO").split()
_CITIES = tuple(f"{name}, {region}" for name, region in (
    ("New York", "New York"), ("Los Angeles", "California"), ("Chicago", "Illinois"), ("Houston", "Texas"),
    ("London", "England"), ("Paris", "Ile-de-France"), ("Berlin", "Berlin"), ("Madrid", "Madrid"),
    ("Rome", "Lazio"), ("Milan", "Lombardy"), ("Tokyo", "Tokyo"), ("Osaka", "Osaka"), ("Seoul", "Seoul"),
    ("Sao Paulo", "Sao Paulo (state)"), ("Rio de Janeiro", "Rio de Janeiro (state)"), ("Mexico City", "Distrito Federal"),
    ("Buenos Aires", "Buenos Aires"), ("Bogota", "Distrito Especial"), ("Lima", "Lima Region"), ("Santiago", "Santiago Metropolitan Region"),
    ("Toronto", "Ontario"), ("Montreal", "Quebec"), ("Vancouver", "British Columbia"), ("Sydney", "New South Wales"),
    ("Melbourne", "Victoria"), ("Auckland", "Auckland Region"), ("Mumbai", "Maharashtra"), ("Delhi", "Delhi"),
    ("Bangalore", "Karnataka"), ("Jakarta", "Jakarta"), ("Manila", "Metro Manila"), ("Bangkok", "Bangkok"),
    ("Istanbul", "Istanbul Province"), ("Cairo", "Cairo Governorate"), ("Lagos", "Lagos State"), ("Nairobi", "Nairobi"),
    ("Johannesburg", "Gauteng"), ("Dubai", "Dubai"), ("Riyadh", "Riyadh Region"), ("Moscow", "Moscow"),
    ("Kyiv", "Kyiv"), ("Warsaw", "Masovian Voivodeship"), ("Amsterdam", "North Holland"), ("Brussels", "Brussels"),
    ("Vienna", "Vienna"), ("Zurich", "Zurich"), ("Stockholm", "Stockholm County"), ("Oslo", "Oslo"),
    ("Copenhagen", "Capital Region of Denmark"), ("Helsinki", "Uusimaa"), ("Dublin", "Dublin"), ("Lisbon", "Lisbon"),
    ("Athens", "Attica"), ("Prague", "Prague"), ("Budapest", "Budapest"), ("Bucharest", "Bucharest"),
    ("Miami", "Florida"), ("San Francisco", "California"), ("Seattle", "Washington"), ("Boston", "Massachusetts"),
    ("Atlanta", "Georgia"), ("Dallas", "Texas"), ("Barcelona", "Catalonia"), ("Lyon", "Auvergne-Rhone-Alpes"),
    ("Munich", "Bavaria"), ("Hamburg", "Hamburg"), ("Manchester", "England"), ("Singapore", "Singapore"),
))
AGES = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("F", "M", "U")
CROSSED = "age,gender"
KEYS = {
    "age": AGES,
    "gender": GENDERS,
    "country": tuple(_COUNTRIES),
    "city": _CITIES,
    CROSSED: tuple((a, g) for a in AGES for g in GENDERS),  # (age, gender) cells
}
# the rest is unknown to Meta; age and gender share one joint picture (people whose age Meta knows)
_KNOWN_SHARE = {"age": 0.92, "gender": 0.92, CROSSED: 0.92, "country": 0.97, "city": 0.78}


def handles(params: dict) -> bool:
    return any(m.strip() in METRICS + (online_followers.METRIC,) for m in (params.get("metric") or "").split(","))


def _base(acct: "SandboxAccount", metric: str, timeframe: str | None, now: datetime) -> int:
    if metric == "follower_demographics":
        return acct.followers_at(now)
    today = day_of(now)
    days = [today - timedelta(days=i) for i in range(1, _TIMEFRAME_DAYS[timeframe or "this_month"] + 1)]
    return window_total("accounts_engaged", [acct.day_values(d)["accounts_engaged"] for d in days])


def _weights(acct: "SandboxAccount", metric: str, breakdown: str, day: int) -> dict:
    """Key -> weight in the picture; age and gender are margins of the (age, gender) cells."""
    seed, idx = acct.world.seed, acct.index
    family = CROSSED if breakdown in ("age", "gender", CROSSED) else breakdown
    cells = {}
    for key in KEYS[family]:
        stable = rng.uniform(0.02, 1.0, seed, idx, "demo", metric, family, key) ** 3
        drift = 1.0 + rng.uniform(-0.04, 0.04, seed, idx, "demo-day", metric, family, key, day)
        cells[key] = stable * drift
    if breakdown in ("age", "gender"):
        pos = 0 if breakdown == "age" else 1
        margin = dict.fromkeys(KEYS[breakdown], 0.0)
        for cell, w in cells.items():
            margin[cell[pos]] += w
        return margin
    return cells


def truth(acct: "SandboxAccount", metric: str, breakdown: str, timeframe: str | None,
          now: datetime) -> dict | None:
    """What the API answers at ``now``: key -> value (top 45), or None when the base is under 100. Keys of the
    ``age,gender`` picture are (age, gender) tuples."""
    base = _base(acct, metric, timeframe, now)
    if base < MIN_BASE or acct.spec.demographics_withheld:
        return None
    weights = _weights(acct, metric, breakdown, day_of(now).toordinal())
    total = sum(weights.values())
    known = base * _KNOWN_SHARE[breakdown]
    values = {k: math.floor(known * w / total) for k, w in weights.items()}
    top = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    return {k: v for k, v in top if v > 0}


def _breakdown(asked: str) -> tuple[str, tuple[str, ...]]:
    """The picture asked and its dimension keys in the order asked (``gender,age`` is the crossed one too)."""
    dims = tuple(d.strip() for d in asked.split(","))
    if len(dims) == 1 and dims[0] in KEYS:
        return dims[0], dims
    if sorted(dims) == ["age", "gender"]:
        return CROSSED, dims
    raise errors.param(f"(#100) Incompatible breakdowns: {asked}")


def insights(acct: "SandboxAccount", ctx: "Ctx") -> dict:
    p = ctx.req.params
    names = [m.strip() for m in (p.get("metric") or "").split(",") if m.strip()]
    if online_followers.METRIC in names:  # the other lifetime audience metric (older versions only)
        return online_followers.insights(acct, ctx)
    if len(names) != 1:
        raise errors.param("(#100) Demographic metrics must be requested one at a time")
    metric = names[0]
    if p.get("period") != "lifetime":
        raise errors.param(f"(#100) Incompatible period '{p.get('period')}' for {metric}; use period=lifetime")
    if p.get("metric_type") != "total_value":
        raise errors.param(f"(#100) {metric} should be specified with parameter metric_type=total_value")
    if not p.get("breakdown"):
        raise errors.param(f"(#100) {metric} requires one breakdown among age, gender, country, city")
    breakdown, dims = _breakdown(p["breakdown"])
    if metric == "engaged_audience_demographics" and ctx.version < 20 and breakdown == "city":
        raise errors.param(f"(#100) Incompatible breakdowns: {breakdown} is not supported for {metric} in this "
                           "version")
    timeframe = p.get("timeframe")
    allowed = NEW_TIMEFRAMES if ctx.version >= 20 else OLD_TIMEFRAMES
    if metric == "engaged_audience_demographics" and not timeframe:
        raise errors.param(f"(#100) The parameter timeframe is required for {metric}")
    if timeframe and timeframe not in allowed:
        raise errors.param(f"(#100) timeframe must be one of the following values: {', '.join(allowed)}")
    values = truth(acct, metric, breakdown, timeframe, ctx.now)
    if values is None:
        return {"data": []}
    keys = (["timeframe"] if timeframe else []) + list(dims)
    results = []
    for k, v in values.items():
        cell = dict(zip(("age", "gender"), k)) if breakdown == CROSSED else {breakdown: k}
        results.append({"dimension_values": ([timeframe] if timeframe else []) + [cell[d] for d in dims], "value": v})
    return {"data": [{
        "name": metric, "period": "lifetime",
        "title": "Follower demographics" if metric == "follower_demographics" else "Engaged audience demographics",
        "description": f"The demographic characteristics of the {'followers' if metric == 'follower_demographics' else 'engaged audience'}.",
        "total_value": {"breakdowns": [{"dimension_keys": keys, "results": results}]},
        "id": f"{acct.ig_user_id}/insights/{metric}/lifetime",
    }]}
