"""The account's media and stories lists: cursor paging back to a publication time.

The first page of each list goes out in one batch POST where the account's host has batches (graph.facebook.com),
so an hourly sync lists posts and live stories in one HTTP request; further pages are plain GETs that follow
``paging.next`` on our own host and version (its access_token and ``pretty`` removed: the token goes in the
header; a real ``next`` may name another host and version, graph-api-facts.md section 9). The end is "no
``next``" (a last page may carry only ``cursors.before``); a short or empty page is not the end. A page that asks
for too much (code 1, "reduce the amount of data") is asked again with half the ``limit`` (section 3).

Every list ends: it stops on a ``next`` that repeats one already followed, on a page whose items were all listed
already (a new cursor over the same page), and after ``MAX_LIST_PAGES`` pages; each stop is said in one line and
kept in ``stats.incomplete`` (the account's sync is then ``partial``). An item whose id is not a Graph id is
skipped with its reason: ids become URL paths.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ig_analytics.graph_api.errors import (
    GraphApiError,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
)
from ig_analytics.graph_api.models import Media, SkippedItem
from ig_analytics.graph_api.parsing import graph_id, is_list_page, parse_media
from ig_analytics.graph_api.rate_limit import Usage
from ig_analytics.graph_api.rounds import BatchRounds
from ig_analytics.graph_api.transport import AccountTransport, ReduceData, asks_to_reduce_data

MAX_LIST_PAGES = 200  # 20,000 posts at 100 a page: far beyond any window we list; a bound, not a target
_DROPPED_PARAMS = ("access_token", "appsecret_proof", "pretty")  # the token goes by header; pretty=0 is noise


@dataclass(frozen=True)
class Edge:
    name: str  # "media" or "stories"
    fields: str
    default_product: str | None  # media_product_type of items that do not say (stories: STORY)


@dataclass
class _FirstPage:
    payload: Any = None  # the page, when the batch served it
    limit: int = 0  # the limit to ask with when it did not
    is_retry: bool = False  # asking again what the batch could not serve


class EdgeLister:
    def __init__(self, transport: AccountTransport, rounds: BatchRounds, page_limit: int) -> None:
        self._transport = transport
        self._rounds = rounds
        self._page_limit = page_limit

    def list_edges(self, edges: list[Edge], published_since: datetime) -> list[list[Media]]:
        """Per edge, its items published at or after ``published_since`` (newest first, no duplicates)."""
        firsts = self._first_pages(edges)
        return [self._list_edge(edge, published_since, first) for edge, first in zip(edges, firsts)]

    # -- first pages -------------------------------------------------------------------------------------
    def _first_pages(self, edges: list[Edge]) -> list[_FirstPage]:
        """One batch POST for the first pages of several edges. An edge whose item failed for a passing reason is
        asked again on its own, where a plain GET's retry rules apply (a throttled item pauses the account first);
        token, permission and request errors raise at once."""
        transport, limit = self._transport, self._page_limit
        if len(edges) < 2 or transport.login_kind == "instagram":
            return [_FirstPage(limit=limit) for _ in edges]
        urls = [f"{self._path(e)}?{urlencode({'fields': e.fields, 'limit': str(limit)}, safe=',')}" for e in edges]
        firsts: list[_FirstPage] = []
        throttled: ThrottledError | None = None
        for edge, result in zip(edges, self._rounds.fetch_many(urls, is_retry=False)):
            if not isinstance(result, GraphApiError):
                firsts.append(_FirstPage(payload=result, limit=limit))
                continue
            endpoint = f"/{self._path(edge)}"
            if not isinstance(result, (TransientApiError, ThrottledError)):  # token, permission, bad request
                transport.log(logging.ERROR if isinstance(result, (TokenInvalidError, PermissionDeniedError))
                              else logging.WARNING, str(result), endpoint=endpoint, err=result)
                raise result
            smaller = asks_to_reduce_data(result) and limit > 1
            transport.log(logging.INFO, f"{endpoint}: batch item failed ({result.api_message or type(result).__name__})"
                          f"; asking again on its own{' with half the limit' if smaller else ''}",
                          endpoint=endpoint, err=result)
            if isinstance(result, ThrottledError):
                throttled = throttled or result
            firsts.append(_FirstPage(limit=max(1, limit // 2) if smaller else limit, is_retry=True))
        if throttled is not None:
            transport.pacer.throttled(throttled, Usage())
        return firsts

    # -- one edge ------------------------------------------------------------------------------------------
    def _list_edge(self, edge: Edge, published_since: datetime, first: _FirstPage) -> list[Media]:
        limit = first.limit
        path = self._path(edge)
        params: dict[str, str] = {"fields": edge.fields, "limit": str(limit)}
        found: dict[str, Media] = {}
        seen_pages: set[str] = set()
        payload, is_retry = first.payload, first.is_retry
        for page_number in range(1, MAX_LIST_PAGES + 1):
            if payload is None:
                payload, limit = self._fetch_page(edge, path, params, limit, is_retry)
                is_retry = False
            listed_before = len(found)
            stop, valid = self._collect(payload, edge, published_since, found)
            paging = payload.get("paging")
            next_url = paging.get("next") if isinstance(paging, dict) else None
            if stop or not next_url:
                return list(found.values())
            if valid and len(found) == listed_before:
                self._incomplete(edge, "a page of posts listed already (the cursor moved, the page did not)")
                return list(found.values())
            path, params = self._next_page(str(next_url), limit)
            page_key = path + "?" + urlencode(sorted(params.items()))
            if page_key in seen_pages:
                self._incomplete(edge, "paging.next repeats a page already followed")
                return list(found.values())
            seen_pages.add(page_key)
            payload = None
        self._incomplete(edge, f"{MAX_LIST_PAGES} pages and still a next one")
        return list(found.values())

    def _incomplete(self, edge: Edge, why: str) -> None:
        """One line for a list cut short; the account's sync is partial (stats.incomplete)."""
        text = f"/{edge.name} listing stopped early: {why}"
        self._transport.stats.incomplete.append(text)
        self._transport.log(logging.WARNING, text, endpoint=f"/{self._path(edge)}")

    def _fetch_page(self, edge: Edge, path: str, params: dict[str, str], limit: int,
                    is_retry: bool) -> tuple[Any, int]:
        """One page, halving ``limit`` (in ``params`` too) while the API asks to reduce the amount of data."""
        transport = self._transport
        endpoint = f"/{self._path(edge)}"
        while True:
            try:
                payload = transport.send("GET", path, params=params, endpoint=endpoint, reduce_data=True,
                                         first_is_retry=is_retry, validate=is_list_page)
                return payload, limit
            except ReduceData as signal:
                if limit <= 1:
                    raise TransientApiError(
                        code=signal.error.code, subcode=signal.error.subcode, fbtrace_id=signal.error.fbtrace_id,
                        http_status=signal.error.http_status, ig_user_id=transport.ig_user_id, endpoint=endpoint,
                        api_message=signal.error.api_message, attempts=None) from None
                limit = max(1, limit // 2)
                params["limit"] = str(limit)
                transport.stats.retries += 1
                is_retry = False  # counted just above
                transport.log(logging.INFO, f"{endpoint}: API asked to reduce the amount of data; limit now {limit}",
                              endpoint=endpoint, err=signal.error)

    def _collect(self, payload: dict[str, Any], edge: Edge, published_since: datetime,
                 found: dict[str, Media]) -> tuple[bool, int]:
        """Add the page's items to ``found``. Returns whether the page reached items older than
        ``published_since``, and how many of its items were readable."""
        stop, valid = False, 0
        for raw in payload["data"]:
            if isinstance(raw, dict) and raw.get("id") is not None and graph_id(raw["id"]) is None:
                self._refuse_id(edge, raw["id"])
                continue
            media = parse_media(raw, self._transport.ig_user_id, edge.default_product)
            if media is None:
                continue
            valid += 1
            if media.published_at < published_since:
                stop = True  # newest first: everything after this is older
                continue
            found.setdefault(media.media_id, media)
        return stop, valid

    def _refuse_id(self, edge: Edge, raw_id: Any) -> None:
        """An id that is not a Graph id never becomes a URL path (issue 28 row 9): the item is skipped."""
        shown = ascii(str(raw_id))[1:-1][:60]  # escaped: it is the API's text, printed and stored
        reason = "the API gave an id that is not a Graph id; item skipped"
        self._transport.stats.skipped.append(SkippedItem(shown, None, None, reason))
        self._transport.log(logging.WARNING, f"/{edge.name}: {reason} ({shown})", endpoint=f"/{self._path(edge)}")

    def _next_page(self, next_url: str, limit: int) -> tuple[str, dict[str, str]]:
        """``paging.next`` without its access_token (re-sent by header) on our own base URL."""
        parts = urlsplit(next_url)
        params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _DROPPED_PARAMS}
        if "limit" in params:
            params["limit"] = str(limit)
        path = parts.path
        root_path = urlsplit(self._transport.api_root).path  # e.g. "/v25.0"
        if root_path and path.startswith(root_path + "/"):
            path = path[len(root_path) + 1:]
        elif re.match(r"^/v\d+(\.\d+)?/", path):
            path = path.split("/", 2)[2]
        else:
            path = path.lstrip("/")
        self._transport.log(logging.DEBUG, f"following paging.next as /{path} on our own host and version",
                            endpoint="/" + path)
        return path, params

    def _path(self, edge: Edge) -> str:
        return f"{self._transport.ig_user_id}/{edge.name}"
