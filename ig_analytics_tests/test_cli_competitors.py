"""`ig-analytics competitors add | list | remove` as a user runs them (subprocess, real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

FB, IG = "17841400000000051", "17841400000000052"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ig_analytics.cli.main", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ig-analytics:"), result.stderr
    return lines[0]


@pytest.fixture()
def accounts(ig_home, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username, login_kind) VALUES "
                             "(:f, 'shop', 'facebook'), (:i, 'igshop', 'instagram')"), {"f": FB, "i": IG})
    return engine


def test_add_list_remove(accounts):
    added = _cli("competitors", "add", "--account", FB, "@Harbor_Bakehouse", "sourdough_society")
    assert added.returncode == 0, added.stderr
    assert "@harbor_bakehouse" in added.stdout and "@sourdough_society" in added.stdout
    again = _cli("competitors", "add", "--account", FB, "harbor_bakehouse")
    assert again.returncode == 0 and "(already)" in again.stdout
    listed = _cli("competitors", "list", "--account", FB)
    assert listed.returncode == 0 and listed.stdout.count("active") == 2, listed.stdout
    removed = _cli("competitors", "remove", "--account", FB, "harbor_bakehouse")
    assert removed.returncode == 0 and "history stays" in removed.stdout
    assert "harbor_bakehouse" not in _cli("competitors", "list").stdout
    missing = _cli("competitors", "remove", "--account", FB, "harbor_bakehouse")
    assert missing.returncode == 2 and "does not watch" in _one_line(missing)


@pytest.mark.parametrize("bad", ["two words", "trailing.", "a..b", "x" * 31, "bad/slash"])
def test_a_bad_username_is_exit_2_in_one_line_and_nothing_is_added(accounts, bad):
    result = _cli("competitors", "add", "--account", FB, "fine_name", bad)
    assert result.returncode == 2
    assert "not an Instagram username" in _one_line(result)
    with accounts.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instagram.competitors")).scalar_one() == 0


def test_an_instagram_login_account_is_refused_clearly(accounts):
    result = _cli("competitors", "add", "--account", IG, "harbor_bakehouse")
    assert result.returncode == 1
    line = _one_line(result)
    assert "Instagram Login" in line and "Facebook" in line
    unknown = _cli("competitors", "add", "--account", "17841400000000099", "harbor_bakehouse")
    assert unknown.returncode == 2 and "accounts list" in _one_line(unknown)
