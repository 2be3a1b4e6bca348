"""Business discovery in the sandbox: other public Instagram accounts, seen as the real API shows them.

``GET /{ig-user-id}?fields=business_discovery.username(X){id,username,...,media.limit(25).after(C){...}}``
answers the public fields of professional account X (graph-api-facts.md, section 10). The public accounts have
their own growth (linear, one shrinks) and posting patterns (a regular grid of posts, each competitor its own
format mix); the truth is exposed here (``public_account``, ``PublicAccount.followers_at``, ``posts_until``,
``PublicPost.like_count_at``) so tests can work a benchmark out by hand without the product's code.

Failure kinds, shaped as Meta sends them:
- a username that does not exist and a personal account both fail with code 110, subcode 2207013, "Invalid user
  id" (seen in recorded mocks of business discovery clients; one client's notes say Meta does not tell a
  personal account from a missing one: both are that error);
- an age-gated account returns nothing: the reply has no ``business_discovery`` object;
- an account that hides like counts serves its media without ``like_count``;
- asking for stories fails with ``(#10)``.
The sandbox's own accounts can be discovered too (their public fields), as on the live API.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ig_analytics.sandbox import errors, rng
from ig_analytics.sandbox.errors import GraphError
from ig_analytics.sandbox.fields import FieldSpec
from ig_analytics.sandbox.protocol import fmt_time

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.world import SandboxWorld

DEFAULT_MEDIA_LIMIT = 25
MAX_MEDIA_LIMIT = 50
_PROFILE_FIELDS = ("id", "ig_id", "username", "name", "followers_count", "follows_count", "media_count",
                   "biography", "website", "profile_picture_url")
_MEDIA_FIELDS = ("id", "timestamp", "media_type", "media_product_type", "like_count", "comments_count",
                 "permalink", "caption")
_FORMATS = (("REELS", "VIDEO"), ("FEED", "CAROUSEL_ALBUM"), ("FEED", "IMAGE"))
_GENERATED = re.compile(r"^sbx_public_([0-9]{5})$")


@dataclass(frozen=True)
class PublicSpec:
    username: str
    name: str
    kind: str = "business"  # business | creator | personal | age_gated
    followers: int = 1000  # at the world's reference time
    growth_per_day: float = 0.0  # followers gained per day (negative: the account shrinks)
    follows: int = 300
    posts_per_day: float = 1.0
    mix: tuple[float, float, float] = (1.0, 1.0, 1.0)  # weights of reels, carousels, images
    like_rate: float = 0.03  # likes a post ends with, per follower at publication
    comment_rate: float = 0.002
    hides_likes: bool = False
    older_posts: int = 150  # posts before the first one on the grid (count in media_count only)


PUBLIC_ACCOUNTS: tuple[PublicSpec, ...] = (
    PublicSpec("harbor_bakehouse", "Harbor Bakehouse", followers=1_240, growth_per_day=6.5, posts_per_day=0.6,
               mix=(1, 2, 5), like_rate=0.06, comment_rate=0.006),
    PublicSpec("sourdough_society", "Sourdough Society", kind="creator", followers=4_810, growth_per_day=23.0,
               posts_per_day=1.0, mix=(5, 2, 1), like_rate=0.045, comment_rate=0.004),
    PublicSpec("brooklyn_strength", "Brooklyn Strength", followers=31_050, growth_per_day=61.0,
               posts_per_day=1.3, mix=(4, 3, 2), like_rate=0.02, comment_rate=0.0012),
    PublicSpec("queens_yoga_club", "Queens Yoga Club", followers=18_500, growth_per_day=-7.5, posts_per_day=0.7,
               mix=(1, 5, 2), like_rate=0.025, comment_rate=0.003, hides_likes=True),
    PublicSpec("shibuya_threads", "Shibuya Threads", followers=281_000, growth_per_day=452.0, posts_per_day=2.0,
               mix=(3, 3, 1), like_rate=0.012, comment_rate=0.0004),
    PublicSpec("osaka_denim_co", "Osaka Denim Co", kind="creator", followers=149_500, growth_per_day=118.0,
               posts_per_day=1.5, mix=(2, 2, 3), like_rate=0.015, comment_rate=0.0006),
    PublicSpec("just_a_person_42", "Just a person", kind="personal", followers=310),
    PublicSpec("late_night_spirits", "Late Night Spirits", kind="age_gated", followers=9_900, growth_per_day=4.0),
)
# Two competitors per demo account (SandboxWorld.demo): a bakery, a gym, a streetwear brand.
DEMO_COMPETITORS = {
    "corner_bakery": ("harbor_bakehouse", "sourdough_society"),
    "nyc_fitness_lab": ("brooklyn_strength", "queens_yoga_club"),
    "tokyo_streetwear": ("shibuya_threads", "osaka_denim_co"),
}


@dataclass(frozen=True)
class PublicPost:
    media_id: str
    username: str
    published_at: datetime
    media_product_type: str
    media_type: str
    final_likes: int
    final_comments: int
    hides_likes: bool

    def like_count_at(self, t: datetime) -> int | None:
        """Likes as of ``t`` (None while hidden): they grow toward ``final_likes`` over the first day or so."""
        return None if self.hides_likes else _grown(self.final_likes, self.published_at, t)

    def comments_count_at(self, t: datetime) -> int:
        return _grown(self.final_comments, self.published_at, t)

    @property
    def permalink(self) -> str:
        return f"https://www.instagram.com/p/{rng.hexdigest('bdperma', self.media_id, length=11)}/"

    @property
    def caption(self) -> str:
        return f"{self.username}: {self.media_product_type.lower()} post #{self.media_id[-4:]}"


def _grown(total: int, published_at: datetime, t: datetime) -> int:
    age_h = (t - published_at).total_seconds() / 3600.0
    return 0 if age_h <= 0 else int(math.floor(total * (1.0 - math.exp(-age_h / 8.0))))


class PublicAccount:
    """One public account: deterministic from the world's seed and reference time."""

    def __init__(self, world: "SandboxWorld", index: int, spec: PublicSpec) -> None:
        self.spec = spec
        self.index = index
        self.ig_user_id = f"1784159{index + 1:010d}"
        self._ref = world.ref_time
        self._seed = world.seed
        self._interval = timedelta(seconds=86400.0 / spec.posts_per_day)
        self._phase = timedelta(seconds=rng.uniform(0, self._interval.total_seconds(), world.seed, "bd", index))
        self._history = 60  # grid posts published before the reference time

    def followers_at(self, t: datetime) -> int:
        days = (t - self._ref).total_seconds() / 86400.0
        return max(0, self.spec.followers + int(math.floor(self.spec.growth_per_day * days)))

    def _grid_time(self, k: int) -> datetime:
        return self._ref - self._phase - self._interval * (self._history - 1 - k)

    def _post(self, k: int) -> PublicPost:
        s = self.spec
        product, media_type = rng.weighted(list(zip(_FORMATS, s.mix)), self._seed, "bdfmt", self.index, k)
        published = self._grid_time(k)
        lift = rng.uniform(0.5, 1.6, self._seed, "bdlift", self.index, k)
        base = self.followers_at(published)
        return PublicPost(f"1790{self.index + 1:04d}{k + 1:09d}", s.username, published, product, media_type,
                          int(base * s.like_rate * lift), int(base * s.comment_rate * lift), s.hides_likes)

    def posts_until(self, t: datetime) -> list[PublicPost]:
        """Posts published at or before ``t``, newest first."""
        last = math.floor((t - self._grid_time(0)) / self._interval)
        return [self._post(k) for k in range(last, -1, -1)]

    def media_count(self, t: datetime) -> int:
        return self.spec.older_posts + len(self.posts_until(t))


def public_account(world: "SandboxWorld", username: str) -> PublicAccount | None:
    """The public account named ``username``: one of PUBLIC_ACCOUNTS, or ``sbx_public_NNNNN`` (any number of
    generated business accounts for benchmarks, posting less than once in three days: one page holds a month)."""
    accounts = getattr(world, "_public_accounts", None)
    if accounts is None:
        accounts = {s.username: PublicAccount(world, i, s) for i, s in enumerate(PUBLIC_ACCOUNTS)}
        world._public_accounts = accounts  # type: ignore[attr-defined]
    name = username.lower()
    generated = _GENERATED.match(name)
    if name not in accounts and generated:
        n = int(generated.group(1))
        followers = int(rng.lognormal(5000, 1.2, world.seed, "bdgen", n))
        spec = PublicSpec(name, f"Public account {n}", followers=followers,
                          growth_per_day=rng.uniform(-0.001, 0.004, world.seed, "bdgrow", n) * followers,
                          posts_per_day=rng.uniform(0.1, 0.3, world.seed, "bdppd", n))
        accounts[name] = PublicAccount(world, len(PUBLIC_ACCOUNTS) + n, spec)
    return accounts.get(name)


# ---------------------------------------------------------------------------------------------------- the API
def not_found(username: str) -> GraphError:
    return GraphError(400, 110, "Invalid user id", 2207013, user_title="Cannot find User",
                      user_msg=f"The user with username: {username} cannot be found.")


def discover(world: "SandboxWorld", spec: FieldSpec, now: datetime) -> dict[str, Any] | None:
    """The ``business_discovery`` object for ``spec`` (None: the account is age-gated, nothing is returned)."""
    names = spec.modifiers.get("username") or []
    if len(names) != 1:
        raise errors.param("(#100) business_discovery requires the username parameter")
    username = names[0]
    own = next((a for a in world.accounts if a.username.lower() == username.lower()), None)
    public = public_account(world, username)
    if own is None and (public is None or public.spec.kind == "personal"):
        raise not_found(username)
    if public is not None and public.spec.kind == "age_gated":
        return None
    out: dict[str, Any] = {}
    for f in spec.subfields or [FieldSpec("id")]:
        if f.name == "media":
            out["media"] = _media_page(own.posts_until(now) if own else public.posts_until(now), f, now, own)
        elif f.name == "stories":
            raise GraphError(400, 10, "(#10) Application does not have permission for this action")
        elif f.name in _PROFILE_FIELDS:
            out[f.name] = _own_field(own, f.name, now) if own else _public_field(public, f.name, now)
        else:
            raise errors.nonexisting_field(f.name, "User")
    out.setdefault("id", own.ig_user_id if own else public.ig_user_id)
    return out


def _public_field(a: PublicAccount, name: str, now: datetime) -> Any:
    s = a.spec
    return {"id": a.ig_user_id, "ig_id": rng.h64("bdigid", a.ig_user_id) % 10**10, "username": s.username,
            "name": s.name, "followers_count": a.followers_at(now), "follows_count": s.follows,
            "media_count": a.media_count(now), "biography": f"{s.name} (sandbox public account)",
            "website": f"https://example.com/{s.username}",
            "profile_picture_url": f"https://scontent.sandbox.invalid/{a.ig_user_id}/profile.jpg"}[name]


def _own_field(acct: Any, name: str, now: datetime) -> Any:
    return {"id": acct.ig_user_id, "ig_id": rng.h64("igid", acct.ig_user_id) % 10**10, "username": acct.username,
            "name": acct.name, "followers_count": acct.followers_at(now), "follows_count": acct.follows_count,
            "media_count": acct.media_count(now), "biography": f"{acct.name} - sandbox account",
            "website": f"https://example.com/{acct.username}",
            "profile_picture_url": f"https://scontent.sandbox.invalid/{acct.ig_user_id}/profile.jpg"}[name]


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"bd:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("bd:"):
            return int(text[3:])
    except ValueError:
        pass
    raise errors.param("(#100) Invalid cursor")


def _media_page(posts: list, spec: FieldSpec, now: datetime, own: Any) -> dict[str, Any]:
    limit = min(MAX_MEDIA_LIMIT, int((spec.modifiers.get("limit") or [DEFAULT_MEDIA_LIMIT])[0]))
    after = spec.modifiers.get("after")
    start = _offset(after[0]) if after else 0
    page = posts[start:start + limit]
    fields = [f.name for f in spec.subfields or [FieldSpec("id")]]
    for n in fields:
        if n not in _MEDIA_FIELDS:
            raise errors.nonexisting_field(n, "Media")
    data = [_media_item(p, fields, now, own is not None) for p in page]
    cursors = {"before": _cursor(start)}
    if start + limit < len(posts):
        cursors["after"] = _cursor(start + limit)
    return {"data": data, "paging": {"cursors": cursors}}


def _media_item(p: Any, fields: list[str], now: datetime, own: bool) -> dict[str, Any]:
    if own:  # a sandbox account's post (SandboxMedia)
        likes, comments = p.metric_at("likes", now), p.metric_at("comments", now)
    else:
        likes, comments = p.like_count_at(now), p.comments_count_at(now)
    values = {"id": p.media_id, "timestamp": fmt_time(p.published_at), "media_type": p.media_type,
              "media_product_type": p.media_product_type, "like_count": likes, "comments_count": comments,
              "permalink": p.permalink, "caption": p.caption}
    return {n: values[n] for n in fields if not (n == "like_count" and likes is None)}
