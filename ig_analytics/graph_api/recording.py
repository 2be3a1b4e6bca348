"""``sync --record DIR``: every request and reply of the client, one JSON line each, with no secret in them.

A user whose sync met an odd reply from Meta sends the directory; ``ig-analytics sandbox --replay DIR``
(sandbox/replay.py) serves it again, so the odd reply becomes a failing test. The format (one object per line of
``DIR/exchanges.jsonl``):

    {"seq": 1, "at": "2026-...Z", "method": "GET", "url": "https://graph.facebook.com/v25.0/1784.../insights",
     "query": [["metric", "reach"], ...], "form": {...}, "batch": [{"method": "GET", "relative_url": "..."}],
     "status": 200, "headers": {"x-app-usage": "...", ...}, "body": <the JSON reply> | "body_text": "<not JSON>"}

Removed on the way in: the Authorization header (never written), ``access_token``/``appsecret_proof`` (and the
other names of ``redaction.SECRET_PARAMS``) from the query, the form, batch ``relative_url``s and every URL inside
a reply (``paging.next``), ``access_token`` fields of reply objects; then every token the process knows
(``redaction.redact``), in case Meta echoes one somewhere else. Writers on several threads (accounts are synced
concurrently) and several clients of one process (one per run) append whole lines under one lock per file.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ig_analytics import clock
from ig_analytics.redaction import REDACTED, SECRET_PARAMS, redact

EXCHANGES_FILE = "exchanges.jsonl"

# Reply headers worth keeping: what the client reads (usage, throttling, version) and what identifies a reply.
_KEPT_HEADERS = ("content-type", "facebook-api-version", "x-fb-trace-id", "x-fb-rev", "www-authenticate",
                 "retry-after", "x-app-usage", "x-business-use-case-usage", "x-ad-account-usage")

class _File:
    """One recording file of this process: its lock and the number of its last line."""

    def __init__(self, path: Path) -> None:
        self.lock = threading.Lock()
        self.seq = _count_lines(path)  # a directory recorded into before goes on numbering


_files: dict[Path, _File] = {}
_files_guard = threading.Lock()


def _file(path: Path) -> _File:
    with _files_guard:
        if path not in _files:
            _files[path] = _File(path)
        return _files[path]


class Recorder:
    """Appends each exchange to ``directory/exchanges.jsonl``. Thread-safe; never raises into the caller's request
    (a full disk must not fail a sync: the first error is kept in ``failed`` and recording stops)."""

    def __init__(self, directory: str | Path, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: clock.now())  # the client's clock: a replay's "now"
        self.directory = Path(directory).expanduser().resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / EXCHANGES_FILE
        self._file = _file(self.path)
        self.failed: str | None = None

    def record(self, method: str, url: str, params: Mapping[str, str] | None, form: Mapping[str, str] | None,
               status: int, headers: Mapping[str, str], content: bytes) -> None:
        if self.failed:
            return
        try:
            record = {"at": self._now().isoformat(timespec="milliseconds"),
                      **exchange(method, url, params, form, status, headers, content)}
            # ASCII with \u escapes, as Meta sends it: any text survives, even a lone surrogate
            line = redact(json.dumps(record, ensure_ascii=True, separators=(",", ":")))
            with self._file.lock:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write('{"seq":%d,%s\n' % (self._file.seq + 1, line[1:]))
                self._file.seq += 1
        except (OSError, ValueError, TypeError) as exc:
            self.failed = f"{type(exc).__name__}: {redact(str(exc))}"
            logging.getLogger(__name__).warning(f"recording to {self.path} stopped ({self.failed}); the sync goes on")


def prepare_directory(record_dir: str | Path) -> Path:
    """The folder to record into, created. ValueError (a sentence) when it cannot be written or already holds a
    recording: two syncs in one file would replay as one."""
    path = Path(record_dir).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if (path / EXCHANGES_FILE).exists():
            raise ValueError("the folder already holds a recording; give an empty folder")
        probe = path / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write there ({exc.strerror or exc})") from None
    return path


def summary(record_dir: str | Path) -> str:
    """What a recording holds, in one line for the end of ``sync --record``."""
    path = Path(record_dir).expanduser().resolve() / EXCHANGES_FILE
    return (f"Recorded {_count_lines(path)} Graph API requests and replies to {path} (tokens removed); "
            f"serve them with: ig-analytics sandbox --replay {path.parent}")


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    except FileNotFoundError:
        return 0


def exchange(method: str, url: str, params: Mapping[str, str] | None, form: Mapping[str, str] | None,
             status: int, headers: Mapping[str, str], content: bytes) -> dict[str, Any]:
    """One request and its reply as a JSON-ready object, secrets removed."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in SECRET_PARAMS]
    query += [(k, str(v)) for k, v in (params or {}).items() if k not in SECRET_PARAMS]
    out: dict[str, Any] = {"method": method, "url": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                           "query": [list(pair) for pair in query]}
    form_out = {k: v for k, v in (form or {}).items() if k not in SECRET_PARAMS}
    if "batch" in form_out:
        try:
            out["batch"] = scrub(json.loads(form_out.pop("batch")))
        except ValueError:
            out["batch_text"] = without_secret_params(form_out.pop("batch"))
    if form_out:
        out["form"] = form_out
    lowered = {k.lower(): v for k, v in headers.items()}
    out["status"] = status
    out["headers"] = {name: lowered[name] for name in _KEPT_HEADERS if name in lowered}
    try:
        out["body"] = scrub(json.loads(content.decode("utf-8")))
    except (ValueError, UnicodeDecodeError):
        out["body_text"] = without_secret_params(content.decode("utf-8", errors="replace"))
    return out


def scrub(value: Any) -> Any:
    """``value`` with every secret parameter removed from the URLs inside it (at any depth, also inside strings
    that hold JSON, such as a batch item's body) and ``access_token`` fields blanked."""
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_PARAMS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def _scrub_text(text: str) -> str:
    if text[:1] in ("{", "[") and any(name in text for name in SECRET_PARAMS):
        try:  # a batch item's body is JSON in a string: rewritten only when it held a secret
            return json.dumps(scrub(json.loads(text)), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            pass
    return without_secret_params(text)


def without_secret_params(text: str) -> str:
    """A URL (or relative URL) without its secret query parameters; any other text (a caption that mentions
    access_token?) unchanged, to the character."""
    if "?" not in text or not any(name in text for name in SECRET_PARAMS) or any(c.isspace() for c in text):
        return text
    parts = urlsplit(text)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in SECRET_PARAMS]
    if len(kept) == len(pairs):
        return text
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept, safe=",()"), parts.fragment))
