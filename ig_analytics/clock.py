"""The product's one clock. Every "now" the product reads (the hour a capture is labelled with, date windows, ages,
token expiry, retention) comes from :func:`now`, so a test, or a reproduction of a user's report, sets it in the
process with :func:`frozen` or :func:`use` instead of waiting for the wall clock. The sandbox keeps its own clock
(sandbox/clock.py), the world's time, which a test moves with it; PostgreSQL's now() is the server's."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator

_source: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _source() if _source is not None else datetime.now(timezone.utc)


@contextmanager
def use(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, :func:`now` is ``source()`` (in every thread of the process)."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous


def frozen(at: datetime):
    """Within the block, :func:`now` is ``at`` (aware)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware datetime (UTC)")
    return use(lambda: at)
