"""The sandbox clock: real time (optionally offset), or frozen and moved by hand."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone


def as_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


class SandboxClock:
    """``now()`` is ``value`` while frozen, else ``value`` plus the real time elapsed since it was set."""

    def __init__(self, now: datetime | None = None, frozen: bool | None = None) -> None:
        self._lock = threading.Lock()
        self._value = as_utc(now) if now is not None else datetime.now(timezone.utc)
        self._anchor = time.monotonic()
        self._frozen = (now is not None) if frozen is None else bool(frozen)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        if self._frozen:
            return self._value
        return self._value + timedelta(seconds=time.monotonic() - self._anchor)

    def set(self, dt: datetime) -> None:
        with self._lock:
            self._value = as_utc(dt)
            self._anchor = time.monotonic()

    def advance(self, delta: timedelta | float) -> None:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=float(delta))
        with self._lock:
            self._value = self._now_locked() + delta
            self._anchor = time.monotonic()

    def freeze(self) -> None:
        with self._lock:
            self._value = self._now_locked()
            self._frozen = True

    def unfreeze(self) -> None:
        with self._lock:
            self._value = self._now_locked()
            self._anchor = time.monotonic()
            self._frozen = False
