"""The HTTP server: ThreadingHTTPServer (daemon threads, HTTP/1.1 keep-alive) in front of SandboxAPI.

Per request: latency fault (sleep in the handler thread), one fault draw (transient 500/503, malformed
or truncated body), then the API; every response carries X-App-Usage and X-Business-Use-Case-Usage.
``/__sandbox/*`` is the control API for out-of-process use (accounts, clock, faults, reset, log).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ig_analytics.sandbox import catalog, errors, tokens_api
from ig_analytics.sandbox.api import JSON_TYPE, ApiRequest, ApiResponse, SandboxAPI
from ig_analytics.sandbox.clock import as_utc
from ig_analytics.sandbox.usage import UsageTracker
from ig_analytics.sandbox.world import SandboxWorld

_SECRET_PARAMS = ("access_token", "appsecret_proof", "client_secret", "input_token")


@dataclass(frozen=True)
class RequestRecord:
    method: str
    version: str | None
    path: str  # without the version, e.g. "/17841400000000001/insights"
    params: dict[str, str]  # access_token / appsecret_proof removed
    ig_user_id: str | None
    status: int
    error_code: int | None = None
    batch_item: bool = False  # one item of a batch (the batch itself is a separate record with path "/")
    at: datetime | None = field(default=None, compare=False)  # sandbox clock


def _record(req: ApiRequest, resp: ApiResponse, at: datetime) -> RequestRecord:
    parts = [p for p in req.path.split("/") if p]
    version = None
    if parts and catalog.is_version_segment(parts[0]):
        version, parts = parts[0], parts[1:]
    params = {k: v for k, v in req.params.items() if k not in _SECRET_PARAMS}
    if "batch" in params:
        params["batch"] = f"<{len(resp.items)} items>"
    acct = resp.account.ig_user_id if resp.account is not None else resp.target_id
    return RequestRecord(req.method, version, "/" + "/".join(parts), params, acct, resp.status, resp.error_code,
                         req.batch_item, at)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, addr, handler, sandbox: "SandboxServer") -> None:
        self.sandbox = sandbox
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxGraphAPI/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this

    def setup(self) -> None:
        super().setup()
        try:  # no Nagle: small responses must not wait for the client's delayed ACK (~40 ms)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no per-request stderr logging
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        sandbox: SandboxServer = self.server.sandbox  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        ctype = (self.headers.get("Content-Type") or "").lower()
        if split.path.startswith("/__sandbox"):
            status, out = sandbox.control(method, split.path, params, body)
            self._send(status, json.dumps(out).encode(), {"Content-Type": JSON_TYPE})
            return
        if body:
            try:
                if "json" in ctype:
                    data = json.loads(body)
                    params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
                else:
                    params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except (ValueError, AttributeError, UnicodeDecodeError):
                pass
        host = self.headers.get("Host") or f"{sandbox.host}:{sandbox.port}"
        req = ApiRequest(method, split.path, params, self.headers.get("Authorization"), f"http://{host}")
        sandbox.serve_api(self, req)

    def _send(self, status: int, payload: bytes, headers: dict[str, str], cut: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        if cut:
            self.send_header("Connection", "close")
            payload = payload[: max(1, len(payload) // 2)]
        # headers and body in one write
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(payload)
        self.flush_headers()
        if cut:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


REQUEST_LOG_LIMIT = 500_000


class SandboxServer:
    """A real HTTP Graph API over a SandboxWorld. ``with SandboxServer(world) as srv: srv.base_url``."""

    def __init__(self, world: SandboxWorld, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        self.host = host
        self._port = port
        self.usage = UsageTracker(len(world.accounts))
        self.api = SandboxAPI(world, self.usage)
        self.request_log: list[RequestRecord] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SandboxServer":
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self._port), _Handler, self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"sandbox-graph-api:{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def reset(self) -> None:
        """World back to its initial clock and no faults; usage counters and the request log cleared."""
        self.world.reset()
        self.usage.reset()
        self.reset_log()

    # ------------------------------------------------------------------ log
    def reset_log(self) -> None:
        self.request_log.clear()

    def calls(self, ig_user_id: str | None = None, path_contains: str | None = None,
              include_batch_items: bool = True) -> int:
        """How many API calls the log holds (batch items count as calls; the batch envelope does not)."""
        n = 0
        for r in list(self.request_log):
            if r.path == "/" and not r.batch_item and r.params.get("batch"):
                continue
            if r.batch_item and not include_batch_items:
                continue
            if ig_user_id is not None and r.ig_user_id != ig_user_id:
                continue
            if path_contains is not None and path_contains not in r.path:
                continue
            n += 1
        return n

    # ------------------------------------------------------------------ API
    def serve_api(self, handler: _Handler, req: ApiRequest) -> None:
        parts = [p for p in req.path.split("/") if p]
        if parts and catalog.is_version_segment(parts[0]):
            parts = parts[1:]
        owner = self.world.owner_of(parts[0]) if parts else None
        faults = self.world.faults_for(owner)
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        fault = faults.pick()
        if fault in ("transient", "unavailable"):
            e = errors.transient() if fault == "transient" else errors.unavailable()
            resp = self.api.error_response(e, None, None)
            resp.target_id = owner.ig_user_id if owner is not None else None
        else:
            resp = self.api.handle(req)
        now = self.world.clock.now()
        records = [_record(req, resp, now)]
        records += [_record(sub_req, sub_resp, now) for sub_req, sub_resp in zip(resp.item_requests, resp.items)]
        # one extend (atomic in CPython): a batch's items follow it in the log, never another thread's request
        self.request_log.extend(records)
        if len(self.request_log) > REQUEST_LOG_LIMIT:  # a long-running `ig-analytics sandbox` stays small
            del self.request_log[: REQUEST_LOG_LIMIT // 2]
        payload = json.dumps(resp.body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": JSON_TYPE,
            "facebook-api-version": resp.version or f"v{catalog.NEWEST_VERSION}.0",
            "x-fb-rev": "1000000",
            "Cache-Control": "private, no-cache, no-store, must-revalidate",
            "Access-Control-Allow-Origin": "*",
            **self.api.usage_headers(resp),
        }
        if isinstance(resp.body, dict) and "error" in resp.body:
            headers["x-fb-trace-id"] = resp.body["error"].get("fbtrace_id", "")
            if resp.error_code == 190:
                headers["WWW-Authenticate"] = (f'OAuth "Facebook Platform" "invalid_token" '
                                               f'"{resp.body["error"]["message"]}"')
        cut = False
        if resp.status == 200 and fault == "malformed":
            payload = payload[: max(1, len(payload) // 2)]
        elif resp.status == 200 and fault == "truncated":
            cut = True
        handler._send(resp.status, payload, headers, cut=cut)

    # ------------------------------------------------------------------ control API
    def control(self, method: str, path: str, params: dict, body: bytes) -> tuple[int, Any]:
        world = self.world
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "body must be JSON"}
        if not isinstance(data, dict):
            return 400, {"error": "body must be a JSON object"}
        route = path.rstrip("/")
        if route == "/__sandbox/accounts" and method == "GET":
            return 200, [{"ig_user_id": a.ig_user_id, "username": a.username, "token": a.token,
                          "timezone": a.timezone} for a in world.accounts]
        if route == "/__sandbox/clock":
            if method == "POST":
                try:
                    if "now" in data:
                        world.clock.set(as_utc(datetime.fromisoformat(str(data["now"]).replace("Z", "+00:00"))))
                    if "advance_seconds" in data:
                        world.clock.advance(timedelta(seconds=float(data["advance_seconds"])))
                    if "frozen" in data:
                        world.clock.freeze() if data["frozen"] else world.clock.unfreeze()
                except (TypeError, ValueError) as e:
                    return 400, {"error": str(e)}
            return 200, {"now": world.clock.now().isoformat(), "frozen": world.clock.frozen}
        if route == "/__sandbox/faults":
            target_id = data.pop("ig_user_id", None) or params.get("ig_user_id")
            acct = world.find_account(str(target_id)) if target_id else None
            if target_id and acct is None:
                return 404, {"error": f"no account {target_id}"}
            if method == "POST":
                try:
                    current = world.faults_for(acct)
                    new = current.updated(**data)
                except TypeError as e:
                    return 400, {"error": str(e)}
                if acct is not None:
                    acct.faults = new
                else:
                    world.faults = new
            return 200, world.faults_for(acct).to_dict()
        if route == "/__sandbox/reset" and method == "POST":
            self.reset()
            return 200, {"ok": True, "now": world.clock.now().isoformat()}
        if route == "/__sandbox/tokens":  # Instagram-Login tokens, Facebook users and their Pages (tokens_api.py)
            return tokens_api.control(world, method, data)
        if route == "/__sandbox/log" and method == "GET":
            return 200, [{**asdict(r), "at": r.at.isoformat() if r.at else None} for r in self.request_log]
        return 404, {"error": f"unknown control endpoint {method} {path}"}
