"""Request/response values shared by the API modules, and Graph API time formats."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ig_analytics.sandbox import errors

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.account import SandboxAccount

TS_FMT = "%Y-%m-%dT%H:%M:%S+0000"
JSON_TYPE = "application/json; charset=UTF-8"


@dataclass
class ApiRequest:
    method: str
    path: str  # e.g. "/v25.0/17841400000000001/insights"
    params: dict[str, str]
    auth_header: str | None = None
    base_url: str = ""
    batch_item: bool = False


@dataclass
class ApiResponse:
    status: int
    body: Any
    version: str | None = None
    account: SandboxAccount | None = None
    error_code: int | None = None
    touched: list[SandboxAccount] = field(default_factory=list)  # accounts of a batch's items
    items: list["ApiResponse"] = field(default_factory=list)  # a batch's item responses (for the log)
    item_requests: list[ApiRequest] = field(default_factory=list)
    target_id: str | None = None  # the account a refused call was about (for the request log)
    instagram_host: bool = False  # answered as graph.instagram.com would (an Instagram-Login token)


@dataclass
class Ctx:
    version: int
    version_str: str
    now: datetime
    req: ApiRequest
    token: str


def fmt_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime(TS_FMT)



PAGING_HOST = "https://graph.facebook.com"  # a real next URL may name another host ...
PAGING_VERSION = "v6.0"  # ... and another version than the request (graph-api-facts.md, section 9)


def page_url(ctx: Ctx, path: str, params: dict) -> str:
    """A paging URL as Meta writes it: another host and version than the request's, the access token first,
    ``pretty=0``. A client follows it on its own host and version (see ``rebase_page_url``)."""
    rest = {k: v for k, v in params.items() if k not in ("access_token", "pretty")}
    q = urlencode({"access_token": ctx.token, "pretty": "0", **rest})
    return f"{PAGING_HOST}/{PAGING_VERSION}/{path}?{q}"


def rebase_page_url(url: str, base_url: str, version: str) -> str:
    """``url`` on ``base_url`` and ``version``: what a client does with a paging URL (tests use it)."""
    tail = url.split("://", 1)[-1].split("/", 2)[2]  # host/v6.0/<path>?<query> -> <path>?<query>
    return f"{base_url.rstrip('/')}/{version}/{tail}"


def parse_time(value: str | None, name: str) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    s = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return int(float(s))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            d = date.fromisoformat(s)
            if name == "until":  # a bare date until is stretched to the end of that day
                d += timedelta(days=1)
            return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return int(t.timestamp())
    except ValueError:
        raise errors.param(f"(#100) The parameter {name} must be a unix timestamp or a date") from None

