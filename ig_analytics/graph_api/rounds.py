"""Batch rounds: many Graph calls of one account sent 50 to an HTTP request (a batch POST on graph.facebook.com,
plain GETs on graph.instagram.com, which has no batch endpoint), until each call succeeded, was skipped or failed. Each item of a batch succeeds or fails on its own (graph-api-facts.md, section 4)."""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from ig_analytics.graph_api.errors import (
    ITEM,
    GraphApiError,
    MalformedResponseError,
    PermissionDeniedError,
    ThrottledError,
    TransientApiError,
    classify_error,
    error_fields,
    error_scope,
)
from ig_analytics.graph_api.parsing import int_or_none, is_list_page
from ig_analytics.graph_api.rate_limit import Usage, transient_backoff_s
from ig_analytics.graph_api.transport import AccountTransport
from ig_analytics.graph_api.windows import BATCH_SIZE


@dataclass
class RoundItem:
    """One Graph call of a batch round (a post's insights, or one account insights window)."""

    key: Any
    path: str
    metrics: list[str]
    extra_params: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    sent: list[str] = field(default_factory=list)  # the metrics of the last attempt
    last_error: GraphApiError | None = None


@dataclass
class RoundHandlers:
    """What the caller decides per item. ``on_error`` returns "retry" (e.g. a metric dropped), "done" (skipped)
    or None (the error class decides: throttle pauses, transient retries, the rest raise)."""

    prepare: Callable[[RoundItem], list[str]]  # the metrics to ask this round ([]: nothing left to ask)
    on_success: Callable[[RoundItem, Any], None]
    on_error: Callable[[RoundItem, GraphApiError], str | None]
    on_give_up: Callable[[RoundItem, GraphApiError], None]  # a transient failure after max_attempts
    # Items that are posts: an error of the item's scope (errors.error_scope, e.g. a permission refused for one
    # post) is handed here and costs that item only. None: the items are the account's own calls, errors raise.
    on_refused: Callable[[RoundItem, GraphApiError], None] | None = None


class BatchRounds:
    def __init__(self, transport: AccountTransport) -> None:
        self._transport = transport

    # ==================================================================================================
    # rounds
    # ==================================================================================================
    def run(self, items: list[RoundItem], handlers: RoundHandlers) -> None:
        """Send ``items`` in batches of 50, round after round, until each succeeded, was skipped or failed.

        An item asked again without a metric it was refused joins the calls this round has yet to send, so it
        rides in a batch that still has room (100 posts + 3 stories with a few refusals: 3 batches, not 3 + a
        round of 5); transient failures and throttled items wait for the next round, after the backoff or the
        pause, and so do refused items when nothing of this round is left to send.
        """
        pending = list(items)
        refused: list[GraphApiError] = []
        handlers = _counting_refusals(handlers, refused)
        while pending:
            queue = deque(pending)
            next_round: list[RoundItem] = []
            while chunk := self._take(queue, handlers):
                again, later = self._send_chunk(chunk, handlers)
                # ride along with the calls this round still sends; else wait for the next round's retries
                (queue if queue else next_round).extend(again)
                next_round.extend(later)
            self._backoff_before(next_round)
            pending = next_round
        _raise_if_every_item_refused(items, refused)

    @staticmethod
    def _take(queue: deque[RoundItem], handlers: RoundHandlers) -> list[tuple[RoundItem, list[str]]]:
        """Up to 50 items with something to ask; prepared now, so a metric refused a moment ago is left out."""
        chunk: list[tuple[RoundItem, list[str]]] = []
        while queue and len(chunk) < BATCH_SIZE:
            item = queue.popleft()
            metrics = handlers.prepare(item)
            if metrics:
                chunk.append((item, metrics))
        return chunk

    def _send_chunk(self, chunk: list[tuple[RoundItem, list[str]]],
                    handlers: RoundHandlers) -> tuple[list[RoundItem], list[RoundItem]]:
        """One HTTP request's worth of items; returns those to ask again now, and those for the next round."""
        is_retry = any(item.sent for item, _ in chunk)  # a request that repeats calls counts as a retry
        urls = []
        for item, metrics in chunk:
            item.sent = list(metrics)
            query = {"metric": ",".join(metrics), **item.extra_params}
            urls.append(f"{item.path}?{urlencode(query, safe=',')}")
        results = self.fetch_many(urls, is_retry=is_retry)
        again: list[RoundItem] = []
        later: list[RoundItem] = []
        throttled: ThrottledError | None = None
        for (item, _metrics), result in zip(chunk, results):
            decision = self._settle(item, result, handlers)
            if decision == "again":
                again.append(item)
            elif decision == "retry":
                later.append(item)
            elif decision == "throttled":
                later.append(item)
                throttled = throttled or item.last_error  # one pause for the account, not one per item
        if throttled is not None:
            self._transport.log(logging.WARNING, f"batch items throttled ({throttled.code}); pausing account",
                                endpoint="/ (batch)", err=throttled)
            self._transport.pacer.throttled(throttled, Usage())
        return again, later

    def _settle(self, item: RoundItem, result: Any, handlers: RoundHandlers) -> str:
        """"done", "again" (the caller changed the call), "retry" (transient) or "throttled" for one item's
        result; raises the errors no item can survive."""
        if not isinstance(result, GraphApiError):
            self._transport.pacer.succeeded()
            handlers.on_success(item, result)
            return "done"
        err = result
        item.last_error = err
        decision = handlers.on_error(item, err)  # the caller's decisions come first
        if decision == "retry":
            return "again"
        if decision == "done":
            return decision
        if isinstance(err, ThrottledError):
            return "throttled"
        if isinstance(err, TransientApiError):
            item.failures += 1
            if item.failures < self._transport.client.max_attempts:
                return "retry"
            handlers.on_give_up(item, with_attempts(err, item.failures))
            return "done"
        if handlers.on_refused is not None and error_scope(err, on_item=True) == ITEM:
            handlers.on_refused(item, err)
            return "done"
        raise err

    def _backoff_before(self, retry: list[RoundItem]) -> None:
        """Transient failures wait before the next round; a dropped metric or a throttle pause needs no backoff."""
        worst = max((i.failures for i in retry), default=0)
        if not worst:
            return
        client = self._transport.client
        delay = transient_backoff_s(worst, client.backoff_base_s, client.backoff_cap_s, client.rng)
        self._transport.log(logging.INFO, f"{len(retry)} batch items to retry in {delay:.2f} s",
                            endpoint="/ (batch)")
        client.sleep(delay)

    # ==================================================================================================
    # several GETs in one go
    # ==================================================================================================
    def fetch_many(self, relative_urls: list[str], is_retry: bool,
                   validate: Callable[[Any], bool] = is_list_page) -> list[Any]:
        """Several GETs: per URL its parsed JSON or the GraphApiError it failed with. One batch POST on
        graph.facebook.com; one plain GET each for Instagram-Login accounts (Meta documents batch requests for
        graph.facebook.com only, not for graph.instagram.com)."""
        if self._transport.login_kind == "instagram":
            return self._get_each(relative_urls, is_retry, validate)
        return self._post_batch(relative_urls, is_retry, validate)

    def _get_each(self, relative_urls: list[str], is_retry: bool, validate: Callable[[Any], bool]) -> list[Any]:
        """One attempt each (the batch rounds retry). A throttle the account cannot wait out is raised, as a
        throttled batch POST is."""
        out: list[Any] = []
        for url in relative_urls:
            path, _, query = url.partition("?")
            try:
                out.append(self._transport.send("GET", path, params=dict(parse_qsl(query, keep_blank_values=True)),
                                                endpoint="/" + path, first_is_retry=is_retry, max_attempts=1,
                                                validate=validate))
            except ThrottledError:
                raise
            except GraphApiError as err:
                out.append(err)
        return out

    def _post_batch(self, relative_urls: list[str], is_retry: bool, validate: Callable[[Any], bool]) -> list[Any]:
        """One batch POST; returns, per item, its parsed JSON body or the GraphApiError it failed with."""
        transport = self._transport
        batch = [{"method": "GET", "relative_url": url} for url in relative_urls]
        kinds = sorted({"/" + url.split("?", 1)[0].rsplit("/", 1)[-1] for url in relative_urls})
        endpoint = f"/ (batch of {len(batch)}: {', '.join('.../' + k.lstrip('/') for k in kinds)})"
        transport.stats.batch_items += len(batch)
        payload = transport.send("POST", "", form={"batch": json.dumps(batch), "include_headers": "false"},
                                 endpoint=endpoint, first_is_retry=is_retry,
                                 validate=lambda p: isinstance(p, list) and len(p) == len(batch))
        return [self._batch_entry("/" + url.split("?", 1)[0], entry, validate)
                for url, entry in zip(relative_urls, payload)]

    def _batch_entry(self, item_endpoint: str, entry: Any, validate: Callable[[Any], bool] = is_list_page) -> Any:
        """One entry of a batch reply: its parsed body, or the GraphApiError it stands for."""
        transport = self._transport
        ig_user_id = transport.ig_user_id
        if entry is None:  # the API could not complete this item in time
            return TransientApiError(ig_user_id=ig_user_id, endpoint=item_endpoint,
                                     api_message="batch item did not complete")
        if not isinstance(entry, dict):
            return MalformedResponseError(ig_user_id=ig_user_id, endpoint=item_endpoint,
                                          api_message="batch item is not an object")
        status = int_or_none(entry.get("code"))
        headers = entry.get("headers")
        if isinstance(headers, list):
            transport.pacer.observe_headers({h.get("name", ""): h.get("value", "") for h in headers
                                             if isinstance(h, dict)})
        body = entry.get("body")
        try:
            parsed = json.loads(body) if isinstance(body, str) else body
        except ValueError:
            parsed = None
        err_obj = error_fields(parsed)
        if err_obj or (status is not None and status >= 400):
            err = classify_error(status, err_obj, ig_user_id=ig_user_id, endpoint=item_endpoint, attempts=None)
            transport.log(logging.DEBUG, f"batch item {item_endpoint} failed: {err}", endpoint=item_endpoint, err=err)
            return err
        if not validate(parsed):
            return MalformedResponseError(ig_user_id=ig_user_id, endpoint=item_endpoint, http_status=status,
                                          api_message="batch item body is not the JSON expected")
        return parsed


def _counting_refusals(handlers: RoundHandlers, refused: list[GraphApiError]) -> RoundHandlers:
    """The same handlers, each refusal also noted in ``refused`` (to tell one odd post from all of them)."""
    if handlers.on_refused is None:
        return handlers
    on_refused = handlers.on_refused

    def note(item: RoundItem, err: GraphApiError) -> None:
        refused.append(err)
        on_refused(item, err)

    return RoundHandlers(handlers.prepare, handlers.on_success, handlers.on_error, handlers.on_give_up, note)


def _raise_if_every_item_refused(items: list[RoundItem], refused: list[GraphApiError]) -> None:
    """A permission refused on every post alike (two or more) is the token's, not the posts': the account's
    error. One post alone cannot tell, so a single-post round keeps it the post's."""
    permission = [err for err in refused if isinstance(err, PermissionDeniedError)]
    if len(items) >= 2 and len(permission) == len(items):
        raise permission[0]


def with_attempts(err: GraphApiError, attempts: int) -> GraphApiError:
    """The same error, its message saying after how many attempts it was given up."""
    if not isinstance(err, TransientApiError):
        return err
    return type(err)(code=err.code, subcode=err.subcode, fbtrace_id=err.fbtrace_id, http_status=err.http_status,
                     ig_user_id=err.ig_user_id, endpoint=err.endpoint, api_message=err.api_message,
                     attempts=attempts)
