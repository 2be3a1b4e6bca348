"""Logging: plain text or one JSON object per line on stderr, the details in a log file, never a token.

``configure_logging()`` (idempotent: calling it again replaces what it installed) sets up

- the terminal (stderr): the ``ig_analytics`` loggers at ``IG_ANALYTICS_LOG_LEVEL`` (default INFO), and every
  other logger (Dagster, SQLAlchemy, urllib3...) from ERROR up (DEBUG when the level is DEBUG). One line per
  record: JSON with ``IG_ANALYTICS_LOG_FORMAT=json``, else text cut to the message's first line. Records logged
  with ``extra={"log_only": True}`` (e.g. a crash's traceback) skip the terminal;
- the log file (``log_file=``; the CLI passes ``IG_ANALYTICS_HOME/logs/ig-analytics.log``): the same records
  with full details (tracebacks, multi-line messages), and other loggers' warnings too. Created on first use;
- Python warnings (``warnings.warn``) as records of the ``py.warnings`` logger, so they follow the same rules.

Both outputs escape control, bidirectional and other format characters as stdout does (terminal_text): ``\x1b``
and ``\u202e`` in text, their JSON escapes in JSON lines; a text record keeps only its own line breaks.

Every handler gets :class:`ig_analytics.redaction.RedactingFilter`, so messages, arguments, ``extra`` fields and
tracebacks are redacted before they are formatted.

JSON fields: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and when present in ``extra``:
``ig_user_id``, ``endpoint``, ``code``, ``subcode``, ``fbtrace_id``, ``run_id``; ``exception`` when there is one.

Inside Dagster runs, ``python_logs.managed_python_loggers`` in dagster.yaml lists ``ig_analytics``, so these
records also appear in the run's event log; dagster.yaml sets no ``python_log_level``, so the level stays the one
set here (a run honours ``IG_ANALYTICS_LOG_LEVEL``).
"""

from __future__ import annotations

import json as _json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from ig_analytics.redaction import RedactingFilter, redact
from ig_analytics.settings import SettingsError
from ig_analytics.terminal_text import json_line, printable, printable_lines

LOGGER_NAME = "ig_analytics"
EXTRA_FIELDS = ("ig_user_id", "endpoint", "code", "subcode", "fbtrace_id", "run_id")
_HANDLER_MARK = "_ig_analytics_handler"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMATS = ("text", "json")
_log_file: Path | None = None
PRINTED_MARK = "ig_printed"


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
        return json_line(_json.dumps(data, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [extras]``; ``one_line``: the message's first line only, no traceback."""

    def __init__(self, one_line: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.one_line = one_line

    def format(self, record: logging.LogRecord) -> str:
        if self.one_line:
            text = self.formatMessage(self._one_line_record(record))
        else:
            text = super().format(record)
        extras = [f"{name}={getattr(record, name)}" for name in EXTRA_FIELDS if getattr(record, name, None) is not None]
        text = f"{text} [{' '.join(extras)}]" if extras else text
        # Text from the API or a user may hold escape sequences or bidi overrides: escaped as stdout does.
        return printable(text) if self.one_line else printable_lines(text)

    def _one_line_record(self, record: logging.LogRecord) -> logging.LogRecord:
        copy = logging.makeLogRecord(vars(record))
        lines = record.getMessage().strip().splitlines() or [""]
        copy.message = lines[0] + (" (more in the log file)" if len(lines) > 1 or record.exc_info else "")
        copy.asctime = self.formatTime(record)
        return copy


def _is_ours(record: logging.LogRecord) -> bool:
    return record.name == LOGGER_NAME or record.name.startswith(LOGGER_NAME + ".")


class _TerminalFilter(logging.Filter):
    """The terminal shows our loggers at the configured level, other loggers from ``others_level`` up."""

    def __init__(self, others_level: int, ours: bool) -> None:
        super().__init__()
        self.others_level = others_level
        self.ours = ours

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        if getattr(record, "log_only", False) or getattr(record, PRINTED_MARK, False):
            return False
        if self.ours:
            if not _is_ours(record):
                return False
            # Dagster re-emits a captured record through the run's console logger with the record's attributes
            # as `extra` (ig_analytics.defs.run_output): the mark keeps it from printing twice.
            setattr(record, PRINTED_MARK, True)
            return True
        return not _is_ours(record) and record.levelno >= self.others_level


class _FileFilter(logging.Filter):
    """The log file: our loggers at the configured level, other loggers' warnings too (all of it at DEBUG)."""

    def __init__(self, others_level: int) -> None:
        super().__init__()
        self.others_level = others_level

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        return _is_ours(record) or record.levelno >= self.others_level


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates the folder and the file only when the first record arrives, and stays
    silent when it cannot (a read-only home must not turn every log call into an error)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            try:
                Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return
        try:
            super().emit(record)
        except OSError:
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - never print a traceback for the log
        pass


def log_level_from_env(environ=None) -> int:
    """``IG_ANALYTICS_LOG_LEVEL`` as a logging level (default INFO); a wrong value is a SettingsError."""
    env = os.environ if environ is None else environ
    value = (env.get("IG_ANALYTICS_LOG_LEVEL") or "INFO").strip().upper()
    if value not in _LEVELS:
        raise SettingsError(f"IG_ANALYTICS_LOG_LEVEL must be one of {', '.join(_LEVELS)}, not '{value[:20]}'")
    return logging.getLevelName(value)


def wants_json(json: bool | None = None, environ=None) -> bool:
    """JSON output? ``json`` when given, else ``IG_ANALYTICS_LOG_FORMAT`` (text or json; a wrong value is a
    SettingsError)."""
    if json is not None:
        return json
    env = os.environ if environ is None else environ
    value = (env.get("IG_ANALYTICS_LOG_FORMAT") or "text").strip().lower()
    if value not in _FORMATS:
        raise SettingsError(f"IG_ANALYTICS_LOG_FORMAT must be text or json, not '{value[:20]}'")
    return value == "json"


def _level(level: str | int | None) -> int:
    if level is None:
        return log_level_from_env()
    return level if isinstance(level, int) else logging.getLevelName(str(level).upper())


def _install(logger: logging.Logger, handler: logging.Handler) -> None:
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)


def configure_logging(json: bool | None = None, *, level: str | int | None = None,
                      stream: IO[str] | None = None, log_file: Path | None | bool = None) -> logging.Handler:
    """Install (or replace) the project's handlers; returns the ``ig_analytics`` terminal handler. Without
    ``log_file``, the file of an earlier call is kept (the definitions configure logging again when they load);
    ``log_file=False``: no file."""
    global _log_file
    use_json = wants_json(json)
    if log_file is False:
        _log_file = None
    elif log_file is not None:
        _log_file = Path(log_file)
    log_file = _log_file
    our_level = _level(level)
    others_level = logging.DEBUG if our_level <= logging.DEBUG else logging.ERROR
    logger = logging.getLogger(LOGGER_NAME)
    root = logging.getLogger()
    for owner in (logger, root):
        for handler in list(owner.handlers):
            if getattr(handler, _HANDLER_MARK, False):
                owner.removeHandler(handler)
                handler.close()
    stream = stream or sys.stderr

    def terminal(ours: bool) -> logging.Handler:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter() if use_json else TextFormatter(one_line=True))
        handler.addFilter(_TerminalFilter(others_level, ours))
        return handler

    ours = terminal(True)
    _install(logger, ours)
    # Records of the ig_analytics loggers reach the root too: the root's terminal handler skips them.
    _install(root, terminal(False))
    if log_file is not None:
        file_handler = _LazyFileHandler(Path(log_file))
        file_handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
        file_handler.addFilter(_FileFilter(min(others_level, logging.WARNING)))
        _install(root, file_handler)
    logger.setLevel(our_level)
    root.setLevel(min(our_level, logging.WARNING))
    logging.captureWarnings(True)
    # Dagster's "dagster" logger may carry its own plain-text handler: its records go through ours instead.
    dagster_logger = logging.getLogger("dagster")
    for handler in list(dagster_logger.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            dagster_logger.removeHandler(handler)
    dagster_logger.propagate = True
    # Other handlers already on the root (e.g. a test's): protect them too.
    for other in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in other.filters):
            other.addFilter(RedactingFilter())
    return ours
