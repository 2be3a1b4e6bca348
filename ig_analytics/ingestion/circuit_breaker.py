"""Give up early on a dead Graph API: a circuit breaker shared by the accounts of one run.

When the accounts of a run keep failing with server errors (HTTP 5xx, codes 1/2, timeouts, unreadable bodies: the
client's ``TransientApiError`` after all its retries), the API is down for everyone: the run stops starting
accounts and records the rest as failed with the reason. Three accounts in a row open it, or every account of a
run of fewer (``sync --account ID`` of one account: its first failure), so a dead API is given up within one
account's retries whatever the number of accounts. The next runs of the same process (the jobs `ig-analytics
sync` runs one after the other) start open for two minutes, so the account, media and audience runs of one sync
do not each spend their retries on the same dead API. Throttling is not a server error and never opens it (see
docs/graph-api-client.md); an account that succeeds closes it again.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ig_analytics.graph_api.errors import TransientApiError

DEFAULT_THRESHOLD = 3  # accounts in a row
REMEMBER_OPEN_S = 120.0  # later runs of this process start open for this long (the jobs of one `sync`)

_found_dead: dict[str, tuple[float, str]] = {}  # API base URL -> (monotonic time, last error), this process
_found_dead_lock = threading.Lock()


class CircuitBreaker:
    def __init__(self, threshold: int = DEFAULT_THRESHOLD, *, api: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(1, int(threshold))
        self._api = api
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._streak = 0
        self._last_error: str | None = None
        self._earlier_run = False
        self.open = False
        if api is not None:
            with _found_dead_lock:
                found = _found_dead.get(api)
            if found is not None and monotonic() - found[0] < REMEMBER_OPEN_S:
                self.open, self._earlier_run, self._last_error = True, True, found[1]

    @classmethod
    def for_run(cls, accounts: int, api: str | None = None) -> "CircuitBreaker":
        """The breaker of a run of ``accounts`` accounts against the API at ``api`` (its base URL)."""
        return cls(threshold=min(DEFAULT_THRESHOLD, max(1, accounts)), api=api)

    def record(self, ok: bool, exc: BaseException | None) -> None:
        """After each attempted account: its result, and the exception it failed with (if any)."""
        with self._lock:
            if ok:
                self._streak = 0
                self._remember(None)
            elif isinstance(exc, TransientApiError):
                self._streak += 1
                self._last_error = str(exc).split(". ", 1)[0]  # what happened; the hint is this message's own
                if self._streak >= self.threshold:
                    self.open = True
                    self._remember(self._last_error)

    def _remember(self, error: str | None) -> None:
        if self._api is None:
            return
        with _found_dead_lock:
            if error is None:
                _found_dead.pop(self._api, None)
            else:
                _found_dead[self._api] = (self._monotonic(), error)

    def reason(self) -> str:
        if self._earlier_run:
            return ("not attempted: the Graph API failed with server errors in an earlier run of this sync "
                    f"(last error: {self._last_error}). The next run tries again.")
        accounts = f"{self._streak} accounts in a row" if self._streak != 1 else "the only account of this run"
        return (f"not attempted: the Graph API failed with server errors for {accounts}, so "
                f"this run stopped early (last error: {self._last_error}). The next run tries again.")
