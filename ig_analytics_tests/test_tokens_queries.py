"""Token lifecycle plumbing: IG_APP_ID is a setting like every other (read once, by Settings), and a refresh round
reads every due token in one query however many accounts there are. Real PostgreSQL; the refresh call is a fake
(the HTTP side is tested in test_tokens_lifecycle.py and test_tokens_sandbox.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from cryptography.fernet import Fernet

from ig_analytics.accounts import repository as repo
from ig_analytics.accounts.token_lifecycle import refresh_tokens, token_api
from ig_analytics.accounts.token_vault import TokenVault
from ig_analytics.graph_api.models import RefreshedToken
from ig_analytics.settings import Settings

IDS = ("17841400000000011", "17841400000000012", "17841400000000013")


def test_ig_app_id_is_read_through_settings(tmp_path, monkeypatch):
    env = {"IG_ANALYTICS_HOME": str(tmp_path), "IG_APP_SECRET": "app-secret"}
    settings = Settings.from_env({**env, "IG_APP_ID": " 1234567890 "})
    assert settings.app_id == "1234567890"
    api = token_api(settings)
    assert api.can_inspect and api.app_id == "1234567890"
    # the process environment is not read behind Settings' back
    monkeypatch.setenv("IG_APP_ID", "999")
    without = token_api(Settings.from_env(env))
    assert without.app_id is None and not without.can_inspect
    assert Settings.from_env({**env, "IG_APP_ID": "  "}).app_id is None


class _FakeTokenApi:
    def __init__(self) -> None:
        self.refreshed: list[str] = []

    def refresh_instagram_token(self, token: str, now: datetime) -> RefreshedToken:
        self.refreshed.append(token)
        return RefreshedToken(token + "-renewed", now + timedelta(days=60))


def test_a_refresh_round_reads_the_due_tokens_in_one_query(engine):
    vault = TokenVault(Fernet(Fernet.generate_key()))
    for i, ig_user_id in enumerate(IDS):
        repo.add_account(engine, vault, ig_user_id=ig_user_id, token=f"IGAA-token-{i}", login_kind="instagram")
    repo.add_account(engine, vault, ig_user_id="17841400000000014", token="EAA-page", login_kind="facebook")
    selects: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "instagram.accounts" in statement:
            selects.append(statement)

    later = datetime.now(timezone.utc) + timedelta(days=2)  # every Instagram-Login token is 24 h old by then
    api = _FakeTokenApi()
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        results = refresh_tokens(engine, vault, api, later)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert [r.ig_user_id for r in results if r.ok] == list(IDS)
    assert sorted(api.refreshed) == [f"IGAA-token-{i}" for i in range(3)]
    assert len(selects) == 1, selects
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT ig_user_id, token_ciphertext FROM instagram.accounts")).all())
    assert vault.decrypt(stored[IDS[1]]) == "IGAA-token-1-renewed"
    # a chosen account only
    api = _FakeTokenApi()
    assert [r.ig_user_id for r in refresh_tokens(engine, vault, api, later + timedelta(days=2), [IDS[2]])] == [IDS[2]]
