"""Give up early on a dead Graph API: a circuit breaker shared by the accounts of one run.

When several accounts in a row fail with server errors (HTTP 5xx, codes 1/2, timeouts, unreadable bodies: the
client's ``TransientApiError`` after all its retries), the API is down for everyone: the run stops starting
accounts, records the rest as failed with the reason, and does not ask for step retries (they would hammer a dead
API for minutes). The next scheduled run tries again. Throttling is not a server error and never opens it (see
docs/graph-api-client.md); an account that succeeds closes the count again.
"""

from __future__ import annotations

import threading

from ig_analytics.graph_api.errors import TransientApiError

DEFAULT_THRESHOLD = 3  # accounts in a row


class CircuitBreaker:
    def __init__(self, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.threshold = max(1, int(threshold))
        self._lock = threading.Lock()
        self._streak = 0
        self._last_error: str | None = None
        self.open = False

    def record(self, ok: bool, exc: BaseException | None) -> None:
        """After each attempted account: its result, and the exception it failed with (if any)."""
        with self._lock:
            if ok:
                self._streak = 0
            elif isinstance(exc, TransientApiError):
                self._streak += 1
                self._last_error = str(exc)
                if self._streak >= self.threshold:
                    self.open = True

    def reason(self) -> str:
        return (f"not attempted: the Graph API failed with server errors for {self._streak} accounts in a row, so "
                f"this run stopped early (last error: {self._last_error}). The next run tries again.")
