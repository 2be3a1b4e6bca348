"""How a CLI command ends when something goes wrong: ONE line on stderr that says what happened and what to do
(JSON with IG_ANALYTICS_LOG_FORMAT=json), the details (tracebacks, SQL) in the log file, and the exit code:
2 for a usage mistake or a bad setting, 1 for a failure, 130 for Ctrl-C. Never a traceback, never a token."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from ig_analytics import clock
from ig_analytics.redaction import redact
from ig_analytics.settings import Settings, SettingsError
from ig_analytics.stopping import Stopped, exit_code
from ig_analytics.terminal_text import json_line, printable, printable_lines

log = logging.getLogger("ig_analytics.cli.main")
LOG_FILE_NAME = "logs/ig-analytics.log"
_MAX_LINE = 600
_json_output = False


def log_file_path() -> Path | None:
    try:
        return Settings.from_env().home / LOG_FILE_NAME
    except Exception:  # noqa: BLE001 - a bad setting is reported by the command itself
        return None


def setup_logging() -> None:
    """The CLI's logging (logging_setup), with the log file in IG_ANALYTICS_HOME."""
    global _json_output
    from ig_analytics.logging_setup import configure_logging, wants_json

    _json_output = wants_json()  # a bad IG_ANALYTICS_LOG_FORMAT raises SettingsError: exit 2
    configure_logging(log_file=log_file_path())


def fail(message: str, code: int) -> None:
    """Print ``message`` as one line and exit with ``code``."""
    text = printable(redact(message).strip(), _MAX_LINE)
    if _json_output:
        line = json_line(json.dumps({"time": clock.now().isoformat(timespec="milliseconds"),
                                     "level": "ERROR", "logger": "ig_analytics.cli.main", "message": text,
                                     "exit_code": code}, ensure_ascii=False))
    else:
        line = f"ig-analytics: {text}"
    click.echo(line, err=True)
    sys.exit(code)


def say(text: object = "", err: bool = False) -> None:
    """Print ``text`` for the user: every line escaped (terminal_text.printable_lines), so a caption, a Page name
    or an API message cannot recolour, clear or reorder the terminal (U+202E), whichever command prints it."""
    click.echo(printable_lines(text), err=err)


class LogOnly(logging.LoggerAdapter):
    """A logger whose records go to the log file only: for a step whose failure the command reports itself in its
    one line (e.g. the Graph API client while `accounts add` verifies a token)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.getLogger(name), {})

    def process(self, msg, kwargs):
        kwargs["extra"] = {**(kwargs.get("extra") or {}), "log_only": True}
        return msg, kwargs


def _user_facing_errors() -> tuple[type[Exception], ...]:
    """Our own errors already say what happened and what to do: print them without a class name."""
    from ig_analytics.accounts.repository import AccountError
    from ig_analytics.accounts.token_vault import TokenVaultError
    from ig_analytics.install_marker import InstallMarkerError
    from ig_analytics.local.embedded_db import EmbeddedDbError
    from ig_analytics.storage.db import DatabaseUnavailableError

    return (AccountError, EmbeddedDbError, DatabaseUnavailableError, TokenVaultError, InstallMarkerError)


def run(command: click.Group, argv: list[str] | None) -> None:
    try:
        setup_logging()
        command.main(args=argv, prog_name="ig-analytics", standalone_mode=False)
    except click.UsageError as exc:
        fail(f"{exc.format_message()} (see --help)", 2)
    except SettingsError as exc:  # a bad environment variable is a usage mistake too
        fail(str(exc), 2)
    except click.ClickException as exc:
        fail(exc.format_message(), 1)
    except (click.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Stopped as exc:  # SIGTERM/SIGINT during sync: one line, 130 or 143
        fail(str(exc), exit_code(exc.reason))
    except _user_facing_errors() as exc:
        fail(_out_of_connections(exc) or str(exc), 1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one clear line, no traceback, no token
        fail(_unexpected(exc), 1)


def _unexpected(exc: Exception) -> str:
    from ig_analytics.storage.db import describe_database_failure

    where = log_file_path()
    log.error("command failed", exc_info=exc, extra={"log_only": True})  # the details: log file only
    details = f" Details in {where}." if where is not None and where.exists() else ""
    database = _out_of_connections(exc) or describe_database_failure(exc)
    if database:
        return database + details
    first_line = (redact(str(exc)).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}{details}"


_FULL = ("too many clients already", "too many connections for role", "remaining connection slots are reserved")


def _out_of_connections(exc: BaseException) -> str | None:
    """The server is up but has no connection left: say that (not 'db start'), and who usually holds them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(getattr(current, "orig", None) or current)
        if any(marker in text for marker in _FULL):
            reason = next(line for line in text.splitlines() if any(m in line for m in _FULL)).strip()
            return (f"PostgreSQL is running but has no free connection ({reason}). Close idle clients (BI tools, "
                    "psql sessions), or raise max_connections on your own server; then run the command again.")
        current = current.__cause__ or current.__context__
    return None
