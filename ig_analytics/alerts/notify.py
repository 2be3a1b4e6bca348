"""Notifications: every event is recorded in instagram.notifications (its dedupe_key is the primary key, so the
same event is never sent twice) and, when a webhook is configured, posted as Slack-compatible JSON
``{"text": ...}`` in the background, with a short timeout and retries with exponential backoff on 429 / 5xx /
connection errors. Delivery problems never raise into the caller, and a receiver that never answers never holds up
a run: ``notify`` returns 'pending' (queued), 'recorded' (no webhook) or 'duplicate'; the row gets 'sent' or
'failed' when the delivery ends. At exit the process gives its pending deliveries ``DRAIN_S`` seconds in total;
one still unfinished then is marked 'failed' (so the next notify of its key tries again).

Texts go through the one redaction (:func:`ig_analytics.redaction.redact`: every registered token and secret,
and the webhook URL itself), then through Slack's escaping, so a caption's ``<!channel>`` or
``<https://evil.example|Verify>`` is shown as text, never acted on.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ig_analytics.redaction import redact, register_secret

log = logging.getLogger(__name__)

PENDING, SENT, RECORDED, FAILED, DUPLICATE = "pending", "sent", "recorded", "failed", "duplicate"
MAX_TEXT = 3500  # Slack shows up to ~4000 characters of a message's text
TIMEOUT_S = (3.0, 5.0)  # connect, read: a receiver that accepts and never answers costs 5 s per attempt
DRAIN_S = 5.0  # at exit, all pending deliveries together get this long
_SENDERS = 4  # delivery threads: a slow receiver holds up at most these, never the run
UNFINISHED = "not delivered before the process ended (the receiver did not answer in time); retried when the event recurs"


def slack_escape(text: str) -> str:
    """Slack's escaping of text that is not ours: ``<!channel>``, ``<@U1>``, ``<url|label>`` become plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _redact_obj(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_obj(v) for v in value]
    return value


class Notifier:
    """Records and delivers notifications. ``sleep`` is injectable for tests; the backoff before retry n
    (n = 1, 2, ...) is ``backoff_s * 2 ** (n - 1)`` seconds (a 429's Retry-After, when larger, up to 60 s)."""

    def __init__(
        self,
        engine: Engine,
        webhook_url: str | None,
        *,
        timeout_s: float | tuple[float, float] = TIMEOUT_S,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = 1.0,
        session: requests.Session | None = None,
    ):
        self.engine = engine
        self.webhook_url = webhook_url or None
        register_secret(self.webhook_url)  # a Slack webhook URL is a credential: never in a log or a message
        self.timeout_s = timeout_s
        self.max_attempts = max(1, int(max_attempts))
        self.sleep = sleep
        self.backoff_s = backoff_s
        self.session = session or requests.Session()

    def __repr__(self) -> str:  # never show the webhook URL (it is a secret for Slack)
        return f"Notifier(webhook={'set' if self.webhook_url else 'unset'})"

    def notify(
        self,
        kind: str,
        dedupe_key: str,
        text: str,
        *,
        ig_user_id: str | None = None,
        payload: dict | None = None,
    ) -> str:
        text = slack_escape(redact(text)[:MAX_TEXT])
        stored = json.dumps(_redact_obj({"text": text, "data": payload or {}}), default=str)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                sa.text(
                    "INSERT INTO instagram.notifications (dedupe_key, kind, ig_user_id, payload, delivery) "
                    "VALUES (:k, :kind, :u, CAST(:p AS jsonb), :d) ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1"
                ),
                {"k": dedupe_key, "kind": kind, "u": ig_user_id, "p": stored,
                 "d": PENDING if self.webhook_url else RECORDED},
            ).scalar()
            if inserted is None:
                # Known event. Only a failed delivery may be tried again (claimed here, so only one caller does).
                claimed = None
                if self.webhook_url:
                    claimed = conn.execute(
                        sa.text(
                            "UPDATE instagram.notifications SET delivery = 'pending' "
                            "WHERE dedupe_key = :k AND delivery = 'failed' RETURNING 1"
                        ),
                        {"k": dedupe_key},
                    ).scalar()
                if claimed is None:
                    return DUPLICATE
        if not self.webhook_url:
            return RECORDED
        _outbox.submit(_Delivery(self, kind, dedupe_key, text))
        return PENDING

    def deliver(self, kind: str, dedupe_key: str, text: str) -> str:
        """Post ``text`` now (a delivery thread) and record the result in its row."""
        status, attempts, error = self._post(text)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE instagram.notifications SET delivery = :d, attempts = attempts + :n, last_error = :e, "
                    "delivered_at = CASE WHEN :d = 'sent' THEN now() ELSE delivered_at END WHERE dedupe_key = :k"
                ),
                {"d": status, "n": attempts, "e": error, "k": dedupe_key},
            )
        if status == FAILED:  # never the text: it may quote captions
            log.warning("notification %s (%s) not delivered after %d attempts: %s", dedupe_key, kind, attempts, error)
        return status

    def _post(self, text: str) -> tuple[str, int, str | None]:
        error = None
        for attempt in range(1, self.max_attempts + 1):
            retry_after = 0.0
            try:
                response = self.session.post(self.webhook_url, json={"text": text}, timeout=self.timeout_s)
            except requests.RequestException as exc:
                # the exception text names the URL: keep only its type
                error = f"{type(exc).__name__} (connection error or timeout)"
            except Exception as exc:  # noqa: BLE001 - delivery must never break the caller
                return FAILED, attempt, f"{type(exc).__name__}"
            else:
                if 200 <= response.status_code < 300:
                    return SENT, attempt, None
                error = f"HTTP {response.status_code}: {redact(response.text[:200])}"
                if response.status_code == 429:
                    try:
                        retry_after = min(60.0, float(response.headers.get("Retry-After", 0)))
                    except ValueError:
                        retry_after = 0.0
                elif response.status_code < 500:
                    return FAILED, attempt, error  # a 4xx other than 429 will not get better
            if attempt < self.max_attempts:
                self.sleep(max(self.backoff_s * 2 ** (attempt - 1), retry_after))
        return FAILED, self.max_attempts, error


@dataclass(eq=False)
class _Delivery:
    notifier: Notifier
    kind: str
    dedupe_key: str
    text: str


class _Outbox:
    """The process's deliveries in flight, posted by a few daemon threads started on first use."""

    def __init__(self) -> None:
        self._queue: queue.Queue[_Delivery] = queue.Queue()
        self._changed = threading.Condition()
        self._unfinished: list[_Delivery] = []
        self._senders: list[threading.Thread] = []

    def submit(self, delivery: _Delivery) -> None:
        with self._changed:
            self._unfinished.append(delivery)
            if not self._senders:
                atexit.register(drain)
            while len(self._senders) < _SENDERS:
                sender = threading.Thread(target=self._send_forever, name="ig-notify", daemon=True)
                sender.start()
                self._senders.append(sender)
        self._queue.put(delivery)

    def _send_forever(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                delivery.notifier.deliver(delivery.kind, delivery.dedupe_key, delivery.text)
            except Exception as exc:  # noqa: BLE001 - e.g. the database is gone: the row stays 'pending'
                log.warning("notification %s: its delivery result was not recorded: %s", delivery.dedupe_key,
                            type(exc).__name__)
            with self._changed:
                if delivery in self._unfinished:
                    self._unfinished.remove(delivery)
                self._changed.notify_all()

    def drain(self, timeout_s: float) -> list[_Delivery]:
        """Wait up to ``timeout_s`` for every delivery; return (and forget) those still unfinished."""
        with self._changed:
            self._changed.wait_for(lambda: not self._unfinished, timeout=timeout_s)
            left, self._unfinished = self._unfinished, []
        return left


_outbox = _Outbox()


def drain(timeout_s: float = DRAIN_S) -> int:
    """Give the pending deliveries up to ``timeout_s`` in total (at exit, and for tests); mark the ones still
    unfinished 'failed' (a later notify of the same key retries them) and return how many they were."""
    left = _outbox.drain(timeout_s)
    for delivery in left:
        try:
            with delivery.notifier.engine.begin() as conn:
                conn.execute(sa.text("UPDATE instagram.notifications SET delivery = 'failed', last_error = :e "
                                     "WHERE dedupe_key = :k AND delivery = 'pending'"),
                             {"e": UNFINISHED, "k": delivery.dedupe_key})
        except Exception as exc:  # noqa: BLE001 - at exit the database may be gone too
            log.warning("notification %s: could not record it as unfinished: %s", delivery.dedupe_key,
                        type(exc).__name__)
    if left:
        log.warning("%d notification(s) %s", len(left), UNFINISHED)
    return len(left)


# ---- the events -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportAlertParams:
    post_reports: bool = True  # post each report's summary
    follower_growth_pct: float = 5.0  # alert when followers grew at least this % over the period ...
    follower_growth_min: int = 10  # ... and by at least this many followers


def notify_needs_reauth(
    notifier: Notifier,
    ig_user_id: str,
    reason: str | None = None,
    *,
    username: str | None = None,
    status_changed_at: datetime | None = None,
) -> str:
    """'This account must be reconnected.' One notification per status change: the dedupe key carries
    ``status_changed_at`` (by default the account's ``accounts.status_changed_at``, so call this after setting the
    status). The text names the account and the reconnect command; the reason is redacted, never a token."""
    if username is None or status_changed_at is None:
        with notifier.engine.begin() as conn:
            row = conn.execute(
                sa.text("SELECT username, status_changed_at FROM instagram.accounts WHERE ig_user_id = :u"),
                {"u": ig_user_id},
            ).one_or_none()
        if row is not None:
            username = username if username is not None else row.username
            status_changed_at = status_changed_at or row.status_changed_at
    who = f"@{username} ({ig_user_id})" if username else ig_user_id
    text = (
        f":warning: Instagram account {who} needs re-authentication; its syncs are paused."
        + (f" Reason: {reason}." if reason else "")
        + f" Reconnect it with `ig-analytics accounts add --ig-user-id {ig_user_id} --token <new token>`."
    )
    key = f"needs_reauth:{ig_user_id}:{status_changed_at.isoformat() if status_changed_at else 'unknown'}"
    return notifier.notify("needs_reauth", key, text, ig_user_id=ig_user_id, payload={"reason": reason})


# One row of ``analytics.trending.new_trending_entries``: ig_user_id, username, media_id, rank, score, details,
# permalink, caption, ...
TrendingEntry = Mapping[str, Any]


def notify_new_trending(
    notifier: Notifier, entries: Sequence[TrendingEntry], *, max_rank: int | None = 3
) -> list[tuple[str, str]]:
    """A notification per post that entered the top ``max_rank`` of its account's trending list (``entries``:
    what ``trending.new_trending_entries(conn, as_of)`` returns). A post is announced once, ever. Returns
    (dedupe_key, status) per notification."""
    out = []
    for entry in entries:
        if max_rank is not None and entry["rank"] > max_rank:
            continue
        details = entry.get("details") or {}
        who = f"@{entry['username']}" if entry.get("username") else entry["ig_user_id"]
        caption = (entry.get("caption") or "").replace("\n", " ")[:80]
        gain = details.get("gain")
        text = (
            f":fire: New trending post for {who} (#{entry['rank']}): {entry.get('permalink') or entry['media_id']}"
            + (f" \"{caption}\"" if caption else "")
            + (f" +{gain:,.0f} engagements in the last {details.get('window_hours', 3):g} h" if gain is not None else "")
            + (f", {details['z']:.1f} robust SDs above {details.get('baseline_n')} earlier posts at the same age"
               if details.get("z") is not None else "")
        )
        key = f"trending:{entry['ig_user_id']}:{entry['media_id']}"
        status = notifier.notify(
            "trending", key, text, ig_user_id=entry["ig_user_id"],
            payload={"media_id": entry["media_id"], "rank": entry["rank"], "score": entry["score"], "details": details},
        )
        out.append((key, status))
    return out


def notify_report_events(notifier: Notifier, results, params: ReportAlertParams = ReportAlertParams()) -> list[tuple[str, str]]:
    """For each reports.ReportResult: post the report summary (when ``post_reports``), and a growth alert when
    followers grew by >= ``follower_growth_pct`` % and >= ``follower_growth_min`` over the period.
    Returns (dedupe_key, status) per notification."""
    out = []
    for result in results:
        report = result.report
        period = report["period"]
        kind = report.get("kind", "report")
        base = f"{result.ig_user_id}:{kind}:{period['start']}:{period['end']}"
        if params.post_reports:
            key = f"report:{base}"
            out.append((key, notifier.notify("report", key, result.markdown, ig_user_id=result.ig_user_id,
                                             payload={"period": period, "kind": kind})))
        am = report.get("account_metrics") or {}
        growth, total = am.get("follower_growth"), am.get("followers_total")
        if growth is None or total is None:
            continue
        start_total = total - growth
        pct = growth / start_total * 100.0 if start_total > 0 else None
        if pct is not None and growth >= params.follower_growth_min and pct >= params.follower_growth_pct:
            who = f"@{report['username']}" if report.get("username") else result.ig_user_id
            text = (
                f":chart_with_upwards_trend: {who} gained {growth:+,} followers ({pct:+.1f}%) from "
                f"{am.get('follower_growth_from')} to {am.get('follower_growth_to')}: now {total:,}."
            )
            key = f"follower_growth:{base}"
            out.append((key, notifier.notify("follower_growth", key, text, ig_user_id=result.ig_user_id,
                                             payload={"growth": growth, "pct": pct, "followers_total": total})))
    return out
