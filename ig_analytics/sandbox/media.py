"""Synthetic posts and stories: identity, quirks and lifetime metric curves.

A post's lifetime value of metric m at age a (hours) is
    floor(T_m * f(a) + V_m * g(a)),   f(a) = 0.88 (1 - e^(-a/tau)) + 0.12 (1 - e^(-a/tau_long))
where T_m is the post's organic total; viral posts add V_m = T_m * M (M ~ 15-60) with
g(a) = 1 - e^(-(a - d0)/tau_v) for a > d0 (d0 a few hours, tau_v ~ 10-30 h), so a viral post
visibly accelerates between hourly snapshots. Every metric of a post shares the same curve, so
reach <= views, total_interactions = likes + comments + saved + shares, like_count == likes hold
at every instant, and old posts have large totals but almost no growth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ig_analytics.sandbox import rng

MEDIA_ID_PREFIX = "179"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_WORDS = (
    "new drop today summer autumn coffee morning vibes behind the scenes our team weekend sale limited "
    "handmade fresh launch tips how we made it thank you favourite season recipe workout city night"
).split()
# one pick per caption; some picks carry tags in other scripts and cases (hashtag parsing: analytics/hashtags.py)
_TAGS = ("#instagood", "#smallbusiness", "#reels", "#photooftheday", "#shoplocal", "#fitness", "#style", "#tokyo",
         "#東京 #Style", "#Café #straße", "#हिंदी #Reels", "#дизайн #InstaGood", "#ShopLocal #مصر")

# metrics whose value does not accumulate over time
_STATIC = frozenset({"ig_reels_avg_watch_time", "reels_skip_rate"})


def media_id(account_index: int, kind: int, seq: int) -> str:
    """kind 0 = post, 1 = story, 2..9 = carousel child (kind - 2) of post ``seq``."""
    return f"{MEDIA_ID_PREFIX}{account_index:07d}{kind}{seq:06d}"


def parse_media_id(text: str) -> tuple[int, int, int] | None:
    if len(text) != 17 or not text.isdigit() or not text.startswith(MEDIA_ID_PREFIX):
        return None
    return int(text[3:10]), int(text[10]), int(text[11:17])


def shortcode(*keys: object) -> str:
    h = rng.h64(*keys)
    out = []
    for _ in range(11):
        out.append(_B64[h & 63])
        h >>= 6
        if h == 0:
            h = rng.h64(*keys, len(out))
    return "".join(out)


@dataclass
class SandboxChild:
    media_id: str
    media_type: str
    parent_id: str
    published_at: datetime


@dataclass
class SandboxMedia:
    media_id: str
    ig_user_id: str
    account_index: int
    seq: int
    media_type: str  # IMAGE | VIDEO | CAROUSEL_ALBUM
    media_product_type: str  # FEED | REELS | STORY
    published_at: datetime
    caption: str
    permalink: str
    viral: bool = False
    pre_conversion: bool = False
    rejects: frozenset = frozenset()  # metrics this post refuses although the table allows them (live quirk)
    children: list[SandboxChild] = field(default_factory=list)
    totals: dict = field(default_factory=dict, repr=False)  # organic lifetime totals T_m
    curve: tuple = field(default=(), repr=False)  # (tau_h, tau_long_h, viral_mult, d0_h, tau_v_h)

    @property
    def is_story(self) -> bool:
        return self.media_product_type == "STORY"

    @property
    def shortcode(self) -> str:
        return self.permalink.rstrip("/").rsplit("/", 1)[-1]

    def expires_at(self) -> datetime | None:
        return self.published_at + timedelta(hours=24) if self.is_story else None

    def metric_at(self, metric: str, at: datetime) -> int | None:
        """Lifetime value at ``at`` (None when the post has no such metric or is not yet published)."""
        if metric == "like_count":
            metric = "likes"
        elif metric == "comments_count":
            metric = "comments"
        age_h = (at - self.published_at).total_seconds() / 3600.0
        if age_h < 0:
            return None
        if metric == "total_interactions":
            parts = ("replies", "shares") if self.is_story else ("likes", "comments", "saved", "shares")
            return sum(self.metric_at(p, at) or 0 for p in parts)
        if metric == "ig_reels_aggregated_all_plays_count" and "plays" in self.totals:
            return (self.metric_at("plays", at) or 0) + (self.metric_at("clips_replays_count", at) or 0)
        if metric == "ig_reels_video_view_total_time" and "ig_reels_avg_watch_time" in self.totals:
            return self.totals["ig_reels_avg_watch_time"] * (self.metric_at("plays", at) or 0)
        total = self.totals.get(metric)
        if total is None:
            return None
        if metric in _STATIC:
            return int(total)
        return int(math.floor(total * self._organic(age_h) + total * self._viral(age_h)))

    def gains(self, names: tuple[str, ...], t0: datetime, t1: datetime) -> list[int]:
        """value(t1) - value(t0) of simple accumulating metrics (0 before publication); one curve evaluation."""
        f = []
        for t in (t0, t1):
            a = (t - self.published_at).total_seconds() / 3600.0
            f.append((self._organic(a), self._viral(a)) if a >= 0 else None)
        out = []
        for n in names:
            total = self.totals.get(n)
            if total is None:
                out.append(0)
                continue
            v = [0 if x is None else int(math.floor(total * x[0] + total * x[1])) for x in f]
            out.append(v[1] - v[0])
        return out

    def _organic(self, a: float) -> float:
        tau, tau_long = self.curve[0], self.curve[1]
        return 0.88 * (1.0 - math.exp(-a / tau)) + 0.12 * (1.0 - math.exp(-a / tau_long))

    def _viral(self, a: float) -> float:
        if not self.viral:
            return 0.0
        mult, d0, tau_v = self.curve[2], self.curve[3], self.curve[4]
        if a <= d0:
            return 0.0
        return mult * (1.0 - math.exp(-(a - d0) / tau_v))


def build_media(
    *, seed: int, account_index: int, ig_user_id: str, username: str, kind: int, seq: int, published_at: datetime,
    followers: int, viral: bool, pre_conversion: bool,
) -> SandboxMedia:
    """Everything about one post/story, as a pure function of (seed, account, seq)."""
    key = (seed, account_index, kind, seq)
    st = rng.Stream(*key)
    u = st.uniform
    if kind == 1:
        product, mtype = "STORY", st.weighted((("IMAGE", 0.6), ("VIDEO", 0.4)))
    else:
        product, mtype = st.weighted(
            ((("FEED", "IMAGE"), 0.42), (("FEED", "CAROUSEL_ALBUM"), 0.2), (("FEED", "VIDEO"), 0.08),
             (("REELS", "VIDEO"), 0.30))
        )
    mid = media_id(account_index, kind, seq)
    code = shortcode(*key, "sc")
    if product == "STORY":
        permalink = f"https://instagram.com/stories/{username}/{mid}/"
        caption = ""
    else:
        permalink = f"https://www.instagram.com/{'reel' if product == 'REELS' else 'p'}/{code}/"
        n = 3 + st.below(8)
        words = [st.choice(_WORDS) for _ in range(n)]
        caption = " ".join(words).capitalize() + " " + st.choice(_TAGS)

    f = max(followers, 1)
    t: dict[str, float] = {}
    if product == "STORY":
        reach = f * st.lognormal(0.07, 0.45) + 1
        views = reach * u(1.05, 1.4)
        t.update(reach=reach, views=views, impressions=reach + (views - reach) * u(0.3, 0.8),
                 replies=reach * u(0.002, 0.02), shares=reach * u(0.0, 0.006),
                 follows=reach * u(0.0, 0.002), profile_visits=reach * u(0.003, 0.02),
                 navigation=views * u(0.6, 1.0), reposts=reach * u(0.0, 0.001))
        curve = (u(2.0, 4.0), 10.0, 0.0, 0.0, 1.0)
    else:
        reels = product == "REELS"
        reach = f * st.lognormal(0.45 if reels else 0.22, 0.5) + (20 if reels else 4)
        views = reach * (u(1.3, 2.5) if reels else u(1.2, 2.0))
        likes = reach * st.lognormal(0.06, 0.4)
        shares = reach * u(0.002, 0.02) * (3 if reels else 1)
        t.update(reach=reach, views=views, likes=likes, comments=likes * u(0.01, 0.06),
                 saved=reach * u(0.003, 0.02), shares=shares,
                 follows=reach * u(0.0005, 0.003), profile_visits=reach * u(0.005, 0.03),
                 reposts=shares * u(0.0, 0.15))
        if reels:
            plays = views * u(0.9, 1.0)
            t.update(plays=plays, clips_replays_count=plays * u(0.05, 0.2),
                     ig_reels_avg_watch_time=int(u(2500, 15000)), reels_skip_rate=int(u(15, 65)),
                     crossposted_views=views * u(0.0, 0.08))
        else:
            t["impressions"] = reach + (views - reach) * u(0.3, 0.8)
            if mtype == "VIDEO":
                t["video_views"] = views * u(0.5, 0.8)
        tau = st.lognormal(50.0 if reels else 20.0, 0.3)
        curve = (tau, 20 * 24.0, u(15, 60), u(2.0, 6.0), u(10.0, 30.0))

    children: list[SandboxChild] = []
    if mtype == "CAROUSEL_ALBUM":
        for c in range(2 + st.below(5)):
            ctype = "VIDEO" if st.unit() < 0.2 else "IMAGE"
            children.append(SandboxChild(media_id(account_index, 2 + c, seq), ctype, mid, published_at))
    return SandboxMedia(
        media_id=mid, ig_user_id=ig_user_id, account_index=account_index, seq=seq, media_type=mtype,
        media_product_type=product, published_at=published_at, caption=caption, permalink=permalink,
        viral=viral and product != "STORY", pre_conversion=pre_conversion, children=children, totals=t, curve=curve,
    )
