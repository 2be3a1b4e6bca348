"""Issue 28 row 1: what an access token may look like, checked at the door, and a refresh reply held to the same
rule (a new token Meta's reply carried is stored only when it could be sent)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ig_analytics.graph_api.errors import MalformedResponseError
from ig_analytics.graph_api.token_format import MAX_TOKEN_LEN, check_token, from_stdin_line, token_problem
from ig_analytics.graph_api.tokens import TokenApi


@pytest.mark.parametrize("token, rule", [
    ("EAAGlongtokenvalue123456\nEAAGsecondhalf7890", "a line break at character 25"),
    ("EAAG token-value-1234", "a space at character 5"),
    ("EAAGtoken-value\r", "a carriage return at character 16"),
    ("EAAGtöken-value-1234", "the character U+00F6 at character 6"),
    ("EAAGtoken\x00value", "the character U+0000 at character 10"),
    ("short", "8 to 2048 characters long, not 5"),
    ("E" * (MAX_TOKEN_LEN + 1), f"not {MAX_TOKEN_LEN + 1:,}"),
    ("", "empty"),
])
def test_what_is_not_a_token_is_refused_naming_the_rule_never_the_token(token, rule):
    problem = token_problem(token)
    assert problem is not None and rule in problem
    assert len(token) < 8 or token[4:12] not in problem  # the message never carries the token


def test_real_token_shapes_pass_and_stdin_loses_one_newline_only():
    for token in ("EAAGm0PX4ZCpsBAKZAbc123", "IGAAJ-x_y.z~1", "1234567890|app-secret-value", "E" * MAX_TOKEN_LEN):
        assert check_token(token) == token
    assert from_stdin_line("EAAGtoken-1234\n") == "EAAGtoken-1234"
    assert from_stdin_line("EAAGtoken-1234\r\n") == "EAAGtoken-1234"
    assert token_problem(from_stdin_line("EAAGtoken-1234\n\n")) is not None  # a second line is not trimmed away
    assert token_problem(from_stdin_line(" EAAGtoken-1234\n")) is not None


@pytest.fixture()
def refresh_reply():
    """A Graph API double that answers /refresh_access_token with the token a test sets."""
    answer = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            body = json.dumps({"access_token": answer["token"], "token_type": "bearer",
                               "expires_in": 5_184_000}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield answer, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_refresh_reply_whose_token_could_not_be_sent_is_refused(refresh_reply):
    answer, url = refresh_reply
    api = TokenApi(url, max_attempts=1)
    answer["token"] = "IGAAnewtoken-0123456789"
    assert api.refresh_instagram_token("IGAAoldtoken-0123456789").token == "IGAAnewtoken-0123456789"
    answer["token"] = "IGAAnewtoken\n0123456789"
    with pytest.raises(MalformedResponseError, match="a line break at character 13") as refused:
        api.refresh_instagram_token("IGAAoldtoken-0123456789")
    assert "0123456789" not in str(refused.value)
