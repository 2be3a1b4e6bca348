"""One account's pacing: usage headers, the app's shared budget, throttle pauses and backoff.

A throttled account is paused (``estimated_time_to_regain_access``, else a growing backoff) rather than called on,
which would lengthen the block; pauses beyond ``max_throttle_wait_s`` raise a ThrottledError so the other
accounts go on. Usage near 100 % slows the account down before Meta blocks it (graph-api-facts.md, section 5).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from ig_analytics.graph_api.errors import GraphApiError, ThrottledError
from ig_analytics.graph_api.models import CallStats
from ig_analytics.graph_api.rate_limit import (
    Usage,
    parse_usage,
    slowdown_delay_s,
    throttle_backoff_s,
    transient_backoff_s,
)

if TYPE_CHECKING:
    from ig_analytics.graph_api.client import GraphApiClient

# log(level, message, *, endpoint, err=None): the account's logger (transport.AccountTransport.log)
AccountLog = Callable[..., None]


class Pacer:
    """When the account may be called next. Use from the account's one thread."""

    def __init__(self, client: "GraphApiClient", ig_user_id: str, stats: CallStats, log: AccountLog) -> None:
        self._client = client
        self._ig_user_id = ig_user_id
        self._stats = stats
        self._log = log
        self._resume_at = 0.0  # monotonic time before which this account must not be called
        self._pause_is_throttle = False
        self._pause_error: GraphApiError | None = None
        self._throttle_waited_s = 0.0  # throttle pauses so far (the max_throttle_wait_s budget)
        self._throttle_streak = 0

    # -- what the API said ---------------------------------------------------------------------------------
    def observe_headers(self, headers: dict[str, str]) -> None:
        self.observe(parse_usage(headers))

    def observe(self, usage: Usage) -> None:
        if not usage.present:
            return
        client = self._client
        if usage.app and client.app_budget is not None:
            client.app_budget.observe(usage.app)
        now = client.monotonic()
        if usage.regain_minutes > 0:
            self.pause_until(now + usage.regain_minutes * 60.0, throttle=True, err=None)
            self._log(logging.WARNING, f"usage headers: blocked for {usage.regain_minutes:g} min; pausing account",
                      endpoint=None)
            return
        delay = slowdown_delay_s(usage.max_pct)
        if delay > 0:
            self._log(logging.INFO, f"usage at {usage.max_pct:.0f}% of the limit; slowing down {delay:.1f} s",
                      endpoint=None)
            self.pause_until(now + delay, throttle=False, err=None)

    def throttled(self, err: GraphApiError, usage: Usage) -> None:
        """A throttle code: pause for the time to regain, else for a backoff that grows with each one in a row."""
        client = self._client
        self._throttle_streak += 1
        if usage.regain_minutes > 0:
            wait = usage.regain_minutes * 60.0
        else:
            wait = throttle_backoff_s(self._throttle_streak, client.throttle_backoff_base_s,
                                      client.throttle_backoff_cap_s, client.rng)
        self.pause_until(client.monotonic() + wait, throttle=True, err=err)

    def succeeded(self) -> None:
        self._throttle_streak = 0

    def pause_until(self, resume_at: float, throttle: bool, err: GraphApiError | None) -> None:
        self._resume_at = max(resume_at, self._resume_at)
        if throttle:
            self._pause_is_throttle = True
            if err is not None:
                self._pause_error = err

    # -- before each request -------------------------------------------------------------------------------
    def await_turn(self, endpoint: str) -> None:
        """Slow down for the app's budget, then sleep out any pause (or raise when it exceeds the budget)."""
        if self._client.app_budget is not None:
            self._pace_by_app_budget()
        client = self._client
        wait = self._resume_at - client.monotonic()
        if wait <= 0:
            self._pause_is_throttle = False
            return
        if self._pause_is_throttle and self._throttle_waited_s + wait > client.max_throttle_wait_s:
            err = self._too_long(wait, endpoint)
            self._log(logging.WARNING, str(err), endpoint=endpoint, err=err)
            raise err
        why = "throttled" if self._pause_is_throttle else "pacing"
        self._log(logging.INFO, f"pausing account {wait:.1f} s ({why})", endpoint=endpoint)
        client.sleep(wait)
        self._stats.throttle_wait_s += wait
        if self._pause_is_throttle:
            self._throttle_waited_s += wait
        self._pause_is_throttle = False

    def backoff(self, failures: int) -> None:
        client = self._client
        client.sleep(transient_backoff_s(failures, client.backoff_base_s, client.backoff_cap_s, client.rng))

    def _pace_by_app_budget(self) -> None:
        delay = self._client.app_budget.delay_s()
        if delay > 0:
            self._log(logging.DEBUG, f"the app's usage (all runs) is near its limit; slowing down {delay:.1f} s",
                      endpoint=None)
            self.pause_until(self._client.monotonic() + delay, throttle=False, err=None)

    def _too_long(self, wait: float, endpoint: str) -> ThrottledError:
        prev = self._pause_error
        return ThrottledError(
            retry_after_s=wait, max_wait_s=self._client.max_throttle_wait_s, ig_user_id=self._ig_user_id,
            endpoint=(prev.endpoint if prev else None) or endpoint,
            code=prev.code if prev else None, subcode=prev.subcode if prev else None,
            fbtrace_id=prev.fbtrace_id if prev else None, http_status=prev.http_status if prev else None,
            api_message=(prev.api_message if prev else "usage headers: estimated_time_to_regain_access > 0"),
        )
