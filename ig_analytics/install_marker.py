"""The install marker: ``IG_ANALYTICS_HOME/install.json``, written once by the first command that prepares the
database (``runtime.ensure_database``), never rewritten. It fixes where the partitions start
(docs/architecture.md, "Partitions"), so every process of one deployment (code server, daemon, run workers, the
CLI) builds identical partition definitions, today and in a year:

- hourly: the hour of the install. Snapshots hold lifetime values "as of now", so no earlier hour can ever be
  captured; an earlier start would only add partitions that read as missing.
- daily: ``FIRST_SYNC_DAYS`` before the install day, what the first ``ig-analytics sync`` fetches (the demo writes
  its own, shorter history). Older days need ``IG_ANALYTICS_DAILY_START`` (Meta serves about two years).
- daily snapshots of the current picture (audience demographics): the day before the install, the first picture
  the first sync takes; like hourly snapshots they cannot be taken in the past.

The marker is read only when ``IG_ANALYTICS_HOME`` is set, as every ``ig-analytics`` command sets it before the
definitions are imported; without it (tests, a bare ``dagster dev``) the fixed fallback dates apply.
This module imports nothing of Dagster: the CLI reads it before the definitions are loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

MARKER_NAME = "install.json"
FIRST_SYNC_DAYS = 90  # `ig-analytics sync` without --since: the 90 days ending yesterday
HOURLY_FORMAT = "%Y-%m-%d-%H:00"

# Without a marker: fixed dates, the same in every process (tests replay a sandbox clock of 2026-11-20).
FALLBACK_DAILY_START = "2025-01-01"
FALLBACK_HOURLY_START = "2026-11-01-00:00"


@dataclass(frozen=True)
class PartitionStarts:
    daily: str  # YYYY-MM-DD
    hourly: str  # YYYY-MM-DD-HH:00
    source: str  # where they come from, for the docs and `ig-analytics status`
    snapshots: str = ""  # YYYY-MM-DD: daily pictures of "now" (audience), from the day before the install

    @property
    def weekly(self) -> str:
        """The first Monday on or after the daily start: the first full week that can have data."""
        first = date.fromisoformat(self.daily)
        return (first + timedelta(days=(7 - first.weekday()) % 7)).isoformat()


def marker_path(home: Path) -> Path:
    return Path(home) / MARKER_NAME


def starts_for(installed_at: datetime, history_days: int = FIRST_SYNC_DAYS) -> dict:
    installed_at = installed_at.astimezone(timezone.utc)
    return {
        "installed_at": installed_at.isoformat(timespec="seconds"),
        "daily_start": (installed_at.date() - timedelta(days=history_days)).isoformat(),
        "hourly_start": installed_at.strftime(HOURLY_FORMAT),
    }


class InstallMarkerError(RuntimeError):
    """install.json exists but cannot be used; the message says how to repair it."""


def read_marker(home: Path) -> dict | None:
    path = marker_path(home)
    fix = ("restore it from a backup of the home, or delete it: the next ig-analytics command writes it again "
           "from the first migration's time")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InstallMarkerError(f"{path} is unreadable ({exc}): it fixes where the partitions start; {fix}") from exc
    try:
        date.fromisoformat(data["daily_start"])
        datetime.strptime(data["hourly_start"], HOURLY_FORMAT)
    except (KeyError, TypeError, ValueError) as exc:
        raise InstallMarkerError(f"{path} lacks a valid daily_start / hourly_start ({exc}): {fix}") from exc
    return data


def ensure_marker(home: Path, installed_at: datetime, history_days: int = FIRST_SYNC_DAYS) -> dict:
    """Write the marker unless it exists (first writer wins, atomically); return the marker in force."""
    existing = read_marker(home)
    if existing is not None:
        return existing
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{MARKER_NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(starts_for(installed_at, history_days), indent=2) + "\n")
    try:
        os.link(tmp, marker_path(home))  # fails if another process wrote it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return read_marker(home)


def current_starts(environ: os._Environ | dict | None = None) -> PartitionStarts:
    """What the partitions of this process start at: the environment overrides, then the marker, then the
    fallback."""
    env = os.environ if environ is None else environ
    marker = read_marker(Path(env["IG_ANALYTICS_HOME"]).expanduser()) if env.get("IG_ANALYTICS_HOME") else None
    return _starts(env, marker)


def _starts(env, marker: dict | None) -> PartitionStarts:
    daily = env.get("IG_ANALYTICS_DAILY_START") or (marker or {}).get("daily_start") or FALLBACK_DAILY_START
    hourly = env.get("IG_ANALYTICS_HOURLY_START") or (marker or {}).get("hourly_start") or FALLBACK_HOURLY_START
    source = "install marker" if marker else "fixed fallback"
    if env.get("IG_ANALYTICS_DAILY_START") or env.get("IG_ANALYTICS_HOURLY_START"):
        source += " with IG_ANALYTICS_*_START overrides"
    snapshots = daily
    if marker:
        installed = datetime.strptime(marker["hourly_start"], HOURLY_FORMAT).date()
        snapshots = max(daily, (installed - timedelta(days=1)).isoformat())
    return PartitionStarts(daily=daily, hourly=hourly, source=source, snapshots=snapshots)


def planned_daily_start(home: Path, today: date, environ: os._Environ | dict | None = None) -> date:
    """The daily start a command will see once the home is prepared: :func:`current_starts` with the marker
    ``ensure_marker`` would write today when there is none yet."""
    env = os.environ if environ is None else environ
    marker = read_marker(home) or starts_for(datetime.combine(today, time.min, tzinfo=timezone.utc))
    return date.fromisoformat(_starts(env, marker).daily)
