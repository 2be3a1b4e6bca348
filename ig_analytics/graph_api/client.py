"""The Graph API client: one pooled HTTP session, one ``AccountApi`` handle per account.

Plain Python (requests), no Dagster. See docs/graph-api-client.md for the behaviour on every error class.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from ig_analytics.graph_api.catalogue import (
    TOTAL_VALUE,
    MetricCatalogue,
    normalize_media_metric,
    normalize_version,
)
from ig_analytics.graph_api.errors import (
    SKIP_SUBCODES,
    GraphApiError,
    InvalidRequestError,
    MalformedResponseError,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
    classify_error,
    error_fields,
    is_not_enough_viewers,
)
from ig_analytics.graph_api.models import AccountDay, CallStats, Media, Profile, SkippedItem
from ig_analytics.graph_api.rate_limit import (
    Usage,
    parse_usage,
    slowdown_delay_s,
    throttle_backoff_s,
    transient_backoff_s,
)
from ig_analytics.graph_api.windows import (
    BATCH_SIZE,
    AccountCall,
    end_time_to_date,
    parse_graph_time,
    plan_account_calls,
)
from ig_analytics.redaction import redact, register_secret

if TYPE_CHECKING:
    from ig_analytics.graph_api.app_budget import AppBudget

__all__ = ["GraphApiClient", "AccountApi", "LOGGER_NAME", "metrics_named_in"]

LOGGER_NAME = "ig_analytics.graph_api"
DEFAULT_BASE_URL = "https://graph.facebook.com"

MEDIA_FIELDS = "id,caption,media_type,media_product_type,timestamp,permalink,like_count,comments_count"
STORY_FIELDS = "id,caption,media_type,media_product_type,timestamp,permalink"
PROFILE_FIELDS = "id,username,followers_count,follows_count,media_count"
MEDIA_PAGE_LIMIT = 100

_REDUCE_DATA_RE = re.compile(r"reduce\s+the\s+amount\s+of\s+data", re.IGNORECASE)
_ONE_OF_RE = re.compile(r"must\s+be\s+one\s+of\s+the\s+following\s+values\s*:?\s*([A-Za-z0-9_,\s]+)", re.IGNORECASE)
_THE_X_METRIC_RE = re.compile(r"\bthe\s+([A-Za-z0-9_]+)\s+metric\b", re.IGNORECASE)
_METRICS_PAREN_RE = re.compile(r"\bmetrics?\s*\(([A-Za-z0-9_,\s]+)\)", re.IGNORECASE)


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


def _number(value: Any) -> int | float | None:
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


def _int_or_none(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


class _ReduceData(Exception):
    """Internal: the API asked to reduce the amount of data (code 1) on a paged list call."""

    def __init__(self, error: GraphApiError):
        super().__init__(str(error))
        self.error = error


class _Malformed(Exception):
    """Internal: a response body that is not the JSON shape expected."""


class GraphApiClient:
    """Shared, thread-safe part: configuration and one pooled ``requests.Session`` for all accounts.

    Every argument after ``logger`` is an optional extension of the agreed interface (keyword only).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        version: str | None = None,
        app_secret: str | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        max_throttle_wait_s: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        throttle_backoff_base_s: float = 60.0,
        throttle_backoff_cap_s: float = 3600.0,
        pool_size: int = 16,
        media_page_limit: int = MEDIA_PAGE_LIMIT,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
        app_budget: "AppBudget | None" = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.version = normalize_version(version)  # the version in URLs
        self.catalogue = MetricCatalogue.for_version(version)  # newer unknown versions: newest metric set
        self.app_secret = app_secret or None
        if self.app_secret:
            register_secret(self.app_secret)
        self.timeout = timeout
        self.max_attempts = int(max_attempts)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_cap_s = float(backoff_cap_s)
        self.max_throttle_wait_s = float(max_throttle_wait_s)
        self.throttle_backoff_base_s = float(throttle_backoff_base_s)
        self.throttle_backoff_cap_s = float(throttle_backoff_cap_s)
        self.media_page_limit = int(media_page_limit)
        self.sleep = sleep
        self.monotonic = monotonic
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.rng = rng or random.Random()
        self.session = session or self._make_session(pool_size)
        self.app_budget = app_budget  # X-App-Usage shared with the deployment's other runs (app_budget.py)

    @staticmethod
    def _make_session(pool_size: int) -> requests.Session:
        session = requests.Session()
        # Retries are ours (they must read error.code); urllib3 must not retry behind our back.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = "ig-analytics-graph-client/1"
        return session

    def account(self, ig_user_id: str, token: str, login_kind: str = "facebook") -> "AccountApi":
        """``login_kind`` picks the host: Instagram-Login accounts are served by graph.instagram.com unless
        IG_GRAPH_API_URL points elsewhere (graph_api/tokens.py)."""
        return AccountApi(self, str(ig_user_id), token, login_kind)

    def api_root(self, login_kind: str = "facebook") -> str:
        from ig_analytics.graph_api.tokens import base_url_for

        return f"{base_url_for(login_kind, self.base_url)}/{self.version}"

    def appsecret_proof(self, token: str) -> str | None:
        if not self.app_secret:
            return None
        return hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "GraphApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GraphApiClient(base_url={self.base_url!r}, version={self.version!r})"


@dataclass
class _Item:
    """One Graph call of a batch round (a post's insights, or one account insights window)."""

    key: Any
    path: str
    metrics: list[str]
    extra_params: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    sent: list[str] = field(default_factory=list)  # the metrics of the last attempt
    last_error: GraphApiError | None = None


class AccountApi:
    """Per-account handle: holds the token, stats and throttle state. Use each handle from one thread."""

    def __init__(self, client: GraphApiClient, ig_user_id: str, token: str, login_kind: str = "facebook") -> None:
        if not token:
            raise ValueError(f"account {ig_user_id}: empty access token")
        register_secret(token)
        self._client = client
        self.ig_user_id = ig_user_id
        self.login_kind = login_kind
        self._api_root = client.api_root(login_kind)
        self.__token = token
        self._proof = client.appsecret_proof(token)
        self.stats = CallStats()
        self._resume_at = 0.0  # monotonic time before which this account must not be called
        self._pause_is_throttle = False
        self._pause_error: GraphApiError | None = None
        self._throttle_waited_s = 0.0  # throttle pauses so far (the max_throttle_wait_s budget)
        self._throttle_streak = 0
        self._dropped_account_metrics: set[str] = set()

    def __repr__(self) -> str:
        return f"AccountApi(ig_user_id={self.ig_user_id!r}, version={self._client.version!r})"

    # ==================================================================================================
    # public calls
    # ==================================================================================================
    def profile(self) -> Profile:
        payload = self._send("GET", self.ig_user_id, params={"fields": PROFILE_FIELDS},
                             endpoint=f"/{self.ig_user_id}", validate=lambda p: isinstance(p, dict))
        return Profile(
            ig_user_id=str(payload.get("id") or self.ig_user_id),
            username=payload.get("username"),
            followers_count=_int_or_none(payload.get("followers_count")),
            follows_count=_int_or_none(payload.get("follows_count")),
            media_count=_int_or_none(payload.get("media_count")),
        )

    def account_insights(self, since: date, until: date) -> list[AccountDay]:
        """One AccountDay per day of ``since..until`` (inclusive), every catalogue metric as a key."""
        if isinstance(since, datetime):
            since = since.date()
        if isinstance(until, datetime):
            until = until.date()
        if until < since:
            raise ValueError(f"until ({until}) is before since ({since})")
        catalogue = self._client.catalogue
        names = catalogue.account_metric_names
        values: dict[date, dict[str, Any]] = {}
        day = since
        while day <= until:
            values[day] = {name: None for name in names}
            day += timedelta(days=1)
        today = self._client.now().astimezone(timezone.utc).date()
        metrics = [m for m in catalogue.account_metrics if m.name not in self._dropped_account_metrics]
        calls = plan_account_calls(metrics, since, until, today)
        items = [_Item(key=call, path=f"{self.ig_user_id}/insights", metrics=list(call.metrics),
                       extra_params={k: v for k, v in call.params().items() if k != "metric"})
                 for call in calls]
        self._log(logging.DEBUG, f"account insights {since}..{until}: {len(items)} Graph calls planned",
                  endpoint=f"/{self.ig_user_id}/insights")

        def prepare(item: _Item) -> list[str]:
            return [m for m in item.metrics if m not in self._dropped_account_metrics]

        def on_success(item: _Item, payload: Any) -> None:
            self._store_account_values(item.key, payload, values)

        def on_error(item: _Item, err: GraphApiError) -> str | None:
            if err.code == 100 and err.subcode not in SKIP_SUBCODES:
                # only metrics of this attempt: each retry asks strictly fewer metrics, so this ends
                named = metrics_named_in(err.api_message, item.sent)
                if named:
                    for metric in named:
                        self._drop_account_metric(metric, err)
                    return "retry"
            return None

        def on_give_up(item: _Item, err: GraphApiError) -> None:
            raise err

        self._run_rounds(items, prepare, on_success, on_error, on_give_up)
        return [AccountDay(date=d, values=v) for d, v in sorted(values.items())]

    def list_media(self, published_since: datetime, include_stories: bool = True) -> list[Media]:
        """Posts published at or after ``published_since`` (newest first), then live stories."""
        if published_since.tzinfo is None:
            published_since = published_since.replace(tzinfo=timezone.utc)
        found = self._list_edge("media", MEDIA_FIELDS, published_since, default_product=None)
        if include_stories:
            seen = {m.media_id for m in found}
            stories = self._list_edge("stories", STORY_FIELDS, published_since, default_product="STORY")
            found.extend(m for m in stories if m.media_id not in seen)
        return found

    def media_insights(self, media: Sequence[Media]) -> dict[str, dict[str, int | float | None]]:
        """Lifetime insights of each post, by batch (50 posts per HTTP request).

        Result: media_id -> {normalized metric: value or None}; skipped posts are absent (see stats.skipped).
        """
        catalogue = self._client.catalogue
        results: dict[str, dict[str, Any]] = {}
        items: list[_Item] = []
        seen: set[str] = set()
        for post in media:
            if post.media_id in seen:
                continue
            seen.add(post.media_id)
            metrics = list(catalogue.media_metrics_for(post.media_product_type, post.media_type))
            results[post.media_id] = {normalize_media_metric(m): None for m in metrics}
            items.append(_Item(key=post.media_id, path=f"{post.media_id}/insights", metrics=metrics))

        def prepare(item: _Item) -> list[str]:
            return item.metrics

        def skip(item: _Item, err: GraphApiError, reason: str) -> str:
            results.pop(item.key, None)
            self.stats.skipped.append(SkippedItem(item.key, err.code, err.subcode, redact(reason)))
            self._log(logging.INFO, f"skipped insights of media {item.key}: {reason}",
                      endpoint=f"/{item.key}/insights", err=err)
            return "done"

        def on_success(item: _Item, payload: Any) -> None:
            self._store_media_values(item.key, payload, results[item.key])

        def on_error(item: _Item, err: GraphApiError) -> str | None:
            if is_not_enough_viewers(err.code, err.api_message):
                return skip(item, err, "not enough viewers (a story seen by fewer than 5 accounts)")
            if err.code == 100 and err.subcode == 2108006:
                return skip(item, err, "posted before the account became a business account (subcode 2108006)")
            if err.code == 100 and err.subcode == 33:
                return skip(item, err, "media missing or not accessible (subcode 33)")
            if err.code == 100:
                named = metrics_named_in(err.api_message, item.sent)
                if named:
                    for metric in named:
                        item.metrics.remove(metric)
                        self.stats.dropped_metrics.append((item.key, metric))
                        self._log(logging.INFO, f"media {item.key} rejects metric {metric}; asking without it",
                                  endpoint=f"/{item.key}/insights", err=err)
                    if not item.metrics:
                        return skip(item, err, "every metric was rejected")
                    return "retry"
                return skip(item, err, f"request rejected: {err.api_message or 'code 100'}")
            return None

        def on_give_up(item: _Item, err: GraphApiError) -> None:
            skip(item, err, f"still failing after {item.failures} attempts: {err.api_message or type(err).__name__}")

        self._run_rounds(items, prepare, on_success, on_error, on_give_up)
        return results

    # ==================================================================================================
    # parsing
    # ==================================================================================================
    def _store_account_values(self, call: AccountCall, payload: Any, values: dict[date, dict[str, Any]]) -> None:
        wanted = set(call.days)
        for entry in payload.get("data") or []:
            if not isinstance(entry, dict) or not entry.get("name"):
                continue
            name = entry["name"]
            total = entry.get("total_value")
            if call.metric_type == TOTAL_VALUE and isinstance(total, dict) and len(call.days) == 1:
                self._put(values, call.days[0], name, total.get("value"))
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
                    self._put(values, day, name, point.get("value"))

    @staticmethod
    def _put(values: dict[date, dict[str, Any]], day: date, name: str, raw: Any) -> None:
        if day not in values:
            return
        number = _number(raw)
        if number is not None or values[day].get(name) is None:
            values[day][name] = number

    @staticmethod
    def _store_media_values(media_id: str, payload: Any, out: dict[str, Any]) -> None:
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
            out[name] = _number(raw)

    def _parse_media(self, item: dict[str, Any], default_product: str | None) -> Media | None:
        if not isinstance(item, dict) or not item.get("id") or not item.get("timestamp"):
            return None
        try:
            published = parse_graph_time(str(item["timestamp"]))
        except ValueError:
            return None
        return Media(
            media_id=str(item["id"]),
            ig_user_id=self.ig_user_id,
            media_type=item.get("media_type"),
            media_product_type=item.get("media_product_type") or default_product,
            caption=item.get("caption"),
            permalink=item.get("permalink"),
            published_at=published,
            like_count=_int_or_none(item.get("like_count")),
            comments_count=_int_or_none(item.get("comments_count")),
        )

    # ==================================================================================================
    # paging
    # ==================================================================================================
    def _list_edge(self, edge: str, fields: str, published_since: datetime,
                   default_product: str | None) -> list[Media]:
        limit = self._client.media_page_limit
        path: str = f"{self.ig_user_id}/{edge}"
        params: dict[str, str] = {"fields": fields, "limit": str(limit)}
        endpoint = f"/{self.ig_user_id}/{edge}"
        found: dict[str, Media] = {}
        seen_pages: set[str] = set()
        while True:
            try:
                payload = self._send("GET", path, params=params, endpoint=endpoint, reduce_data=True,
                                     validate=lambda p: isinstance(p, dict) and isinstance(p.get("data"), list))
            except _ReduceData as signal:
                if limit <= 1:
                    raise TransientApiError(
                        code=signal.error.code, subcode=signal.error.subcode, fbtrace_id=signal.error.fbtrace_id,
                        http_status=signal.error.http_status, ig_user_id=self.ig_user_id, endpoint=endpoint,
                        api_message=signal.error.api_message, attempts=None) from None
                limit = max(1, limit // 2)
                params["limit"] = str(limit)
                self.stats.retries += 1
                self._log(logging.INFO, f"{endpoint}: API asked to reduce the amount of data; limit now {limit}",
                          endpoint=endpoint, err=signal.error)
                continue
            stop = False
            for raw in payload["data"]:
                media = self._parse_media(raw, default_product)
                if media is None:
                    continue
                if media.published_at < published_since:
                    stop = True  # newest first: everything after this is older
                    continue
                found.setdefault(media.media_id, media)
            next_url = (payload.get("paging") or {}).get("next") if isinstance(payload.get("paging"), dict) else None
            if stop or not next_url:
                break
            path, params = self._next_page(str(next_url), limit)
            if path + "?" + urlencode(sorted(params.items())) in seen_pages:
                self._log(logging.WARNING, f"{endpoint}: paging.next repeats a page; stopping", endpoint=endpoint)
                break
            seen_pages.add(path + "?" + urlencode(sorted(params.items())))
        return list(found.values())

    def _next_page(self, next_url: str, limit: int) -> tuple[str, dict[str, str]]:
        """``paging.next`` without its access_token (re-sent by header) on our own base URL."""
        parts = urlsplit(next_url)
        params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)
                  if k not in ("access_token", "appsecret_proof")}
        if "limit" in params:
            params["limit"] = str(limit)
        path = parts.path
        root_path = urlsplit(self._api_root).path  # e.g. "/v25.0"
        if root_path and path.startswith(root_path + "/"):
            path = path[len(root_path) + 1:]
        elif re.match(r"^/v\d+(\.\d+)?/", path):
            path = path.split("/", 2)[2]
        else:
            path = path.lstrip("/")
        self._log(logging.DEBUG, f"following paging.next {redact(next_url)}", endpoint="/" + path)
        return path, params

    # ==================================================================================================
    # batch rounds
    # ==================================================================================================
    def _run_rounds(
        self,
        items: list[_Item],
        prepare: Callable[[_Item], list[str]],
        on_success: Callable[[_Item, Any], None],
        on_error: Callable[[_Item, GraphApiError], str | None],
        on_give_up: Callable[[_Item, GraphApiError], None],
    ) -> None:
        """Send ``items`` in batches of 50, round after round, until each succeeded, was skipped or failed.

        Per item: handler decisions first (skip, drop a metric -> retried next round); then throttle codes pause
        the account and retry; transient failures retry in the next round after a backoff (up to max_attempts,
        then ``on_give_up``); token, permission and other errors raise.
        """
        client = self._client
        pending = list(items)
        round_no = 0
        while pending:
            round_no += 1
            retry: list[_Item] = []
            sendable: list[tuple[_Item, list[str]]] = []
            for item in pending:
                metrics = prepare(item)
                if metrics:
                    sendable.append((item, metrics))
            for start in range(0, len(sendable), BATCH_SIZE):
                chunk = sendable[start:start + BATCH_SIZE]
                urls = []
                for item, metrics in chunk:
                    item.sent = list(metrics)
                    query = {"metric": ",".join(metrics), **item.extra_params}
                    urls.append(f"{item.path}?{urlencode(query, safe=',')}")
                results = self._fetch_many(urls, is_retry=round_no > 1)
                throttled: ThrottledError | None = None
                for (item, _metrics), result in zip(chunk, results):
                    if not isinstance(result, GraphApiError):
                        self._throttle_streak = 0
                        on_success(item, result)
                        continue
                    err = result
                    item.last_error = err
                    decision = on_error(item, err)
                    if decision == "retry":
                        retry.append(item)
                        continue
                    if decision == "done":
                        continue
                    if isinstance(err, ThrottledError):
                        throttled = throttled or err  # one pause for the account, not one per item
                        retry.append(item)
                        continue
                    if isinstance(err, TransientApiError):
                        item.failures += 1
                        if item.failures >= client.max_attempts:
                            on_give_up(item, _with_attempts(err, item.failures))
                        else:
                            retry.append(item)
                        continue
                    raise err
                if throttled is not None:
                    self._log(logging.WARNING, f"batch items throttled ({throttled.code}); pausing account",
                              endpoint="/ (batch)", err=throttled)
                    self._schedule_throttle_pause(throttled, Usage())
            if retry:
                worst = max((i.failures for i in retry), default=0)
                if worst:
                    delay = transient_backoff_s(worst, client.backoff_base_s, client.backoff_cap_s, client.rng)
                    self._log(logging.INFO, f"{len(retry)} batch items to retry in {delay:.2f} s",
                              endpoint="/ (batch)")
                    client.sleep(delay)
            pending = retry

    def _fetch_many(self, relative_urls: list[str], is_retry: bool) -> list[Any]:
        """Several GETs: one batch POST on graph.facebook.com; one plain GET each for Instagram-Login accounts
        (Meta documents batch requests for graph.facebook.com only, not for graph.instagram.com)."""
        if self.login_kind == "instagram":
            return self._get_each(relative_urls, is_retry)
        return self._post_batch(relative_urls, is_retry)

    def _get_each(self, relative_urls: list[str], is_retry: bool) -> list[Any]:
        """Like ``_post_batch``, per item its parsed JSON or its GraphApiError; one attempt each (the batch rounds
        retry). A throttle the account cannot wait out is raised, as a throttled batch POST is."""
        out: list[Any] = []
        for url in relative_urls:
            path, _, query = url.partition("?")
            try:
                out.append(self._send("GET", path, params=dict(parse_qsl(query, keep_blank_values=True)),
                                      endpoint="/" + path, first_is_retry=is_retry, max_attempts=1,
                                      validate=lambda p: isinstance(p, dict) and isinstance(p.get("data"), list)))
            except ThrottledError:
                raise
            except GraphApiError as err:
                out.append(err)
        return out

    def _post_batch(self, relative_urls: list[str], is_retry: bool) -> list[Any]:
        """One batch POST; returns, per item, its parsed JSON body or the GraphApiError it failed with."""
        batch = [{"method": "GET", "relative_url": url} for url in relative_urls]
        kinds = sorted({"/" + url.split("?", 1)[0].rsplit("/", 1)[-1] for url in relative_urls})
        endpoint = f"/ (batch of {len(batch)}: {', '.join('.../' + k.lstrip('/') for k in kinds)})"
        self.stats.batch_items += len(batch)

        def valid(payload: Any) -> bool:
            return isinstance(payload, list) and len(payload) == len(batch)

        payload = self._send("POST", "", form={"batch": json.dumps(batch), "include_headers": "false"},
                             endpoint=endpoint, validate=valid, first_is_retry=is_retry)
        out: list[Any] = []
        for url, entry in zip(relative_urls, payload):
            item_endpoint = "/" + url.split("?", 1)[0]
            if entry is None:  # the API could not complete this item in time
                out.append(TransientApiError(ig_user_id=self.ig_user_id, endpoint=item_endpoint,
                                             api_message="batch item did not complete"))
                continue
            if not isinstance(entry, dict):
                out.append(MalformedResponseError(ig_user_id=self.ig_user_id, endpoint=item_endpoint,
                                                  api_message="batch item is not an object"))
                continue
            status = _int_or_none(entry.get("code"))
            headers = entry.get("headers")
            if isinstance(headers, list):
                self._observe_usage({h.get("name", ""): h.get("value", "") for h in headers if isinstance(h, dict)})
            body = entry.get("body")
            try:
                parsed = json.loads(body) if isinstance(body, str) else body
            except ValueError:
                parsed = None
            err_obj = error_fields(parsed)
            if err_obj or (status is not None and status >= 400):
                err = classify_error(status, err_obj, ig_user_id=self.ig_user_id, endpoint=item_endpoint,
                                     attempts=None)
                self._log(logging.DEBUG, f"batch item {item_endpoint} failed: {err}", endpoint=item_endpoint,
                          err=err)
                out.append(err)
                continue
            if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
                out.append(MalformedResponseError(ig_user_id=self.ig_user_id, endpoint=item_endpoint,
                                                  http_status=status,
                                                  api_message="batch item body is not the JSON expected"))
                continue
            out.append(parsed)
        return out

    # ==================================================================================================
    # one HTTP request, with retries, pacing and throttle pauses
    # ==================================================================================================
    def _send(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        validate: Callable[[Any], bool] | None = None,
        reduce_data: bool = False,
        first_is_retry: bool = False,
        max_attempts: int | None = None,
    ) -> Any:
        client = self._client
        attempts_max = max_attempts or client.max_attempts
        url = f"{self._api_root}/{path}"
        failures = 0
        sent = 0
        while True:
            if client.app_budget is not None:
                self._pace_by_app_budget()
            self._await_turn(endpoint)
            params_out = dict(params or {})
            headers: dict[str, str] = {}
            form_out: dict[str, str] | None = None
            if method == "GET":
                headers["Authorization"] = f"Bearer {self.__token}"
                if self._proof:
                    params_out["appsecret_proof"] = self._proof
            else:
                form_out = dict(form or {})
                form_out["access_token"] = self.__token
                if self._proof:
                    form_out["appsecret_proof"] = self._proof
            self.stats.calls += 1
            if sent or first_is_retry:
                self.stats.retries += 1
            sent += 1
            started = client.monotonic()
            try:
                response = client.session.request(method, url, params=params_out or None, data=form_out,
                                                  headers=headers, timeout=client.timeout)
            except requests.RequestException as exc:
                failures += 1
                err = TransientApiError(ig_user_id=self.ig_user_id, endpoint=endpoint, attempts=failures,
                                        api_message=f"{type(exc).__name__}: {_exc_summary(exc)}")
                self._log(logging.WARNING, f"{method} {endpoint}: {type(exc).__name__} (attempt {failures})",
                          endpoint=endpoint, err=err)
                if failures >= attempts_max:
                    raise err from None
                self._backoff(failures)
                continue
            elapsed = client.monotonic() - started
            usage = parse_usage(response.headers)
            status = response.status_code
            try:
                payload = json.loads(response.content.decode("utf-8"))
                shape_ok = True
            except (ValueError, UnicodeDecodeError):
                payload, shape_ok = None, False
            err_obj = error_fields(payload)
            self._log(logging.DEBUG, f"{method} {endpoint} -> HTTP {status} in {elapsed:.3f} s", endpoint=endpoint,
                      code=_int_or_none(err_obj.get("code")), subcode=_int_or_none(err_obj.get("error_subcode")),
                      fbtrace_id=err_obj.get("fbtrace_id") or response.headers.get("x-fb-trace-id"))
            if err_obj or status >= 400:
                if not err_obj and not shape_ok and 400 <= status < 500 and status != 429:
                    raise InvalidRequestError(ig_user_id=self.ig_user_id, endpoint=endpoint, http_status=status,
                                              api_message=f"HTTP {status} without a Graph API error body")
                err = classify_error(status, err_obj, ig_user_id=self.ig_user_id, endpoint=endpoint,
                                     attempts=failures + 1)
                if reduce_data and err.code == 1 and _REDUCE_DATA_RE.search(err.api_message or ""):
                    raise _ReduceData(err)
                if isinstance(err, ThrottledError):
                    self._log(logging.WARNING, f"{method} {endpoint}: throttled (code {err.code}); pausing the "
                              "account", endpoint=endpoint, err=err)
                    self._schedule_throttle_pause(err, usage)
                    continue
                self._observe_usage_parsed(usage)
                if isinstance(err, TransientApiError):
                    failures += 1
                    if failures >= attempts_max:
                        self._log(logging.WARNING, str(err), endpoint=endpoint, err=err)
                        raise err
                    self._log(logging.WARNING, f"{method} {endpoint}: temporary error, HTTP {status} "
                              f"{err._code_text()} (attempt {failures} of {attempts_max}): "
                              f"{err.api_message or ''}; retrying", endpoint=endpoint, err=err)
                    self._backoff(failures)
                    continue
                self._log(logging.ERROR if isinstance(err, (TokenInvalidError, PermissionDeniedError))
                          else logging.WARNING, str(err), endpoint=endpoint, err=err)
                raise err
            self._observe_usage_parsed(usage)
            if not shape_ok or (validate is not None and not validate(payload)):
                failures += 1
                detail = "truncated or invalid JSON" if not shape_ok else "JSON of an unexpected shape"
                err = MalformedResponseError(ig_user_id=self.ig_user_id, endpoint=endpoint, http_status=status,
                                             attempts=failures, api_message=detail)
                self._log(logging.WARNING, f"{endpoint}: {detail} (attempt {failures})", endpoint=endpoint,
                          err=err)
                if failures >= attempts_max:
                    raise err
                self._backoff(failures)
                continue
            self._throttle_streak = 0
            return payload

    # -- pacing ------------------------------------------------------------------------------------------
    def _observe_usage(self, headers: dict[str, str]) -> None:
        self._observe_usage_parsed(parse_usage(headers))

    def _observe_usage_parsed(self, usage: Usage) -> None:
        if not usage.present:
            return
        if usage.app and self._client.app_budget is not None:
            self._client.app_budget.observe(usage.app)
        now = self._client.monotonic()
        if usage.regain_minutes > 0:
            self._pause_until(now + usage.regain_minutes * 60.0, throttle=True, err=None)
            self._log(logging.WARNING, f"usage headers: blocked for {usage.regain_minutes:g} min; pausing account",
                      endpoint=None)
            return
        delay = slowdown_delay_s(usage.max_pct)
        if delay > 0:
            self._log(logging.INFO, f"usage at {usage.max_pct:.0f}% of the limit; slowing down {delay:.1f} s",
                      endpoint=None)
            self._pause_until(now + delay, throttle=False, err=None)

    def _pace_by_app_budget(self) -> None:
        delay = self._client.app_budget.delay_s()
        if delay > 0:
            self._log(logging.DEBUG, f"the app's usage (all runs) is near its limit; slowing down {delay:.1f} s",
                      endpoint=None)
            self._pause_until(self._client.monotonic() + delay, throttle=False, err=None)

    def _schedule_throttle_pause(self, err: GraphApiError, usage: Usage) -> None:
        client = self._client
        self._throttle_streak += 1
        if usage.regain_minutes > 0:
            wait = usage.regain_minutes * 60.0
        else:
            wait = throttle_backoff_s(self._throttle_streak, client.throttle_backoff_base_s,
                                      client.throttle_backoff_cap_s, client.rng)
        self._pause_until(client.monotonic() + wait, throttle=True, err=err)

    def _pause_until(self, resume_at: float, throttle: bool, err: GraphApiError | None) -> None:
        self._resume_at = max(resume_at, self._resume_at)
        if throttle:
            self._pause_is_throttle = True
            if err is not None:
                self._pause_error = err

    def _await_turn(self, endpoint: str) -> None:
        client = self._client
        wait = self._resume_at - client.monotonic()
        if wait <= 0:
            self._pause_is_throttle = False
            return
        if self._pause_is_throttle and self._throttle_waited_s + wait > client.max_throttle_wait_s:
            prev = self._pause_error
            err = ThrottledError(
                retry_after_s=wait, max_wait_s=client.max_throttle_wait_s, ig_user_id=self.ig_user_id,
                endpoint=(prev.endpoint if prev else None) or endpoint,
                code=prev.code if prev else None, subcode=prev.subcode if prev else None,
                fbtrace_id=prev.fbtrace_id if prev else None, http_status=prev.http_status if prev else None,
                api_message=(prev.api_message if prev else "usage headers: estimated_time_to_regain_access > 0"),
            )
            self._log(logging.WARNING, str(err), endpoint=endpoint, err=err)
            raise err
        self._log(logging.INFO, f"pausing account {wait:.1f} s ({'throttled' if self._pause_is_throttle else 'pacing'})",
                  endpoint=endpoint)
        client.sleep(wait)
        self.stats.throttle_wait_s += wait
        if self._pause_is_throttle:
            self._throttle_waited_s += wait
        self._pause_is_throttle = False

    def _backoff(self, failures: int) -> None:
        client = self._client
        delay = transient_backoff_s(failures, client.backoff_base_s, client.backoff_cap_s, client.rng)
        client.sleep(delay)

    # -- misc --------------------------------------------------------------------------------------------
    def _drop_account_metric(self, metric: str, err: GraphApiError) -> None:
        if metric in self._dropped_account_metrics:
            return
        self._dropped_account_metrics.add(metric)
        self.stats.dropped_metrics.append((None, metric))
        self._log(logging.WARNING, f"account metric {metric} rejected by the API "
                                   f"({err.api_message or 'code 100'}); asking without it",
                  endpoint=f"/{self.ig_user_id}/insights", err=err)

    def _log(self, level: int, message: str, *, endpoint: str | None, err: GraphApiError | None = None,
             code: int | None = None, subcode: int | None = None, fbtrace_id: str | None = None) -> None:
        logger = self._client.logger
        if not logger.isEnabledFor(level):
            return
        extra = {
            "ig_user_id": self.ig_user_id,
            "endpoint": redact(endpoint) if endpoint else endpoint,
            "code": err.code if err is not None else code,
            "subcode": err.subcode if err is not None else subcode,
            "fbtrace_id": err.fbtrace_id if err is not None else fbtrace_id,
        }
        logger.log(level, redact(f"[{self.ig_user_id}] {message}"), extra=extra)


def _with_attempts(err: GraphApiError, attempts: int) -> GraphApiError:
    """The same error, its message saying after how many attempts it was given up."""
    if not isinstance(err, TransientApiError):
        return err
    return type(err)(code=err.code, subcode=err.subcode, fbtrace_id=err.fbtrace_id, http_status=err.http_status,
                     ig_user_id=err.ig_user_id, endpoint=err.endpoint, api_message=err.api_message,
                     attempts=attempts)


def _exc_summary(exc: BaseException) -> str:
    # requests' messages can quote the URL; ours never carry a token, but redact anyway and keep it short.
    text = redact(str(exc))
    return text if len(text) <= 200 else text[:197] + "..."
