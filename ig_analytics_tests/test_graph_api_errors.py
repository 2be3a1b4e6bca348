"""Error classes over real HTTP against a tiny scripted stub server: what the client retries, skips, pauses and
fails, with which message; plus call counts, paging, token handling and a no-token-anywhere log test."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from ig_analytics.graph_api import (
    GraphApiClient,
    InvalidRequestError,
    MalformedResponseError,
    Media,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
)
from ig_analytics.redaction import RedactingFilter

TOKEN = "EAAGtestTOKENsecret0123456789"
USER = "17841400000000001"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


# ============================================================================================= stub server
@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    raw_url: str


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # dict/list -> JSON; str/bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hold: bool = False  # answer only when the stub stops: a request that times out for sure


def err_body(code: int, message: str = "error", subcode: int | None = None, transient: bool = False) -> dict:
    e: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "TRACE1",
                         "is_transient": transient}
    if subcode is not None:
        e["error_subcode"] = subcode
    return {"error": e}


class Stub:
    def __init__(self) -> None:
        self.handler: Callable[[Req], Reply] = lambda req: Reply(404, err_body(100, "no handler"))
        self.requests: list[Req] = []
        # An assert that fails inside the server thread would only drop the connection (which the client
        # retries as a network error): failures are kept here and raised in the test's thread by the fixture.
        self.failures: list[str] = []
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                req = Req(self.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                          {k.lower(): v for k, v in self.headers.items()},
                          {k: v[0] for k, v in parse_qs(raw).items()}, self.path)
                stub.requests.append(req)
                try:
                    reply = stub.handler(req)
                except BaseException:  # noqa: BLE001 - reported by the fixture, in the test's thread
                    stub.failures.append(traceback.format_exc())
                    reply = Reply(599, err_body(1, "stub handler failed: see the test's failures"))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.hold:
                    stub.release.wait(timeout=120)
                body = reply.body
                data = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                # A client that timed out on purpose closes its socket first: not a failure of the stub.
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = Stub()
    try:
        yield s
    finally:
        s.stop()
    assert s.failures == [], "the stub server's handler failed:\n" + "\n".join(s.failures)


class FakeClock:
    """Fake sleep + monotonic: sleeping advances the clock instantly; every wait is recorded."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s

    def monotonic(self) -> float:
        return self.t


def make_client(stub: Stub, clock: FakeClock | None = None, **kw: Any) -> tuple[GraphApiClient, FakeClock]:
    clock = clock or FakeClock()
    kw.setdefault("version", "v25.0")
    client = GraphApiClient(base_url=stub.base_url, sleep=clock.sleep, monotonic=clock.monotonic,
                            now=lambda: NOW, **kw)
    return client, clock


def sequence(*replies: Reply) -> Callable[[Req], Reply]:
    """Replies in order; the last one repeats."""
    queue = list(replies)

    def handler(req: Req) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


PROFILE_OK = Reply(200, {"id": USER, "username": "acme", "followers_count": 1234, "follows_count": 5,
                         "media_count": 77})


def batch_handler(item_fn: Callable[[str, dict[str, str], int], Any], headers: dict[str, str] | None = None):
    """A /batch POST handler; item_fn(path, query, round_no) -> (code, body) or None (item not completed)."""
    rounds = {"n": 0}

    def handler(req: Req) -> Reply:
        assert req.method == "POST"
        rounds["n"] += 1
        out = []
        for item in json.loads(req.form["batch"]):
            url = urlsplit(item["relative_url"])
            res = item_fn(url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, rounds["n"])
            out.append(None if res is None else {"code": res[0], "body": json.dumps(res[1])})
        return Reply(200, out, headers or {})

    return handler


def batching(stub: Stub, handler: Callable[[Req], Reply]) -> Callable[[Req], Reply]:
    """``handler`` serves plain GETs and, item by item, batch POSTs too (each item is logged in stub.requests
    as a GET whose raw_url is its relative_url and whose headers are empty: a batch item carries no token)."""

    def serve(req: Req) -> Reply:
        if req.method != "POST":
            return handler(req)
        out = []
        for item in json.loads(req.form["batch"]):
            url = urlsplit(item["relative_url"])
            sub = Req("GET", f"/v25.0/{url.path.lstrip('/')}", {k: v[0] for k, v in parse_qs(url.query).items()},
                      {}, {}, item["relative_url"])
            stub.requests.append(sub)
            reply = handler(sub)
            out.append({"code": reply.status, "body": json.dumps(reply.body)})
        return Reply(200, out)

    return serve


def media_ok(metrics: str, base: int = 10) -> dict:
    return {"data": [{"name": m, "period": "lifetime", "values": [{"value": base + i}], "id": f"x/insights/{m}"}
                     for i, m in enumerate(metrics.split(","))]}


def post(i: int, product: str = "FEED", mtype: str = "IMAGE") -> Media:
    return Media(f"1800{i:04d}", USER, mtype, product, None, None, NOW - timedelta(hours=i))


# ================================================================================= GET-level error classes
def test_token_invalid_is_not_retried_and_says_how_to_reconnect(stub):
    stub.handler = sequence(Reply(400, err_body(190, f"Error validating access token: Session has expired "
                                                      f"(token {TOKEN})", 463)))
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    with pytest.raises(TokenInvalidError) as info:
        acct.profile()
    text = str(info.value)
    assert text == (f"Instagram rejected the access token of account {USER} (code 190/463: session expired, "
                    f"HTTP 400, fbtrace_id TRACE1). Reconnect the account: ig-analytics accounts add "
                    f"--ig-user-id {USER} --token NEW_TOKEN")
    assert TOKEN not in info.value.api_message
    assert acct.stats.calls == 1 and acct.stats.retries == 0 and clock.sleeps == []


def test_code_102_is_token_invalid(stub):
    stub.handler = sequence(Reply(400, err_body(102, "Session key invalid")))
    client, _ = make_client(stub)
    with pytest.raises(TokenInvalidError, match="API session invalid"):
        client.account(USER, TOKEN).profile()


@pytest.mark.parametrize("code,message,endpoint_call,permission", [
    (10, "(#10) Application does not have permission for this action", "insights", "instagram_manage_insights"),
    (200, "(#200) Requires instagram_basic permission", "profile", "instagram_basic"),
    (283, "(#283) Requires extended permission", "profile", "instagram_basic"),
])
def test_permission_denied_is_not_retried_and_names_the_permission(stub, code, message, endpoint_call, permission):
    stub.handler = sequence(Reply(400 if code != 200 else 403, err_body(code, message)))
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    with pytest.raises(PermissionDeniedError) as info:
        if endpoint_call == "profile":
            acct.profile()
        else:
            acct.account_insights(date(2026, 11, 27), date(2026, 11, 27))
    assert info.value.permission == permission
    assert f"lacks the {permission} permission" in str(info.value)
    assert f"--ig-user-id {USER} --token NEW_TOKEN" in str(info.value)
    assert acct.stats.calls == 1 and clock.sleeps == []


def test_transient_codes_are_retried_with_backoff_then_succeed(stub):
    stub.handler = sequence(Reply(500, err_body(2, "unexpected", transient=True)),
                            Reply(503, "<html>Service Unavailable</html>"),
                            Reply(429, err_body(9999, "slow down", transient=True)),
                            Reply(500, err_body(1, "An unknown error occurred")),
                            PROFILE_OK)
    client, clock = make_client(stub, max_attempts=5)
    acct = client.account(USER, TOKEN)
    profile = acct.profile()
    assert (profile.username, profile.followers_count, profile.follows_count, profile.media_count) == (
        "acme", 1234, 5, 77)
    assert acct.stats.calls == 5 and acct.stats.retries == 4
    assert len(clock.sleeps) == 4
    for attempt, slept in enumerate(clock.sleeps, start=1):  # full jitter, capped exponential
        assert 0 <= slept <= min(60.0, 2 ** (attempt - 1))


def test_transient_gives_up_after_max_attempts(stub):
    stub.handler = sequence(Reply(503, err_body(2, "Service temporarily unavailable", transient=True)))
    client, clock = make_client(stub, max_attempts=3)
    acct = client.account(USER, TOKEN)
    with pytest.raises(TransientApiError) as info:
        acct.profile()
    assert not isinstance(info.value, MalformedResponseError)
    assert f"The Graph API kept failing for account {USER} at /{USER} after 3 attempts (code 2" in str(info.value)
    assert "next run retries" in str(info.value)
    assert acct.stats.calls == 3 and len(clock.sleeps) == 2


def test_malformed_body_is_retried_then_reported(stub):
    stub.handler = sequence(Reply(200, '{"id": "1784', {}), PROFILE_OK)
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    assert acct.profile().username == "acme" and acct.stats.calls == 2
    stub.handler = sequence(Reply(200, "not json at all"))
    with pytest.raises(MalformedResponseError, match="unreadable response .* after 5 attempts"):
        client.account(USER, TOKEN).profile()


def test_timeouts_and_connection_errors_are_transient(stub):
    # The first answer never comes in time; the read timeout is generous so that a slow machine cannot make
    # the second, immediate answer time out too.
    stub.handler = sequence(Reply(200, {"id": USER}, hold=True), PROFILE_OK)
    client, clock = make_client(stub, timeout=(5.0, 2.0))
    acct = client.account(USER, TOKEN)
    assert acct.profile().username == "acme" and acct.stats.calls == 2 and len(clock.sleeps) == 1
    dead = GraphApiClient(base_url="http://127.0.0.1:9", max_attempts=2, sleep=clock.sleep,
                          monotonic=clock.monotonic)
    with pytest.raises(TransientApiError, match="after 2 attempts .*ConnectionError"):
        dead.account(USER, TOKEN).profile()


def test_other_code_100_is_invalid_request_not_retried(stub):
    stub.handler = sequence(Reply(400, err_body(100, "(#100) Tried accessing nonexisting field (foo)")))
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    with pytest.raises(InvalidRequestError, match=r"rejected a request for account .* \(code 100: \(#100\) Tried"):
        acct.profile()
    assert acct.stats.calls == 1 and clock.sleeps == []


# ===================================================================================== throttling / pacing
def buc(pct: int, regain: int = 0) -> dict[str, str]:
    return {"X-Business-Use-Case-Usage": json.dumps({USER: [{"type": "instagram", "call_count": pct,
                                                             "total_cputime": 1, "total_time": 1,
                                                             "estimated_time_to_regain_access": regain}]})}


@pytest.mark.parametrize("code,status", [(4, 400), (17, 400), (32, 400), (341, 400), (613, 400), (80002, 400),
                                         (17, 403)])
def test_throttle_code_pauses_the_account_for_time_to_regain(stub, code, status):
    stub.handler = sequence(Reply(status, err_body(code, "too many calls"), buc(100, regain=2)), PROFILE_OK)
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    assert acct.profile().username == "acme"
    assert clock.sleeps == [120.0]  # estimated_time_to_regain_access = 2 minutes
    assert acct.stats.throttle_wait_s == 120.0 and acct.stats.calls == 2


def test_throttle_without_header_backs_off_with_jitter(stub):
    stub.handler = sequence(Reply(400, err_body(80002, "too many calls")), Reply(400, err_body(4, "app limit")),
                            PROFILE_OK)
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    assert acct.profile().username == "acme"
    assert 30 <= clock.sleeps[0] <= 60 and 60 <= clock.sleeps[1] <= 120


def test_throttle_longer_than_max_wait_raises_and_blocks_the_account(stub):
    stub.handler = sequence(Reply(400, err_body(80002, "There have been too many calls"), buc(100, regain=10)))
    client, clock = make_client(stub, max_throttle_wait_s=300)
    acct = client.account(USER, TOKEN)
    with pytest.raises(ThrottledError) as info:
        acct.profile()
    err = info.value
    assert err.retry_after_s == 600 and err.code == 80002 and clock.sleeps == []
    assert str(err) == (f"Instagram rate-limits account {USER} for about 10 min (more than the 300 s the client "
                        f"may wait) (code 80002, HTTP 400, fbtrace_id TRACE1). Other accounts go on; sync this "
                        f"one again in about 10 min (the next scheduled run will).")
    with pytest.raises(ThrottledError):  # still blocked: no HTTP call made
        acct.profile()
    assert acct.stats.calls == 1
    other = client.account("17841400000000002", TOKEN + "x")  # other accounts are not paused
    stub.handler = sequence(PROFILE_OK)
    assert other.profile().username == "acme"
    clock.t += 601  # after the time to regain, the account may be called again
    assert acct.profile().username == "acme"


def test_usage_headers_near_limit_slow_down(stub):
    stub.handler = sequence(Reply(200, PROFILE_OK.body, buc(90)), PROFILE_OK)
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    acct.profile()
    assert clock.sleeps == []
    acct.profile()
    assert clock.sleeps == [pytest.approx(15.5)]  # 1 s at 80 % ... 30 s at 100 %
    stub.handler = sequence(Reply(200, PROFILE_OK.body, {"X-App-Usage": '{"call_count": 50, "total_time": 85}'}),
                            PROFILE_OK)
    acct2 = client.account("2", TOKEN)
    acct2.profile()
    acct2.profile()
    assert clock.sleeps[-1] == pytest.approx(1 + 29 * 0.25)


# ===================================================================================== batch (media insights)
def test_media_insights_item_errors_skip_drop_retry(stub):
    posts = [post(1), post(2), post(3, "STORY", "VIDEO"), post(4), post(5, "REELS", "VIDEO"), post(6),
             post(7, "FEED", "VIDEO")]
    ids = [p.media_id for p in posts]

    def item(path: str, q: dict[str, str], rnd: int):
        mid = path.split("/")[0]
        metrics = q["metric"]
        if mid == ids[0]:
            return 400, err_body(100, "Invalid parameter", 2108006)
        if mid == ids[1]:
            return 400, err_body(100, "Unsupported get request. Object does not exist", 33)
        if mid == ids[2]:
            return 400, err_body(10, "(#10) Not enough viewers for the media to show insights")
        if mid == ids[3] and "shares" in metrics.split(","):
            return 400, err_body(100, "(#100) The Media Insights API does not support the shares metric for this "
                                      "media product type.")
        if mid == ids[4] and rnd == 1:
            return 500, err_body(2, "unexpected", transient=True)
        if mid == ids[5] and rnd == 1:
            return None  # item did not complete
        return 200, media_ok(metrics)

    stub.handler = batch_handler(item)
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    result = acct.media_insights(posts)
    assert set(result) == {ids[3], ids[4], ids[5], ids[6]}
    skipped = {s.media_id: s for s in acct.stats.skipped}
    assert (skipped[ids[0]].code, skipped[ids[0]].subcode) == (100, 2108006)
    assert "before the account became a business account" in skipped[ids[0]].reason
    assert (skipped[ids[1]].code, skipped[ids[1]].subcode) == (100, 33)
    assert (skipped[ids[2]].code, skipped[ids[2]].reason) == (
        10, "not enough viewers (a story seen by fewer than 5 accounts)")
    assert acct.stats.dropped_metrics == [(ids[3], "shares")]
    assert result[ids[3]]["shares"] is None and result[ids[3]]["reach"] is not None
    reels = result[ids[4]]
    assert {"avg_watch_time_ms", "total_watch_time_ms", "views"} <= set(reels)
    assert "ig_reels_avg_watch_time" not in reels and all(v is not None for v in reels.values())
    assert result[ids[6]]["reach"] == 10  # first metric asked for FEED VIDEO in v25
    assert acct.stats.calls == 2 and acct.stats.retries == 1  # round 1 + one retry round
    assert acct.stats.batch_items == 7 + 3
    assert len(clock.sleeps) == 1  # backoff before the retry round (a transient item)
    post_reqs = [r for r in stub.requests if r.method == "POST"]
    assert all(r.form["access_token"] == TOKEN and "access_token" not in r.query for r in post_reqs)


def test_media_insights_100_posts_in_two_requests(stub):
    kinds = [("FEED", "IMAGE"), ("FEED", "VIDEO"), ("FEED", "CAROUSEL_ALBUM"), ("REELS", "VIDEO"),
             ("STORY", "IMAGE")]
    posts = [post(i, *kinds[i % 5]) for i in range(100)]
    stub.handler = batch_handler(lambda path, q, rnd: (200, media_ok(q["metric"])))
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    result = acct.media_insights(posts)
    assert len(result) == 100 and acct.stats.calls == 2
    assert all(len(json.loads(r.form["batch"])) <= 50 for r in stub.requests)


def test_media_insights_throttled_item_pauses_account_once(stub):
    posts = [post(i) for i in range(60)]

    def item(path, q, rnd):
        return (400, err_body(80002, "too many calls")) if rnd == 1 else (200, media_ok(q["metric"]))

    stub.handler = batch_handler(item)
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    assert len(acct.media_insights(posts)) == 60
    # POST 1 (50 items) all throttled -> pause; POST 2 (10 items) ok; next round: the 50 again
    assert acct.stats.calls == 3
    assert len(clock.sleeps) == 1 and 30 <= clock.sleeps[0] <= 60
    assert acct.stats.throttle_wait_s == pytest.approx(sum(clock.sleeps))


def test_media_insights_token_errors_and_permission_on_every_post_fail_the_account(stub):
    stub.handler = batch_handler(lambda path, q, rnd: (400, err_body(190, "Invalid OAuth access token", 467)))
    client, _ = make_client(stub)
    with pytest.raises(TokenInvalidError, match="code 190/467: the access token is invalid"):
        client.account(USER, TOKEN).media_insights([post(1)])
    stub.handler = batch_handler(lambda path, q, rnd: (400, err_body(10, "(#10) Application does not have "
                                                                        "permission for this action")))
    # every post alike: the token's permission, so the account's error (errors.error_scope)
    with pytest.raises(PermissionDeniedError, match="lacks the instagram_manage_insights permission"):
        client.account(USER, TOKEN).media_insights([post(1), post(2)])
    stub.handler = sequence(Reply(400, err_body(190, "Malformed access token")))  # whole batch rejected
    with pytest.raises(TokenInvalidError):
        client.account(USER, TOKEN).media_insights([post(1)])


def test_a_permission_refused_on_one_post_costs_that_post_only(stub):
    """Meta answers code 10 on single posts it will not open to this app while every other call works: the post
    is skipped as refused (with the code and the API's words), the others are measured, nothing is retried."""
    refused = post(2).media_id

    def item(path, q, rnd):
        if path.startswith(refused):
            return 400, err_body(10, "(#10) Application does not have permission for this action")
        return 200, media_ok(q["metric"])

    stub.handler = batch_handler(item)
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    values = acct.media_insights([post(1), post(2), post(3)])
    assert set(values) == {post(1).media_id, post(3).media_id}
    [skipped] = acct.stats.skipped
    assert (skipped.media_id, skipped.code, skipped.refused) == (refused, 10, True)
    assert "does not have permission" in skipped.reason
    assert len([r for r in stub.requests if r.method == "POST"]) == 1  # one batch: the refusal is not retried


def test_media_insights_persistent_item_failure_is_skipped(stub):
    def item(path, q, rnd):
        if path.startswith(post(1).media_id):
            return 500, err_body(2, "unexpected", transient=True)
        return 200, media_ok(q["metric"])

    stub.handler = batch_handler(item)
    client, _ = make_client(stub, max_attempts=3)
    acct = client.account(USER, TOKEN)
    result = acct.media_insights([post(1), post(2)])
    assert list(result) == [post(2).media_id]
    assert acct.stats.skipped[0].reason.startswith("still failing after 3 attempts")
    assert acct.stats.calls == 3


# ===================================================================================== account insights
def insights_handler(reject: dict[str, str] | None = None, log: list | None = None):
    """Account insights served by convention: a day D has end_time D+1 07:00 UTC and value = D.day*100 + i."""
    reject = reject or {}

    def item(path, q, rnd):
        metrics = q["metric"].split(",")
        if log is not None:
            log.append(q)
        for m in metrics:
            if m in reject:
                return 400, err_body(100, reject[m])
        since = datetime.fromtimestamp(int(q["since"]), timezone.utc).date()
        until = datetime.fromtimestamp(int(q["until"]), timezone.utc).date()
        assert (until - since).days <= 30
        data = []
        for i, m in enumerate(metrics):
            if q["metric_type"] == "total_value":
                assert (until - since).days == 1
                data.append({"name": m, "period": "day", "total_value": {"value": since.day * 100 + i}, "id": "x"})
            else:
                values = []
                d = since
                while d < until:
                    end = datetime(d.year, d.month, d.day, 7, tzinfo=timezone.utc) + timedelta(days=1)
                    values.append({"value": d.day * 100 + i, "end_time": end.strftime("%Y-%m-%dT%H:%M:%S+0000")})
                    d += timedelta(days=1)
                data.append({"name": m, "period": "day", "values": values, "id": "x"})
        return 200, {"data": data}

    return item


def test_account_insights_90_days_cost_two_requests(stub):
    log: list = []
    stub.handler = batch_handler(insights_handler(log=log))
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    until = NOW.date() - timedelta(days=1)
    since = until - timedelta(days=89)
    days = acct.account_insights(since, until)
    assert [d.date for d in days] == [since + timedelta(days=i) for i in range(90)]
    assert acct.stats.calls == 2 and acct.stats.batch_items == 95 == len(log)
    names = client.catalogue.account_metric_names
    for d in days:
        assert set(d.values) == set(names)
        assert d.values["reach"] == d.date.day * 100
        assert d.values["views"] is not None
        if d.date >= NOW.date() - timedelta(days=30):
            assert d.values["follower_count"] is not None
        else:
            assert d.values["follower_count"] is None  # outside its 30-day window: not asked, not 0
    for q in log:
        if "follower_count" in q["metric"]:
            assert datetime.fromtimestamp(int(q["since"]), timezone.utc).date() >= NOW.date() - timedelta(days=30)


def test_account_insights_drop_rejected_metric_and_keep_the_others(stub):
    stub.handler = batch_handler(insights_handler(reject={
        "views": "(#100) Starting from version v22.0 and above, the views metric is no longer supported"}))
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    days = acct.account_insights(date(2026, 11, 20), date(2026, 11, 27))
    assert acct.stats.dropped_metrics == [(None, "views")]
    assert all(d.values["views"] is None and d.values["likes"] is not None for d in days)
    assert acct.stats.calls == 2  # first round, then the rejected items again without views


def test_account_insights_other_100_fails(stub):
    stub.handler = batch_handler(lambda p, q, r: (400, err_body(100, "(#100) There cannot be more than 30 days")))
    client, _ = make_client(stub)
    with pytest.raises(InvalidRequestError, match="There cannot be more than 30 days"):
        client.account(USER, TOKEN).account_insights(date(2026, 11, 20), date(2026, 11, 27))


def test_account_insights_persistent_transient_fails(stub):
    stub.handler = batch_handler(lambda p, q, r: (500, err_body(2, "unexpected", transient=True)))
    client, _ = make_client(stub, max_attempts=2)
    with pytest.raises(TransientApiError, match="after 2 attempts"):
        client.account(USER, TOKEN).account_insights(date(2026, 11, 26), date(2026, 11, 27))


# ============================================================================================ media list
def media_page(start: int, count: int, next_url: str | None) -> dict:
    data = [{"id": f"m{i}", "media_type": "IMAGE", "media_product_type": "FEED", "caption": f"c{i}",
             "permalink": f"https://instagram.com/p/{i}", "like_count": i, "comments_count": 1,
             "timestamp": (NOW - timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%S+0000")}
            for i in range(start, start + count)]
    page: dict[str, Any] = {"data": data, "paging": {"cursors": {"before": "b", "after": "a"}}}
    if next_url:
        page["paging"]["next"] = next_url
    return page


def test_list_media_pages_without_token_in_urls_and_stops_at_since(stub):
    def handler(req: Req) -> Reply:
        if req.path.endswith("/stories"):
            return Reply(200, {"data": [{"id": "s1", "media_type": "VIDEO",
                                         "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%S+0000")}]})
        limit = int(req.query["limit"])
        if limit > 25:
            return Reply(500, err_body(1, "Please reduce the amount of data you're asking for, then retry "
                                          "your request"))
        start = int(req.query.get("after", "0"))
        nxt = (f"{stub.base_url}/v25.0/{USER}/media?fields=id&limit={limit}&access_token={TOKEN}"
               f"&after={start + limit}")
        return Reply(200, media_page(start, limit, nxt))

    stub.handler = batching(stub, handler)
    client, _ = make_client(stub, app_secret="s3cr3t-app")
    acct = client.account(USER, TOKEN)
    media = acct.list_media(NOW - timedelta(days=59, hours=12))
    assert [m.media_id for m in media[:-1]] == [f"m{i}" for i in range(60)]
    story = media[-1]
    assert (story.media_id, story.media_product_type) == ("s1", "STORY")
    assert media[3].published_at == NOW - timedelta(days=3) and media[3].like_count == 3
    # the first pages of media and stories share one batch POST; the refused media page is asked again alone
    assert [r.method for r in stub.requests[:3]] == ["POST", "GET", "GET"]
    assert [r.path.rsplit("/", 1)[-1] for r in stub.requests[1:3]] == ["media", "stories"]
    limits = [r.query.get("limit") for r in stub.requests if r.path.endswith("/media")]
    assert limits[:3] == ["100", "50", "25"]
    assert len([r for r in stub.requests if r.path.endswith("/media")]) == 2 + 3  # 2 refused, 3 pages of 25
    assert acct.stats.calls == 1 + 4 and acct.stats.batch_items == 2  # the batch, then 4 plain GETs of /media
    proof = hmac.new(b"s3cr3t-app", TOKEN.encode(), hashlib.sha256).hexdigest()
    for r in stub.requests:
        assert TOKEN not in r.raw_url and "access_token" not in r.query
        if r.method == "POST":  # the batch: token and proof in the form, never in the URL
            assert (r.form["access_token"], r.form["appsecret_proof"]) == (TOKEN, proof)
        elif r.headers:  # a plain GET (a batch item has no headers of its own)
            assert r.headers["authorization"] == f"Bearer {TOKEN}"
            assert r.query["appsecret_proof"] == proof


def test_list_media_empty_page_with_next_continues(stub):
    def handler(req: Req) -> Reply:
        if req.path.endswith("/stories"):
            return Reply(200, {"data": []})
        if "after" not in req.query:
            return Reply(200, {"data": [], "paging": {"next": f"{stub.base_url}/v25.0/{USER}/media?after=5"}})
        return Reply(200, media_page(0, 3, None))

    stub.handler = batching(stub, handler)
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    assert len(acct.list_media(NOW - timedelta(days=30))) == 3
    assert acct.stats.calls == 2  # media + stories in one batch, then the page after the empty one


def story_page() -> dict:
    return {"data": [{"id": "s1", "media_type": "IMAGE", "timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%S+0000")}]}


def first_pages(stories_in_batch: Reply) -> Callable[[Req], Reply]:
    """media and stories; ``stories_in_batch`` answers the stories item of the batch, a plain GET is served."""

    def handler(req: Req) -> Reply:
        if req.path.endswith("/stories"):
            return stories_in_batch if not req.headers else Reply(200, story_page())
        return Reply(200, media_page(0, 3, None))

    return handler


@pytest.mark.parametrize("reply,slept", [
    (Reply(400, err_body(80002, "too many calls")), True),  # throttled: the account pauses, then asks alone
    (Reply(500, err_body(2, "unexpected", transient=True)), False),
    (Reply(200, "not json"), False),  # malformed
])
def test_a_failed_first_page_in_the_batch_is_asked_again_alone(stub, reply, slept):
    stub.handler = batching(stub, first_pages(reply))
    client, clock = make_client(stub)
    acct = client.account(USER, TOKEN)
    media = acct.list_media(NOW - timedelta(days=30))
    assert [m.media_id for m in media] == ["m0", "m1", "m2", "s1"]
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in stub.requests if r.method == "POST" or r.headers] == [
        ("POST", ""), ("GET", "stories")]
    assert acct.stats.calls == 2 and acct.stats.retries == 1
    assert bool(clock.sleeps) == slept and (not slept or 30 <= clock.sleeps[0] <= 60)


@pytest.mark.parametrize("code,error", [(190, TokenInvalidError), (10, PermissionDeniedError),
                                        (100, InvalidRequestError)])
def test_a_first_page_that_cannot_succeed_raises_without_another_call(stub, code, error):
    stub.handler = batching(stub, first_pages(Reply(400, err_body(code, "no"))))
    client, _ = make_client(stub)
    acct = client.account(USER, TOKEN)
    with pytest.raises(error):
        acct.list_media(NOW - timedelta(days=30))
    assert acct.stats.calls == 1


def test_instagram_login_and_posts_only_list_with_plain_gets(stub):
    stub.handler = first_pages(Reply(200, story_page()))  # no batch support: a POST would fail the test
    client, _ = make_client(stub)
    instagram = client.account(USER, "IGAAtoken0123456789", "instagram")  # graph.instagram.com has no batch
    assert len(instagram.list_media(NOW - timedelta(days=30))) == 4 and instagram.stats.calls == 2
    facebook = client.account(USER, TOKEN)
    assert len(facebook.list_media(NOW - timedelta(days=30), include_stories=False)) == 3
    assert facebook.stats.calls == 1 and facebook.stats.batch_items == 0
    assert {r.method for r in stub.requests} == {"GET"}


# ===================================================================================== no token anywhere
def test_no_token_in_any_log_line_or_exception_text(stub):
    secret_app = "APPsecretVALUE42"
    root = logging.getLogger()
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # NOT redacted: proves the client never logs a token
            records.append(self.format(record))
            records.append(json.dumps({k: str(v) for k, v in vars(record).items()}))

    handler = Collect(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    filtered: list[str] = []  # what a handler with the monitoring's RedactingFilter writes

    class CollectFiltered(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            filtered.append(self.format(record))

    filtered_handler = CollectFiltered(level=logging.DEBUG)
    filtered_handler.addFilter(RedactingFilter())
    old_level = root.level
    # Loggers an earlier test may have quietened (configure_logging sets ig_analytics to INFO): this test needs
    # their DEBUG records, else it would pass without looking at the request lines it is about.
    chatty = {name: logging.getLogger(name).level for name in ("ig_analytics", "urllib3")}
    for name in chatty:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(handler)
    root.addHandler(filtered_handler)
    root.setLevel(logging.DEBUG)
    texts: list[str] = []

    def capture(fn: Callable[[], Any], expected: type[Exception] | None) -> None:
        """Run a scenario; it must raise ``expected`` (or nothing, when None); keep every text it produced."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - checked right below
            texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
            texts.extend(str(v) for v in vars(exc).values())
            assert expected is not None and isinstance(exc, expected), f"unexpected {exc!r}"
        else:
            assert expected is None, f"the scenario should have raised {expected}"

    try:
        client, clock = make_client(stub, app_secret=secret_app, max_attempts=2)
        scenarios = [
            (sequence(Reply(400, err_body(190, f"Invalid OAuth access token {TOKEN}", 467))), TokenInvalidError),
            (sequence(Reply(400, err_body(10, f"(#10) no permission for access_token={TOKEN}"))), PermissionDeniedError),
            (sequence(Reply(400, err_body(80002, f"throttled {TOKEN}"), buc(100, regain=60))), ThrottledError),
            (sequence(Reply(500, err_body(2, f"boom {TOKEN}", transient=True))), TransientApiError),
            (sequence(Reply(200, f'{{"oops": "{TOKEN}')), MalformedResponseError),
            (sequence(Reply(400, err_body(100, f"bad param Bearer {TOKEN}"))), InvalidRequestError),
        ]
        for scenario, expected in scenarios:
            stub.handler = scenario
            capture(lambda: client.account(USER, TOKEN).profile(), expected)

        def paging(req: Req) -> Reply:
            if req.path.endswith("/stories"):
                return Reply(200, {"data": []})
            if "after" in req.query:  # the page that paging.next (with the token in it) leads to
                return Reply(400, err_body(100, f"page failed for {TOKEN}"))
            return Reply(200, media_page(0, 1, f"{stub.base_url}/v25.0/{USER}/media?access_token={TOKEN}&after=1"))

        stub.handler = batching(stub, paging)
        capture(lambda: client.account(USER, TOKEN).list_media(NOW - timedelta(days=5)), InvalidRequestError)
        assert any("after" in r.query for r in stub.requests)  # paging.next was followed
        stub.handler = batching(stub, lambda req: Reply(400, err_body(100, f"list failed for {TOKEN}")))
        capture(lambda: client.account(USER, TOKEN).list_media(NOW - timedelta(days=5)), InvalidRequestError)
        stub.handler = batch_handler(lambda p, q, r: (400, err_body(100, f"odd {TOKEN}")))
        acct = client.account(USER, TOKEN)
        capture(lambda: acct.media_insights([post(1)]), None)  # an item error skips the post
        assert [s.media_id for s in acct.stats.skipped] == [post(1).media_id]
        texts.extend(repr(s) for s in acct.stats.skipped)
        texts.append(repr(acct) + repr(client))
        dead = GraphApiClient(base_url="http://127.0.0.1:9", max_attempts=1, sleep=clock.sleep)
        capture(lambda: dead.account(USER, TOKEN).profile(), TransientApiError)
    finally:
        root.removeHandler(handler)
        root.removeHandler(filtered_handler)
        root.setLevel(old_level)
        for name, level in chatty.items():
            logging.getLogger(name).setLevel(level)
    everything = "\n".join(records + texts)
    assert len(records) > 10 and len(texts) > 10
    assert TOKEN not in everything
    assert secret_app not in everything
    proof = hmac.new(secret_app.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert proof not in "\n".join(texts)  # exceptions never carry the appsecret_proof either
    # urllib3's DEBUG lines show request paths (appsecret_proof is a query parameter of GETs); with the
    # RedactingFilter installed on the handler, neither token nor proof is written:
    assert any("urllib3" in line or "GET /v25.0" in line for line in records)
    assert filtered and proof not in "\n".join(filtered) and TOKEN not in "\n".join(filtered)
    assert "[REDACTED]" in everything
    # The filter the monitoring code installs also cleans what other libraries log:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "url %s", (f"https://h/?access_token={TOKEN}",),
                               None)
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()


def test_a_request_that_cannot_be_sent_is_not_retried_and_quotes_no_token(stub):
    """A token holding a newline makes requests refuse the header (InvalidHeader, a ValueError): the very same
    request fails the same way every time, so it is not retried, its message (which quotes the header) is not
    passed on, and the account's token is what to replace (a token error: the account needs re-authentication)."""
    client, clock = make_client(stub)
    acct = client.account(USER, "EAAGlongtokenvalue123456\nEAAGsecondhalf7890")
    with pytest.raises(TokenInvalidError) as raised:
        acct.profile()
    assert acct.stats.calls == 1 and not stub.requests and not clock.sleeps
    assert "secondhalf" not in str(raised.value) and "Reconnect the account" in str(raised.value)
