"""Media endpoints: /{ig-user-id}/media and /stories (cursor paging), /{media-id}, /children, /insights."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ig_analytics.sandbox import catalog, errors
from ig_analytics.sandbox import comments as sandbox_comments
from ig_analytics.sandbox.account import SandboxAccount
from ig_analytics.sandbox.fields import FieldSpec, parse_fields
from ig_analytics.sandbox.media import SandboxChild, SandboxMedia
from ig_analytics.sandbox.protocol import Ctx, fmt_time, page_url, parse_time

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.world import SandboxWorld

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
STORY_MIN_VIEWERS = 5


class MediaEndpoints:
    world: "SandboxWorld"

    def _media_list(self, acct: SandboxAccount, ctx: Ctx, stories: bool) -> dict:
        p = ctx.req.params
        specs = parse_fields(p.get("fields")) or [FieldSpec("id")]
        try:
            limit = int(p.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise errors.param("(#100) Param limit must be a number") from None
        faults = self.world.faults_for(acct)
        if faults.reduce_data_limit is not None and limit > faults.reduce_data_limit:
            raise errors.reduce_data()
        limit = min(max(limit, 1), MAX_LIMIT)
        items = acct.live_stories(ctx.now) if stories else acct.posts_until(ctx.now)
        since = parse_time(p.get("since"), "since")
        until = parse_time(p.get("until"), "until")
        if since is not None or until is not None:
            items = [m for m in items if (since is None or m.published_at.timestamp() >= since)
                     and (until is None or m.published_at.timestamp() <= until)]
        start, end = 0, len(items)
        if p.get("after"):
            key = _decode_cursor(p["after"])
            start = next((i for i, m in enumerate(items) if _key(m) < key), len(items))
            end = min(len(items), start + limit)
        elif p.get("before"):
            key = _decode_cursor(p["before"])
            end = next((i for i, m in enumerate(items) if _key(m) <= key), len(items))
            start = max(0, end - limit)
        else:
            end = min(len(items), limit)
        after_given = p.get("after")
        if faults.short_page_rate and not p.get("before") and end - start > 1 \
                and faults.draw() < faults.short_page_rate:
            # a short (or, after a cursor, even empty) page that is not the end: next still follows
            lo = 0 if after_given else 1
            end = start + lo + int(faults.draw() * (end - start - lo))
        page = items[start:end]
        data = [self._media_fields(m, specs, ctx) for m in page]
        out: dict[str, Any] = {"data": data}
        path = f"{acct.ig_user_id}/{'stories' if stories else 'media'}"
        if not page and after_given and end < len(items):
            base = {k: v for k, v in p.items() if k not in ("after", "before", "access_token")}
            out["paging"] = {"cursors": {"before": after_given, "after": after_given},
                             "next": page_url(ctx, path, {**base, "after": after_given})}
        if page:
            base = {k: v for k, v in p.items() if k not in ("after", "before", "access_token")}
            paging: dict[str, Any] = {"cursors": {"before": _cursor(page[0])}}  # the last page: only before
            if end < len(items):
                paging["cursors"]["after"] = _cursor(page[-1])
                paging["next"] = page_url(ctx, path, {**base, "after": _cursor(page[-1])})
            if start > 0:
                paging["previous"] = page_url(ctx, path, {**base, "before": _cursor(page[0])})
            out["paging"] = paging
        return out

    # ------------------------------------------------------------------ media node
    def _media(self, acct: SandboxAccount, node_id: str, edge: str | None, ctx: Ctx) -> dict:
        m = self.world.find_media(node_id, ctx.now)
        if m is None:
            raise errors.no_such_object(node_id)
        if edge is None:
            specs = parse_fields(ctx.req.params.get("fields")) or [FieldSpec("id")]
            if isinstance(m, SandboxChild):
                return self._child_fields(m, specs, ctx)
            return self._media_fields(m, specs, ctx)
        if edge == "comments" and isinstance(m, SandboxMedia):
            return sandbox_comments.comments_page(acct, m, ctx)
        if edge == "insights":
            if isinstance(m, SandboxChild):
                raise errors.carousel_child()
            if m.media_id in self.world.faults_for(acct).refused_media_ids:
                raise errors.media_permission_refused()
            names = [x.strip() for x in (ctx.req.params.get("metric") or "").split(",") if x.strip()]
            return {"data": self._media_insights(m, names, ctx)}
        if edge == "children" and isinstance(m, SandboxMedia):
            specs = parse_fields(ctx.req.params.get("fields")) or [FieldSpec("id")]
            return {"data": [self._child_fields(c, specs, ctx) for c in m.children]}
        raise errors.nonexisting_field(edge, "ShadowIGMedia")

    def _media_fields(self, m: SandboxMedia, specs: list[FieldSpec], ctx: Ctx) -> dict:
        out: dict[str, Any] = {}
        story = m.is_story
        for f in specs:
            n = f.name
            if n == "id":
                out[n] = m.media_id
            elif n == "caption":
                if m.caption:
                    out[n] = m.caption
            elif n == "media_type":
                out[n] = m.media_type
            elif n == "media_product_type":
                out[n] = m.media_product_type
            elif n == "timestamp":
                out[n] = fmt_time(m.published_at)
            elif n == "permalink":
                out[n] = m.permalink
            elif n == "shortcode":
                out[n] = m.shortcode
            elif n == "like_count":
                if not story:
                    out[n] = m.metric_at("likes", ctx.now) or 0
            elif n == "comments_count":
                if not story:
                    out[n] = m.metric_at("comments", ctx.now) or 0
            elif n == "media_url":
                ext = "mp4" if m.media_type == "VIDEO" else "jpg"
                out[n] = f"https://scontent.sandbox.invalid/{m.media_id}.{ext}"
            elif n == "thumbnail_url":
                if m.media_type == "VIDEO":
                    out[n] = f"https://scontent.sandbox.invalid/{m.media_id}_thumb.jpg"
            elif n == "username":
                out[n] = self.world.accounts[m.account_index].username
            elif n == "is_comment_enabled":
                out[n] = not story
            elif n == "owner":
                out[n] = {"id": m.ig_user_id}
            elif n == "children":
                if m.children:
                    sub = f.subfields or [FieldSpec("id")]
                    out[n] = {"data": [self._child_fields(c, sub, ctx) for c in m.children]}
            elif n == "insights":
                metrics = f.modifiers.get("metric")
                if not metrics:
                    raise errors.param("(#100) The parameter metric is required")
                out[n] = {"data": self._media_insights(m, metrics, ctx)}
            else:
                raise errors.nonexisting_field(n, "ShadowIGMedia")
        out.setdefault("id", m.media_id)
        return out

    def _child_fields(self, c: SandboxChild, specs: list[FieldSpec], ctx: Ctx) -> dict:
        out: dict[str, Any] = {}
        for f in specs:
            n = f.name
            if n == "id":
                out[n] = c.media_id
            elif n == "media_type":
                out[n] = c.media_type
            elif n == "timestamp":
                out[n] = fmt_time(c.published_at)
            elif n == "media_url":
                out[n] = f"https://scontent.sandbox.invalid/{c.media_id}.{'mp4' if c.media_type == 'VIDEO' else 'jpg'}"
            elif n == "permalink":
                out[n] = f"https://www.instagram.com/p/{c.media_id}/"
            elif n == "insights":
                raise errors.carousel_child()
            else:
                raise errors.nonexisting_field(n, "ShadowIGMedia")
        out.setdefault("id", c.media_id)
        return out

    def _media_insights(self, m: SandboxMedia, names: list[str], ctx: Ctx) -> list[dict]:
        if not names:
            raise errors.param("(#100) The parameter metric is required")
        if m.is_story and ctx.now > m.published_at + timedelta(hours=24):
            raise errors.no_such_object(m.media_id)
        allowed = catalog.media_metrics(ctx.version, m.media_product_type, m.media_type)
        for i, n in enumerate(names):
            if n in catalog.RETIRED_MEDIA or n not in catalog.ALL_MEDIA_METRICS:
                raise errors.invalid_metric(i, n, allowed)
            if n not in allowed or n in m.rejects:
                raise errors.media_metric_unsupported(n)
        if m.pre_conversion:
            raise errors.pre_conversion()
        if m.is_story and (m.metric_at("reach", ctx.now) or 0) < STORY_MIN_VIEWERS:
            raise errors.not_enough_viewers()
        out = []
        for n in names:
            out.append({
                "name": n,
                "period": "lifetime",
                "values": [{"value": m.metric_at(n, ctx.now) or 0}],
                "title": catalog.TITLES.get(n, n),
                "description": catalog.description(n),
                "id": f"{m.media_id}/insights/{n}/lifetime",
            })
        return out



def _key(m: SandboxMedia) -> tuple[float, int]:
    return (m.published_at.timestamp(), m.seq)


def _cursor(m: SandboxMedia) -> str:
    raw = f"sbx:{m.published_at.timestamp():.0f}:{m.seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        tag, ts, seq = raw.split(":")
        if tag != "sbx":
            raise ValueError
        return (float(ts), int(seq))
    except (ValueError, UnicodeDecodeError):
        raise errors.param("(#100) Invalid cursor") from None

