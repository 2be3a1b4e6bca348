"""Batch requests: ``POST /`` with ``batch=[{"method":"GET","relative_url":...}, ...]`` (at most 50)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ig_analytics.sandbox import catalog, errors
from ig_analytics.sandbox.account import SandboxAccount
from ig_analytics.sandbox.protocol import ApiRequest, ApiResponse

if TYPE_CHECKING:  # pragma: no cover
    from ig_analytics.sandbox.world import SandboxWorld

MAX_BATCH = 50


class BatchEndpoint:
    world: "SandboxWorld"

    def _batch(self, req: ApiRequest, version_str: str) -> ApiResponse:
        try:
            items = json.loads(req.params["batch"])
        except (ValueError, TypeError):
            raise errors.param("(#100) The parameter batch must be a JSON array") from None
        if not isinstance(items, list):
            raise errors.param("(#100) The parameter batch must be a JSON array")
        if len(items) > MAX_BATCH:
            raise errors.batch_too_large()
        token, _ = self._auth(req)  # the batch's fallback token must be valid
        include_headers = str(req.params.get("include_headers", "true")).lower() != "false"
        out, responses, requests_ = [], [], []
        touched: list[SandboxAccount] = []
        for item in items:
            sub_req, resp = self._batch_item(item, req, token, version_str)
            requests_.append(sub_req)
            responses.append(resp)
            if resp.account is not None and resp.account not in touched:
                touched.append(resp.account)
            entry: dict[str, Any] = {"code": resp.status}
            if include_headers:
                entry["headers"] = self.item_headers(resp)
            entry["body"] = json.dumps(resp.body, separators=(",", ":"))
            if getattr(resp, "_malformed", False):
                entry["body"] = entry["body"][: max(1, len(entry["body"]) // 2)]
            out.append(entry)
        return ApiResponse(200, out, version_str, None, None, touched, responses, requests_)

    def _batch_item(self, item: Any, req: ApiRequest, token: str, version_str: str) -> tuple[ApiRequest, ApiResponse]:
        if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
            sub = ApiRequest("GET", "", {}, batch_item=True)
            return sub, self.error_response(errors.param("(#100) Each batch item needs a relative_url"), version_str)
        method = str(item.get("method") or "GET").upper()
        parts = urlsplit(item["relative_url"])
        path = parts.path if parts.path.startswith("/") else "/" + parts.path
        first = [s for s in path.split("/") if s][:1]
        if not (first and catalog.is_version_segment(first[0])):
            path = f"/{version_str}{path}"
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if method != "GET" and item.get("body"):
            params.update(parse_qsl(str(item["body"]), keep_blank_values=True))
        if "access_token" not in params and "appsecret_proof" in req.params:
            params["appsecret_proof"] = req.params["appsecret_proof"]  # the batch's proof covers items on its token
        params.setdefault("access_token", token)
        sub = ApiRequest(method, path, params, None, req.base_url, batch_item=True)
        owner = self.world.owner_of(path.strip("/").split("/")[1]) if len(path.strip("/").split("/")) > 1 else None
        fault = self.world.faults_for(owner).pick()
        if fault in ("transient", "unavailable"):
            e = errors.transient() if fault == "transient" else errors.unavailable()
            return sub, self.error_response(e, version_str, owner)
        resp = self.handle(sub)
        if fault == "malformed" and resp.status == 200:
            resp._malformed = True  # type: ignore[attr-defined]
        return sub, resp

