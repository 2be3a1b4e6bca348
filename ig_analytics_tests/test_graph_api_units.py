"""Unit tests of the pure parts of the Graph API client: catalogue, windows, dates, headers, backoff, redaction."""

from __future__ import annotations

import io
import logging
import math
import pickle
import random
from datetime import date, timedelta

import pytest

from ig_analytics.graph_api import NEWEST_VERSION, MetricCatalogue, resolve_version
from ig_analytics.graph_api.catalogue import CATALOGUE, RETIREMENTS, VERSIONS, media_kind, normalize_media_metric
from ig_analytics.graph_api.client import metrics_named_in
from ig_analytics.graph_api.errors import (
    InvalidRequestError,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
    classify_error,
)
from ig_analytics.graph_api.rate_limit import (
    parse_usage,
    slowdown_delay_s,
    throttle_backoff_s,
    transient_backoff_s,
)
from ig_analytics.graph_api.windows import (
    end_time_to_date,
    parse_graph_time,
    plan_account_calls,
    split_windows,
)
from ig_analytics.redaction import RedactingFilter, forget_secret, redact, register_secret


# ------------------------------------------------------------------------------------------- catalogue
def test_versions_and_resolution():
    assert NEWEST_VERSION == "v25.0"
    assert VERSIONS[0] == "v18.0" and len(VERSIONS) == 8
    assert resolve_version(None) == "v25.0"
    assert resolve_version("v25.0") == "v25.0"
    assert resolve_version("v26.0") == "v25.0"  # newer unknown: newest known metric set
    assert resolve_version("18") == "v18.0"
    assert resolve_version("v21") == "v21.0"
    with pytest.raises(ValueError, match="older than"):
        resolve_version("v17.0")
    with pytest.raises(ValueError):
        resolve_version("latest")


def test_catalogue_account_metrics_per_version():
    v18 = MetricCatalogue.for_version("v18.0")
    v25 = MetricCatalogue.for_version(None)
    assert v25.version == "v25.0"
    assert {"impressions", "profile_views", "website_clicks", "reach", "follower_count"} <= set(
        v18.account_metric_names)
    assert "views" not in v18.account_metric_names
    assert {"impressions", "profile_views", "website_clicks"}.isdisjoint(v25.account_metric_names)
    assert {"reach", "views", "follower_count", "accounts_engaged", "total_interactions", "likes", "comments",
            "saves", "shares", "replies", "reposts", "follows_and_unfollows",
            "profile_links_taps"} == set(v25.account_metric_names)
    fc = v25.account_metric("follower_count")
    assert (fc.metric_type, fc.max_days_back) == ("time_series", 30)
    assert v25.account_metric("views").metric_type == "total_value"
    assert v25.account_metric("reach").metric_type == "time_series"
    v21 = CATALOGUE["v21.0"]
    assert "impressions" in v21.account_metric_names and "profile_views" not in v21.account_metric_names


def test_catalogue_media_metrics_per_type():
    v18, v25 = CATALOGUE["v18.0"], CATALOGUE["v25.0"]
    assert "video_views" in v18.media_metrics_for("FEED", "VIDEO")
    assert "video_views" not in v18.media_metrics_for("FEED", "IMAGE")
    assert "plays" in v18.media_metrics_for("REELS", "VIDEO")
    assert "impressions" in v18.media_metrics_for("STORY", "IMAGE")
    for kind in v25.media_metrics:
        metrics = v25.media_metrics[kind]
        assert "views" in metrics and "impressions" not in metrics and "video_views" not in metrics
        assert "plays" not in metrics
    assert "saved" in v25.media_metrics_for("FEED", "CAROUSEL_ALBUM")
    assert "ig_reels_avg_watch_time" in v25.media_metrics_for("REELS", "VIDEO")
    assert {"replies", "navigation"} <= set(v25.media_metrics_for("STORY", "VIDEO"))
    assert media_kind("AD", "VIDEO") == ("FEED", "VIDEO")
    assert media_kind("REELS", None) == ("REELS", "VIDEO")
    assert normalize_media_metric("ig_reels_avg_watch_time") == "avg_watch_time_ms"
    assert normalize_media_metric("ig_reels_video_view_total_time") == "total_watch_time_ms"
    assert normalize_media_metric("saved") == "saved"


def test_retirements_table():
    assert [r.from_version for r in RETIREMENTS] == ["v18.0", "v21.0", "v22.0"]
    assert "impressions" in CATALOGUE["v18.0"].retired_as_of(date(2025, 5, 1))  # enforced on all versions
    assert "impressions" not in CATALOGUE["v18.0"].retired_as_of(date(2024, 1, 1))
    assert "video_views" in CATALOGUE["v21.0"].retired_as_of(date(2024, 11, 1))


# --------------------------------------------------------------------------------------------- windows
def test_end_time_to_date():
    assert end_time_to_date("2017-05-05T07:00:00+0000") == date(2017, 5, 4)
    assert end_time_to_date("2017-05-05T00:00:00+0000") == date(2017, 5, 4)
    assert end_time_to_date("2017-05-05T07:00:00Z") == date(2017, 5, 4)
    assert parse_graph_time("2023-06-12T19:20:02+0000").utcoffset() == timedelta(0)


def test_split_windows():
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(90)]
    windows = split_windows(days)
    assert len(windows) == math.ceil(90 / 29) == 4
    assert all(len(w) <= 29 for w in windows)
    assert [d for w in windows for d in w] == days
    assert len(windows[-1]) == 29  # newest window full


def test_plan_90_days_v25():
    today = date(2026, 11, 28)
    until = today - timedelta(days=1)
    since = until - timedelta(days=89)
    calls = plan_account_calls(CATALOGUE["v25.0"].account_metrics, since, until, today)
    ts = [c for c in calls if c.metric_type == "time_series"]
    tv = [c for c in calls if c.metric_type == "total_value"]
    assert len(tv) == 90 and all(len(c.days) == 1 for c in tv)
    # follower_count's 30 days (2 windows: 29 + 1) + 60 older days (3 windows) = 5
    assert len(ts) == 5 and len(calls) == 95
    assert all(len(c.days) <= 29 for c in ts)
    assert all(c.until - c.since <= 29 * 86400 for c in ts)
    for call in calls:
        if "follower_count" in call.metrics:
            assert call.days[0] >= today - timedelta(days=30) and call.days[-1] <= today - timedelta(days=1)
    covered = {(m, d) for c in calls for m in c.metrics for d in c.days}
    for metric in CATALOGUE["v25.0"].account_metrics:
        for i in range(90):
            day = since + timedelta(days=i)
            wanted = metric.name != "follower_count" or day >= today - timedelta(days=30)
            assert ((metric.name, day) in covered) == wanted
    tv0 = tv[0]
    assert tv0.until - tv0.since == 86400  # since = day start, until = next day start


def test_plan_skips_future_days_and_groups_by_type():
    today = date(2026, 11, 28)
    calls = plan_account_calls(CATALOGUE["v18.0"].account_metrics, today - timedelta(days=2),
                               today + timedelta(days=3), today)
    assert max(d for c in calls for d in c.days) == today
    kinds = {(c.period, c.metric_type) for c in calls}
    assert kinds == {("day", "time_series"), ("day", "total_value")}
    ts_metrics = {m for c in calls if c.metric_type == "time_series" for m in c.metrics}
    assert ts_metrics == {"reach", "impressions", "follower_count", "profile_views", "website_clicks"}


# ---------------------------------------------------------------------------------------- rate limits
def test_parse_usage_headers():
    usage = parse_usage({
        "X-Business-Use-Case-Usage": '{"17841": [{"type": "instagram", "call_count": 12, "total_cputime": 3, '
                                     '"total_time": 84, "estimated_time_to_regain_access": 0}]}',
        "X-App-Usage": '{"call_count": 28, "total_time": 25, "total_cputime": 25}',
    })
    assert usage.max_pct == 84 and usage.regain_minutes == 0 and usage.present
    usage = parse_usage({"x-business-use-case-usage": '{"1": [{"call_count": 100, '
                                                     '"estimated_time_to_regain_access": 7}]}'})
    assert usage.max_pct == 100 and usage.regain_minutes == 7
    assert not parse_usage({"X-App-Usage": "not json"}).present
    assert parse_usage({}).max_pct == 0


def test_slowdown_and_backoff():
    assert slowdown_delay_s(50) == 0 and slowdown_delay_s(79.9) == 0
    assert slowdown_delay_s(80) == pytest.approx(1.0)
    assert slowdown_delay_s(90) == pytest.approx(15.5)
    assert slowdown_delay_s(100) == pytest.approx(30.0) == slowdown_delay_s(150)
    rng = random.Random(1)
    for attempt in range(1, 12):
        d = transient_backoff_s(attempt, 1.0, 60.0, rng)
        assert 0 <= d <= min(60.0, 2 ** (attempt - 1))
        t = throttle_backoff_s(attempt, 60.0, 3600.0, rng)
        step = min(3600.0, 60.0 * 2 ** (attempt - 1))
        assert step / 2 <= t <= step


# ---------------------------------------------------------------------------------------------- errors
def test_classify_error_codes():
    kw = dict(ig_user_id="1784", endpoint="/1784/insights")
    assert isinstance(classify_error(400, {"code": 190, "error_subcode": 463}, **kw), TokenInvalidError)
    assert isinstance(classify_error(400, {"code": 102}, **kw), TokenInvalidError)
    for code in (4, 17, 32, 341, 613, 80002):
        assert isinstance(classify_error(400, {"code": code}, **kw), ThrottledError)
    assert isinstance(classify_error(400, {"code": 10, "message": "(#10) permission"}, **kw), PermissionDeniedError)
    assert isinstance(classify_error(403, {"code": 200}, **kw), PermissionDeniedError)
    assert isinstance(classify_error(400, {"code": 10, "message": "Not enough viewers"}, **kw), InvalidRequestError)
    assert isinstance(classify_error(500, {"code": 1}, **kw), TransientApiError)
    assert isinstance(classify_error(400, {"code": 9999, "is_transient": True}, **kw), TransientApiError)
    assert isinstance(classify_error(503, {}, **kw), TransientApiError)
    assert isinstance(classify_error(429, {}, **kw), TransientApiError)
    assert isinstance(classify_error(400, {"code": 100}, **kw), InvalidRequestError)


def test_error_messages_say_what_and_what_to_do():
    err = classify_error(400, {"code": 190, "error_subcode": 463, "fbtrace_id": "AbC", "message": "expired"},
                         ig_user_id="17841400000", endpoint="/17841400000")
    text = str(err)
    assert text.startswith("Instagram rejected the access token of account 17841400000 (code 190/463: "
                           "session expired")
    assert "fbtrace_id AbC" in text
    assert text.endswith("Reconnect the account: ig-analytics accounts add --ig-user-id 17841400000 "
                         "--token NEW_TOKEN")
    assert (err.code, err.subcode, err.fbtrace_id, err.http_status, err.ig_user_id) == (
        190, 463, "AbC", 400, "17841400000")
    perm = classify_error(400, {"code": 10, "message": "(#10) Application does not have permission"},
                          ig_user_id="1", endpoint="/1/insights")
    assert perm.permission == "instagram_manage_insights" and "instagram_manage_insights" in str(perm)
    perm = classify_error(400, {"code": 200, "message": "requires instagram_basic permission"},
                          ig_user_id="1", endpoint="/1/media")
    assert perm.permission == "instagram_basic"
    thr = ThrottledError(retry_after_s=600, max_wait_s=300, ig_user_id="1", code=80002)
    assert thr.retry_after_s == 600 and "10 min" in str(thr) and "Other accounts go on" in str(thr)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is TokenInvalidError and str(clone) == text and clone.subcode == 463


def test_api_message_is_redacted():
    register_secret("EAAGsecretTOKEN123")
    try:
        err = classify_error(400, {"code": 100, "message": "bad token EAAGsecretTOKEN123 in access_token=EAAGx"},
                             ig_user_id="1", endpoint="/1")
        assert "EAAGsecretTOKEN123" not in str(err) + repr(err) + (err.api_message or "")
        assert "EAAGx" not in err.api_message
    finally:
        forget_secret("EAAGsecretTOKEN123")


def test_metrics_named_in_messages():
    assert metrics_named_in("(#100) The Media Insights API does not support the shares metric for this media "
                            "product type.", ["reach", "shares"]) == ["shares"]
    assert metrics_named_in("(#100) Starting from version v22.0 and above, the impressions metric is no longer "
                            "supported", ["reach", "impressions"]) == ["impressions"]
    assert metrics_named_in("(#100) metric[1] must be one of the following values: reach, likes",
                            ["reach", "impressions", "likes"]) == ["impressions"]
    assert metrics_named_in("(#100) There cannot be more than 30 days", ["reach", "views"]) == []
    assert metrics_named_in(None, ["reach"]) == []


# ------------------------------------------------------------------------------------------- redaction
def test_redact_patterns():
    assert redact("https://g/v25.0/1/media?access_token=EAAB123&after=x") == \
        "https://g/v25.0/1/media?access_token=[REDACTED]&after=x"
    assert redact("appsecret_proof=abcdef0123&x=1") == "appsecret_proof=[REDACTED]&x=1"
    assert redact("Authorization: Bearer EAAB.xyz-123") == "Authorization: Bearer [REDACTED]"
    assert redact("Authorization: OAuth EAAB123") == "Authorization: OAuth [REDACTED]"
    assert redact('{"access_token": "EAAB123"}') == '{"access_token": "[REDACTED]"}'
    assert redact("access_token%3DEAAB123") == "access_token%3D[REDACTED]"
    assert redact("nothing secret here") == "nothing secret here"
    register_secret("tok/en+with=chars")
    try:
        text = redact("raw tok/en+with=chars, quoted tok%2Fen%2Bwith%3Dchars")
        assert "tok/en" not in text and "tok%2Fen" not in text
    finally:
        forget_secret("tok/en+with=chars")
    register_secret("abc")  # too short to be a secret: not registered (would garble every text)
    assert redact("abc") == "abc"


def test_redacting_filter_cleans_message_args_extra_and_traceback():
    register_secret("SECRETTOKEN999")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(endpoint)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction.filter")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.info("token %s url %s", "SECRETTOKEN999", "https://x/?access_token=OTHER1234",
                    extra={"endpoint": "/me?access_token=SECRETTOKEN999"})
        try:
            raise RuntimeError("failed with SECRETTOKEN999")
        except RuntimeError:
            logger.exception("boom", extra={"endpoint": "/"})
        out = stream.getvalue()
        assert "SECRETTOKEN999" not in out and "OTHER1234" not in out
        assert "[REDACTED]" in out and "RuntimeError" in out
    finally:
        logger.removeHandler(handler)
        forget_secret("SECRETTOKEN999")


# ------------------------------------------------------------------------------------- protocol, factory
def _public_calls(proto: type) -> list[str]:
    return [name for name, value in vars(proto).items() if callable(value) and not name.startswith("_")]


@pytest.mark.parametrize("proto_name,impl_name", [("InsightsApi", "AccountApi"), ("AccountsClient", "GraphApiClient")])
def test_the_client_satisfies_the_protocols_ingestion_is_typed_against(proto_name, impl_name):
    """A renamed or re-shaped call of AccountApi / GraphApiClient fails here, not in a sync."""
    import inspect

    from ig_analytics.graph_api import client as client_module, protocol

    proto, impl = getattr(protocol, proto_name), getattr(client_module, impl_name)
    calls = _public_calls(proto)
    assert calls and set(calls) <= set(dir(impl)), set(calls) - set(dir(impl))
    for name in calls:
        want = inspect.signature(getattr(proto, name))
        got = inspect.signature(getattr(impl, name))
        assert [(p.name, p.kind, p.default, p.annotation) for p in want.parameters.values()] == [
            (p.name, p.kind, p.default, p.annotation) for p in got.parameters.values()], name
        assert want.return_annotation == got.return_annotation or (
            name == "account" and got.return_annotation == "'AccountApi'"), name


def test_instances_pass_the_runtime_protocol_checks():
    from ig_analytics.graph_api import GraphApiClient
    from ig_analytics.graph_api.protocol import AccountsClient, InsightsApi

    with GraphApiClient(base_url="http://127.0.0.1:9", version="v25.0") as client:
        api = client.account("17841400000000001", "EAAprotocolTOKEN0123")
        assert isinstance(client, AccountsClient) and isinstance(api, InsightsApi)
        assert not isinstance(object(), InsightsApi)


def test_one_factory_builds_the_clients_from_the_settings():
    from ig_analytics.graph_api import GraphApiClient
    from ig_analytics.graph_api.tokens import TokenApi
    from ig_analytics.settings import Settings

    settings = Settings.from_env({"IG_GRAPH_API_URL": "http://127.0.0.1:9/", "IG_GRAPH_API_VERSION": "v21.0",
                                  "IG_APP_SECRET": "factory-app-secret"})
    client = GraphApiClient.from_settings(settings, max_attempts=2, timeout=(1.0, 2.0))
    assert (client.base_url, client.version, client.app_secret) == ("http://127.0.0.1:9", "v21.0",
                                                                    "factory-app-secret")
    assert (client.max_attempts, client.timeout, client.app_budget) == (2, (1.0, 2.0), None)
    assert client.catalogue.version == "v21.0"
    tokens = TokenApi.from_settings(settings, app_id="123", max_attempts=1)
    assert (tokens.base_url, tokens.version, tokens.app_id, tokens.app_secret, tokens.max_attempts) == (
        "http://127.0.0.1:9", "v21.0", "123", "factory-app-secret", 1)
    assert tokens.can_inspect
    forget_secret("factory-app-secret")
