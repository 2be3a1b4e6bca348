"""Graph API errors as the real API shapes them: {"error": {message, type, code, error_subcode, ...}}."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DOCS = "https://developers.facebook.com/docs/graph-api"


@dataclass
class GraphError(Exception):
    http_status: int
    code: int
    message: str
    subcode: int | None = None
    type: str = "OAuthException"
    user_title: str = ""
    user_msg: str = ""
    is_transient: bool = False

    def body(self, fbtrace_id: str) -> dict:
        err: dict = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["error_user_title"] = self.user_title
        err["error_user_msg"] = self.user_msg
        err["fbtrace_id"] = fbtrace_id
        err["is_transient"] = self.is_transient
        return {"error": err}


_OAUTH_CODES = {102, 190}  # token errors keep their OAuthException type on graph.instagram.com too


def as_instagram_host(body: object) -> None:
    """An error body as graph.instagram.com writes it: ``"type": "IGApiException"`` (e.g. code 2500 "Unknown path
    components"), with ``error_data`` (graph-api-facts.md, section 9). Other bodies are left alone."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("code") not in _OAUTH_CODES:
        err["type"] = "IGApiException"
        err.setdefault("error_data", {})


def param(message: str, subcode: int | None = None, title: str = "", user_msg: str = "") -> GraphError:
    return GraphError(400, 100, message, subcode, user_title=title, user_msg=user_msg)


def missing_token() -> GraphError:
    return GraphError(400, 190, "An access token is required to request this resource.",
                      user_title="Access token required", user_msg="Log in again to continue.")


def invalid_token() -> GraphError:
    return GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token",
                      user_title="Invalid access token", user_msg="Log in again to continue.")


def expired_token(expired_at: datetime, now: datetime) -> GraphError:
    fmt = "%A, %d-%b-%y %H:%M:%S UTC"
    return GraphError(
        400, 190,
        f"Error validating access token: Session has expired on {expired_at.strftime(fmt)}. "
        f"The current time is {now.strftime(fmt)}.",
        463, user_title="Session expired", user_msg="Your session has expired. Please log in again.",
    )


def bad_appsecret_proof() -> GraphError:
    return GraphError(400, 100, "Invalid appsecret_proof provided in the API argument",
                      user_title="Invalid appsecret_proof", user_msg="")


def no_such_object(object_id: str, method: str = "get") -> GraphError:
    return GraphError(
        400, 100,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        f"missing permissions, or does not support this operation. Please read the Graph API documentation at {DOCS}",
        33, type="GraphMethodException",
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(400, 2500, f"Unknown path components: {path}", type="OAuthException")


def bad_version(version: str) -> GraphError:
    return GraphError(400, 2635, f"(#2635) You are calling a deprecated or unknown version of the Graph API "
                                 f"({version}). Please update to the latest version: v25.0.")


def nonexisting_field(field: str, node_type: str) -> GraphError:
    return param(f"(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})")


def invalid_metric(index: int, name: str, valid: list[str]) -> GraphError:
    return param(
        f"(#100) metric[{index}] must be one of the following values: {', '.join(valid)}. "
        f"Invalid: the {name} metric is not supported",
        title="Invalid metric", user_msg=f"The {name} metric is not supported.",
    )


def account_metric_removed(name: str, since_version: int) -> GraphError:
    return param(
        f"(#100) Starting from version v{since_version}.0 and above, the {name} metric is no longer supported for "
        f"the queried user. Please refer to the documentation at "
        f"https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a list of supported "
        f"metrics."
    )


def follower_count_window() -> GraphError:
    """A window reaching past follower_count's 30 days: the whole request is refused (graph-api-facts.md, s. 9)."""
    return param("(#100) (follower_count) metric only supports querying data for the last 30 days excluding the "
                 "current day")


def media_metric_unsupported(name: str) -> GraphError:
    return param(f"(#100) The Media Insights API does not support the {name} metric for this media product type.")


def pre_conversion() -> GraphError:
    return param(
        "Invalid parameter", 2108006, title="Media Posted Before Business Account Conversion",
        user_msg="The media was posted before the most recent time that the user's account was converted to a "
                 "business account from a personal account.",
    )


def media_permission_refused() -> GraphError:
    """The refusal Meta sends for one post's insights while the account's other calls work (faults)."""
    return GraphError(400, 10, "(#10) Application does not have permission for this action")


def not_enough_viewers() -> GraphError:
    return GraphError(400, 10, "(#10) Not enough viewers for the media to show insights",
                      user_title="Media Insights Unavailable",
                      user_msg="Insights are not available for media with fewer than 5 viewers.")


def carousel_child() -> GraphError:
    return param("(#100) Media Insights are not available for carousel album children.")


def throttled(minutes: int) -> GraphError:
    return GraphError(400, 80002,
                      "There have been too many calls to this Instagram account. Wait a bit and try again.",
                      user_title="Too many calls",
                      user_msg=f"Try again in about {minutes} minutes.")


def reduce_data() -> GraphError:
    return GraphError(500, 1, "Please reduce the amount of data you're asking for, then retry your request",
                      is_transient=False)


def transient() -> GraphError:
    return GraphError(500, 2, "An unexpected error has occurred. Please retry your request later.",
                      is_transient=True)


def unavailable() -> GraphError:
    return GraphError(503, 2, "Service temporarily unavailable", is_transient=True)


def batch_too_large() -> GraphError:
    return param("(#100) Maximum batch size is 50")
