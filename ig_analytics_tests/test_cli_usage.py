"""Usage mistakes exit 2 with a one-line message; --help lists only working commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ig_analytics.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["sync", "--type", "bogus"],
        ["sync", "--since", "2026-13-01"],
        ["accounts", "add", "--ig-user-id", "123"],  # missing --token
        ["report", "--account", "1", "--days", "0"],
    ],
)
def test_usage_errors_exit_2_with_one_line(args):
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ig-analytics:"), result.stderr


def test_help_lists_the_contract_commands():
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("db", "accounts", "sync", "sandbox", "demo", "ui", "report", "status"):
        assert f"  {command}" in result.stdout


def test_bad_timezone_is_a_usage_error(ig_home):
    result = _cli("accounts", "add", "--ig-user-id", "17841400000000001", "--token", "secret-token-value",
                  "--timezone", "Mars/Olympus")
    assert result.returncode == 2
    assert "IANA timezone" in result.stderr and "secret-token-value" not in result.stderr
