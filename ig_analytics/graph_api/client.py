"""The Graph API client: one pooled HTTP session, one ``AccountApi`` handle per account.

Plain Python (requests), no Dagster. See docs/graph-api-client.md for the behaviour on every error class. The
parts: ``transport.py`` (one request, its retries and logging), ``pacing.py`` (usage headers, the app's budget,
throttle pauses, backoff), ``rounds.py`` (batch rounds), ``paging.py`` (media and stories lists),
``parsing.py`` (payloads into values); ``protocol.py`` says what ingestion relies on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping, Sequence

import requests
from requests.adapters import HTTPAdapter

from ig_analytics import clock
from ig_analytics import stopping
from ig_analytics.graph_api.catalogue import MetricCatalogue, normalize_media_metric, normalize_version
from ig_analytics.graph_api.errors import SKIP_SUBCODES, GraphApiError, is_not_enough_viewers
from ig_analytics.graph_api.models import AccountDay, CallStats, Media, Profile, SkippedItem
from ig_analytics.graph_api.paging import Edge, EdgeLister
from ig_analytics.graph_api.parsing import (
    is_list_page,
    metrics_named_in,
    profile_from,
    store_account_values,
    store_media_values,
    window_refused_metrics,
)
from ig_analytics.graph_api.rounds import BatchRounds, RoundHandlers, RoundItem
from ig_analytics.graph_api.transport import AccountTransport
from ig_analytics.graph_api.windows import meta_today, plan_account_calls
from ig_analytics.redaction import redact, register_secret

if TYPE_CHECKING:
    from ig_analytics.graph_api.app_budget import AppBudget
    from ig_analytics.graph_api.recording import Recorder
    from ig_analytics.settings import Settings

__all__ = ["GraphApiClient", "AccountApi", "LOGGER_NAME", "metrics_named_in"]

LOGGER_NAME = "ig_analytics.graph_api"
DEFAULT_BASE_URL = "https://graph.facebook.com"

MEDIA_FIELDS = "id,caption,media_type,media_product_type,timestamp,permalink,like_count,comments_count"
STORY_FIELDS = "id,caption,media_type,media_product_type,timestamp,permalink"
PROFILE_FIELDS = "id,username,followers_count,follows_count,media_count"
MEDIA_PAGE_LIMIT = 100

_MEDIA_EDGE = Edge("media", MEDIA_FIELDS, default_product=None)
_STORIES_EDGE = Edge("stories", STORY_FIELDS, default_product="STORY")


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
        sleep: Callable[[float], None] = stopping.sleep,  # a pause that SIGTERM/SIGINT cuts short
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
        recorder: "Recorder | None" = None,
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
        self.now = now or (lambda: clock.now())
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.rng = rng or random.Random()
        self.session = session or self._make_session(pool_size)
        self.app_budget = app_budget  # X-App-Usage shared with the deployment's other runs (app_budget.py)
        self.recorder = recorder  # every request and reply written for `sync --record` (recording.py)

    @classmethod
    def from_settings(cls, settings: "Settings", *, app_budget: "AppBudget | None" = None,
                      **options: Any) -> "GraphApiClient":
        """The client the product's settings describe (IG_GRAPH_API_URL, IG_GRAPH_API_VERSION, IG_APP_SECRET):
        the one way the Dagster resource and the command line build it. ``options``: any keyword of the
        constructor (timeouts, attempts, a logger)."""
        return cls(base_url=settings.graph_api_url, version=settings.graph_api_version,
                   app_secret=settings.app_secret, app_budget=app_budget, **options)

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


class AccountApi:
    """Per-account handle: holds the token, stats and throttle state. Use each handle from one thread.

    Satisfies :class:`ig_analytics.graph_api.protocol.InsightsApi` (what ingestion relies on).
    """

    def __init__(self, client: GraphApiClient, ig_user_id: str, token: str, login_kind: str = "facebook") -> None:
        self._client = client
        self.ig_user_id = ig_user_id
        self.login_kind = login_kind
        self.stats = CallStats()
        self._transport = AccountTransport(client, ig_user_id, token, login_kind, self.stats)
        self._rounds = BatchRounds(self._transport)
        self._lister = EdgeLister(self._transport, self._rounds, client.media_page_limit)
        self._dropped_account_metrics: set[str] = set()

    def __repr__(self) -> str:
        return f"AccountApi(ig_user_id={self.ig_user_id!r}, version={self._client.version!r})"

    @property
    def version(self) -> str:
        """The Graph API version the calls use, e.g. ``v25.0``."""
        return self._client.version

    @property
    def catalogue(self) -> MetricCatalogue:
        """What that version offers (metrics, rules)."""
        return self._client.catalogue

    # ==================================================================================================
    # public calls
    # ==================================================================================================
    def profile(self) -> Profile:
        payload = self._send("GET", self.ig_user_id, params={"fields": PROFILE_FIELDS},
                             endpoint=f"/{self.ig_user_id}", validate=lambda p: isinstance(p, dict))
        return profile_from(payload, self.ig_user_id)

    def account_insights(self, since: date, until: date) -> list[AccountDay]:
        """One AccountDay per day of ``since..until`` (inclusive), every catalogue metric as a key."""
        if isinstance(since, datetime):
            since = since.date()
        if isinstance(until, datetime):
            until = until.date()
        if until < since:
            raise ValueError(f"until ({until}) is before since ({since})")
        catalogue = self._client.catalogue
        values: dict[date, dict[str, Any]] = {}
        day = since
        while day <= until:
            values[day] = {name: None for name in catalogue.account_metric_names}
            day += timedelta(days=1)
        today = meta_today(self._client.now())  # the API's day, so the oldest follower_count day is asked
        metrics = [m for m in catalogue.account_metrics if m.name not in self._dropped_account_metrics]
        items = [RoundItem(key=call, path=f"{self.ig_user_id}/insights", metrics=list(call.metrics),
                           extra_params={k: v for k, v in call.params().items() if k != "metric"})
                 for call in plan_account_calls(metrics, since, until, today)]
        self._log(logging.DEBUG, f"account insights {since}..{until}: {len(items)} Graph calls planned",
                  endpoint=f"/{self.ig_user_id}/insights")
        self._rounds.run(items, RoundHandlers(
            prepare=lambda item: [m for m in item.metrics if m not in self._dropped_account_metrics],
            on_success=lambda item, payload: store_account_values(item.key, payload, values),
            on_error=self._account_insights_error,
            on_give_up=_raise,
        ))
        return [AccountDay(date=d, values=v) for d, v in sorted(values.items())]

    def list_media(self, published_since: datetime, include_stories: bool = True) -> list[Media]:
        """Posts published at or after ``published_since`` (newest first), then live stories."""
        if published_since.tzinfo is None:
            published_since = published_since.replace(tzinfo=timezone.utc)
        edges = [_MEDIA_EDGE, _STORIES_EDGE] if include_stories else [_MEDIA_EDGE]
        found, *more = self._lister.list_edges(edges, published_since)
        seen = {m.media_id for m in found}
        for stories in more:
            found.extend(m for m in stories if m.media_id not in seen)
        return found

    def media_insights(self, media: Sequence[Media], known_rejections: Mapping[str, Collection[str]] | None = None,
                       ) -> dict[str, dict[str, int | float | None]]:
        """Lifetime insights of each post, by batch (50 posts per HTTP request).

        ``known_rejections``: media_id -> metrics that post rejected before under this version (remembered by the
        caller from ``stats.dropped_metrics``): not asked, so the post costs one item, not a failure and a retry.
        Result: media_id -> {normalized metric: value or None}; skipped posts are absent (see stats.skipped).
        """
        catalogue = self._client.catalogue
        results: dict[str, dict[str, Any]] = {}
        items: list[RoundItem] = []
        for post in media:
            if post.media_id in results:
                continue
            metrics = list(catalogue.media_metrics_for(post.media_product_type, post.media_type))
            rejected = (known_rejections or {}).get(post.media_id, ())
            metrics = [m for m in metrics if m not in rejected] or metrics  # all rejected: ask again, learn anew
            results[post.media_id] = {normalize_media_metric(m): None for m in metrics}
            items.append(RoundItem(key=post.media_id, path=f"{post.media_id}/insights", metrics=metrics))

        def skip(item: RoundItem, err: GraphApiError, reason: str, refused: bool = False) -> str:
            results.pop(item.key, None)
            self.stats.skipped.append(SkippedItem(item.key, err.code, err.subcode, redact(reason), refused))
            self._log(logging.INFO, f"skipped insights of media {item.key}: {reason}",
                      endpoint=f"/{item.key}/insights", err=err)
            return "done"

        def on_error(item: RoundItem, err: GraphApiError) -> str | None:
            reason = _skip_reason(err)
            if reason:
                return skip(item, err, reason)
            if err.code != 100:
                return None  # the error class decides (throttle, transient, token...)
            if not self._drop_media_metrics(item, err):
                return skip(item, err, f"request rejected: {err.api_message or 'code 100'}")
            return "retry" if item.metrics else skip(item, err, "every metric was rejected")

        def on_give_up(item: RoundItem, err: GraphApiError) -> None:
            skip(item, err, f"still failing after {item.failures} attempts: {err.api_message or type(err).__name__}")

        def on_refused(item: RoundItem, err: GraphApiError) -> None:  # errors.error_scope: this post's only
            skip(item, err, f"refused: {err.api_message or type(err).__name__}", refused=True)

        self._rounds.run(items, RoundHandlers(
            prepare=lambda item: item.metrics,
            on_success=lambda item, payload: store_media_values(payload, results[item.key]),
            on_error=on_error,
            on_give_up=on_give_up,
            on_refused=on_refused,
        ))
        return results

    # ==================================================================================================
    # rejected metrics
    # ==================================================================================================
    def _account_insights_error(self, item: RoundItem, err: GraphApiError) -> str | None:
        window_only = window_refused_metrics(err.api_message, item.sent) if err.code == 100 else []
        if window_only:  # refused for these days only: this window is asked again without it, the others keep it
            for metric in window_only:
                item.metrics.remove(metric)
            days = item.key.days  # an AccountCall
            self._log(logging.WARNING, f"account metric {', '.join(window_only)} not served for {days[0]}.."
                                       f"{days[-1]} ({err.api_message}); asking those days without it",
                      endpoint=f"/{self.ig_user_id}/insights", err=err)
            return "retry"
        if err.code == 100 and err.subcode not in SKIP_SUBCODES:
            # only metrics of this attempt: each retry asks strictly fewer metrics, so this ends
            named = metrics_named_in(err.api_message, item.sent)
            if named:
                for metric in named:
                    self._drop_account_metric(metric, err)
                return "retry"
        return None

    def _drop_account_metric(self, metric: str, err: GraphApiError) -> None:
        if metric in self._dropped_account_metrics:
            return
        self._dropped_account_metrics.add(metric)
        self.stats.dropped_metrics.append((None, metric))
        self._log(logging.WARNING, f"account metric {metric} rejected by the API "
                                   f"({err.api_message or 'code 100'}); asking without it",
                  endpoint=f"/{self.ig_user_id}/insights", err=err)

    def _drop_media_metrics(self, item: RoundItem, err: GraphApiError) -> bool:
        """Drop the metrics a code-100 error names for this post (False when it names none we asked)."""
        named = metrics_named_in(err.api_message, item.sent)
        for metric in named:
            item.metrics.remove(metric)
            self.stats.dropped_metrics.append((item.key, metric))
            self._log(logging.INFO, f"media {item.key} rejects metric {metric}; asking without it",
                      endpoint=f"/{item.key}/insights", err=err)
        return bool(named)

    # ==================================================================================================
    # raw calls, for the calls built on them (demographics.py, follows.py)
    # ==================================================================================================
    def get(self, path: str, params: dict[str, str], *, endpoint: str | None = None,
            first_is_retry: bool = False) -> Any:
        """One GET of ``path`` (relative to the version root) with every retry rule; its JSON, which must be an
        object with a ``data`` array. Raises the GraphApiError it ended with."""
        return self._transport.send("GET", path, params=params, endpoint=endpoint or f"/{path}",
                                    first_is_retry=first_is_retry, validate=is_list_page)

    def fetch_many(self, relative_urls: list[str], is_retry: bool = False,
                   validate: Callable[[Any], bool] = is_list_page) -> list[Any]:
        """Several GETs (at most 50) in one batch POST (plain GETs on graph.instagram.com): per URL its parsed
        JSON (of the shape ``validate`` accepts: by default a list page) or the GraphApiError it failed with; an
        item is not retried."""
        return self._rounds.fetch_many(relative_urls, is_retry, validate)

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request with every retry rule (transport.AccountTransport.send)."""
        return self._transport.send(method, path, **kwargs)

    def _fetch_many(self, relative_urls: list[str], is_retry: bool) -> list[Any]:
        return self.fetch_many(relative_urls, is_retry)

    def _log(self, level: int, message: str, **kwargs: Any) -> None:
        self._transport.log(level, message, **kwargs)


def _skip_reason(err: GraphApiError) -> str | None:
    """Why a post's insights are skipped rather than retried (graph-api-facts.md, section 3), or None."""
    if is_not_enough_viewers(err.code, err.api_message):
        return "not enough viewers (a story seen by fewer than 5 accounts)"
    if err.code == 100 and err.subcode == 2108006:
        return "posted before the account became a business account (subcode 2108006)"
    if err.code == 100 and err.subcode == 33:
        return "media missing or not accessible (subcode 33)"
    return None


def _raise(_item: RoundItem, err: GraphApiError) -> None:
    raise err

