"""The Graph API itself, independent of HTTP: ``SandboxAPI.handle(ApiRequest) -> ApiResponse``.

Entry point, auth, the IG user node and account insights live here; media endpoints in ``media_api.py``,
batch in ``batch.py``. Used by the HTTP server for plain requests and for every item of a batch request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ig_analytics.sandbox import catalog, errors, rng
from ig_analytics.sandbox.account import SandboxAccount, day_end, day_of
from ig_analytics.sandbox.batch import BatchEndpoint
from ig_analytics.sandbox.errors import GraphError
from ig_analytics.sandbox.fields import FieldSpec, parse_fields
from ig_analytics.sandbox.media_api import MediaEndpoints
from ig_analytics.sandbox import competitors as sandbox_competitors
from ig_analytics.sandbox import demographics as sandbox_demographics
from ig_analytics.sandbox import tokens as sandbox_tokens
from ig_analytics.sandbox import tokens_api
from ig_analytics.sandbox import tags as sandbox_tags
from ig_analytics.sandbox.protocol import JSON_TYPE, ApiRequest, ApiResponse, Ctx, fmt_time, page_url, parse_time
from ig_analytics.sandbox.usage import UsageTracker
from ig_analytics.sandbox.world import SandboxWorld, window_total

__all__ = ["SandboxAPI", "ApiRequest", "ApiResponse", "JSON_TYPE"]

MAX_RANGE_S = 30 * 86400
RETENTION_DAYS = 730
FOLLOWER_COUNT_DAYS = 30
FOLLOWER_COUNT_MIN_FOLLOWERS = 100


class SandboxAPI(MediaEndpoints, BatchEndpoint):
    def __init__(self, world: SandboxWorld, usage: UsageTracker) -> None:
        self.world = world
        self.usage = usage
        self._trace = itertools.count(1)

    def trace_id(self) -> str:
        n = next(self._trace)
        digest = hashlib.blake2b(f"trace{n}".encode(), digest_size=16).digest()
        return "A" + base64.urlsafe_b64encode(digest).decode()[:22]

    def error_response(self, e: GraphError, version: str | None = None,
                       acct: SandboxAccount | None = None) -> ApiResponse:
        return ApiResponse(e.http_status, e.body(self.trace_id()), version, acct, e.code)

    # ------------------------------------------------------------------ entry point
    def handle(self, req: ApiRequest) -> ApiResponse:
        resp = self._handle(req)
        if self._instagram_login(req):
            resp.instagram_host = True
            errors.as_instagram_host(resp.body)
        return resp

    def _handle(self, req: ApiRequest) -> ApiResponse:
        parts = [p for p in req.path.split("/") if p]
        version_str = f"v{catalog.NEWEST_VERSION}.0"
        acct: SandboxAccount | None = None
        target: SandboxAccount | None = None
        try:
            if parts and catalog.is_version_segment(parts[0]):
                v = catalog.parse_version(parts[0])
                if v is None:
                    raise errors.bad_version(parts[0])
                version_str, parts = parts[0], parts[1:]
            version = catalog.parse_version(version_str) or catalog.NEWEST_VERSION
            if self.world.enforce_retirements:
                version = catalog.effective_version(version, self.world.clock.now().date())
            if req.method == "POST":
                if not parts and "batch" in req.params and not self._instagram_login(req):
                    return self._batch(req, version_str)  # graph.instagram.com has no batch endpoint: refused
                raise GraphError(400, 100, "Unsupported post request. Please read the Graph API documentation at "
                                 f"{errors.DOCS}", 33, type="GraphMethodException")
            if req.method != "GET":
                raise errors.param(f"(#100) Unsupported method {req.method}")
            if not parts:
                raise errors.unknown_path(req.path)
            if tokens_api.routes(parts):  # debug_token, refresh_access_token, /me/accounts
                return tokens_api.handle(self, req, parts, version, version_str)
            target = self.world.owner_of(parts[0])
            token, owner = self._auth(req, parts[1] if len(parts) > 1 else None)
            ctx = Ctx(version, version_str, self.world.clock.now(), req, token)
            node_id = parts[0]
            if node_id == "me":
                node_id = owner.ig_user_id
            acct = self.world.owner_of(node_id)
            if acct is None or acct is not owner:
                acct = None
                raise errors.no_such_object(node_id)
            self.usage.record_app_call(ctx.now)
            left = self.usage.record(acct.ig_user_id, self.world.faults_for(acct), ctx.now)
            if left is not None:
                raise errors.throttled(math.ceil(left))
            if len(parts) > 2:
                raise errors.unknown_path(req.path)
            edge = parts[1] if len(parts) > 1 else None
            if node_id == acct.ig_user_id:
                body = self._user(acct, edge, ctx)
            else:
                body = self._media(acct, node_id, edge, ctx)
            return ApiResponse(200, body, version_str, acct)
        except GraphError as e:
            resp = self.error_response(e, version_str, acct)
            resp.target_id = target.ig_user_id if target is not None else None
            return resp

    # ------------------------------------------------------------------ auth
    def _instagram_login(self, req: ApiRequest) -> bool:
        """Whether the request carries an Instagram-Login token, i.e. would go to graph.instagram.com."""
        rec = sandbox_tokens.registry(self.world).lookup(tokens_api.request_token(req) or "")
        return rec is not None and rec.kind == "ig_login"

    def _auth(self, req: ApiRequest, edge: str | None = None) -> tuple[str, SandboxAccount]:
        token = req.params.get("access_token")
        if not token and req.auth_header:
            m = re.match(r"^\s*(Bearer|OAuth)\s+(\S+)\s*$", req.auth_header, re.IGNORECASE)
            if m:
                token = m.group(2)
        if not token:
            raise errors.missing_token()
        acct = self.world.account_by_token(token)
        now = self.world.clock.now()
        if acct is None:  # an issued token (Instagram Login, Page token...): expiry and scopes apply
            acct = sandbox_tokens.registry(self.world).authenticate(token, edge, now)
        if acct.expired_token:
            raise errors.expired_token(self.world.ref_time - timedelta(days=3, hours=5), now)
        proof = req.params.get("appsecret_proof")
        secret = self.world.app_secret
        if secret:
            if proof is None and self.world.require_appsecret_proof:
                raise errors.param("(#100) API calls from the server require an appsecret_proof argument")
            if proof is not None:
                want = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, proof.strip().lower()):
                    raise errors.bad_appsecret_proof()
        return token, acct

    # ------------------------------------------------------------------ IG user
    def _user(self, acct: SandboxAccount, edge: str | None, ctx: Ctx) -> dict:
        if edge is None:
            return self._user_fields(acct, ctx)
        if edge == "insights":
            if sandbox_demographics.handles(ctx.req.params):  # lifetime audience pictures (demographics.py)
                return sandbox_demographics.insights(acct, ctx)
            return self._account_insights(acct, ctx)
        if edge == "media":
            return self._media_list(acct, ctx, stories=False)
        if edge == "stories":
            return self._media_list(acct, ctx, stories=True)
        if edge == "tags":
            return sandbox_tags.tags_page(acct, ctx)
        raise errors.nonexisting_field(edge, "IGUser")

    def _user_fields(self, acct: SandboxAccount, ctx: Ctx) -> dict:
        specs = parse_fields(ctx.req.params.get("fields")) or [FieldSpec("id")]
        out: dict[str, Any] = {}
        for f in specs:
            n = f.name
            if n == "id":
                out[n] = acct.ig_user_id
            elif n == "ig_id":
                out[n] = int(rng.h64("igid", acct.ig_user_id) % 10**10)
            elif n == "username":
                out[n] = acct.username
            elif n == "name":
                out[n] = acct.name
            elif n == "followers_count":
                out[n] = acct.followers_at(ctx.now)
            elif n == "follows_count":
                out[n] = acct.follows_count
            elif n == "media_count":
                out[n] = acct.media_count(ctx.now)
            elif n == "biography":
                out[n] = f"{acct.name} - sandbox account"
            elif n == "website":
                out[n] = f"https://example.com/{acct.username}"
            elif n == "profile_picture_url":
                out[n] = f"https://scontent.sandbox.invalid/{acct.ig_user_id}/profile.jpg"
            elif n == "business_discovery":  # other public accounts (competitors.py); age-gated: absent
                found = sandbox_competitors.discover(self.world, f, ctx.now)
                if found is not None:
                    out[n] = found
            else:
                raise errors.nonexisting_field(n, "IGUser")
        out.setdefault("id", acct.ig_user_id)
        return out

    # ------------------------------------------------------------------ account insights
    def _account_insights(self, acct: SandboxAccount, ctx: Ctx) -> dict:
        p = ctx.req.params
        names = [m.strip() for m in (p.get("metric") or "").split(",") if m.strip()]
        if not names:
            raise errors.param("(#100) The value must be a valid insights metric")
        metric_type, breakdown = _check_insights_params(p, names, catalog.account_metrics(ctx.version), ctx.version)
        since, until = self._range(p, ctx.now)
        days = _days_in(since, until)
        today = day_of(ctx.now)
        if "follower_count" in names and any(_too_old_for_follower_count(d, today) for d in days):
            raise errors.follower_count_window()
        small = acct.followers_at(ctx.now) < FOLLOWER_COUNT_MIN_FOLLOWERS
        data = []
        for n in names:
            if n in ("follower_count", "follows_and_unfollows") and small:
                continue  # absent entirely for accounts under 100 followers (graph-api-facts.md, section 8)
            visible = [d for d in days if _visible(n, d, today, ctx.now)]
            entry: dict[str, Any] = {"name": n, "period": "day"}
            if metric_type == "time_series":
                entry["values"] = [{"value": acct.day_values(d)[n], "end_time": fmt_time(day_end(d))} for d in visible]
                entry["title"] = catalog.TITLES.get(n, n)
                entry["description"] = catalog.description(n)
            else:
                if not visible:
                    continue
                total = window_total(n, [acct.day_values(d)[n] for d in visible])
                entry["title"] = catalog.TITLES.get(n, n)
                entry["description"] = catalog.description(n)
                tv: dict[str, Any] = {"value": total}
                if breakdown:
                    keys = catalog.BREAKDOWNS[breakdown]
                    if n == "follows_and_unfollows" and breakdown == "follow_type":  # the true follows / unfollows
                        parts = [sum(acct.day_values(d)[m] for d in visible) for m in ("follower_count", "unfollows")]
                    else:
                        parts = _split(total, [rng.uniform(0.2, 1.0, self.world.seed, acct.index, n, k) for k in keys])
                    tv["breakdowns"] = [{"dimension_keys": [breakdown], "results": [
                        {"dimension_values": [k], "value": v} for k, v in zip(keys, parts)]}]
                    if n == "follows_and_unfollows" and breakdown == "follow_type":
                        del tv["value"]  # the live reply has only the breakdowns (graph-api-facts.md, section 9)
                entry["total_value"] = tv
            entry["id"] = f"{acct.ig_user_id}/insights/{n}/day"
            data.append(entry)
        span = until - since
        base = {k: v for k, v in p.items() if k not in ("since", "until", "access_token")}
        path = f"{acct.ig_user_id}/insights"
        paging = {
            "previous": page_url(ctx, path, {**base, "since": since - span, "until": since}),
            "next": page_url(ctx, path, {**base, "since": until, "until": until + span}),
        }
        return {"data": data, "paging": paging}

    def _range(self, p: dict, now: datetime) -> tuple[int, int]:
        since = parse_time(p.get("since"), "since")
        until = parse_time(p.get("until"), "until")
        now_s = int(now.timestamp())
        if until is None:
            until = now_s
        if since is None:
            since = until - 2 * 86400
        if since > until:
            raise errors.param("(#100) The since parameter must be earlier than the until parameter")
        if until - since > MAX_RANGE_S:
            raise errors.param(f"(#100) There cannot be more than 30 days ({MAX_RANGE_S} s) between since and until")
        return since, until


    def item_headers(self, resp: ApiResponse) -> list[dict]:
        h = [{"name": "Content-Type", "value": JSON_TYPE}]
        for name, value in self.usage_headers(resp).items():
            h.append({"name": name, "value": value})
        return h

    def usage_headers(self, resp: ApiResponse) -> dict[str, str]:
        now = self.world.clock.now()
        accts = resp.touched or ([resp.account] if resp.account else [])
        buc = {a.ig_user_id: [self.usage.buc_entry(a.ig_user_id, self.world.faults_for(a), now)] for a in accts}
        return {
            "X-App-Usage": json.dumps(self.usage.app_usage(now, resp.instagram_host), separators=(",", ":")),
            "X-Business-Use-Case-Usage": json.dumps(buc, separators=(",", ":")),
        }



# ---------------------------------------------------------------------- helpers

def _days_in(since: int, until: int) -> list[date]:
    """Days whose middle (D 19:00 UTC, 12 h before end_time) lies in [since, until]."""
    d = datetime.fromtimestamp(since, timezone.utc).date() - timedelta(days=1)
    out = []
    while True:
        mid = int(day_end(d).timestamp()) - 12 * 3600
        if mid > until:
            return out
        if mid >= since:
            out.append(d)
        d += timedelta(days=1)


def _visible(metric: str, d: date, today: date, now: datetime) -> bool:
    if day_end(d) + timedelta(hours=catalog.account_lag_hours(metric)) > now:
        return False  # not over yet, or late data
    if d < today - timedelta(days=RETENTION_DAYS):
        return False
    if metric == "follower_count" and _too_old_for_follower_count(d, today):
        return False
    return True


def _too_old_for_follower_count(d: date, today: date) -> bool:
    return d < today - timedelta(days=FOLLOWER_COUNT_DAYS)


def _split(total: int, weights: list[float]) -> list[int]:
    s = sum(weights)
    parts = [math.floor(total * w / s) for w in weights]
    parts[0] += total - sum(parts)
    return parts


def _check_insights_params(p: dict, names: list[str], available: dict, version: str) -> tuple[str, str | None]:
    """The account-insights request's metrics, period, metric type and breakdown checked as Meta checks them
    (the first problem is the error); returns (metric_type, breakdown)."""
    for i, n in enumerate(names):
        if n not in available:
            removed = catalog.account_removed_in(n, version)
            if removed is not None:
                raise errors.account_metric_removed(n, removed)
            raise errors.invalid_metric(i, n, sorted(available))
    period = p.get("period")
    if not period:
        raise errors.param("(#100) The parameter period is required")
    if period != "day":
        raise errors.param(f"(#100) Incompatible period '{period}' for the requested metrics; use period=day")
    metric_type = p.get("metric_type") or "time_series"
    if metric_type not in ("time_series", "total_value"):
        raise errors.param("(#100) metric_type must be one of the following values: time_series, total_value")
    if metric_type == "time_series":
        bad = [n for n in names if not available[n][0]]
        if bad:
            raise errors.param(f"(#100) The following metrics ({', '.join(bad)}) should be specified with "
                               f"parameter metric_type=total_value")
    else:
        bad = [n for n in names if not available[n][1]]
        if bad:
            raise errors.param(f"(#100) The following metrics ({', '.join(bad)}) do not support "
                               f"metric_type=total_value; use metric_type=time_series")
    breakdown = p.get("breakdown")
    if breakdown:
        if metric_type != "total_value":
            raise errors.param("(#100) breakdown is only supported with metric_type=total_value")
        if breakdown not in catalog.BREAKDOWNS:
            raise errors.param(f"(#100) Incompatible breakdowns: {breakdown}")
        for n in names:
            if not catalog.breakdown_ok(breakdown, n):
                raise errors.param(f"(#100) The {n} metric does not support the {breakdown} breakdown")
    return metric_type, breakdown
