"""The sandbox world: accounts, clock, faults, and the ground truth the API serves."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from ig_analytics.sandbox import rng
from ig_analytics.sandbox.account import SandboxAccount, day_end, day_of
from ig_analytics.sandbox.catalog import UNIQUE_ACCOUNT_METRICS
from ig_analytics.sandbox.clock import SandboxClock, as_utc
from ig_analytics.sandbox.faults import Faults
from ig_analytics.sandbox.media import SandboxChild, SandboxMedia, parse_media_id

UNIQUE_WINDOW_FRACTION = 0.35  # window reach = max(daily) + this * (sum(daily) - max(daily))
_TIMEZONES = ("UTC", "America/New_York", "Europe/London", "Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin",
              "Australia/Sydney", "America/Sao_Paulo")


@dataclass
class AccountSpec:
    ig_user_id: str
    username: str
    followers: int = 1000  # followers_total at the world's reference time
    timezone: str = "UTC"
    posts: int = 40  # FEED/REELS posts published before the reference time
    expired_token: bool = False
    name: str | None = None
    follows: int | None = None
    posts_per_day: float | None = None  # default: from the account size
    stories_per_day: float | None = None
    pre_conversion_posts: int = 0  # the oldest N posts predate the business-account conversion (subcode 2108006)
    token: str | None = None  # default: "sbx_" + 40 hex, from seed and id
    unfollow_rate: float = 0.0  # unfollows per day, as a fraction of the mean daily net gain (0: nobody leaves)
    # without a viral post among the newest 10, the newest post at least this old at the reference time is made
    # viral (a designed viral post: old enough for its take-off to show)
    viral_min_age_hours: float = 3.0
    # {"data": []} for demographics and online followers whatever the size: a large account Meta has not computed
    # yet, or without an engaged audience in the timeframe (graph-api-facts.md, section 9)
    demographics_withheld: bool = False


class SandboxWorld:
    """Deterministic synthetic Instagram business accounts. See the package docstring."""

    def __init__(
        self,
        accounts: Iterable[AccountSpec],
        seed: int = 1,
        now: datetime | None = None,
        app_secret: str | None = None,
        frozen: bool | None = None,
        enforce_retirements: bool = False,
    ) -> None:
        self.seed = seed
        # False: each version serves its own metric set (v18 keeps impressions...). True: once the sandbox clock
        # passes a removal's "enforced on all versions" date (2025-01-08 for v21's, 2025-04-21 for v22's), every
        # older version behaves like that version, as the live API does.
        self.enforce_retirements = enforce_retirements
        self.clock = SandboxClock(now, frozen)
        self.ref_time = self.clock.now()  # posts/followers of the specs are as of this instant
        self._initial = (self.ref_time, self.clock.frozen)
        self.app_secret = app_secret
        self.require_appsecret_proof = False
        self.faults = Faults()
        self.comments_denied: set[str] = set()  # accounts whose token lacks the comments permission (comments.py)
        self._lock = threading.Lock()
        self.accounts: list[SandboxAccount] = [SandboxAccount(self, i, s) for i, s in enumerate(accounts)]
        self._by_id = {a.ig_user_id: a for a in self.accounts}
        self._by_token = {a.token: a for a in self.accounts}
        if len(self._by_id) != len(self.accounts):
            raise ValueError("duplicate ig_user_id in accounts")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def demo(cls, now: datetime | None = None, seed: int = 7, app_secret: str | None = None) -> "SandboxWorld":
        specs = [
            AccountSpec("17841400000000001", "corner_bakery", followers=850, timezone="UTC", posts=60,
                        posts_per_day=0.5, pre_conversion_posts=4, name="Corner Bakery", unfollow_rate=0.5,
                        viral_min_age_hours=12),
            AccountSpec("17841400000000002", "nyc_fitness_lab", followers=24_300, timezone="America/New_York",
                        posts=120, posts_per_day=1.0, name="NYC Fitness Lab"),
            AccountSpec("17841400000000003", "tokyo_streetwear", followers=312_000, timezone="Asia/Tokyo",
                        posts=200, posts_per_day=1.6, pre_conversion_posts=10, name="Tokyo Streetwear",
                        unfollow_rate=0.3, viral_min_age_hours=12),
        ]
        return cls(specs, seed=seed, now=now, app_secret=app_secret)

    @classmethod
    def generate(cls, n_accounts: int = 1000, posts_per_account: int = 100, seed: int = 1,
                 now: datetime | None = None) -> "SandboxWorld":
        """Many accounts for benchmarks: O(1) each until their data is asked for."""
        specs = []
        for i in range(n_accounts):
            followers = int(min(2_000_000, max(40, rng.lognormal(3000, 1.6, seed, "gen", i, "f"))))
            specs.append(AccountSpec(
                ig_user_id=f"178414{i + 1:011d}", username=f"sbx_account_{i + 1:05d}", followers=followers,
                timezone=rng.choice(_TIMEZONES, seed, "gen", i, "tz"), posts=posts_per_account,
                posts_per_day=rng.uniform(0.4, 2.0, seed, "gen", i, "ppd"),
                pre_conversion_posts=(posts_per_account // 20) if rng.unit(seed, "gen", i, "pre") < 0.3 else 0,
            ))
        return cls(specs, seed=seed, now=now)

    # ------------------------------------------------------------------ lookups
    def account(self, ig_user_id: str) -> SandboxAccount:
        try:
            return self._by_id[str(ig_user_id)]
        except KeyError:
            raise KeyError(f"no sandbox account {ig_user_id}") from None

    def find_account(self, ig_user_id: str) -> SandboxAccount | None:
        return self._by_id.get(ig_user_id)

    def account_by_token(self, token: str) -> SandboxAccount | None:
        return self._by_token.get(token)

    def find_media(self, media_id: str, at: datetime | None = None) -> SandboxMedia | SandboxChild | None:
        """A post, story or carousel child that exists at ``at`` (default: now)."""
        parsed = parse_media_id(str(media_id))
        if parsed is None:
            return None
        idx, kind, seq = parsed
        if idx >= len(self.accounts):
            return None
        now = at or self.clock.now()
        acct = self.accounts[idx]
        if kind <= 1:
            return acct.find(kind, seq, now)
        parent = acct.find(0, seq, now)
        if parent is None or kind - 2 >= len(parent.children):
            return None
        return parent.children[kind - 2]

    def owner_of(self, node_id: str) -> SandboxAccount | None:
        """The account an id belongs to (user id or media id), without checking the media exists."""
        acct = self._by_id.get(node_id)
        if acct is not None:
            return acct
        parsed = parse_media_id(node_id)
        if parsed and parsed[0] < len(self.accounts):
            return self.accounts[parsed[0]]
        return None

    # ------------------------------------------------------------------ ground truth
    def account_metric(self, ig_user_id: str, metric: str, day: date) -> int | None:
        """The true daily value of ``metric`` for the day it covers (end_time = Pacific midnight starting day+1).

        Also answers ``followers_total`` (at the end of that day). None for an unknown metric or a day that
        has not ended yet on the sandbox clock. API visibility (late data, retention, the 30-day window of
        follower_count, accounts under 100 followers) is applied by the server, not here.
        """
        acct = self.account(ig_user_id)
        if day_end(day) > self.clock.now():
            return None
        return acct.day_values(day).get(metric)

    def account_metric_total(self, ig_user_id: str, metric: str, days: Iterable[date]) -> int | None:
        """What a total_value call over ``days`` answers: a sum, or for reach/accounts_engaged the unique count."""
        values = [self.account_metric(ig_user_id, metric, d) for d in days]
        values = [v for v in values if v is not None]
        if not values:
            return None
        return window_total(metric, values)

    def media_metric(self, media_id: str, metric: str, at: datetime | None = None) -> int | None:
        """Lifetime value of a post/story metric at ``at`` (default: clock now). None if not applicable."""
        at = as_utc(at) if at is not None else self.clock.now()
        m = self.find_media(media_id, at)
        if not isinstance(m, SandboxMedia):
            return None
        return m.metric_at(metric, at)

    def day_of(self, t: datetime) -> date:
        return day_of(t)

    # ------------------------------------------------------------------ control
    def reset(self) -> None:
        """Clock back to its initial time, faults cleared (world and per account)."""
        now, frozen = self._initial
        self.clock.set(now)
        if frozen:
            self.clock.freeze()
        else:
            self.clock.unfreeze()
        self.faults = Faults()
        for a in self.accounts:
            a.faults = None

    def faults_for(self, acct: SandboxAccount | None) -> Faults:
        if acct is not None and acct.faults is not None:
            return acct.faults
        return self.faults


def window_total(metric: str, daily: list[int]) -> int:
    if metric in UNIQUE_ACCOUNT_METRICS and len(daily) > 1:
        top = max(daily)
        return top + round(UNIQUE_WINDOW_FRACTION * (sum(daily) - top))
    return sum(daily)


__all__ = ["AccountSpec", "SandboxWorld", "window_total"]
