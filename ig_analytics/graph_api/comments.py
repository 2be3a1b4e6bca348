"""Comments of the account's posts and the posts of others that tag it (graph-api-facts.md, section 10).

``read_comments`` asks the first page of every post in batches of 50 (one GET each on graph.instagram.com), newest
top-level comments first, each with its replies expanded, then follows a post's cursor only while it must: to the
end for a full read, else until a page reaches a comment at or before the newest one already stored. A post that
refuses its comments (deleted, restricted: code 100) costs only itself; a token without the comments permission
(code 10/200) raises :class:`CommentsNotPermitted` once for the account; token and throttle errors are raised as in
every sync. Comment text never goes into a log line or an error message here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from ig_analytics.graph_api.demographics import get_many
from ig_analytics.graph_api.errors import (
    GraphApiError,
    InvalidRequestError,
    PermissionDeniedError,
    TransientApiError,
)
from ig_analytics.graph_api.parsing import int_or_none
from ig_analytics.graph_api.protocol import InsightsApi
from ig_analytics.graph_api.windows import parse_graph_time

PAGE_LIMIT = 50
REPLY_FIELDS = "id,text,timestamp,username,like_count,hidden"
COMMENT_FIELDS = f"id,text,timestamp,username,like_count,hidden,replies{{{REPLY_FIELDS}}}"
TAG_FIELDS = "id,username,timestamp,media_type,media_product_type,caption,permalink,like_count,comments_count"


class CommentsNotPermitted(Exception):
    """The account's token may not read comments (it lacks instagram_manage_comments or
    instagram_business_manage_comments)."""

    def __init__(self, error: GraphApiError) -> None:
        super().__init__(f"the token lacks the comments permission (instagram_manage_comments on Facebook Login, "
                         f"instagram_business_manage_comments on Instagram Login): API code {error.code}; reconnect "
                         "the account with it (`ig-analytics accounts add`) to store comments")
        self.error = error


@dataclass(frozen=True)
class Comment:
    comment_id: str
    media_id: str
    parent_id: str | None
    username: str | None
    text: str | None
    like_count: int | None
    hidden: bool | None
    published_at: datetime


@dataclass
class PostRead:
    """What one post's read gave: its comments, whether every page was read, or why it was refused."""

    media_id: str
    comments: list[Comment] = field(default_factory=list)
    complete: bool = False
    refused: str | None = None  # the API's reason (code, subcode), never a comment's text
    failed: bool = False  # transient trouble after the retry: read again next time


@dataclass(frozen=True)
class CommentRequest:
    media_id: str
    full: bool  # read every page
    known_until: datetime | None = None  # newest stored top-level comment: stop paging once a page reaches it


def _parse(item: Any, media_id: str, parent_id: str | None) -> Comment | None:
    if not isinstance(item, dict) or not item.get("id") or not item.get("timestamp"):
        return None
    try:
        published = parse_graph_time(str(item["timestamp"]))
    except ValueError:
        return None
    hidden = item.get("hidden")
    return Comment(str(item["id"]), media_id, parent_id, item.get("username"), item.get("text"),
                   int_or_none(item.get("like_count")), hidden if isinstance(hidden, bool) else None, published)


def _page_comments(api: InsightsApi, payload: dict, media_id: str) -> list[Comment]:
    out: list[Comment] = []
    for item in payload.get("data") or []:
        top = _parse(item, media_id, None)
        if top is None:
            continue
        out.append(top)
        replies = item.get("replies") if isinstance(item, dict) else None
        while isinstance(replies, dict):
            out.extend(r for r in (_parse(x, media_id, top.comment_id) for x in replies.get("data") or []) if r)
            after = _next_cursor(replies)
            replies = api.get(f"{top.comment_id}/replies", {"fields": REPLY_FIELDS, "limit": str(PAGE_LIMIT),
                                                             "after": after}) if after else None
    return out


def _next_cursor(payload: dict) -> str | None:
    paging = payload.get("paging") or {}
    return (paging.get("cursors") or {}).get("after") if paging.get("next") else None


def _refusal(err: GraphApiError) -> str:
    return f"refused by the API (code {err.code}, subcode {err.subcode})"


def read_comments(api: InsightsApi, requests: Sequence[CommentRequest]) -> list[PostRead]:
    """Each requested post's comments (top-level and replies), as far as its request needs."""
    params = {"fields": COMMENT_FIELDS, "limit": str(PAGE_LIMIT)}
    try:
        firsts = get_many(api, [(f"{r.media_id}/comments", params) for r in requests])
    except PermissionDeniedError as exc:  # an item retried on its own
        raise CommentsNotPermitted(exc) from None
    reads = []
    for request, first in zip(requests, firsts):
        read = PostRead(request.media_id)
        reads.append(read)
        if isinstance(first, PermissionDeniedError):
            raise CommentsNotPermitted(first)
        if isinstance(first, InvalidRequestError):
            read.refused = _refusal(first)
            continue
        if isinstance(first, TransientApiError):
            read.failed = True
            continue
        if isinstance(first, GraphApiError):
            raise first
        page = first
        while True:
            comments = _page_comments(api, page, request.media_id)
            read.comments.extend(comments)
            after = _next_cursor(page)
            tops = [c for c in comments if c.parent_id is None]
            reached = (not request.full and request.known_until is not None and tops
                       and tops[-1].published_at <= request.known_until)
            if after is None or reached:
                read.complete = after is None
                break
            try:
                page = api.get(f"{request.media_id}/comments", {**params, "after": after})
            except (InvalidRequestError, TransientApiError):  # the post went, or trouble: what was read stays
                read.failed = True
                break
    return reads


@dataclass(frozen=True)
class TaggedPost:
    media_id: str
    username: str | None
    media_type: str | None
    media_product_type: str | None
    published_at: datetime
    permalink: str | None
    caption: str | None
    like_count: int | None
    comments_count: int | None


def read_tags(api: InsightsApi, since: datetime | None = None, max_pages: int = 20) -> list[TaggedPost]:
    """The newest posts of others that tag the account (``GET /{ig-user-id}/tags``), at most ``max_pages`` pages
    of 50; with ``since``, no page after the one that reaches a post published before it."""
    params = {"fields": TAG_FIELDS, "limit": "50"}
    out: list[TaggedPost] = []
    page = api.get(f"{api.ig_user_id}/tags", params)
    for _ in range(max_pages):
        for item in page.get("data") or []:
            if not isinstance(item, dict) or not item.get("id") or not item.get("timestamp"):
                continue
            try:
                published = parse_graph_time(str(item["timestamp"]))
            except ValueError:
                continue
            out.append(TaggedPost(str(item["id"]), item.get("username"), item.get("media_type"),
                                  item.get("media_product_type"), published, item.get("permalink"),
                                  item.get("caption"), int_or_none(item.get("like_count")),
                                  int_or_none(item.get("comments_count"))))
        after = _next_cursor(page)
        if after is None or (since is not None and out and out[-1].published_at < since):
            break
        page = api.get(f"{api.ig_user_id}/tags", {**params, "after": after})
    return out
