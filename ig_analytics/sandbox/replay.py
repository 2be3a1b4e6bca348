"""``ig-analytics sandbox --replay DIR``: serve the replies of a ``sync --record`` recording (graph_api/recording.py).

A request is matched to a recorded reply by method, path (with its version) and its query and form, normalised:
secrets (``access_token``, ``appsecret_proof``, ...) ignored, parameters in any order, the ``metric`` list in
any order, and a batch POST by its items (each ``relative_url`` normalised the same way). A request asked several
times gets its recorded replies in their order (a 500, then the retry's 200), then the last one again.

Two looser matches, so a recording stays usable when the replaying client asks a little differently:

* a batch that was not recorded as a whole is answered item by item, each from any recorded batch (the envelope
  carries the headers of the batch that held its first item);
* ``since``/``until`` are clock readings (online followers ask for "the 29 days up to now", to the second): a
  request recorded with other values of them only is answered by the recorded one nearest in time.

Anything else answers HTTP 400 with a Graph-style error (code 2500, the request named in its message), and
every such request is reported to ``on_unrecorded`` (the command prints one stderr line each).
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

from ig_analytics.redaction import SECRET_PARAMS
from ig_analytics.sandbox.errors import GraphError
from ig_analytics.sandbox.protocol import JSON_TYPE, ApiRequest
from ig_analytics.sandbox.server import SandboxServer

EXCHANGES_FILE = "exchanges.jsonl"  # graph_api/recording.py writes it (the sandbox may not import graph_api)
UNRECORDED_CODE = 2500  # Meta's "unknown path components": a plain request error, neither retried nor skipped
_TIME_PARAMS = ("since", "until")
_ACCOUNT_PATH_RE = re.compile(r"^/(?:v\d+(?:\.\d+)?/)?(\d+)(?:/(media|stories))?$")


class ReplayError(ValueError):
    """A recording that cannot be served (missing, or not what ``--record`` writes)."""


Pairs = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class RequestKey:
    method: str
    path: str
    params: Pairs  # normalised, without secrets and time parameters
    times: Pairs  # the since/until values

    @property
    def loose(self) -> tuple[str, str, Pairs]:
        return self.method, self.path, self.params

    @property
    def recorded_at(self) -> datetime | None:
        """When the recording began: the ``now`` to give a client replaying it in a test (the days it asks
        for then match the recorded ones)."""
        times = [str(ex["at"]) for ex in self.exchanges if ex.get("at")]
        return datetime.fromisoformat(min(times)) if times else None

    def describe(self) -> str:
        query = "&".join(f"{k}={_short(v)}" for k, v in self.params + self.times)
        return f"{self.method} {self.path}{'?' + query if query else ''}"


def request_key(method: str, path: str, params: Iterable[tuple[str, Any]]) -> RequestKey:
    kept, times = [], []
    for name, value in params:
        if name in SECRET_PARAMS:
            continue
        if name == "batch":
            value = _batch_key(value)
        elif name == "metric" and isinstance(value, str):
            value = ",".join(sorted(value.split(",")))
        (times if name in _TIME_PARAMS else kept).append((name, value))
    return RequestKey(method.upper(), "/" + path.strip("/"), tuple(sorted(kept, key=_order)),
                      tuple(sorted(times, key=_order)))


def _order(pair: tuple[str, Any]) -> tuple[str, str]:
    return pair[0], str(pair[1])


def _batch_key(batch: Any) -> tuple[RequestKey, ...] | str:
    """A batch's items as keys; text that is not a batch stays as it is (and matches only itself)."""
    items = batch
    if isinstance(batch, str):
        try:
            items = json.loads(batch)
        except ValueError:
            return batch
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return json.dumps(items, sort_keys=True)
    return tuple(_item_key(item) for item in items)


def _item_key(item: dict[str, Any]) -> RequestKey:
    url = urlsplit(str(item.get("relative_url") or ""))
    return request_key(str(item.get("method") or "GET"), url.path, parse_qsl(url.query, keep_blank_values=True))


def _short(value: Any) -> str:
    if isinstance(value, tuple):  # a batch
        return f"<batch of {len(value)}>"
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


class _Queues:
    """Recorded replies by request: in their order, then the last one again; the nearest in time when only
    since/until differ."""

    def __init__(self) -> None:
        self._replies: dict[RequestKey, list[Any]] = defaultdict(list)
        self._served: dict[RequestKey, int] = defaultdict(int)
        self._by_loose: dict[tuple, list[RequestKey]] = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, key: RequestKey, reply: Any) -> None:
        if key not in self._replies:
            self._by_loose[key.loose].append(key)
        self._replies[key].append(reply)

    def take(self, key: RequestKey) -> Any | None:
        with self._lock:
            if key not in self._replies:
                key = _nearest(key, self._by_loose.get(key.loose, []))
                if key is None:
                    return None
            replies, n = self._replies[key], self._served[key]
            self._served[key] = n + 1
            return replies[min(n, len(replies) - 1)]


def _nearest(key: RequestKey, candidates: list[RequestKey]) -> RequestKey | None:
    wanted = _instants(key.times)
    if wanted is None:
        return None
    scored = [(sum(abs(a - b) for a, b in zip(wanted, got)), c) for c in candidates
              if (got := _instants(c.times)) is not None and len(got) == len(wanted)]
    return min(scored, key=lambda s: s[0])[1] if scored else None


def _instants(times: Pairs) -> list[float] | None:
    """since/until as POSIX seconds (Graph takes timestamps or dates); None when one is neither."""
    out = []
    for _name, value in times:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            try:
                day = date.fromisoformat(str(value))
            except ValueError:
                return None
            out.append(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
    return out


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Recording:
    """The exchanges of one ``--record`` directory, indexed for matching."""

    def __init__(self, exchanges: list[dict[str, Any]], source: str = "the recording") -> None:
        self.exchanges = exchanges
        self.source = source
        self._requests = _Queues()
        self._items = _Queues()  # batch items of successful batches: (entry, the envelope's headers)
        for ex in exchanges:
            key = exchange_key(ex)
            self._requests.add(key, ex)
            batch, body = dict(key.params).get("batch"), ex.get("body")
            if isinstance(batch, tuple) and isinstance(body, list):
                for item_key, entry in zip(batch, body):
                    self._items.add(item_key, (entry, ex.get("headers") or {}))

    @classmethod
    def load(cls, directory: str | Path) -> "Recording":
        path = Path(directory).expanduser() / EXCHANGES_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ReplayError(f"no recording at {path} ({exc.strerror or exc}); make one with "
                              "`ig-analytics sync --record DIR`") from None
        exchanges = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
                if not isinstance(ex, dict) or "method" not in ex or "url" not in ex or "status" not in ex:
                    raise ValueError("not an exchange")
            except ValueError as exc:
                raise ReplayError(f"{path}, line {number}: not a recorded exchange ({exc})") from None
            exchanges.append(ex)
        return cls(exchanges, str(path.parent))

    # -- serving ---------------------------------------------------------------------------------------------
    def reply(self, method: str, path: str, params: dict[str, str]) -> Reply | None:
        key = request_key(method, path, params.items())
        ex = self._requests.take(key)
        if ex is not None:
            return _reply_of(ex)
        batch = dict(key.params).get("batch")
        if isinstance(batch, tuple) and batch:
            return self._assembled_batch(batch)
        return None

    def _assembled_batch(self, items: tuple[RequestKey, ...]) -> Reply:
        entries, headers = [], None
        for item in items:
            found = self._items.take(item)
            if found is None:
                error = unrecorded_error(item, self.source)
                entries.append({"code": error.http_status, "body": json.dumps(error.body("replay-unrecorded"))})
                continue
            entry, envelope_headers = found
            entries.append(entry)
            headers = headers if headers is not None else envelope_headers
        return Reply(200, dict(headers or {"content-type": JSON_TYPE}), _dumps(entries))

    @property
    def recorded_at(self) -> datetime | None:
        """When the recording began: the ``now`` to give a client replaying it in a test (the days it asks
        for then match the recorded ones)."""
        times = [str(ex["at"]) for ex in self.exchanges if ex.get("at")]
        return datetime.fromisoformat(min(times)) if times else None

    def describe(self) -> str:
        """How many replies, from where and when: the replaying sync should cover the same days."""
        times = sorted(str(ex.get("at")) for ex in self.exchanges if ex.get("at"))
        when = f", recorded {times[0]} to {times[-1]}" if times else ""
        return f"{len(self.exchanges)} recorded replies of {self.source}{when}"

    # -- what the recording holds ------------------------------------------------------------------------------
    def accounts(self) -> list[tuple[str, str | None]]:
        """(ig_user_id, username) of each account the recording read a profile or a media list of, by id."""
        found: dict[str, str | None] = {}
        for ex in self.exchanges:
            for method, path, body in _requests_in(ex):
                match = _ACCOUNT_PATH_RE.match(path)
                if method != "GET" or not match:
                    continue
                ig_user_id, edge = match.groups()
                username = body.get("username") if isinstance(body, dict) else None
                if edge is None and not username:
                    continue  # a post or anything else with an id: only profiles and media lists name accounts
                found[ig_user_id] = username or found.get(ig_user_id)
        return sorted(found.items())


def exchange_key(ex: dict[str, Any]) -> RequestKey:
    params: list[tuple[str, Any]] = [tuple(pair) for pair in ex.get("query") or []]
    params += list((ex.get("form") or {}).items())
    if "batch" in ex:
        params.append(("batch", ex["batch"]))
    elif "batch_text" in ex:
        params.append(("batch", ex["batch_text"]))
    return request_key(str(ex["method"]), urlsplit(str(ex["url"])).path, params)


def _requests_in(ex: dict[str, Any]) -> Iterable[tuple[str, str, Any]]:
    """The exchange's request (method, path, parsed reply body), or each of its batch items."""
    body = ex.get("body")
    if isinstance(ex.get("batch"), list) and isinstance(body, list):
        for item, entry in zip(ex["batch"], body):
            item_body = entry.get("body") if isinstance(entry, dict) else None
            try:
                item_body = json.loads(item_body) if isinstance(item_body, str) else item_body
            except ValueError:
                item_body = None
            yield str(item.get("method") or "GET"), "/" + urlsplit(str(item.get("relative_url"))).path.strip("/"), \
                item_body
    else:
        yield str(ex["method"]), urlsplit(str(ex["url"])).path, body


def _reply_of(ex: dict[str, Any]) -> Reply:
    headers = dict(ex.get("headers") or {})
    headers.setdefault("content-type", JSON_TYPE)
    body = _dumps(ex["body"]) if "body" in ex else str(ex.get("body_text") or "").encode("utf-8")
    return Reply(int(ex["status"]), headers, body)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("ascii")  # as Meta sends it: \u escapes, any text


def unrecorded_error(key: RequestKey, source: str) -> GraphError:
    return GraphError(400, UNRECORDED_CODE, f"Unknown request: the recording in {source} has no reply for "
                                            f"{key.describe()} (ig-analytics sandbox --replay)",
                      type="GraphMethodException")


class ReplayServer(SandboxServer):
    """The sandbox's HTTP server (threads, keep-alive) answering from a Recording instead of a world.

    Only the lifecycle (start, stop, base_url) is inherited: every request goes to ``serve_api`` or ``control``."""

    def __init__(self, recording: Recording, host: str = "127.0.0.1", port: int = 0,
                 on_unrecorded: Callable[[str], None] | None = None) -> None:
        self.recording = recording
        self.host = host
        self._port = port
        self._httpd = None
        self._thread = None
        self.unrecorded: list[str] = []
        self._on_unrecorded = on_unrecorded

    def serve_api(self, handler: Any, req: ApiRequest) -> None:
        reply = self.recording.reply(req.method, req.path, req.params)
        if reply is None:
            key = request_key(req.method, req.path, req.params.items())
            error = unrecorded_error(key, self.recording.source)
            self.unrecorded.append(key.describe())
            if self._on_unrecorded is not None:
                self._on_unrecorded(error.message)
            reply = Reply(error.http_status, {"content-type": JSON_TYPE}, _dumps(error.body("replay-unrecorded")))
        handler._send(reply.status, reply.body, reply.headers)

    def control(self, method: str, path: str, params: dict, body: bytes) -> tuple[int, Any]:
        if path.rstrip("/") == "/__sandbox/accounts" and method == "GET":
            return 200, [{"ig_user_id": i, "username": u} for i, u in self.recording.accounts()]
        return 404, {"error": f"{method} {path}: a replay serves a recording; it has no clock, faults or log"}
