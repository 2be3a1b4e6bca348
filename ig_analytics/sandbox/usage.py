"""Rate-limit accounting: X-App-Usage / X-Business-Use-Case-Usage headers and the 80002 throttle.

Usage is the number of calls in a rolling window on the sandbox clock, as a percentage of a nominal
limit: per account (X-Business-Use-Case-Usage), and app-wide (X-App-Usage: the calls of ALL accounts of the app,
whichever client made them, against ``APP_CALLS_PER_ACCOUNT_PER_WINDOW`` x accounts, or the limit set with
``set_app_limit``, e.g. a small one so a test reaches 80 % in a few calls). With ``Faults.throttle_after_calls = N`` an account's (N+1)-th call
is refused with code 80002 for ``throttle_minutes``; calling on while blocked pushes the end of the
block out again (as the real API does); once the block has passed (or a new Faults is set) the count
starts afresh.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime, timedelta

from ig_analytics.sandbox.faults import Faults

WINDOW = timedelta(hours=1)
ACCOUNT_CALLS_PER_WINDOW = 2000  # nominal per-account limit behind the BUC percentage
APP_CALLS_PER_ACCOUNT_PER_WINDOW = 2000


class _AccountUsage:
    __slots__ = ("calls", "since_unblock", "blocked_until", "faults_id")

    def __init__(self) -> None:
        self.calls: deque[datetime] = deque()
        self.since_unblock = 0
        self.blocked_until: datetime | None = None
        self.faults_id = 0


class UsageTracker:
    def __init__(self, n_accounts: int) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _AccountUsage] = {}
        self._app_calls: deque[datetime] = deque()
        self._app_limit = APP_CALLS_PER_ACCOUNT_PER_WINDOW * max(1, n_accounts)

    def set_app_limit(self, calls_per_window: int) -> None:
        """The app-wide calls per window behind X-App-Usage (default: 2000 x the number of accounts)."""
        if calls_per_window < 1:
            raise ValueError("the app limit must be at least 1 call per window")
        with self._lock:
            self._app_limit = int(calls_per_window)

    def reset(self) -> None:
        with self._lock:
            self._accounts.clear()
            self._app_calls.clear()

    @staticmethod
    def _prune(q: deque, now: datetime) -> None:
        cutoff = now - WINDOW
        while q and (q[0] < cutoff or q[0] > now):
            q.popleft()

    def record_app_call(self, now: datetime) -> None:
        with self._lock:
            self._app_calls.append(now)
            self._prune(self._app_calls, now)

    def record(self, ig_user_id: str, faults: Faults, now: datetime) -> float | None:
        """Count one call; returns the minutes left when the account is (now) throttled, else None."""
        with self._lock:
            u = self._accounts.get(ig_user_id)
            if u is None:
                u = self._accounts[ig_user_id] = _AccountUsage()
            u.calls.append(now)
            self._prune(u.calls, now)
            if u.faults_id != id(faults):  # new Faults: the throttle count starts afresh
                u.faults_id = id(faults)
                u.since_unblock = 0
                u.blocked_until = None
            if u.blocked_until is not None:
                if now < u.blocked_until:
                    u.blocked_until = max(u.blocked_until, now + timedelta(minutes=faults.throttle_minutes))
                    return (u.blocked_until - now).total_seconds() / 60.0
                u.blocked_until = None
                u.since_unblock = 0
            u.since_unblock += 1
            n = faults.throttle_after_calls
            if n is not None and u.since_unblock > n:
                u.blocked_until = now + timedelta(minutes=faults.throttle_minutes)
                return float(faults.throttle_minutes)
            return None

    def buc_entry(self, ig_user_id: str, faults: Faults, now: datetime) -> dict:
        with self._lock:
            u = self._accounts.get(ig_user_id)
            if u is None:
                pct, regain = 0, 0
            else:
                self._prune(u.calls, now)
                if u.blocked_until is not None and now < u.blocked_until:
                    pct = 100
                    regain = math.ceil((u.blocked_until - now).total_seconds() / 60.0)
                else:
                    regain = 0
                    n = faults.throttle_after_calls
                    since = 0 if (u.blocked_until is not None) else u.since_unblock
                    pct = min(100, since * 100 // n) if n else len(u.calls) * 100 // ACCOUNT_CALLS_PER_WINDOW
                    pct = min(pct, 100)
        return {
            "type": "instagram",
            "call_count": pct,
            "total_cputime": pct * 3 // 5,
            "total_time": pct * 4 // 5,
            "estimated_time_to_regain_access": regain,
        }

    def app_usage(self, now: datetime, instagram_host: bool = False) -> dict:
        """graph.instagram.com names its percentages ``call_volume``/``cpu_time`` (graph-api-facts.md, section 9)."""
        with self._lock:
            self._prune(self._app_calls, now)
            pct = min(100, len(self._app_calls) * 100 // self._app_limit)
        if instagram_host:
            return {"call_volume": pct, "cpu_time": pct * 3 // 5}
        return {"call_count": pct, "total_time": pct * 4 // 5, "total_cputime": pct * 3 // 5}
