"""Fault injection knobs, drawn from a counter-based (thread-safe, seed-deterministic) random stream."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

from ig_analytics.sandbox.rng import unit


@dataclass
class Faults:
    latency_ms: float = 0  # sleep per HTTP request, in the handler thread
    transient_error_rate: float = 0.0  # HTTP 500 code 2 (is_transient) or HTTP 503
    throttle_after_calls: int | None = None  # after N calls for one account: code 80002 until throttle_minutes pass
    throttle_minutes: float = 5
    malformed_body_rate: float = 0.0  # HTTP 200 with a body that is not JSON
    truncated_body_rate: float = 0.0  # HTTP 200 whose connection is cut mid-body
    reduce_data_limit: int | None = None  # /media with limit above this: HTTP 500 code 1 "reduce the amount of data"
    short_page_rate: float = 0.0  # /media pages cut short (even empty) while paging.next goes on
    # posts whose /insights answer "(#10) Application does not have permission for this action" (HTTP 400) while
    # every other call of the account works: Meta does this for single posts (graph-api-facts.md, section 3)
    refused_media_ids: tuple[str, ...] = ()
    seed: int = 0
    _counter: int = field(default=0, init=False, repr=False, compare=False)
    _lock: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def draw(self) -> float:
        """Next number of this Faults' own stream: uniform in [0, 1)."""
        with self._lock:
            n = self._counter
            self._counter += 1
        return unit("faults", self.seed, n)

    def pick(self) -> str | None:
        """One draw per HTTP request: None, 'transient', 'unavailable', 'malformed' or 'truncated'."""
        if not (self.transient_error_rate or self.malformed_body_rate or self.truncated_body_rate):
            return None
        u = self.draw()
        t = self.transient_error_rate
        if u < t:
            return "unavailable" if u < t * 0.3 else "transient"
        u -= t
        if u < self.malformed_body_rate:
            return "malformed"
        u -= self.malformed_body_rate
        if u < self.truncated_body_rate:
            return "truncated"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def updated(self, **changes: Any) -> "Faults":
        """A new Faults with ``changes`` applied (unknown names raise TypeError)."""
        names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown Faults fields: {sorted(unknown)}")
        return Faults(**{**self.to_dict(), **changes})
