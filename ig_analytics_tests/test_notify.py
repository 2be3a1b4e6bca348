import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from ig_analytics.analytics.reports import ReportResult
from ig_analytics.analytics.trending import new_trending_entries, parameter_set_id
from ig_analytics.analytics.trending_scores import TrendingParams
from ig_analytics.alerts.notify import (
    Notifier,
    ReportAlertParams,
    notify_needs_reauth,
    notify_new_trending,
    notify_report_events,
)
from ig_analytics.alerts import notify as notify_module
from ig_analytics.redaction import forget_secret, register_secret
from ig_analytics.storage import db
from ig_analytics_tests.analytics_data import add_account, add_media, ts


class Receiver:
    """A local webhook: answers with the queued status codes (then 200) and records each body."""

    def __init__(self):
        self.bodies, self.codes = [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.bodies.append(json.loads(body))
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"oops")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def delivered():
    """Deliveries run in the background: each test ends with none in flight (a stuck one fails the test)."""
    yield
    assert notify_module.drain(30) == 0


def settle() -> None:
    assert notify_module.drain(30) == 0


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def _row(engine, key):
    with engine.begin() as conn:
        return conn.execute(sa.text("SELECT * FROM instagram.notifications WHERE dedupe_key = :k"), {"k": key}).one()


def test_delivered_once_then_duplicate(engine, receiver):
    sleeps = []
    n = Notifier(engine, receiver.url, sleep=sleeps.append)
    assert n.notify("report", "k1", "hello", ig_user_id="1", payload={"a": 1}) == "pending"
    assert n.notify("report", "k1", "hello again", ig_user_id="1") == "duplicate"
    settle()
    assert receiver.bodies == [{"text": "hello"}]
    row = _row(engine, "k1")
    assert (row.delivery, row.attempts, row.kind, row.ig_user_id) == ("sent", 1, "report", "1")
    assert row.payload == {"text": "hello", "data": {"a": 1}} and row.delivered_at is not None
    assert sleeps == []


def test_retried_on_500_with_backoff(engine, receiver):
    receiver.codes = [500, 503]
    sleeps = []
    n = Notifier(engine, receiver.url, sleep=sleeps.append, max_attempts=3)
    assert n.notify("trending", "k2", "boom") == "pending"
    settle()
    assert _row(engine, "k2").delivery == "sent"
    assert len(receiver.bodies) == 3 and sleeps == [1.0, 2.0]
    assert _row(engine, "k2").attempts == 3


def test_failed_is_not_raised_and_can_be_retried_later(engine, receiver):
    receiver.codes = [500, 500]
    n = Notifier(engine, receiver.url, sleep=lambda s: None, max_attempts=2)
    assert n.notify("report", "k3", "x") == "pending"
    settle()
    row = _row(engine, "k3")
    assert row.delivery == "failed" and row.attempts == 2 and "HTTP 500" in row.last_error
    # a later run delivers the failed event once; then it is a duplicate
    assert n.notify("report", "k3", "x") == "pending"
    settle()
    assert n.notify("report", "k3", "x") == "duplicate"
    assert len(receiver.bodies) == 3 and _row(engine, "k3").attempts == 3 and _row(engine, "k3").delivery == "sent"
    # a 4xx is final at once
    receiver.codes = [404]
    assert n.notify("report", "k4", "x") == "pending"
    settle()
    assert _row(engine, "k4").delivery == "failed" and _row(engine, "k4").attempts == 1


def test_connection_error_is_recorded_without_the_url(engine):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/SECRETPART"
    n = Notifier(engine, url, sleep=lambda s: None, max_attempts=2, timeout_s=2)
    assert n.notify("report", "k5", "x") == "pending"
    settle()
    row = _row(engine, "k5")
    assert row.delivery == "failed" and "SECRETPART" not in row.last_error and "Connection" in row.last_error
    assert "SECRETPART" not in repr(n)


def test_recorded_without_webhook(engine):
    n = Notifier(engine, None)
    assert n.notify("report", "k6", "hi") == "recorded"
    assert n.notify("report", "k6", "hi") == "duplicate"
    assert _row(engine, "k6").delivery == "recorded"


def test_reauth_text_never_contains_a_token(engine, receiver):
    token = "EAAB" + "x1Y2" * 30
    n = Notifier(engine, receiver.url, sleep=lambda s: None)
    status = notify_needs_reauth(
        n, "17841400000000001", username="shop",
        reason=f"Error validating access token (code 190) for access_token={token}",
        status_changed_at=ts(2026, 2, 1, 12),
    )
    assert status == "pending"
    settle()
    sent = receiver.bodies[0]["text"]
    assert token not in sent and "x1Y2x1Y2" not in sent
    assert "@shop" in sent and "17841400000000001" in sent and "re-authentication" in sent
    with engine.begin() as conn:
        stored = conn.execute(sa.text("SELECT payload::text FROM instagram.notifications")).scalar()
    assert "x1Y2x1Y2" not in stored


def _result(uid, growth, total, start="2026-02-02", end="2026-02-08"):
    report = {"ig_user_id": uid, "username": f"u{uid}", "kind": "weekly", "period": {"start": start, "end": end},
              "account_metrics": {"follower_growth": growth, "followers_total": total,
                                  "follower_growth_from": start, "follower_growth_to": end}}
    return ReportResult(uid, report, Path("/tmp/x.html"), f"**@u{uid}** summary")


def test_report_events(engine, receiver):
    n = Notifier(engine, receiver.url, sleep=lambda s: None)
    results = [_result("a", 60, 1060), _result("b", 3, 1003), _result("c", None, None)]
    out = notify_report_events(n, results, ReportAlertParams(follower_growth_pct=5.0, follower_growth_min=10))
    keys = dict(out)
    assert keys["follower_growth:a:weekly:2026-02-02:2026-02-08"] == "pending"
    settle()
    assert not any(k.startswith("follower_growth:b") or k.startswith("follower_growth:c") for k in keys)
    assert sum(k.startswith("report:") for k in keys) == 3
    texts = [b["text"] for b in receiver.bodies]
    assert any("+60 followers (+6.0%)" in t for t in texts)
    # the same results again: nothing is re-sent
    again = notify_report_events(n, results)
    assert {s for _, s in again} == {"duplicate"} and len(receiver.bodies) == 4


def test_new_trending_notifications(engine):
    as_of1, as_of2 = ts(2026, 3, 1, 10), ts(2026, 3, 1, 11)
    with engine.begin() as conn:
        add_account(conn, "T", username="brand")
        add_media(conn, [{"media_id": m, "ig_user_id": "T", "published_at": ts(2026, 3, 1)} for m in ("a", "b")])
        p = parameter_set_id(conn, TrendingParams(), as_of1)
        db.bulk_upsert(conn, "trending_evaluations",
                       ["ig_user_id", "as_of", "candidates", "scored", "listed", "params_id", "computed_at"],
                       [("T", as_of1, 2, 2, 1, p, as_of1), ("T", as_of2, 2, 2, 2, p, as_of2)], ["ig_user_id", "as_of"])
        db.bulk_upsert(conn, "trending_posts", ["ig_user_id", "as_of", "rank", "media_id", "score", "details"],
                       [("T", as_of1, 1, "a", 5.0, {"gain": 10, "z": 5, "baseline_n": 6}),
                        ("T", as_of2, 1, "b", 9.0, {"gain": 99, "z": 12, "baseline_n": 6}),
                        ("T", as_of2, 2, "a", 4.0, {"gain": 9, "z": 4, "baseline_n": 6})],
                       ["ig_user_id", "as_of", "rank"])
        n = Notifier(engine, None)
        out = notify_new_trending(n, new_trending_entries(conn, as_of2))
    assert out == [("trending:T:b", "recorded")]
    row = _row(engine, "trending:T:b")
    assert "@brand" in row.payload["text"] and "+99 engagements" in row.payload["text"]


def test_reauth_once_per_status_change_from_the_accounts_table(engine):
    with engine.begin() as conn:
        add_account(conn, "42", username="cafe", status="needs_reauth")
    n = Notifier(engine, None)
    assert notify_needs_reauth(n, "42", "Error validating access token") == "recorded"  # positional reason
    assert notify_needs_reauth(n, "42", "again") == "duplicate"  # same status change
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE instagram.accounts SET status_changed_at = now() + interval '1 day'"))
    assert notify_needs_reauth(n, "42", "later episode") == "recorded"
    with engine.begin() as conn:
        texts = conn.execute(sa.text("SELECT payload->>'text' FROM instagram.notifications")).scalars().all()
    assert len(texts) == 2 and all("@cafe (42)" in t for t in texts)


def test_new_trending_from_an_entries_list(engine):
    n = Notifier(engine, None)
    entries = [
        {"ig_user_id": "T", "username": None, "media_id": "x", "rank": 1, "score": 3.0, "details": {"gain": 5.0},
         "permalink": None, "caption": "line\nbreak"},
        {"ig_user_id": "T", "username": None, "media_id": "y", "rank": 7, "score": 2.0, "details": {}},
    ]
    assert notify_new_trending(n, entries) == [("trending:T:x", "recorded")]
    assert "line break" in _row(engine, "trending:T:x").payload["text"]


class SilentReceiver:
    """A webhook that accepts connections and never answers (issue 28 row 7)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/services/hook"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self.server.close()
        for conn in self.held:
            conn.close()
        self.thread.join()


def test_a_receiver_that_never_answers_holds_up_nothing_and_ends_failed(engine):
    silent = SilentReceiver()
    try:
        n = Notifier(engine, silent.url, sleep=lambda s: None)
        # the caller gets its answer while the receiver still holds both requests unanswered
        assert n.notify("needs_reauth", "slow1", "first") == "pending"
        assert n.notify("needs_reauth", "slow2", "second") == "pending"
        assert _row(engine, "slow1").delivery == "pending"
        # what exit does: a short chance for all of them together, then the unfinished ones are marked failed
        assert notify_module.drain(0.5) == 2
        for key in ("slow1", "slow2"):
            row = _row(engine, key)
            assert row.delivery == "failed" and "did not answer in time" in row.last_error
        assert n.notify("needs_reauth", "slow1", "first") == "pending"  # the next occurrence tries again
    finally:
        silent.close()  # the held requests fail now, the retried one too: nothing stays in flight


def test_a_registered_secret_in_a_webhook_text_is_masked(engine, receiver):
    secret = "s3cretAppValue0987zz"  # registered (as the client registers every token), in no known pattern
    register_secret(secret)
    try:
        n = Notifier(engine, receiver.url, sleep=lambda s: None)
        n.notify("run_failed", "r1", f"step failed: bad value {secret} in reply", payload={"error": f"x {secret}"})
        settle()
        assert secret not in receiver.bodies[0]["text"] and "[REDACTED]" in receiver.bodies[0]["text"]
        with engine.connect() as conn:
            assert secret not in conn.execute(sa.text("SELECT payload::text FROM instagram.notifications")).scalar()
        assert receiver.url not in json.dumps(receiver.bodies)  # nor the webhook URL itself
    finally:
        forget_secret(secret)


def test_slack_control_sequences_in_a_caption_are_plain_text(engine, receiver):
    caption = "<!channel> <!here> <@U123> <https://evil.example/login|Verify your account> & co"
    n = Notifier(engine, receiver.url, sleep=lambda s: None)
    notify_new_trending(n, [{"ig_user_id": "T", "username": "x<!channel>", "media_id": "m", "rank": 1,
                             "score": 1.0, "details": {}, "permalink": None, "caption": caption}])
    settle()
    text = receiver.bodies[0]["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.example/login|Verify" in text and "&amp; c" in text
