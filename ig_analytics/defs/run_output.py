"""Where the output of the CLI's in-process Dagster runs goes (``ig-analytics sync``).

Dagster writes to the terminal three ways: the run's ``console`` logger (its own coloured format), Python loggers
with their own handlers, and raw ``sys.stderr.write`` (e.g. "Exception while writing logger call to event log").
During a run, all three become records of Python loggers, so logging_setup's rules apply: one line per record,
JSON with ``IG_ANALYTICS_LOG_FORMAT=json``, the details in the log file, tokens redacted.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

import dagster as dg

RUN_LOGGER_NAME = "ig_analytics.dagster_run"
STDERR_LOGGER_NAME = "dagster.stderr"


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="WARNING")},
    description="The run's events as records of the ig_analytics.dagster_run Python logger.",
)
def python_logging_console(init_context) -> logging.Logger:
    logger = logging.getLogger(RUN_LOGGER_NAME)
    logger.setLevel(init_context.logger_config["log_level"].upper())
    return logger


class _LinesToLog(io.TextIOBase):
    """A text stream whose complete lines become WARNING records of ``dagster.stderr``."""

    def __init__(self) -> None:
        self._buffer = ""
        self._lock = threading.Lock()
        self._log = logging.getLogger(STDERR_LOGGER_NAME)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._log.warning(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest.strip():
            self._log.warning(rest)


@contextmanager
def stderr_to_log() -> Iterator[None]:
    """Raw writes to sys.stderr become log records while the block runs (the handlers installed by
    logging_setup hold the real stderr, so they still print)."""
    real = sys.stderr
    sys.stderr = _LinesToLog()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        finally:
            sys.stderr = real
