"""Logging for the ``ig_analytics`` loggers: plain text or one JSON object per line, never a token.

``configure_logging()`` installs one stderr handler on the ``ig_analytics`` logger (idempotent: calling it again
replaces it). The format comes from ``json=`` or, when that is None, from ``IG_ANALYTICS_LOG_FORMAT`` (``json`` or
``text``, default text); the level from ``IG_ANALYTICS_LOG_LEVEL`` (default INFO). Every handler gets
:class:`ig_analytics.redaction.RedactingFilter`, so messages, arguments, ``extra`` fields and tracebacks are
redacted before they are formatted.

JSON fields: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and when present in ``extra``:
``ig_user_id``, ``endpoint``, ``code``, ``subcode``, ``fbtrace_id``, ``run_id``; ``exception`` when there is one.

Inside Dagster runs, add ``ig_analytics`` to ``python_logs.managed_python_loggers`` in dagster.yaml to see these
records in the run's event log (deploy/dagster.yaml does).
"""

from __future__ import annotations

import json as _json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import IO

from ig_analytics.redaction import RedactingFilter, redact

LOGGER_NAME = "ig_analytics"
EXTRA_FIELDS = ("ig_user_id", "endpoint", "code", "subcode", "fbtrace_id", "run_id")
_HANDLER_MARK = "_ig_analytics_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the fields above (None-valued extras are left out)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value if isinstance(value, (int, float, bool)) else redact(str(value))
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return _json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{name}={getattr(record, name)}" for name in EXTRA_FIELDS if getattr(record, name, None) is not None]
        return f"{text} [{' '.join(extras)}]" if extras else text


def _wants_json(json: bool | None) -> bool:
    if json is not None:
        return json
    return os.environ.get("IG_ANALYTICS_LOG_FORMAT", "text").strip().lower() == "json"


def configure_logging(json: bool | None = None, *, level: str | int | None = None,
                      stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace) the project's handler on the ``ig_analytics`` logger; returns it."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if _wants_json(json) else TextFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(level or os.environ.get("IG_ANALYTICS_LOG_LEVEL", "INFO").upper())
    # Records from ig_analytics.* also reach the root logger's handlers (e.g. Dagster's): protect those too.
    for other in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in other.filters):
            other.addFilter(RedactingFilter())
    return handler
