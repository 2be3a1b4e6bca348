"""One synthetic business account: follower growth, daily account metrics, and its posts and stories.

Days follow the Graph API convention: day D is the Pacific-time calendar day D, ending at Pacific midnight (its
``end_time``: D+1 07:00 UTC in summer, 08:00 UTC in winter; 23 or 25 h on the days clocks change).
Followers: cumulative net gains C(d) = floor(r*d + j(d)) with jitter j in [0, r), so the daily net change
C(d) - C(d-1) is >= 0, averages r (about 0.04-0.12 % of followers) and followers_total(end of d) -
followers_total(end of d-1) == net(d) exactly. With ``AccountSpec.unfollow_rate`` u > 0 the account also loses
about u * r followers a day: ``unfollows`` ~ u * r, and the new follows ``follower_count`` = net + unfollows
(``follows_and_unfollows`` = follows + unfollows, split FOLLOWER / NON_FOLLOWER by ``breakdown=follow_type``).
With u = 0 (the default) ``follower_count`` is the net change.
Posts are keyed by the local calendar date they are published on (deterministic, independent of
the clock); the ``posts`` newest before the world's reference time form the history, later ones
appear as the clock moves on.
"""

from __future__ import annotations

import bisect
import math
import threading
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ig_analytics.sandbox import rng
from ig_analytics.sandbox.media import SandboxMedia, build_media

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.faults import Faults
    from ig_analytics.sandbox.world import AccountSpec, SandboxWorld

META_DAY_ZONE = ZoneInfo("America/Los_Angeles")  # Meta's insights days end at Pacific midnight, DST included
_ORD0 = 730000  # date ordinal origin of post sequence numbers (8 slots per day)
_SLOTS = 8
FUTURE_DAYS = 400
POST_GAIN_DAYS = 7  # posts older than this no longer add to the account's daily numbers
_HOURS = [(h, w) for h, w in enumerate(
    [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 1.8, 1.4, 1.6, 2.2, 1.6, 1.2, 1.1, 1.3, 1.8, 2.4, 2.8, 2.6, 2.0,
     1.2, 0.6])]


def day_of(t: datetime) -> date:
    """The insights day containing ``t``: its Pacific-time date."""
    return t.astimezone(META_DAY_ZONE).date()


def day_end(d: date) -> datetime:
    """``end_time`` of day d, in UTC: Pacific midnight starting d+1 (07:00 UTC in summer, 08:00 in winter)."""
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=META_DAY_ZONE).astimezone(timezone.utc)


class SandboxAccount:
    def __init__(self, world: "SandboxWorld", index: int, spec: "AccountSpec") -> None:
        self.world = world
        self.index = index
        self.spec = spec
        self.ig_user_id = spec.ig_user_id
        self.username = spec.username
        self.name = spec.name or spec.username.replace("_", " ").title()
        self.timezone = spec.timezone
        self.token = spec.token or "sbx_" + rng.hexdigest("token", world.seed, spec.ig_user_id, length=40)
        self.expired_token = spec.expired_token
        self.faults: Faults | None = None
        self._lock = threading.Lock()
        self._day_cache: dict[date, dict[str, int]] = {}
        self._date_posts: dict[tuple[int, date], list[SandboxMedia]] = {}

    def __repr__(self) -> str:
        return f"SandboxAccount({self.ig_user_id!r}, {self.username!r})"

    # ------------------------------------------------------------------ parameters
    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _key(self) -> tuple:
        return (self.world.seed, self.index)

    @cached_property
    def growth_per_day(self) -> float:
        return max(0.15, self.spec.followers * rng.uniform(0.0004, 0.0012, *self._key, "growth"))

    @cached_property
    def posts_per_day(self) -> float:
        if self.spec.posts_per_day:
            return max(0.05, min(float(self.spec.posts_per_day), 6.0))
        size = math.log10(max(self.spec.followers, 10))
        return min(2.0, 0.25 + 0.3 * size * rng.uniform(0.5, 1.2, *self._key, "ppd"))

    @cached_property
    def stories_per_day(self) -> float:
        if self.spec.stories_per_day is not None:
            return max(0.0, min(float(self.spec.stories_per_day), 6.0))
        return rng.uniform(0.3, 2.0, *self._key, "spd")

    @cached_property
    def follows_count(self) -> int:
        return self.spec.follows if self.spec.follows is not None else int(rng.uniform(80, 1500, *self._key, "follows"))

    # ------------------------------------------------------------------ followers
    def _cum(self, d: date) -> int:
        r = self.growth_per_day
        n = d.toordinal() - _ORD0
        return math.floor(r * n + r * rng.unit(*self._key, "fj", n))

    def follower_gain(self, d: date) -> int:
        """The net change of day d (follows - unfollows)."""
        return self._cum(d) - self._cum(d - timedelta(days=1))

    def unfollows(self, d: date) -> int:
        rate = self.spec.unfollow_rate * self.growth_per_day * rng.uniform(0.5, 1.5, *self._key, "unf", d.toordinal())
        return math.floor(rate + rng.unit(*self._key, "unj", d.toordinal()))

    @cached_property
    def _f0(self) -> int:
        return self.spec.followers - self._partial(self.world.ref_time)

    def _partial(self, t: datetime) -> int:
        d = day_of(t)
        start, end = day_end(d - timedelta(days=1)), day_end(d)
        frac = (t - start) / (end - start)  # of a 23, 24 or 25 h day
        return self._cum(d - timedelta(days=1)) + math.floor(self.follower_gain(d) * frac)

    def followers_at(self, t: datetime) -> int:
        return max(0, self._f0 + self._partial(t))

    def followers_end_of(self, d: date) -> int:
        return max(0, self._f0 + self._cum(d))

    @property
    def followers_total(self) -> int:
        return self.followers_at(self.world.clock.now())

    # ------------------------------------------------------------------ daily account metrics
    def day_values(self, d: date) -> dict[str, int]:
        """All daily metrics of day d (the truth, whether or not the API serves it yet)."""
        cached = self._day_cache.get(d)
        if cached is not None:
            return cached
        st = rng.Stream(*self._key, "day", d.toordinal())
        u = lambda lo, hi, name: st.uniform(lo, hi)  # noqa: E731
        f = self.followers_end_of(d - timedelta(days=1))
        ratio = rng.uniform(0.08, 0.3, *self._key, "reach_ratio")
        weekday = 1.0 + 0.12 * math.cos((d.weekday() - 2) * 2 * math.pi / 7)
        boost = 1.0 + 0.35 * self.posts_on_date_count(d)
        reach = max(1, round(f * ratio * st.lognormal(1.0, 0.25) * weekday * boost + 3))
        views = reach + round(reach * u(0.6, 1.8, "views")) + 1
        impressions = reach + round((views - reach) * u(0.3, 0.8, "imp"))
        eng_ratio = rng.uniform(0.03, 0.09, *self._key, "eng_ratio")
        engaged = min(reach, round(reach * eng_ratio * st.lognormal(1.0, 0.3)))
        likes = round(engaged * u(1.0, 1.6, "likes"))
        # what the account's recent posts gained that day (so a viral post shows in the account's numbers)
        g_reach, g_views, g_likes = self._posts_gain(d)
        reach += round(0.7 * g_reach)
        views += g_views
        impressions += round(g_reach + 0.5 * (g_views - g_reach))
        likes += g_likes
        engaged = min(reach, engaged + round(0.8 * g_likes))
        comments = round(likes * u(0.02, 0.08, "comments"))
        saves = round(likes * u(0.02, 0.1, "saves"))
        shares = round(likes * u(0.01, 0.06, "shares"))
        replies = round(engaged * u(0.0, 0.05, "replies"))
        reposts = round(shares * u(0.0, 0.2, "reposts"))
        profile_views = round(reach * u(0.01, 0.04, "pv"))
        gain = self.follower_gain(d)
        unfollows = self.unfollows(d)
        v = {
            "reach": reach, "views": views, "impressions": impressions, "accounts_engaged": engaged,
            "likes": likes, "comments": comments, "saves": saves, "shares": shares, "replies": replies,
            "reposts": reposts, "total_interactions": likes + comments + saves + shares + replies + reposts,
            "profile_views": profile_views,
            "website_clicks": round(profile_views * u(0.03, 0.15, "web")),
            "email_contacts": round(profile_views * u(0.0, 0.02, "email")),
            "phone_call_clicks": round(profile_views * u(0.0, 0.015, "phone")),
            "text_message_clicks": round(profile_views * u(0.0, 0.01, "text")),
            "get_directions_clicks": round(profile_views * u(0.0, 0.01, "dir")),
            "profile_links_taps": round(profile_views * u(0.05, 0.2, "links")),
            "follower_count": gain + unfollows,  # new follows
            "unfollows": unfollows,
            "follows_and_unfollows": gain + 2 * unfollows,  # follows + unfollows
            "followers_total": self.followers_end_of(d),
        }
        self._day_cache[d] = v
        return v

    def _posts_gain(self, d: date) -> tuple[int, int, int]:
        end = day_end(d)
        start = end - timedelta(days=1)
        horizon = end - timedelta(days=POST_GAIN_DAYS)
        if end <= self.world.ref_time:
            hist = self.history
            keys = self._history_keys
            lo = bisect.bisect_left(keys, -end.timestamp())  # keys ascending = newest first
            hi = bisect.bisect_left(keys, -horizon.timestamp())
            posts = hist[lo:hi]
        else:
            posts = [m for m in self.posts_until(end) if m.published_at > horizon]
        g = [0, 0, 0]
        for m in posts:
            a, b, c = m.gains(("reach", "views", "likes"), start, end)
            g[0] += a
            g[1] += b
            g[2] += c
        return g[0], g[1], g[2]

    @cached_property
    def _history_keys(self) -> list[float]:
        return [-m.published_at.timestamp() for m in self.history]

    # ------------------------------------------------------------------ posts and stories
    def posts_on_date_count(self, d: date) -> int:
        return self._count_on(0, d)

    def _count_on(self, kind: int, d: date) -> int:
        lam = self.posts_per_day if kind == 0 else self.stories_per_day
        n = math.floor(lam + rng.unit(*self._key, "n", kind, d.toordinal()))
        return min(n, _SLOTS)

    def on_date(self, kind: int, d: date) -> list[SandboxMedia]:
        """Posts (kind 0) or stories (kind 1) published on local date d, oldest first (cached)."""
        key = (kind, d)
        got = self._date_posts.get(key)
        if got is not None:
            return got
        items = []
        n = self._count_on(kind, d)
        times = []
        for j in range(n):
            hour = rng.weighted(_HOURS, *self._key, "h", kind, d.toordinal(), j)
            sec = rng.h64(*self._key, "s", kind, d.toordinal(), j) % 3600
            local = datetime.combine(d, time(hour), tzinfo=self.tz) + timedelta(seconds=sec)
            times.append(local.astimezone(timezone.utc))
        times.sort()
        for j, t in enumerate(times):
            seq = (d.toordinal() - _ORD0) * _SLOTS + j
            items.append(self._build(kind, seq, t))
        self._date_posts[key] = items
        return items

    def _build(self, kind: int, seq: int, t: datetime) -> SandboxMedia:
        key = (*self._key, "post", kind, seq)
        viral = kind == 0 and (rng.unit(*key, "viral") < 0.025 or seq == self._forced_viral_seq)
        m = build_media(
            seed=self.world.seed, account_index=self.index, ig_user_id=self.ig_user_id, username=self.username,
            kind=kind, seq=seq, published_at=t, followers=self.followers_at(t), viral=viral,
            pre_conversion=kind == 0 and self._converted_at is not None and t < self._converted_at,
        )
        rejects = set()
        if m.media_product_type == "FEED" and m.media_type == "IMAGE" and (
            rng.unit(*key, "noshares") < 0.05
        ):
            rejects.add("shares")
        if m.media_product_type == "FEED" and m.media_type == "VIDEO" and t < self.world.ref_time - timedelta(days=60) \
                and rng.unit(*key, "noviews") < 0.35:
            rejects.add("views")
        m.rejects = frozenset(rejects)
        return m

    # The history: the `posts` newest posts published at or before the reference time.
    _forced_viral_seq: int | None = None
    _converted_at: datetime | None = None

    @cached_property
    def history(self) -> list[SandboxMedia]:
        with self._lock:
            return self._make_history()

    def _make_history(self) -> list[SandboxMedia]:
        ref = self.world.ref_time
        want = self.spec.posts
        # the newest `want` posts published at or before the reference time
        d = ref.astimezone(self.tz).date()
        posts: list[SandboxMedia] = []
        guard = 0
        while len(posts) < want and guard < 20000:
            posts.extend(m for m in self.on_date(0, d) if m.published_at <= ref)
            d -= timedelta(days=1)
            guard += 1
        posts.sort(key=lambda m: m.published_at, reverse=True)
        posts = posts[:want]
        if posts:
            # special flags are decided on the history, then set on the (cached) objects themselves
            aged = [m for m in posts if (ref - m.published_at) >= timedelta(hours=self.spec.viral_min_age_hours)]
            if aged and not any(m.viral for m in posts[:10]):
                self._forced_viral_seq = aged[0].seq
                aged[0].viral = aged[0].media_product_type != "STORY"
            n_pre = min(self.spec.pre_conversion_posts or 0, len(posts))
            if n_pre > 0:
                self._converted_at = posts[-n_pre].published_at + timedelta(seconds=1)
                for m in posts[-n_pre:]:
                    m.pre_conversion = True
            images = [m for m in posts if m.media_product_type == "FEED" and m.media_type == "IMAGE"]
            if len(images) >= 8 and not any("shares" in m.rejects for m in images):
                pick = min(images, key=lambda m: rng.h64(*self._key, "q", m.seq))
                pick.rejects = pick.rejects | {"shares"}
            old_videos = [m for m in posts if m.media_product_type == "FEED" and m.media_type == "VIDEO"
                          and m.published_at < ref - timedelta(days=60)]
            if old_videos and not any("views" in m.rejects for m in old_videos):
                pick = min(old_videos, key=lambda m: rng.h64(*self._key, "q", m.seq))
                pick.rejects = pick.rejects | {"views"}
        return posts

    @property
    def oldest_time(self) -> datetime:
        h = self.history
        return h[-1].published_at if h else self.world.ref_time

    def posts_until(self, now: datetime) -> list[SandboxMedia]:
        """FEED/REELS posts published at or before ``now``, newest first."""
        ref = self.world.ref_time
        past = self.history
        if now < ref:
            return [m for m in past if m.published_at <= now]
        future: list[SandboxMedia] = []
        d = ref.astimezone(self.tz).date()
        last = min(now.astimezone(self.tz).date(), d + timedelta(days=FUTURE_DAYS))
        while d <= last:
            future.extend(m for m in self.on_date(0, d) if ref < m.published_at <= now)
            d += timedelta(days=1)
        future.reverse()
        return future + past

    def stories_between(self, start: datetime, end: datetime) -> list[SandboxMedia]:
        """Stories published in (start, end], newest first."""
        start = max(start, self.oldest_time - timedelta(seconds=1))
        out = []
        d = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while d <= last:
            out.extend(m for m in self.on_date(1, d) if start < m.published_at <= end)
            d += timedelta(days=1)
        out.reverse()
        return out

    def live_stories(self, now: datetime) -> list[SandboxMedia]:
        return self.stories_between(now - timedelta(hours=24), now)

    @property
    def posts(self) -> list[SandboxMedia]:
        return self.posts_until(self.world.clock.now())

    @property
    def stories(self) -> list[SandboxMedia]:
        now = self.world.clock.now()
        return self.stories_between(self.oldest_time - timedelta(seconds=1), now)

    @property
    def media(self) -> list[SandboxMedia]:
        """Posts and stories published so far, newest first."""
        return sorted(self.posts + self.stories, key=lambda m: m.published_at, reverse=True)

    def media_count(self, now: datetime) -> int:
        return len(self.posts_until(now))

    def find(self, kind: int, seq: int, now: datetime) -> SandboxMedia | None:
        """A published post/story by sequence number (None if it does not exist at ``now``)."""
        d = date.fromordinal(seq // _SLOTS + _ORD0)
        self.history  # noqa: B018  (fixes the special flags before anything is built)
        for m in self.on_date(kind, d):
            if m.seq == seq:
                if m.published_at > now or m.published_at < self.oldest_time:
                    return None
                return m
        return None
