"""Comments and replies on the sandbox's posts, and the posts of others that tag an account.

The comment stream of a post follows its ``comments`` curve, so ``comments_count`` and the comments served always
agree: the k-th unit of the stream (k = 1 .. comments_count now) is written at the first instant the curve reaches
k. A unit is, by a hash of (post, k), a top-level comment of someone else, a reply of someone else, or a reply of
the account itself (``is_own``), a reply answering one of the few top-level comments just before it. About a
quarter of the top-level comments are questions (a ``?``); some are hidden by the account; some are deleted two
hours after they were written (they and their replies are no longer served; the sandbox keeps ``comments_count``
as the curve, a simplification: the live count drops by one).

Refusals: every 25th post (sequence 3, 28, 53 ...) refuses its comments as a deleted or restricted post does
(code 100, subcode 33); an account in ``world.comments_denied`` has a token without the comments permission
(code 10). Shapes as recorded by public clients (sns-sdks/python-facebook ``testdata/instagram/apidata``):
``GET /{media-id}/comments`` newest first, cursor paging, ``replies`` as a field expansion.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ig_analytics.sandbox import errors, rng
from ig_analytics.sandbox.errors import GraphError
from ig_analytics.sandbox.fields import FieldSpec, parse_fields
from ig_analytics.sandbox.media import SandboxMedia
from ig_analytics.sandbox.protocol import Ctx, fmt_time, page_url

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.account import SandboxAccount

PAGE_LIMIT = 50
REFUSING_SEQ = (25, 3)  # seq % 25 == 3 refuses its comments
TOP_LEVEL, REPLY, OWN_REPLY = "top", "reply", "own"
DELETED_AFTER = timedelta(hours=2)
COMMENTS_SCOPES = frozenset({"instagram_manage_comments", "instagram_business_manage_comments"})
_WORDS = "love this so good where can I buy it amazing colour need one price size wow great shot when".split()
_ANSWERS = "thank you! DM us please link in bio glad you like it restock soon".split()


@dataclass(frozen=True, slots=True)
class SandboxComment:
    comment_id: str
    unit: int
    kind: str
    parent_unit: int | None
    username: str
    text: str
    timestamp: datetime
    like_count: int
    hidden: bool
    deleted_at: datetime | None

    @property
    def is_own(self) -> bool:
        return self.kind == OWN_REPLY


def refuses_comments(m: SandboxMedia) -> bool:
    return m.seq % REFUSING_SEQ[0] == REFUSING_SEQ[1]


def _unit_time(m: SandboxMedia, k: int) -> datetime:
    """The first instant the post's comments curve reaches k (bisection on seconds since publication)."""
    lo, hi = 0.0, 3600.0
    while (m.metric_at("comments", m.published_at + timedelta(seconds=hi)) or 0) < k:
        lo, hi = hi, hi * 2
    for _ in range(24):
        mid = (lo + hi) / 2
        if (m.metric_at("comments", m.published_at + timedelta(seconds=mid)) or 0) >= k:
            hi = mid
        else:
            lo = mid
    return m.published_at + timedelta(seconds=int(hi) + 1)


def _kind(seed: int, m: SandboxMedia, k: int) -> tuple[str, int | None]:
    """The unit's kind and, for a reply, the top-level unit it answers (one of the 8 before it)."""
    cache = m.__dict__.setdefault("_comment_kinds", {})
    if k not in cache:
        u = rng.unit(seed, "comment-kind", m.media_id, k)
        earlier = [j for j in range(max(1, k - 8), k) if _kind(seed, m, j)[0] == TOP_LEVEL] if u >= 0.62 else []
        cache[k] = ((REPLY if u < 0.80 else OWN_REPLY), rng.choice(earlier, seed, "comment-parent", m.media_id, k)
                    ) if earlier else (TOP_LEVEL, None)
    return cache[k]


def comment(acct: "SandboxAccount", m: SandboxMedia, k: int) -> SandboxComment:
    seed = acct.world.seed
    kind, parent = _kind(seed, m, k)
    at = _unit_time(m, k)
    words = _ANSWERS if kind == OWN_REPLY else _WORDS
    n = 2 + int(rng.unit(seed, "comment-len", m.media_id, k) * 6)
    text = " ".join(rng.choice(words, seed, "comment-word", m.media_id, k, i) for i in range(n))
    question = kind == TOP_LEVEL and rng.unit(seed, "comment-q", m.media_id, k) < 0.25
    others = kind != OWN_REPLY
    deleted = kind == TOP_LEVEL and k > 1 and rng.unit(seed, "comment-del", m.media_id, k) < 0.03
    return SandboxComment(
        comment_id=f"18{acct.index:05d}{m.seq:06d}{k:05d}", unit=k, kind=kind, parent_unit=parent,
        username=acct.username if not others else f"fan_{rng.h64(seed, 'commenter', m.media_id, k) % 100_000:05d}",
        text=text.capitalize() + ("?" if question else ""), timestamp=at,
        like_count=int(rng.unit(seed, "comment-likes", m.media_id, k) * 12),
        hidden=others and rng.unit(seed, "comment-hidden", m.media_id, k) < 0.04,
        deleted_at=at + DELETED_AFTER if deleted else None,
    )


def _units(acct: "SandboxAccount", m: SandboxMedia, count: int) -> tuple[SandboxComment, ...]:
    """Units 1 .. ``count`` of the post's stream. A unit is a pure function of (post, k), so each is built once
    and kept on the post (the first hour reads every comment of every post, and each page of a read asks for the
    whole stream again: rebuilding it per page was most of the sandbox's CPU). Concurrent requests may both
    extend it: they build the same units, so whichever tuple is kept is right (a shorter one is extended again)."""
    units: tuple[SandboxComment, ...] = m.__dict__.get("_comment_units", ())
    if len(units) < count:
        units = units + tuple(comment(acct, m, k) for k in range(len(units) + 1, count + 1))
        if len(units) > len(m.__dict__.get("_comment_units", ())):
            m.__dict__["_comment_units"] = units
    return units[:count]


def visible_comments(acct: "SandboxAccount", m: SandboxMedia, now: datetime) -> list[SandboxComment]:
    """Every comment and reply served at ``now``, oldest first (the truth the tests compare with)."""
    cached = m.__dict__.get("_comments_at")
    if cached is not None and cached[0] == now:  # the pages of one read share the instant (a frozen clock)
        return cached[1]
    count = m.metric_at("comments", now) or 0
    units = _units(acct, m, count)
    gone = {c.unit for c in units if c.deleted_at is not None and c.deleted_at <= now}
    visible = [c for c in units if c.unit not in gone and c.parent_unit not in gone]
    m.__dict__["_comments_at"] = (now, visible)
    return visible


def check_access(world, acct: "SandboxAccount", token: str) -> None:
    """Code 10 when the token lacks the comments permission (an issued token's scopes, or the test's switch)."""
    from ig_analytics.sandbox import tokens as sandbox_tokens

    rec = sandbox_tokens.registry(world).lookup(token)
    denied = acct.ig_user_id in world.comments_denied or (
        rec is not None and not COMMENTS_SCOPES & set(rec.scopes))
    if denied:
        raise GraphError(403, 10, "(#10) Application does not have permission for this action: "
                         "instagram_manage_comments is required", type="OAuthException")


def _fields(c: SandboxComment, specs: list[FieldSpec], media_id: str, replies: list[SandboxComment]) -> dict:
    values: dict[str, Any] = {"id": c.comment_id, "text": c.text, "timestamp": fmt_time(c.timestamp),
                              "username": c.username, "like_count": c.like_count, "hidden": c.hidden,
                              "media": {"id": media_id}}
    out: dict[str, Any] = {}
    for f in specs:
        if f.name == "replies" and c.kind == TOP_LEVEL:
            if replies:
                sub = f.subfields or [FieldSpec("id"), FieldSpec("text"), FieldSpec("timestamp")]
                out["replies"] = {"data": [_fields(r, sub, media_id, []) for r in reversed(replies)]}
        elif f.name == "parent_id":
            continue  # only replies have a parent, and top-level comments are what this edge lists
        elif f.name in values:
            out[f.name] = values[f.name]
    return out


def _encode(k: int) -> str:
    return base64.urlsafe_b64encode(f"unit:{k}".encode()).decode().rstrip("=")


def _decode(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return int(raw.split(":", 1)[1])
    except (ValueError, IndexError):
        raise errors.param("(#100) Invalid cursor") from None


def comments_page(acct: "SandboxAccount", m: SandboxMedia, ctx: Ctx) -> dict:
    """``GET /{media-id}/comments``: top-level comments newest first, each with its replies when asked."""
    check_access(acct.world, acct, ctx.token)
    if m.is_story or refuses_comments(m):
        raise errors.no_such_object(m.media_id)
    p = ctx.req.params
    specs = parse_fields(p.get("fields")) or [FieldSpec("id"), FieldSpec("text"), FieldSpec("timestamp")]
    try:
        limit = min(max(int(p.get("limit") or PAGE_LIMIT), 1), PAGE_LIMIT)
    except ValueError:
        raise errors.param("(#100) Param limit must be a number") from None
    visible = visible_comments(acct, m, ctx.now)
    tops = [c for c in reversed(visible) if c.kind == TOP_LEVEL]  # newest first
    start = 0
    if p.get("after"):
        after = _decode(p["after"])
        start = next((i for i, c in enumerate(tops) if c.unit < after), len(tops))
    page = tops[start:start + limit]
    replies: dict[int, list[SandboxComment]] = {}
    for c in visible:
        if c.parent_unit is not None:
            replies.setdefault(c.parent_unit, []).append(c)
    out: dict[str, Any] = {"data": [_fields(c, specs, m.media_id, replies.get(c.unit, [])) for c in page]}
    if page:
        paging: dict[str, Any] = {"cursors": {"before": _encode(page[0].unit), "after": _encode(page[-1].unit)}}
        if start + limit < len(tops):
            base = {k: v for k, v in p.items() if k not in ("after", "before", "access_token")}
            paging["next"] = page_url(ctx, f"{m.media_id}/comments", {**base, "after": _encode(page[-1].unit)})
        out["paging"] = paging
    return out
