"""Business discovery: the public fields of other professional accounts, read with an account's own token
(graph-api-facts.md, section 10).

``GET /{ig-user-id}?fields=business_discovery.username(X){profile fields,media.limit(25){...}}`` per competitor,
50 competitors to a batch POST; older posts are paged with ``media.after(cursor)`` inside the expansion, again
50 to a batch. Each competitor succeeds or fails on its own: a missing username, a personal account, an
age-gated one (Meta returns nothing) cost only themselves. A token or permission failure is the account's and is
raised. The calls count against the app's Platform limit (about 200 per app user per hour), so a run asks for at
most ``budget`` calls and defers the rest, each with its reason.

Usernames are checked against Instagram's rules (:func:`normalize_username`) before they enter a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable
from urllib.parse import urlencode

from ig_analytics.graph_api.errors import (
    GraphApiError,
    PermissionDeniedError,
    ThrottledError,
    TokenInvalidError,
    TransientApiError,
)
from ig_analytics.graph_api.models import Media
from ig_analytics.graph_api.parsing import int_or_none, parse_media
from ig_analytics.graph_api.windows import BATCH_SIZE
from ig_analytics.terminal_text import printable

__all__ = ["InvalidUsername", "normalize_username", "discovery_url", "PublicProfile", "Discovery",
           "discover", "PLATFORM_CALLS_PER_HOUR", "USERNAME_RULES"]

PLATFORM_CALLS_PER_HOUR = 200  # Meta's Platform rate limit per app user (graph-api-facts.md, section 10)
MEDIA_PAGE_SIZE = 25
MAX_MEDIA_PAGES = 8  # per competitor and run: 200 posts at 25 a page reach far past a 30-day window
MAX_ATTEMPTS = 3  # per call, for transient failures of one batch item
USERNAME_RULES = ("1 to 30 letters, digits, periods and underscores, not starting or ending with a period, "
                  "no two periods in a row")
_USERNAME = re.compile(r"^(?!\.)(?!.*\.\.)(?!.*\.$)[a-z0-9._]{1,30}$")
_CURSOR = re.compile(r"^[A-Za-z0-9_=-]{1,512}$")
_PROFILE_FIELDS = "id,username,name,followers_count,follows_count,media_count"
# no caption: no feature reads competitors' words, so they are not asked for (nor kept)
_MEDIA_FIELDS = "id,timestamp,media_type,media_product_type,like_count,comments_count,permalink"
NOT_FOUND_SUBCODE = 2207013  # code 110 "Invalid user id": no such username, or a personal account


class InvalidUsername(ValueError):
    pass


def normalize_username(text: str) -> str:
    """``@Some.Brand`` -> ``some.brand``; raises InvalidUsername (one line saying the rule) otherwise."""
    name = str(text).strip().removeprefix("@").lower()
    if not _USERNAME.match(name):
        raise InvalidUsername(f"'{printable(str(text), 40)}' is not an Instagram username ({USERNAME_RULES})")
    return name


def discovery_url(ig_user_id: str, username: str, page_size: int = MEDIA_PAGE_SIZE, after: str | None = None,
                  ) -> str:
    """The relative URL of one business discovery call (a batch item)."""
    username = normalize_username(username)  # never a raw string in a URL
    media = f"media.limit({int(page_size)})" + (f".after({after})" if after else "")
    fields = f"business_discovery.username({username}){{{_PROFILE_FIELDS},{media}{{{_MEDIA_FIELDS}}}}}"
    return f"{ig_user_id}?{urlencode({'fields': fields}, safe=',(){}.')}"


@dataclass
class PublicProfile:
    competitor_ig_user_id: str | None
    name: str | None
    followers_count: int | None
    follows_count: int | None
    media_count: int | None
    media: list[Media] = field(default_factory=list)  # newest first; like_count None when hidden


@dataclass
class Discovery:
    """One username's outcome: ``status`` active / not_found / not_professional / unavailable, or ``deferred``
    (not asked this run: the Platform budget); ``reason`` says why when not active, or what was incomplete."""

    username: str
    status: str
    reason: str | None = None
    profile: PublicProfile | None = None


@dataclass
class _Call:
    username: str
    after: str | None = None
    attempts: int = 0
    pages: int = 0


def discover(api: Any, usernames: Iterable[str], media_since: datetime, *, budget: int = PLATFORM_CALLS_PER_HOUR,
             page_size: int = MEDIA_PAGE_SIZE, max_pages: int = MAX_MEDIA_PAGES) -> dict[str, Discovery]:
    """Public profile and recent posts of each username (posts at least back to ``media_since`` while pages
    allow). ``api``: an AccountApi (Facebook Login). ``budget``: calls this run may make (each batch item is one
    call against the Platform limit). Raises only what fails the whole account (token, permission)."""
    out: dict[str, Discovery] = {}
    pending = [_Call(normalize_username(u)) for u in dict.fromkeys(usernames)]
    while pending:
        retry: list[_Call] = []
        for start in range(0, len(pending), BATCH_SIZE):
            chunk = pending[start:start + BATCH_SIZE]
            if budget <= 0:
                _defer(out, chunk)
                continue
            chunk, over = chunk[:budget], chunk[budget:]
            _defer(out, over)
            budget -= len(chunk)
            retry.extend(_send(api, chunk, out, media_since, page_size, max_pages))
        pending = retry
    return out


def _defer(out: dict[str, Discovery], calls: list[_Call]) -> None:
    for call in calls:
        reason = (f"not asked this run: the Platform rate limit ({PLATFORM_CALLS_PER_HOUR} calls per app user per "
                  f"hour) is spent; the next run asks again")
        if call.after is None:
            out[call.username] = Discovery(call.username, "deferred", reason)
        else:
            out[call.username].reason = "older posts not read: " + reason


def _send(api: Any, chunk: list[_Call], out: dict[str, Discovery], media_since: datetime, page_size: int,
          max_pages: int) -> list[_Call]:
    """One batch: settles each call; returns the calls to make next (pages to follow, transient retries)."""
    urls = [discovery_url(api.ig_user_id, c.username, page_size, c.after) for c in chunk]
    try:
        replies = api.fetch_many(urls, is_retry=any(c.attempts for c in chunk), validate=_is_object)
    except (ThrottledError, TransientApiError) as err:  # the batch itself: every call of it fails, none other
        replies = [err] * len(chunk)
    follow: list[_Call] = []
    for call, reply in zip(chunk, replies):
        call.attempts += 1
        if isinstance(reply, (TokenInvalidError, PermissionDeniedError)):
            raise reply
        if isinstance(reply, GraphApiError):
            if isinstance(reply, TransientApiError) and call.attempts < MAX_ATTEMPTS:
                follow.append(call)
            else:
                _failed(out, call, reply)
            continue
        if _settle(out, call, reply, media_since, page_size, max_pages):
            follow.append(_Call(call.username, _next_cursor(reply), pages=call.pages + 1))
    return follow


def _failed(out: dict[str, Discovery], call: _Call, err: GraphApiError) -> None:
    if call.after is not None:  # the profile and the newer posts stand; only the older posts are missing
        out[call.username].reason = f"older posts not read: {err}"
        return
    status, reason = classify_failure(call.username, err)
    out[call.username] = Discovery(call.username, status, reason)


def classify_failure(username: str, err: GraphApiError) -> tuple[str, str]:
    """The competitor's status and one line saying why and what to do."""
    message = (err.api_message or "").lower()
    if err.code == 110 and err.subcode == NOT_FOUND_SUBCODE:
        return "not_found", (f"Instagram has no professional account @{username} (code 110/{NOT_FOUND_SUBCODE} "
                             f"'Invalid user id': the username does not exist, changed, or belongs to a personal "
                             f"account; Meta does not say which): check the spelling, or remove it")
    if "business" in message or "professional" in message or "creator" in message:
        return "not_professional", (f"@{username} is not a business or creator account, so Meta shows none of "
                                    f"its data: {err}")
    return "unavailable", f"@{username} could not be read: {err}"


def _settle(out: dict[str, Discovery], call: _Call, reply: dict, media_since: datetime, page_size: int,
            max_pages: int) -> bool:
    """Store one successful reply; True when an older page should be read."""
    found = reply.get("business_discovery")
    if not isinstance(found, dict):
        if call.after is None:
            out[call.username] = Discovery(call.username, "unavailable", (
                f"Instagram returned no public data for @{call.username}: the account is age-gated or restricted "
                f"(Meta returns nothing for those); nothing to do, it is asked again each day"))
        return False
    owner = str(found.get("id")) if found.get("id") is not None else None
    media_node = found.get("media") if isinstance(found.get("media"), dict) else {}
    page = [m for m in (parse_media(i, owner or "", None) for i in media_node.get("data") or []) if m is not None]
    if call.after is None:
        out[call.username] = Discovery(call.username, "active", profile=PublicProfile(
            owner, found.get("name"), int_or_none(found.get("followers_count")),
            int_or_none(found.get("follows_count")), int_or_none(found.get("media_count")), page))
    else:
        out[call.username].profile.media.extend(page)
    oldest = min((m.published_at for m in page), default=None)
    return (bool(_next_cursor(reply)) and len(page) >= page_size and oldest is not None and oldest >= media_since
            and call.pages + 1 < max_pages)


def _next_cursor(reply: dict) -> str | None:
    media = (reply.get("business_discovery") or {}).get("media") or {}
    cursor = ((media.get("paging") or {}).get("cursors") or {}).get("after")
    return cursor if isinstance(cursor, str) and _CURSOR.match(cursor) else None


def _is_object(payload: Any) -> bool:
    return isinstance(payload, dict)
