"""``GET /{ig-user-id}/tags``: public posts of other accounts that tag the account, newest first, cursor paging.

Tagged posts fall on a per-account grid (one every 12 to 72 hours, with jitter) so that a later sandbox time adds
new ones; only the last 365 days are served. Like and comment counts grow with the post's age. Shape as recorded
by sns-sdks/python-facebook (``testdata/instagram/apidata/medias/tags_medias_p1.json``); ``like_count`` is absent
when the owner hides it (about one post in ten)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ig_analytics.sandbox import errors, rng
from ig_analytics.sandbox.fields import FieldSpec, parse_fields
from ig_analytics.sandbox.protocol import Ctx, fmt_time, page_url

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.account import SandboxAccount

_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
HORIZON = timedelta(days=365)
PAGE_LIMIT = 25


def _interval_h(acct: "SandboxAccount") -> float:
    return 12 + 60 * rng.unit(acct.world.seed, "tag-interval", acct.ig_user_id)


def tagged_posts(acct: "SandboxAccount", now: datetime) -> list[dict]:
    """The tagged posts served at ``now``, newest first (the truth the tests compare with)."""
    seed, step = acct.world.seed, _interval_h(acct)
    last = math.floor((now - _EPOCH).total_seconds() / 3600 / step)
    out = []
    for i in range(last, -1, -1):
        at = _EPOCH + timedelta(hours=step * (i + 0.9 * rng.unit(seed, "tag-jitter", acct.ig_user_id, i)))
        if at > now:
            continue
        if at < now - HORIZON:
            break
        age_days = (now - at).total_seconds() / 86400
        grown = 1 - math.exp(-age_days / 2)
        author = f"creator_{rng.h64(seed, 'tag-author', acct.ig_user_id, i) % 10_000:04d}"
        out.append({
            "id": f"181{acct.index:07d}{i:07d}", "username": author, "timestamp": fmt_time(at),
            "media_type": rng.choice(("IMAGE", "VIDEO", "CAROUSEL_ALBUM"), seed, "tag-type", acct.ig_user_id, i),
            "media_product_type": "FEED", "caption": f"Loving my new find from @{acct.username} #ootd",
            "permalink": f"https://www.instagram.com/p/TAG{acct.index}x{i}/",
            "like_count": None if rng.unit(seed, "tag-hide", acct.ig_user_id, i) < 0.1
            else int(grown * rng.lognormal(120, 1.0, seed, "tag-likes", acct.ig_user_id, i)),
            "comments_count": int(grown * rng.lognormal(6, 1.0, seed, "tag-comments", acct.ig_user_id, i)),
        })
    return out


def tags_page(acct: "SandboxAccount", ctx: Ctx) -> dict:
    p = ctx.req.params
    specs = parse_fields(p.get("fields")) or [FieldSpec("id")]
    try:
        limit = min(max(int(p.get("limit") or PAGE_LIMIT), 1), 50)
    except ValueError:
        raise errors.param("(#100) Param limit must be a number") from None
    posts = tagged_posts(acct, ctx.now)
    start = 0
    if p.get("after"):
        start = next((i + 1 for i, post in enumerate(posts) if post["id"] == p["after"]), len(posts))
    page = posts[start:start + limit]
    data = [{f.name: post[f.name] for f in specs if post.get(f.name) is not None} for post in page]
    out: dict[str, Any] = {"data": data}
    if page:
        out["paging"] = {"cursors": {"before": page[0]["id"], "after": page[-1]["id"]}}
        if start + limit < len(posts):
            base = {k: v for k, v in p.items() if k not in ("after", "before", "access_token")}
            out["paging"]["next"] = page_url(ctx, f"{acct.ig_user_id}/tags", {**base, "after": page[-1]["id"]})
    return out
