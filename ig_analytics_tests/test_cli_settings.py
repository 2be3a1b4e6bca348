"""Commands and settings of the contract, end to end: `ig-analytics` as a subprocess against the sandbox over
HTTP and a real PostgreSQL. Every expected value comes from the sandbox (its ground truth, its request log),
or from an independent decryption with the `cryptography` library, never from the code under test."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.sandbox.account import day_end
from ig_analytics.sandbox.catalog import account_lag_hours
from ig_analytics_tests.new_user import run_cli

pytestmark = pytest.mark.slow



class Cli:
    def __init__(self, world: SandboxWorld, server: SandboxServer, engine, now: datetime):
        self.world, self.server, self.engine = world, server, engine
        self.now = now  # the wall clock when the test began: the CLI reads it too
        self.until = now.date() - timedelta(days=3)  # old enough that every metric has arrived
        self.since = self.until - timedelta(days=4)
        self.days = [self.since + timedelta(days=i) for i in range(5)]

    def __call__(self, *args: str, input: str | None = None, **env: str):
        return run_cli(list(args), env={**os.environ, **env}, input=input)

    def add_all(self, **env: str) -> None:
        for a in self.world.accounts:
            result = self("accounts", "add", "--ig-user-id", a.ig_user_id, "--token", "-", "--timezone", a.timezone,
                          input=a.token + "\n", **env)
            assert result.returncode == 0, result.stdout + result.stderr

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def calls_by_account(self, skip_edges: tuple[str, ...] = ()) -> dict[str, int]:
        """HTTP requests the sandbox received per account: a batch is one request, owned by its items' account
        (the log lists a batch's items right after it). ``skip_edges``: requests (or batches) of only these edges
        are not counted."""
        counts: dict[str, int] = {}
        log = list(self.server.request_log)
        for n, record in enumerate(log):
            if record.batch_item:
                continue
            owner = record.ig_user_id
            edges = [record.path.rsplit("/", 1)[-1]]
            if owner is None and record.path == "/":
                items, edges = [], []
                for later in log[n + 1:]:
                    if not later.batch_item:
                        break
                    items.append(later.ig_user_id)
                    edges.append(later.path.rsplit("/", 1)[-1])
                owner = items[0] if items and len(set(items)) == 1 else None
            if skip_edges and all(edge in skip_edges for edge in edges):
                continue
            if owner:
                counts[owner] = counts.get(owner, 0) + 1
        return counts


@pytest.fixture()
def cli(engine, ig_home, monkeypatch):
    now = datetime.now(timezone.utc)
    world = SandboxWorld.demo(now=now)  # frozen at the wall clock when the test begins: every value is reproducible
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("IG_GRAPH_API_VERSION", raising=False)
    with SandboxServer(world, port=0) as server:
        monkeypatch.setenv("IG_GRAPH_API_URL", server.base_url)
        yield Cli(world, server, engine, now)


def _sync_account_days(cli: Cli, *extra: str, **env: str):
    return cli("sync", "--type", "account", "--since", cli.since.isoformat(), "--until", cli.until.isoformat(), *extra, **env)


def test_sync_since_until_stores_exactly_those_days_and_counts_calls_and_rows(cli):
    cli.add_all()
    cli.server.reset_log()
    result = _sync_account_days(cli)
    assert result.returncode == 0, result.stdout + result.stderr
    stored = cli.rows("SELECT ig_user_id, date, reach, views FROM instagram.account_insights_daily ORDER BY 1, 2")
    assert stored == [(a.ig_user_id, d, cli.world.account_metric(a.ig_user_id, "reach", d),
                       cli.world.account_metric(a.ig_user_id, "views", d)) for a in cli.world.accounts for d in cli.days]
    assert cli.rows("SELECT count(*) FROM instagram.media") == [(0,)]  # --type account: no media
    runs = {r[0]: r[1:] for r in cli.rows("SELECT ig_user_id, sync_type, api_calls, rows_written FROM instagram.sync_runs")}
    calls = cli.calls_by_account()
    for a in cli.world.accounts:
        written = cli.rows("SELECT (SELECT count(*) FROM instagram.account_insights_daily WHERE ig_user_id = :i)"
                           " + (SELECT count(*) FROM instagram.account_profile_snapshots WHERE ig_user_id = :i)",
                           i=a.ig_user_id)[0][0]
        assert runs[a.ig_user_id] == ("account", calls[a.ig_user_id], written)


def test_sync_type_media_captures_posts_only(cli):
    cli.add_all()
    cli.server.reset_log()
    result = cli("sync", "--type", "media")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cli.rows("SELECT count(*) FROM instagram.account_insights_daily") == [(0,)]
    assert {r[0] for r in cli.rows("SELECT sync_type FROM instagram.sync_runs")} == {"media"}
    snapshots = cli.rows("SELECT media_id, reach, likes, saved FROM instagram.media_insights_snapshots")
    assert len(snapshots) > 50
    for media_id, reach, likes, saved in snapshots:
        assert (reach, likes, saved) == tuple(cli.world.media_metric(media_id, m) for m in ("reach", "likes", "saved"))
    runs = dict(cli.rows("SELECT ig_user_id, api_calls FROM instagram.sync_runs"))
    # comments and tagged posts are read by their own steps, which count their calls in their run metadata
    assert runs == cli.calls_by_account(skip_edges=("comments", "tags"))
    written = dict(cli.rows("SELECT ig_user_id, rows_written FROM instagram.sync_runs"))
    for a in cli.world.accounts:
        media = cli.rows("SELECT (SELECT count(*) FROM instagram.media WHERE ig_user_id = :i)"
                         " + (SELECT count(*) FROM instagram.media_insights_snapshots WHERE ig_user_id = :i)",
                         i=a.ig_user_id)[0][0]
        assert written[a.ig_user_id] == media


def test_graph_api_version_setting_is_used_for_every_call(cli):
    cli.add_all()
    cli.server.reset_log()
    result = _sync_account_days(cli, IG_GRAPH_API_VERSION="v18.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {r.version for r in cli.server.request_log if not r.batch_item} == {"v18.0"}
    # v18.0 still serves impressions (retired in v22): now they are stored, and equal the sandbox's
    stored = cli.rows("SELECT ig_user_id, date, impressions FROM instagram.account_insights_daily")
    assert len(stored) == 15
    assert all(imp == cli.world.account_metric(i, "impressions", d) for i, d, imp in stored)


def test_app_secret_setting_adds_appsecret_proof_to_every_call(cli):
    cli.world.app_secret = "sandbox-app-secret"
    cli.world.require_appsecret_proof = True  # the sandbox refuses calls without a valid proof
    cli.add_all(IG_APP_SECRET="sandbox-app-secret")
    refused = _sync_account_days(cli)
    assert refused.returncode == 1
    assert all(line.startswith("FAIL") and "appsecret_proof" in line for line in refused.stdout.splitlines())
    accepted = _sync_account_days(cli, IG_APP_SECRET="sandbox-app-secret")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    wrong = cli("accounts", "add", "--ig-user-id", cli.world.accounts[0].ig_user_id, "--token", "-",
                input=cli.world.accounts[0].token + "\n", IG_APP_SECRET="another-secret")
    assert wrong.returncode == 1 and "appsecret_proof" in wrong.stderr
    assert "sandbox-app-secret" not in accepted.stdout + accepted.stderr + refused.stdout + refused.stderr


def _ciphertexts(cli: Cli) -> dict[str, bytes]:
    return {i: bytes(c) for i, c in cli.rows("SELECT ig_user_id, token_ciphertext FROM instagram.accounts")}


def test_token_key_setting_encrypts_tokens_with_that_key(cli, ig_home):
    key = Fernet.generate_key().decode()
    cli.add_all(IG_TOKEN_KEY=key)
    assert not (ig_home / "token.key").exists()
    for a in cli.world.accounts:  # an independent decryption with the documented key
        assert Fernet(key.encode()).decrypt(_ciphertexts(cli)[a.ig_user_id]).decode() == a.token
    other = _sync_account_days(cli, IG_TOKEN_KEY=Fernet.generate_key().decode())
    assert other.returncode == 1 and "IG_TOKEN_KEY" in other.stdout + other.stderr
    assert _sync_account_days(cli, IG_TOKEN_KEY=key).returncode == 0


def test_generated_token_key_is_private_and_decrypts_the_stored_tokens(cli, ig_home):
    cli.add_all()
    key_file = ig_home / "token.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    fernet = Fernet(key_file.read_bytes().strip())
    for a in cli.world.accounts:
        ciphertext = _ciphertexts(cli)[a.ig_user_id]
        assert a.token.encode() not in ciphertext and fernet.decrypt(ciphertext).decode() == a.token


def test_accounts_disable_stops_syncing_and_keeps_history(cli):
    cli.add_all()
    gone = cli.world.accounts[0].ig_user_id
    assert _sync_account_days(cli).returncode == 0
    before = cli.rows("SELECT count(*) FROM instagram.account_insights_daily WHERE ig_user_id = :i", i=gone)
    result = cli("accounts", "disable", gone)
    assert result.returncode == 0 and gone in result.stdout, result.stderr
    cli.server.reset_log()
    again = _sync_account_days(cli)
    assert again.returncode == 0, again.stdout + again.stderr
    assert gone not in again.stdout and gone not in cli.calls_by_account()
    assert cli.rows("SELECT count(*) FROM instagram.account_insights_daily WHERE ig_user_id = :i", i=gone) == before
    assert cli.rows("SELECT status FROM instagram.accounts WHERE ig_user_id = :i", i=gone) == [("disabled",)]
    unknown = cli("accounts", "disable", "17841499999999999")
    assert unknown.returncode == 2 and "17841499999999999" in unknown.stderr  # not registered: a usage mistake


def test_report_and_status_after_a_sync(cli, ig_home):
    cli.add_all()
    yesterday = cli.now.date() - timedelta(days=1)
    assert cli("sync", "--type", "account", "--since", (yesterday - timedelta(days=2)).isoformat()).returncode == 0
    small = cli.world.accounts[0]
    report = cli("report", "--account", small.ig_user_id, "--days", "3")
    assert report.returncode == 0, report.stdout + report.stderr
    html = report.stdout.strip().splitlines()[-1].split("HTML report: ", 1)[1]
    assert html.startswith(str(ig_home)) and f"@{small.username}" in open(html).read()
    stored = cli.rows("SELECT period_start, period_end, report FROM instagram.performance_reports"
                      " WHERE ig_user_id = :i AND kind = 'on_demand'", i=small.ig_user_id)
    [(start, end, body)] = stored
    days = [yesterday - timedelta(days=2), yesterday - timedelta(days=1), yesterday]
    assert (start, end) == (days[0], days[-1])
    # a day the API has not finished yet (UTC yesterday is still running in Pacific time before 07:00 UTC, 08:00 in
    # winter) is NULL, not 0, and the report sums what was measured
    # ... and a day that has ended is served only FAST_LAG_HOURS later (08:00-10:00 UTC in winter: not yet)
    served = [d for d in days if day_end(d) + timedelta(hours=account_lag_hours("views")) <= cli.now]
    measured = [v for v in (cli.world.account_metric(small.ig_user_id, "views", d) for d in served) if v is not None]
    assert len(measured) >= 2
    assert body["account_metrics"]["total_views"] == sum(measured)

    status = cli("status")
    assert status.returncode == 0, status.stderr
    for a in cli.world.accounts:
        block = status.stdout.split(a.ig_user_id, 1)[1].split("\n17841", 1)[0]
        assert f"newest day {yesterday}" in block and "last success never" not in block.split("media")[0]
    assert cli("report", "--account", "17841499999999999").returncode == 2  # not registered: a usage error


def test_a_stored_token_with_a_line_break_fails_its_account_at_once_and_never_leaks(cli, ig_home):
    """Issue 28 row 1: a token an older version stored with a line break. requests refuses the header with an
    InvalidHeader that quotes it; that was retried as transient for 382 s and printed the part after the break
    to stdout, stderr, the log file and sync_runs.error. Now: nothing is sent, the account needs a new token."""
    from ig_analytics.accounts.token_vault import TokenVault
    from ig_analytics.settings import Settings

    cli.add_all()
    bad, good = cli.world.accounts[0].ig_user_id, cli.world.accounts[1].ig_user_id
    vault = TokenVault.from_settings(Settings.from_env({"IG_ANALYTICS_HOME": str(ig_home)}))
    with cli.engine.begin() as conn:
        conn.execute(sa.text("UPDATE instagram.accounts SET token_ciphertext = :c WHERE ig_user_id = :i"),
                     {"c": vault.encrypt("EAAGlongtokenvalue123456\nEAAGsecondhalf7890"), "i": bad})
    cli.server.reset_log()
    result = _sync_account_days(cli, "--account", bad, "--account", good)
    assert result.returncode == 1, result.stdout + result.stderr
    assert bad not in cli.calls_by_account() and good in cli.calls_by_account()  # nothing sent, nothing retried
    [line] = [line for line in result.stdout.splitlines() if bad in line]
    assert "line break" in line and "accounts add" in line, line
    assert cli.rows("SELECT status FROM instagram.accounts WHERE ig_user_id = :i", i=bad) == [("needs_reauth",)]
    errors = [r[0] or "" for r in cli.rows("SELECT error FROM instagram.sync_runs WHERE ig_user_id = :i", i=bad)]
    log_file = ig_home / "logs" / "ig-analytics.log"
    texts = [result.stdout, result.stderr, log_file.read_text() if log_file.exists() else "", *errors]
    assert errors and any("line break" in e for e in errors)
    files = [p for p in ig_home.rglob("*") if p.is_file()]  # the log file, Dagster's compute logs, reports
    texts += [p.read_bytes().decode(errors="replace") for p in files]
    with cli.engine.connect() as conn:  # Dagster's event log lives in the same database (DATABASE_URL)
        events = [r[0] for r in conn.execute(sa.text("SELECT event FROM event_logs WHERE run_id IN (SELECT run_id "
                                                     "FROM runs ORDER BY create_timestamp DESC LIMIT 5)"))]
    assert any(bad in e for e in events) and any(p.name == "ig-analytics.log" for p in files)
    texts += events
    for text in texts:
        assert "secondhalf" not in text and "longtokenvalue" not in text, text[:2000]


def test_discover_escapes_a_page_name_with_a_right_to_left_override(cli):
    """Issue 22: a Page name holding U+202E reversed the rest of the line `accounts discover` printed."""
    from ig_analytics.sandbox.tokens import registry

    user = registry(cli.world).add_facebook_user([("Shop \u202eevil", cli.world.accounts[0].ig_user_id)])
    result = cli("accounts", "discover", "--facebook-token", "-", "--dry-run", input=user + "\n")
    assert result.returncode == 0, result.stderr
    assert "\u202e" not in result.stdout + result.stderr and "Page 'Shop \\u202eevil'" in result.stdout
