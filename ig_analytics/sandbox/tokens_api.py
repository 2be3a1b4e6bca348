"""Token endpoints of the sandbox: ``debug_token``, ``refresh_access_token`` (Instagram host semantics) and
``/me/accounts`` (a Facebook user's Pages, cursor-paged). State lives in ``tokens.TokenRegistry``."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import TYPE_CHECKING

from ig_analytics.sandbox import errors
from ig_analytics.sandbox.errors import GraphError
from ig_analytics.sandbox.fields import parse_fields
from ig_analytics.sandbox.protocol import ApiRequest, ApiResponse, Ctx, page_url
from ig_analytics.sandbox.tokens import LONG_LIVED, registry

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.api import SandboxAPI

DEFAULT_PAGE_LIMIT = 25
MAX_PAGE_LIMIT = 100
_PAGE_FIELDS = {"id", "name", "access_token", "instagram_business_account", "category"}


def routes(parts: list[str]) -> bool:
    return bool(parts) and (parts[0] in ("debug_token", "refresh_access_token") or parts[:2] == ["me", "accounts"])


def request_token(req: ApiRequest) -> str | None:
    """The access token of a request: its query/form value, else its Authorization header."""
    token = req.params.get("access_token")
    if not token and req.auth_header:
        m = re.match(r"^\s*(Bearer|OAuth)\s+(\S+)\s*$", req.auth_header, re.IGNORECASE)
        if m:
            token = m.group(2)
    return token


def handle(api: "SandboxAPI", req: ApiRequest, parts: list[str], version: int, version_str: str) -> ApiResponse:
    world = api.world
    now = world.clock.now()
    reg = registry(world)
    token = request_token(req)
    if not token:
        raise errors.missing_token()
    api.usage.record_app_call(now)
    if parts[0] == "debug_token":
        app_id, _, secret = token.partition("|")  # one sandbox app: any id, the world's secret when it has one
        if not app_id or not secret or (world.app_secret and secret != world.app_secret):
            raise GraphError(400, 100, "(#100) You must provide an app access token (APP_ID|APP_SECRET) or a user "
                             "access token that is an owner or developer of the app")
        input_token = req.params.get("input_token")
        if not input_token:
            raise errors.param("(#100) The parameter input_token is required")
        return ApiResponse(200, {"data": reg.debug(input_token, now)}, version_str)
    if parts[0] == "refresh_access_token":
        if req.params.get("grant_type") != "ig_refresh_token":
            raise errors.param("(#100) grant_type must be ig_refresh_token")
        new = reg.refresh(token, now)
        return ApiResponse(200, {"access_token": new.token, "token_type": "bearer",
                                 "expires_in": int(LONG_LIVED.total_seconds())}, version_str)
    return _me_accounts(reg, Ctx(version, version_str, now, req, token), token)


def _me_accounts(reg, ctx: Ctx, token: str) -> ApiResponse:
    rec = reg.lookup(token)
    if rec is None:
        if reg.builtin(token) is not None:
            raise errors.nonexisting_field("accounts", "IGUser")
        raise errors.invalid_token()
    if rec.expired(ctx.now):
        raise errors.expired_token(rec.expires_at, ctx.now)
    if rec.kind != "fb_user":
        raise errors.nonexisting_field("accounts", "Page" if rec.kind == "page" else "IGUser")
    if "pages_show_list" not in rec.scopes:
        raise GraphError(403, 10, "(#10) Application does not have permission for this action: pages_show_list "
                         "is required", type="OAuthException")
    p = ctx.req.params
    specs = parse_fields(p.get("fields")) or []
    names = [s.name for s in specs] or ["id", "name"]
    for n in names:
        if n not in _PAGE_FIELDS:
            raise errors.nonexisting_field(n, "Page")
    try:
        limit = min(MAX_PAGE_LIMIT, max(1, int(p.get("limit") or DEFAULT_PAGE_LIMIT)))
        start = int(base64.urlsafe_b64decode(p["after"]).decode()) + 1 if p.get("after") else 0
    except (ValueError, UnicodeDecodeError):
        raise errors.param("(#100) Invalid cursor or limit") from None
    pages = reg.pages_of(rec.user_id)
    chunk = pages[start:start + limit]
    data = []
    for page in chunk:
        item: dict = {}
        for spec in specs or [None]:
            n = spec.name if spec else None
            if n in (None, "id"):
                item["id"] = page.page_id
            if n in (None, "name") and page.name is not None:  # a Page without a name: fields not granted
                item["name"] = page.name
            if n == "category":
                item["category"] = "Local business"
            if n == "access_token" and page.name is not None:  # ... and then no Page token either
                item["access_token"] = page.token
            if n == "instagram_business_account" and page.ig_user_id is not None:
                acct = reg.world.account(page.ig_user_id)
                sub = [s.name for s in (spec.subfields or [])] or ["id"]
                item[n] = {k: v for k, v in (("id", acct.ig_user_id), ("username", acct.username)) if k in sub}
        data.append(item)
    out: dict = {"data": data}
    if chunk:
        cursors = {"before": _cursor(start)}  # the last page: only cursors.before (graph-api-facts.md, s. 9)
        out["paging"] = {"cursors": cursors}
        if start + len(chunk) < len(pages):
            cursors["after"] = _cursor(start + len(chunk) - 1)
            base = {k: v for k, v in p.items() if k not in ("after", "before", "access_token")}
            out["paging"]["next"] = page_url(ctx, "me/accounts", {**base, "limit": limit,
                                                                  "after": cursors["after"]})
    return ApiResponse(200, out, ctx.version_str)


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def control(world, method: str, data: dict) -> tuple[int, dict]:
    """``/__sandbox/tokens`` for out-of-process use. GET: the default Facebook user's token. POST
    {"kind": "instagram_login", "ig_user_id", "age_seconds"?, "scopes"?} or {"kind": "facebook_user",
    "pages": [{"name", "ig_user_id"|null}], "scopes"?} issues one: {"token": ...}."""
    reg = registry(world)
    if method == "GET":
        return 200, {"token": reg.default_facebook_user_token()}
    try:
        kind = data.get("kind")
        if kind == "instagram_login":
            token = reg.issue_instagram_login(str(data["ig_user_id"]), age=timedelta(seconds=float(
                data.get("age_seconds") or 0)), scopes=data.get("scopes"))
        elif kind == "facebook_user":
            pages = [(str(p["name"]), p.get("ig_user_id")) for p in data["pages"]]
            token = reg.add_facebook_user(pages, scopes=data.get("scopes"))
        else:
            return 400, {"error": "kind must be instagram_login or facebook_user"}
    except (KeyError, TypeError, ValueError) as e:
        return 400, {"error": f"bad token request: {e}"}
    return 200, {"token": token}
