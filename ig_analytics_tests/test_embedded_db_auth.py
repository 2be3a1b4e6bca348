"""Issue 11 row 4: the embedded server wants a password; the analysts' read-only URL reads schema instagram
and can change nothing; a home made by an older version (trust authentication) is upgraded on the next start."""

from __future__ import annotations

import stat

import psycopg2
import pytest
import sqlalchemy as sa

from ig_analytics.local.embedded_db import EmbeddedPostgres
from ig_analytics.storage import db
from ig_analytics_tests.test_embedded_db import cli, home, libpq, ok  # noqa: F401 (home is a fixture)

pytestmark = pytest.mark.slow

OLD_TRUST_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def _refused_without_password(port: int, user: str = "postgres") -> str:
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres", connect_timeout=5).close()
    return str(refused.value)


def test_no_password_no_entry_and_the_urls_work(home):
    result = cli(home, "db", "start")
    assert result.returncode == 0, result.stderr
    server = EmbeddedPostgres(home)
    port = server.status().port
    assert "password" in _refused_without_password(port)
    assert "password" in _refused_without_password(port, "ig_analytics_reader")
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password="wrong", dbname="postgres").close()
    for name in ("postgres-password", "postgres-readonly-password"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    url = cli(home, "db", "url").stdout.strip()
    password = (home / "postgres-password").read_text().strip()
    assert f"postgres:{password}@127.0.0.1:{port}/ig_analytics" in url
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("postgres",)
    dagster_url = cli(home, "db", "url", "--dagster", "--sqlalchemy").stdout.strip()
    assert dagster_url.startswith("postgresql+psycopg2://postgres:") and dagster_url.endswith("/dagster")
    sa.create_engine(dagster_url).connect().close()


def test_read_only_url_selects_but_cannot_write_even_after_the_schema_is_recreated(home):
    ok(home, "db", "start")
    server = EmbeddedPostgres(home)
    owner = db.get_engine(server.url())
    # Migrations recreate the schema later (as the test fixtures do): the grants must follow.
    with owner.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA instagram CASCADE"))
    db.migrate(owner)
    with owner.begin() as conn:
        conn.execute(sa.text("INSERT INTO instagram.accounts (ig_user_id, username) VALUES ('17841400000000001', 'shop')"))
        conn.execute(sa.text("CREATE TABLE public.private_notes (v text)"))
    read_only = cli(home, "db", "url", "--read-only")
    assert read_only.returncode == 0, read_only.stderr
    url = read_only.stdout.strip()
    assert url.startswith("postgresql://ig_analytics_reader:") and url.endswith("/ig_analytics")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ig_user_id, username FROM instagram.accounts")
            assert cur.fetchall() == [("17841400000000001", "shop")]
            cur.execute("SET default_transaction_read_only = off")  # the role's setting is not the only wall
            for statement in (
                "INSERT INTO instagram.accounts (ig_user_id, username) VALUES ('2', 'x')",
                "UPDATE instagram.accounts SET username = 'y'",
                "CREATE TABLE instagram.mine (v int)",
                "CREATE TABLE public.mine (v int)",
                "CREATE TEMP TABLE mine (v int)",
                "SELECT * FROM public.private_notes",
            ):
                with pytest.raises(psycopg2.Error) as denied:
                    cur.execute(statement)
                assert "permission denied" in str(denied.value), statement
    finally:
        conn.close()
    reader = url.split("//", 1)[1].split("@", 1)[0]
    user, password = reader.split(":")
    with pytest.raises(psycopg2.OperationalError):  # nor Dagster's database
        psycopg2.connect(host="127.0.0.1", port=server.status().port, user=user, password=password,
                         dbname="dagster").close()


def test_a_home_from_an_older_version_with_trust_is_upgraded_on_start(home):
    ok(home, "db", "start")
    server = EmbeddedPostgres(home)
    ok(home, "db", "stop")
    # What an older version left: trust in pg_hba.conf, no password files.
    (server.data_dir / "pg_hba.conf").write_text(OLD_TRUST_HBA)
    (home / "postgres-password").unlink()
    (home / "postgres-readonly-password").unlink()
    result = cli(home, "db", "start")
    assert result.returncode == 0, result.stderr
    port = server.status().port
    assert "password" in _refused_without_password(port)
    with psycopg2.connect(cli(home, "db", "url").stdout.strip()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM instagram.accounts")
        assert cur.fetchone() == (0,)
    with psycopg2.connect(cli(home, "db", "url", "--read-only").stdout.strip()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM instagram.accounts")
        assert cur.fetchone() == (0,)
    assert "trust" not in (server.data_dir / "pg_hba.conf").read_text()


def test_a_running_trust_server_is_upgraded_without_a_restart(home):
    ok(home, "db", "start")
    server = EmbeddedPostgres(home)
    pid = server.status().pid
    (server.data_dir / "pg_hba.conf").write_text(OLD_TRUST_HBA)
    with psycopg2.connect(libpq(server.url())) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")
    psycopg2.connect(host="127.0.0.1", port=server.status().port, user="postgres", dbname="postgres").close()
    result = cli(home, "db", "start")
    assert result.returncode == 0, result.stderr
    assert server.status().pid == pid
    assert "password" in _refused_without_password(server.status().port)


def test_the_read_only_role_has_a_connection_limit_that_leaves_the_product_its_own(pg_server, engine):
    """Issue 28 row 8: the read-only URL took 197 of the 200 connections, then `sync` failed with 'too many
    clients' and a hint to run `db start`, which was running."""
    from ig_analytics.cli.errors import _out_of_connections
    from ig_analytics.local.auth import READER_CONNECTION_LIMIT
    from ig_analytics.local.embedded_db import ANALYTICS_DB

    reader = libpq(pg_server.url(ANALYTICS_DB, read_only=True))
    held = []
    try:
        for _ in range(READER_CONNECTION_LIMIT):
            held.append(psycopg2.connect(reader))
        with pytest.raises(psycopg2.OperationalError, match="too many connections for role") as refused:
            held.append(psycopg2.connect(reader))
        with engine.connect() as conn:  # the product's own role still gets in
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        for conn in held:
            conn.close()
    assert READER_CONNECTION_LIMIT <= 50  # of max_connections = 200
    message = _out_of_connections(sa.exc.OperationalError("SELECT 1", {}, refused.value))
    assert message and "no free connection" in message and "db start" not in message
