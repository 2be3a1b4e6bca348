"""The account's media and stories lists: cursor paging back to a publication time.

The first page of each list goes out in one batch POST where the account's host has batches (graph.facebook.com),
so an hourly sync lists posts and live stories in one HTTP request; further pages are plain GETs that follow
``paging.next`` (its access_token removed: the token goes in the header). The end is "no ``next``"; a short or
empty page is not the end. A page that asks for too much (code 1, "reduce the amount of data") is asked again
with half the ``limit`` (graph-api-facts.md, section 3).
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
from ig_analytics.graph_api.models import Media
from ig_analytics.graph_api.parsing import is_list_page, parse_media
from ig_analytics.graph_api.rate_limit import Usage
from ig_analytics.graph_api.rounds import BatchRounds
from ig_analytics.graph_api.transport import AccountTransport, ReduceData, asks_to_reduce_data
from ig_analytics.redaction import redact


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
        while True:
            if payload is None:
                payload, limit = self._fetch_page(edge, path, params, limit, is_retry)
                is_retry = False
            stop = self._collect(payload, edge, published_since, found)
            paging = payload.get("paging")
            next_url = paging.get("next") if isinstance(paging, dict) else None
            if stop or not next_url:
                break
            path, params = self._next_page(str(next_url), limit)
            page_key = path + "?" + urlencode(sorted(params.items()))
            if page_key in seen_pages:
                self._transport.log(logging.WARNING, f"/{self._path(edge)}: paging.next repeats a page; stopping",
                                    endpoint=f"/{self._path(edge)}")
                break
            seen_pages.add(page_key)
            payload = None
        return list(found.values())

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
                 found: dict[str, Media]) -> bool:
        """Add the page's items to ``found``; True when the page reached older items than ``published_since``."""
        stop = False
        for raw in payload["data"]:
            media = parse_media(raw, self._transport.ig_user_id, edge.default_product)
            if media is None:
                continue
            if media.published_at < published_since:
                stop = True  # newest first: everything after this is older
                continue
            found.setdefault(media.media_id, media)
        return stop

    def _next_page(self, next_url: str, limit: int) -> tuple[str, dict[str, str]]:
        """``paging.next`` without its access_token (re-sent by header) on our own base URL."""
        parts = urlsplit(next_url)
        params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)
                  if k not in ("access_token", "appsecret_proof")}
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
        self._transport.log(logging.DEBUG, f"following paging.next {redact(next_url)}", endpoint="/" + path)
        return path, params

    def _path(self, edge: Edge) -> str:
        return f"{self._transport.ig_user_id}/{edge.name}"
